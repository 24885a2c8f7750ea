//! Tokens round-trip, and the decoder survives anything: arbitrary text, arbitrary bytes
//! behind the prefix, and damaged valid tokens (truncated, bit-flipped, re-versioned).

use plait_core::{decode_token, encode_token, Deviation, Token, TokenError};
use proptest::prelude::*;

fn arb_token() -> impl Strategy<Value = Token> {
    (
        any::<u8>(),
        (any::<u8>(), any::<u8>()),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec((0u64..1000, any::<u32>()), 0..30),
        0u64..5,
    )
        .prop_map(|(strategy, python_version, seed, settings, gaps, tail)| {
            let mut deviations = Vec::new();
            let mut next = 0u64;
            for (gap, value) in gaps {
                let decision = next + gap;
                deviations.push(Deviation { decision, value });
                next = decision + 1;
            }
            Token {
                strategy,
                python_version,
                seed,
                decisions: next + tail,
                settings,
                deviations,
            }
        })
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64(bytes: &[u8]) -> String {
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            s.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn roundtrip(t in arb_token()) {
        let text = encode_token(&t);
        prop_assert!(text.starts_with("plait1:"));
        prop_assert_eq!(decode_token(&text).unwrap(), t);
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = decode_token(&s);
        let _ = decode_token(&format!("plait1:{s}"));
    }

    #[test]
    fn arbitrary_payload_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_token(&format!("plait1:{}", b64(&bytes)));
    }

    #[test]
    fn base64_text_never_panics(s in "[A-Za-z0-9_-]{0,300}") {
        let _ = decode_token(&format!("plait1:{s}"));
    }

    #[test]
    fn truncations_are_errors(t in arb_token(), cut in any::<prop::sample::Index>()) {
        let text = encode_token(&t);
        let at = "plait1:".len() + cut.index(text.len() - "plait1:".len());
        // A strict prefix loses at least the checksum's last character.
        prop_assert!(decode_token(&text[..at]).is_err());
    }

    #[test]
    fn bit_flips_are_detected_or_harmless(t in arb_token(), pos in any::<prop::sample::Index>(), bit in 0u8..6) {
        let text = encode_token(&t);
        let body = &text["plait1:".len()..];
        let i = pos.index(body.len());
        let c = body.as_bytes()[i];
        let v = B64.iter().position(|&x| x == c).unwrap();
        let flipped = B64[v ^ (1 << bit)] as char;
        let mut damaged = String::from("plait1:");
        damaged.push_str(&body[..i]);
        damaged.push(flipped);
        damaged.push_str(&body[i + 1..]);
        // A 16-bit checksum lets ~1/65536 of damages through, and flipping the padding
        // bits of the last character is caught by the zero-bits check; either way, no
        // panic, and a token that decodes must re-encode to itself.
        if let Ok(d) = decode_token(&damaged) {
            prop_assert_eq!(encode_token(&d), damaged);
        }
    }

    #[test]
    fn wrong_versions_are_reported(t in arb_token(), v in 2u32..10_000) {
        let text = encode_token(&t).replacen("plait1:", &format!("plait{v}:"), 1);
        prop_assert_eq!(decode_token(&text), Err(TokenError::UnsupportedVersion { got: v.to_string(), known: plait_core::token::VERSION }));
    }
}

#[test]
fn decoder_is_bounded_on_long_input() {
    let long = format!("plait1:{}", "A".repeat(1_000_000));
    assert!(decode_token(&long).is_err());
}

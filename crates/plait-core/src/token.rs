//! Tokens: the versioned, copy-pasteable text form of one execution's schedule.
//!
//! `plait1:` + base64url (no padding) of:
//!
//! ```text
//! version u8 | strategy u8 | python major u8 | python minor u8
//! | seed varint | decisions varint | settings (len varint, bytes)
//! | deviations: (index delta varint, value varint)*  | checksum u16 (big-endian)
//! ```
//!
//! Only deviations from the default schedule are stored, so a one-preemption schedule is a
//! short string. The index delta of a deviation counts from one past the previous deviation
//! (from 0 for the first), so indices are strictly increasing by construction. The checksum
//! (FNV-1a folded to 16 bits, over everything before it) catches copy-paste damage.
//!
//! The decoder never panics, never loops without consuming input, and never allocates more
//! than the input's size: a length field is checked against the bytes actually present.

use crate::error::TokenError;

/// The token format this build writes and reads.
pub const VERSION: u8 = 1;
const PREFIX: &str = "plait1:";

/// One departure from the default schedule: at decision `decision`, `value` was chosen
/// (an actor id for actor decisions, an index for recorded choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deviation {
    pub decision: u64,
    pub value: u32,
}

/// A decoded token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Strategy that recorded the schedule (`Strategy::code`); informational for replay.
    pub strategy: u8,
    pub python_version: (u8, u8),
    /// The execution's seed (Python seeds `random` with it).
    pub seed: u64,
    /// Number of decisions the execution made.
    pub decisions: u64,
    /// Opaque, Python-defined settings in force during the execution.
    pub settings: Vec<u8>,
    /// Strictly increasing by decision, all below `decisions`.
    pub deviations: Vec<Deviation>,
}

/// Encodes a token. Deviations must be strictly increasing by decision (the explorer
/// records them in order).
pub fn encode_token(token: &Token) -> String {
    let mut buf = Vec::with_capacity(16 + token.settings.len() + 4 * token.deviations.len());
    buf.push(VERSION);
    buf.push(token.strategy);
    buf.push(token.python_version.0);
    buf.push(token.python_version.1);
    put_varint(&mut buf, token.seed);
    put_varint(&mut buf, token.decisions);
    put_varint(&mut buf, token.settings.len() as u64);
    buf.extend_from_slice(&token.settings);
    let mut next = 0u64;
    for d in &token.deviations {
        debug_assert!(d.decision >= next, "deviations must be strictly increasing");
        put_varint(&mut buf, d.decision - next);
        put_varint(&mut buf, u64::from(d.value));
        next = d.decision + 1;
    }
    let sum = checksum(&buf);
    buf.extend_from_slice(&sum.to_be_bytes());
    let mut out = String::with_capacity(PREFIX.len() + buf.len() * 4 / 3 + 3);
    out.push_str(PREFIX);
    base64url_encode(&buf, &mut out);
    out
}

/// Decodes a token (surrounding whitespace is ignored, as copy-paste adds it).
pub fn decode_token(text: &str) -> Result<Token, TokenError> {
    let text = text.trim();
    let body = strip_prefix(text)?;
    let offset = text.len() - body.len();
    let bytes = base64url_decode(body).map_err(|i| TokenError::BadBase64 {
        position: offset + i,
    })?;
    if bytes.len() < 2 {
        return Err(TokenError::Truncated { field: "checksum" });
    }
    let (payload, sum) = bytes.split_at(bytes.len() - 2);
    if checksum(payload).to_be_bytes() != [sum[0], sum[1]] {
        return Err(TokenError::ChecksumMismatch);
    }
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let version = r.byte("version")?;
    if version != VERSION {
        return Err(TokenError::UnsupportedVersion {
            got: version.to_string(),
            known: VERSION,
        });
    }
    let strategy = r.byte("strategy")?;
    let python_version = (r.byte("python version")?, r.byte("python version")?);
    let seed = r.varint("seed")?;
    let decisions = r.varint("decision count")?;
    let settings_len = r.varint("settings length")?;
    // Bounded allocation: never trust a length beyond the bytes actually present.
    let remaining = (r.buf.len() - r.pos) as u64;
    if settings_len > remaining {
        return Err(TokenError::Truncated { field: "settings" });
    }
    let settings = r.take(settings_len as usize).to_vec();
    let mut deviations = Vec::new();
    let mut next = 0u64;
    while r.pos < r.buf.len() {
        let delta = r.varint("deviation index")?;
        let value = r.varint("deviation value")?;
        let decision = next.checked_add(delta).ok_or(TokenError::Overflow {
            field: "deviation index",
        })?;
        if decision >= decisions {
            return Err(TokenError::Invalid {
                field: "deviation",
                detail: format!(
                    "decision {decision} is past the end of the execution ({decisions} decisions)"
                ),
            });
        }
        let value = u32::try_from(value).map_err(|_| TokenError::Overflow {
            field: "deviation value",
        })?;
        deviations.push(Deviation { decision, value });
        next = decision + 1;
    }
    Ok(Token {
        strategy,
        python_version,
        seed,
        decisions,
        settings,
        deviations,
    })
}

fn strip_prefix(text: &str) -> Result<&str, TokenError> {
    if let Some(body) = text.strip_prefix(PREFIX) {
        return Ok(body);
    }
    let Some(rest) = text.strip_prefix("plait") else {
        return Err(TokenError::NotAToken);
    };
    match rest.split_once(':') {
        Some((v, _)) if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) => {
            Err(TokenError::UnsupportedVersion {
                got: v.to_string(),
                known: VERSION,
            })
        }
        _ => Err(TokenError::NotAToken),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self, field: &'static str) -> Result<u8, TokenError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(TokenError::Truncated { field })?;
        self.pos += 1;
        Ok(b)
    }

    /// LEB128, at most 10 bytes, rejecting bits beyond 64 and non-minimal trailing zeros
    /// (so every value has exactly one encoding and damaged tokens fail loudly).
    fn varint(&mut self, field: &'static str) -> Result<u64, TokenError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte(field)?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(TokenError::Overflow { field });
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(TokenError::Invalid {
                        field,
                        detail: "non-minimal number".into(),
                    });
                }
                return Ok(value);
            }
        }
        Err(TokenError::Overflow { field })
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// FNV-1a (32-bit) folded to 16 bits.
fn checksum(bytes: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h >> 16) ^ (h & 0xffff)) as u16
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Decodes unpadded base64url; on error returns the byte position of the bad character
/// (a length of 1 mod 4 is reported at the last character, which cannot stand alone).
fn base64url_decode(text: &str) -> Result<Vec<u8>, usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let mut acc = 0u32;
    let mut nbits = 0u32;
    for (i, &c) in bytes.iter().enumerate() {
        let v = sextet(c).ok_or(i)?;
        acc = (acc << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    if bytes.len() % 4 == 1 {
        return Err(bytes.len() - 1);
    }
    // Leftover bits must be zero, or the text is not the encoding of any byte string.
    if acc != 0 {
        return Err(bytes.len() - 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Token {
        Token {
            strategy: 0,
            python_version: (3, 11),
            seed: 0,
            decisions: 12,
            settings: vec![],
            deviations: vec![Deviation {
                decision: 5,
                value: 1,
            }],
        }
    }

    #[test]
    fn one_deviation_is_short() {
        let t = encode_token(&sample());
        assert!(t.len() < 30, "{t} is {} chars", t.len());
        assert_eq!(decode_token(&t).unwrap(), sample());
    }

    #[test]
    fn whitespace_is_ignored() {
        let t = encode_token(&sample());
        assert_eq!(decode_token(&format!("  {t}\n")).unwrap(), sample());
    }

    #[test]
    fn messages() {
        assert_eq!(
            decode_token("plait7:AAAA").unwrap_err().to_string(),
            "token version 7 is not supported by this plait (knows version 1)"
        );
        assert_eq!(decode_token("hello").unwrap_err(), TokenError::NotAToken);
        let t = encode_token(&sample());
        let damaged = t.replacen('A', "B", 1);
        if damaged != t {
            assert!(decode_token(&damaged).is_err());
        }
        let mut bad = t.clone();
        bad.push('!');
        assert_eq!(
            decode_token(&bad).unwrap_err(),
            TokenError::BadBase64 { position: t.len() }
        );
        assert_eq!(
            decode_token(&t[..t.len() - 4]).unwrap_err().to_string(),
            "the token is damaged (checksum mismatch): copy it again"
        );
    }

    #[test]
    fn huge_settings_length_does_not_allocate() {
        let mut buf = vec![VERSION, 0, 3, 11, 0, 0];
        put_varint(&mut buf, 1 << 60);
        let sum = checksum(&buf);
        buf.extend_from_slice(&sum.to_be_bytes());
        let mut s = String::from(PREFIX);
        base64url_encode(&buf, &mut s);
        assert_eq!(
            decode_token(&s).unwrap_err(),
            TokenError::Truncated { field: "settings" }
        );
    }

    #[test]
    fn base64_roundtrip_all_lengths() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let mut s = String::new();
            base64url_encode(&data, &mut s);
            assert_eq!(base64url_decode(&s).unwrap(), data);
        }
    }
}

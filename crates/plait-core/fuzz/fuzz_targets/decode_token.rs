//! Feeds arbitrary bytes to the token decoder: it must return, never panic or hang, and a
//! token it accepts must re-encode to the same text (modulo surrounding whitespace).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = plait_core::decode_token(text) {
        assert_eq!(plait_core::encode_token(&token), text.trim());
    }
});

//! `RefreshToken::parse`: no panic; an accepted token keeps its exact text.
#![no_main]

use latchkey_core::refresh::RefreshToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = RefreshToken::parse(raw) {
        assert_eq!(token.expose(), raw);
        let _ = format!("{token:?}");
    }
});

//! Fuzz target `refresh_token`: libFuzzer drives `checks::refresh_token`, which says what is checked.
//! (The same check replays the committed seeds on stable in the test suite.)
#![no_main]

#[path = "checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::refresh_token(data));

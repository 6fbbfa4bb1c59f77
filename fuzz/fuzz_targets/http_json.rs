//! Fuzz target `http_json`: libFuzzer drives `checks::http_json`, which says what is checked.
//! (The same check replays the committed seeds on stable in the test suite.)
#![no_main]

#[path = "checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::http_json(data));

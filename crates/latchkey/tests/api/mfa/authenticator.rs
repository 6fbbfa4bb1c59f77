//! The test's own TOTP (RFC 4226 / RFC 6238), independent of the server's: HMAC-SHA1
//! from aws-lc-rs, checked against the RFC's test vectors, reading the secret from the
//! `otpauth_uri` the server hands out.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;

fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

fn code_at_step(secret: &[u8], step: u64) -> String {
    hotp(secret, step, 6)
}

pub(super) fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let index = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32");
        value = (value << 5) | index as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// The secret of an `otpauth://totp/...` URI, after checking its parameters are the ones
/// every authenticator app assumes.
pub(crate) fn secret_of(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').expect("a query").1;
    let mut secret = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').expect("key=value");
        match key {
            "secret" => secret = Some(base32_decode(value)),
            "algorithm" => assert_eq!(value, "SHA1"),
            "digits" => assert_eq!(value, "6"),
            "period" => assert_eq!(value, "30"),
            _ => {}
        }
    }
    secret.expect("a secret parameter")
}

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The authenticator app: hands out codes of ever newer time steps, each one the server
/// accepts when it arrives even if a step boundary passes on the way (the current or
/// the next step, never the previous one); waits for the next step when both are used.
pub(crate) struct Authenticator {
    secret: Vec<u8>,
    last: Option<u64>,
}

impl Authenticator {
    pub(crate) fn from_uri(uri: &str) -> Self {
        Self {
            secret: secret_of(uri),
            last: None,
        }
    }

    /// The secret, as the app holds it.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    pub(crate) async fn next_code(&mut self) -> String {
        loop {
            let now = now_step();
            let step = self.last.map_or(now, |last| (last + 1).max(now));
            if step <= now + 1 {
                self.last = Some(step);
                return code_at_step(&self.secret, step);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A code no step near now has.
    pub(super) fn wrong_code(&self) -> String {
        let now = now_step();
        let near: BTreeSet<String> = (now - 3..=now + 3)
            .map(|s| code_at_step(&self.secret, s))
            .collect();
        (0..)
            .map(|n| format!("{:06}", 123_456 + n))
            .find(|c| !near.contains(c))
            .unwrap()
    }
}

#[test]
fn the_tests_own_totp_matches_rfc_6238_appendix_b() {
    let secret = b"12345678901234567890";
    for (time, expected) in [
        (59u64, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(hotp(secret, time / 30, 8), expected, "T = {time}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), secret);
}

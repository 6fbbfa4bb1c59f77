//! The second factor's cryptography: TOTP codes (RFC 6238 through the `totp-rs` crate),
//! sealing TOTP secrets for storage (AES-256-GCM, [`DataSealer`]: under the master
//! secret's key when configured), QR codes (the `qrcode` crate), recovery codes and
//! `mfa_token`s. The rules (window, replay, formats) are in [`latchkey_core::mfa`].

use aws_lc_rs::{constant_time, digest, rand};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_core::mfa::{
    acceptable_steps, format_recovery_code, recovery_code_hash, RECOVERY_CODE_COUNT,
    TOTP_STEP_SECONDS,
};
use latchkey_core::model::UserId;
use latchkey_core::sealing::DataSealer;
use latchkey_core::store::RecoveryCodeHash;
use latchkey_core::time::Timestamp;
use totp_rs::{Algorithm, TOTP};

use super::AuthError;

/// Bytes of a TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| AuthError::Internal("random source failed".into()))?;
    Ok(bytes)
}

/// `secret` of `user` sealed for storage (the user id is the additional data, so a
/// sealed secret copied to another user's row does not open).
pub(super) fn seal_secret(
    sealer: &DataSealer,
    user: UserId,
    secret: &[u8],
) -> Result<Vec<u8>, AuthError> {
    sealer
        .seal(&user.to_string(), secret)
        .map_err(|_| AuthError::Internal("sealing failed".into()))
}

/// The TOTP secret `seal_secret` sealed for `user`.
pub(super) fn open_secret(
    sealer: &DataSealer,
    user: UserId,
    sealed: &[u8],
) -> Result<Vec<u8>, AuthError> {
    sealer
        .open(&user.to_string(), sealed)
        .map_err(|_| AuthError::Internal("a stored TOTP secret does not open".into()))
}

/// A fresh TOTP secret.
pub(super) fn new_secret() -> Result<Vec<u8>, AuthError> {
    Ok(random::<SECRET_BYTES>()?.to_vec())
}

/// The authenticator-app parameters every app understands: SHA-1, 6 digits, 30 s.
pub(super) fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<TOTP, AuthError> {
    let step = u64::try_from(TOTP_STEP_SECONDS).unwrap_or(30);
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        step,
        secret,
        Some(issuer.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| AuthError::Internal(format!("TOTP parameters refused: {e}")))
}

/// The time step within the accepted window whose code `code` is, if any.
pub(super) fn matching_step(totp: &TOTP, code: &str, now: Timestamp) -> Option<i64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut matched = None;
    for step in acceptable_steps(now) {
        let Ok(at) = u64::try_from(step * TOTP_STEP_SECONDS) else {
            continue;
        };
        let expected = totp.generate(at);
        if constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok() {
            matched = Some(step);
        }
    }
    matched
}

/// The QR code of `uri` as an SVG document.
pub(super) fn qr_svg(uri: &str) -> Result<String, AuthError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| AuthError::Internal(format!("QR encoding failed: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

/// A new set of recovery codes: what to show once, and what to store.
pub(super) fn new_recovery_codes() -> Result<(Vec<String>, Vec<RecoveryCodeHash>), AuthError> {
    let mut shown = Vec::with_capacity(RECOVERY_CODE_COUNT);
    let mut stored = Vec::with_capacity(RECOVERY_CODE_COUNT);
    for _ in 0..RECOVERY_CODE_COUNT {
        let code = format_recovery_code(&random::<16>()?);
        stored.push(recovery_code_hash(&code.replace('-', "")));
        shown.push(code);
    }
    Ok((shown, stored))
}

/// A new `mfa_token` (256 random bits) and its stored hash.
pub(super) fn new_mfa_token() -> Result<(String, [u8; 32]), AuthError> {
    let token = URL_SAFE_NO_PAD.encode(random::<32>()?);
    let hash = mfa_token_hash(&token);
    Ok((token, hash))
}

/// The stored form of an `mfa_token`: SHA-256 (the token has 256 random bits).
pub(super) fn mfa_token_hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_within_one_step_either_side_only() {
        let totp = totp(b"12345678901234567890".to_vec(), "Test", "a@example.com").unwrap();
        let now = Timestamp::from_unix_millis(59_000);
        // RFC 6238 appendix B: T = 59 s gives 94287082 (8 digits); 6 digits: 287082.
        assert_eq!(totp.generate(59), "287082");
        assert_eq!(matching_step(&totp, "287082", now), Some(1));
        assert_eq!(matching_step(&totp, &totp.generate(0), now), Some(0));
        assert_eq!(matching_step(&totp, &totp.generate(60), now), Some(2));
        assert_eq!(matching_step(&totp, &totp.generate(90), now), None);
        assert_eq!(matching_step(&totp, "28708", now), None);
    }
}

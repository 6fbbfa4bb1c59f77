//! Access tokens: signing them at login and refresh, and checking them on every request
//! (no I/O unless the `kid` is unknown).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_core::mfa::AuthMethods;
use latchkey_core::model::{Role, SessionId, UserId};
use latchkey_core::refresh::RefreshToken;
use latchkey_core::time::Timestamp;
use latchkey_verify::{verify_access_token, AccessClaims, TokenError};

use super::{AuthError, AuthService, IssuedTokens};

/// How and when the user behind a session authenticated: the `amr` and `auth_time` of
/// its access tokens (kept across refreshes).
#[derive(Debug, Clone, Copy)]
pub(super) struct Authentication {
    /// The login's time (the session's creation).
    pub(super) at: Timestamp,
    /// The factors used.
    pub(super) methods: AuthMethods,
}

/// Whom an access token speaks for: the claims that come from the session and its user.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokenSubject<'a> {
    /// `sub`.
    pub(super) user_id: UserId,
    /// `roles`, as the store holds them now.
    pub(super) roles: &'a [Role],
    /// `sid`.
    pub(super) session_id: SessionId,
    /// `amr` and `auth_time`.
    pub(super) auth: Authentication,
    /// `email_verified`.
    pub(super) email_verified: bool,
}

impl AuthService {
    pub(super) fn issue(
        &self,
        subject: TokenSubject<'_>,
        refresh_token: RefreshToken,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        let access_token = self.sign_access_token(&subject, now)?;
        Ok(IssuedTokens {
            access_token,
            expires_in: self.policy.access_ttl,
            refresh_token,
            refresh_expires_in: self.policy.rotation.idle_ttl,
            session_id: subject.session_id,
        })
    }

    fn sign_access_token(
        &self,
        subject: &TokenSubject<'_>,
        now: Timestamp,
    ) -> Result<String, AuthError> {
        let TokenSubject {
            user_id,
            roles,
            session_id,
            auth,
            email_verified,
        } = *subject;
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti)
            .map_err(|_| AuthError::Internal("random source failed".into()))?;
        let iat = now.unix_seconds();
        let claims = AccessClaims {
            iss: self.policy.issuer.clone(),
            sub: user_id.to_string(),
            aud: vec![self.policy.audience.clone()],
            sid: session_id.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            iat,
            exp: iat + i64::try_from(self.policy.access_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            nbf: None,
            jti: URL_SAFE_NO_PAD.encode(jti),
            amr: auth.methods.amr(),
            auth_time: Some(auth.at.unix_seconds()),
            email_verified: Some(email_verified),
        };
        Ok(self.key_ring().active().sign(&claims)?)
    }

    pub(super) fn verify_signature_and_claims(
        &self,
        token: &str,
    ) -> Result<AccessClaims, TokenError> {
        let now = self.clock.now().unix_seconds();
        verify_access_token(
            token,
            self.key_ring().verification_keys(),
            &self.validation,
            now,
        )
    }

    /// Check an access token: signature (algorithm from the key), `typ`, `iss`, `aud`,
    /// `exp`, then revocation of the token and of its session. No I/O unless the `kid` is
    /// unknown, when the key ring is reloaded (at most once a second) in case another
    /// replica rotated keys.
    pub async fn authenticate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let result = self.check_access_token(token).await;
        self.metrics.token_check(&result);
        result
    }

    async fn check_access_token(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let now = self.clock.now().unix_seconds();
        let leeway = i64::try_from(self.policy.leeway.as_secs()).unwrap_or(0);
        self.follow_key_revocations().await;
        // Entries verified under an older key ring (a key since removed or revoked) miss.
        let generation = self.key_generation.load(Ordering::Acquire);
        let cached = self.verified.get(token, now, leeway, generation);
        self.metrics.token_cache(cached.is_some());
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = match self.verify_signature_and_claims(token) {
                    Err(TokenError::UnknownKey) if self.reload_keys_if_due().await => {
                        self.verify_signature_and_claims(token)?
                    }
                    other => other?,
                };
                let claims = Arc::new(claims);
                self.verified.insert(token, claims.clone(), generation);
                claims
            }
        };
        let sid = claims.sid.parse::<SessionId>().ok();
        if self.revocations.is_revoked(&claims.jti, sid) {
            return Err(TokenError::Revoked);
        }
        Ok(AccessClaims::clone(&claims))
    }
}

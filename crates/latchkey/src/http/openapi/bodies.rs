//! The JSON bodies the handlers answer with (and a few request bodies they parse by
//! hand), as types: the handlers build them and the OpenAPI document is derived from
//! them. Request bodies parsed with `JsonBody` live beside their handlers.

use serde::Serialize;
use utoipa::ToSchema;

use crate::service::{SessionView, UserView};

/// A new account.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct Registered {
    /// The user id.
    #[schema(format = Uuid)]
    pub(in crate::http) id: String,
    /// The address, trimmed and lower-cased.
    #[schema(format = Email)]
    pub(in crate::http) email: String,
    /// The roles (`user`).
    pub(in crate::http) roles: Vec<String>,
}

/// The answer to a login: tokens, or the request for a second factor. (Describes the
/// wire format only: the handler answers one of the two directly.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(in crate::http) enum LoginAnswer {
    /// Users without a second factor: a new pair.
    Tokens(super::super::tokens::TokenResponse<'static>),
    /// Users with a second factor: send a code to `POST /auth/login/mfa`.
    MfaRequired(super::super::tokens::MfaRequired),
}

/// The caller, from the verified access token (no database access).
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct Me {
    /// The user.
    pub(in crate::http) user: MeUser,
    /// The session the token belongs to.
    pub(in crate::http) session: MeSession,
    /// The token's times and authentication methods.
    pub(in crate::http) token: MeToken,
}

/// The caller's user.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct MeUser {
    /// The user id (`sub`).
    pub(in crate::http) id: String,
    /// The roles in the token.
    pub(in crate::http) roles: Vec<String>,
}

/// The caller's session.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct MeSession {
    /// The session id (`sid`).
    pub(in crate::http) id: String,
}

/// The access token's times.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct MeToken {
    /// `iat`, Unix seconds.
    pub(in crate::http) issued_at: i64,
    /// `exp`, Unix seconds.
    pub(in crate::http) expires_at: i64,
    /// When the user logged in, Unix seconds (absent in tokens from older versions).
    pub(in crate::http) auth_time: Option<i64>,
    /// How the user authenticated (RFC 8176: `pwd`, `otp`).
    pub(in crate::http) amr: Vec<String>,
}

/// A page of the revocation feed.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct RevocationFeed {
    /// Entries after `after`, oldest first.
    pub(in crate::http) entries: Vec<RevocationFeedEntry>,
    /// The `after` of the next request.
    pub(in crate::http) next: i64,
}

/// One revocation.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct RevocationFeedEntry {
    /// Position in the log.
    pub(in crate::http) seq: i64,
    /// What `value` names.
    #[schema(value_type = String, pattern = "^(access_token|session|key)$")]
    pub(in crate::http) kind: &'static str,
    /// A token's `jti`, a session id (`sid`) or a key's `kid`.
    pub(in crate::http) value: String,
    /// Unix seconds after which every token the entry kills has expired anyway.
    pub(in crate::http) expires_at: i64,
}

/// The caller's live sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct SessionList {
    /// The sessions.
    pub(in crate::http) sessions: Vec<SessionView>,
}

/// Security events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct EventList {
    /// The events.
    pub(in crate::http) events: Vec<crate::service::EventView>,
}

/// A user and their live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct UserDetail {
    /// The user.
    pub(in crate::http) user: UserView,
    /// Their live sessions, newest first.
    pub(in crate::http) sessions: Vec<SessionView>,
}

/// A user after a change.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct ChangedUser {
    /// The user as now stored.
    pub(in crate::http) user: UserView,
}

/// How many sessions were ended.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct RevokedSessions {
    /// The number of sessions ended.
    pub(in crate::http) revoked: usize,
}

/// A new signing key.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct NewKey {
    /// Its key id.
    pub(in crate::http) kid: String,
}

/// A TOTP authenticator to enrol (nothing is active until confirmed).
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct TotpEnrollment {
    /// The shared secret, base32, for typing into the app.
    pub(in crate::http) secret: String,
    /// The `otpauth://` URI the QR code encodes.
    pub(in crate::http) otpauth_uri: String,
    /// The QR code, an SVG document.
    pub(in crate::http) qr_svg: String,
}

/// Recovery codes, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct RecoveryCodes {
    /// Ten single-use codes.
    pub(in crate::http) recovery_codes: Vec<String>,
}

/// A request taken, with the same answer whatever the outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct Accepted {
    /// `accepted`.
    pub(in crate::http) status: &'static str,
    /// What happens next.
    pub(in crate::http) message: &'static str,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct Health {
    /// `ok`.
    pub(in crate::http) status: &'static str,
}

/// Readiness: the database must answer; Redis, when configured, only degrades.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct Readiness {
    /// `ready`, `degraded` (Redis unavailable) or `unavailable` (503).
    #[schema(value_type = String, pattern = "^(ready|degraded|unavailable)$")]
    pub(in crate::http) status: &'static str,
    /// `ok` or `unavailable`.
    #[schema(value_type = String, pattern = "^(ok|unavailable)$")]
    pub(in crate::http) database: &'static str,
    /// `ok`, `unavailable` or `not_configured`.
    #[schema(value_type = String, pattern = "^(ok|unavailable|not_configured)$")]
    pub(in crate::http) redis: &'static str,
}

/// Not ready: the database does not answer (`Readiness`), or the server refused the
/// request (`Error`: `request_timeout`, `too_many_connections`). (Describes the wire
/// format only.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(in crate::http) enum Unready {
    /// The readiness report.
    Report(Readiness),
    /// A refusal.
    Refused(super::super::error::ErrorBody<'static>),
}

/// The public keys (RFC 7517); HS256 secrets are never published. (Describes the wire
/// format only: the handler serves `latchkey_verify::Jwks`.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(in crate::http) struct JwkSet {
    /// The keys that verify tokens now: the active one and those still verifying.
    keys: Vec<Jwk>,
}

/// A public key (RFC 7517, 7518, 8037).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(in crate::http) struct Jwk {
    /// `OKP` (Ed25519), `EC` (P-256) or `RSA`.
    kty: String,
    /// The key id tokens name in their header.
    kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    use_: Option<String>,
    /// The curve (`Ed25519`, `P-256`).
    crv: Option<String>,
    /// The public point's x (OKP, EC), base64url.
    x: Option<String>,
    /// The public point's y (EC), base64url.
    y: Option<String>,
    /// The RSA modulus, base64url.
    n: Option<String>,
    /// The RSA exponent, base64url.
    e: Option<String>,
}

/// Authorization server metadata (RFC 8414).
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct ServerMetadata {
    /// `LATCHKEY_ISSUER`.
    pub(in crate::http) issuer: String,
    /// The JWKS.
    pub(in crate::http) jwks_uri: String,
    /// RFC 7662 introspection.
    pub(in crate::http) introspection_endpoint: String,
    /// `client_secret_basic`, `client_secret_post`.
    pub(in crate::http) introspection_endpoint_auth_methods_supported: [&'static str; 2],
    /// RFC 7009 revocation.
    pub(in crate::http) revocation_endpoint: String,
    /// `client_secret_basic`, `client_secret_post`.
    pub(in crate::http) revocation_endpoint_auth_methods_supported: [&'static str; 2],
    /// Empty: Latchkey has no OAuth authorization endpoint.
    pub(in crate::http) response_types_supported: [&'static str; 0],
    /// The algorithms of the keys in the JWKS.
    pub(in crate::http) access_token_signing_alg_values_supported: Vec<String>,
}

/// A token introspection or revocation request (RFC 7662, RFC 7009), form-encoded. The
/// client authenticates with HTTP Basic or with `client_id` and `client_secret` here,
/// not both. (Describes the wire format only: the handler reads the pairs itself, to
/// refuse repeated parameters.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(in crate::http) struct OAuthTokenForm {
    /// The access or refresh token.
    token: String,
    /// `access_token` or `refresh_token`; a hint, not a constraint.
    #[schema(pattern = "^(access_token|refresh_token)$")]
    token_type_hint: Option<String>,
    /// `client_secret_post`: the client id.
    client_id: Option<String>,
    /// `client_secret_post`: the client secret.
    client_secret: Option<String>,
}

/// An introspection answer (RFC 7662): `{"active": false}` alone for anything not
/// active, with no reason.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(in crate::http) struct Introspected {
    /// Whether the token is active.
    pub(in crate::http) active: bool,
    /// `Bearer` (access tokens) or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) token_type: Option<&'static str>,
    /// The user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) sub: Option<String>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) iss: Option<String>,
    /// Audiences (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) aud: Option<Vec<String>>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) exp: Option<i64>,
    /// Issued at, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) iat: Option<i64>,
    /// Token id (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) jti: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) sid: Option<String>,
    /// Roles (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(in crate::http) roles: Option<Vec<String>>,
}

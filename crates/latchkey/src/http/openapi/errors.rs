//! The refusals of each operation, by status and stable code, for the OpenAPI document.
//!
//! Each operation names one type below in its `responses(...)`; the type lists the
//! sets of refusals the handler's extractors and service calls can answer. Every
//! error response in the document is the `Error` schema with its `code` narrowed to
//! the codes listed for that status, so a client (and schemathesis, in the tests)
//! knows exactly which codes each route answers. [`EVERY_REQUEST`] is added to every
//! operation: the limits of `limits.rs` and `app.rs`, and a bug.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Type};
use utoipa::openapi::RefOr;

/// Stable codes by HTTP status.
pub(in crate::http) type Refusals = &'static [(u16, &'static [&'static str])];

/// What any request may be answered: a body that cannot be read (400), or arrives too
/// slowly (408) or is too large (413), a server that takes too long or has too many
/// connections (503), the router mounted without `ConnectInfo`, or a bug (500).
pub(in crate::http) const EVERY_REQUEST: Refusals = &[
    (400, &["invalid_body"]),
    (408, &["body_timeout"]),
    (413, &["payload_too_large"]),
    (500, &["internal_error", "connect_info_missing"]),
    (503, &["request_timeout", "too_many_connections"]),
];

/// A JSON body (`extract::JsonBody`).
pub(in crate::http) const JSON_BODY: Refusals = &[(
    400,
    &["content_type_invalid", "malformed_json", "invalid_request"],
)];

/// A query string or path parameter (`extract::QueryParams`, `extract::PathParam`).
pub(in crate::http) const PARAMETERS: Refusals = &[(400, &["invalid_request"])];

/// A valid, unrevoked access token (`extract::Authenticated`).
pub(in crate::http) const BEARER: Refusals = &[(
    401,
    &[
        "token_missing",
        "token_invalid",
        "token_expired",
        "token_revoked",
    ],
)];

/// An access token with the `admin` role (`extract::Admin`; `reauth_required` once
/// admin work needs a recent login).
pub(in crate::http) const ADMIN: Refusals = &[
    (
        401,
        &[
            "token_missing",
            "token_invalid",
            "token_expired",
            "token_revoked",
            "reauth_required",
        ],
    ),
    (403, &["insufficient_role"]),
];

/// A use case that reads or writes the store.
pub(in crate::http) const STORE: Refusals = &[(503, &["store_unavailable", "overloaded"])];

/// A use case that hashes a password (the Argon2 queue) or counts failed logins.
pub(in crate::http) const PASSWORD_CHECK: Refusals =
    &[(429, &["rate_limited"]), (503, &["overloaded"])];

/// A new password (`Password::parse`).
pub(in crate::http) const NEW_PASSWORD: Refusals = &[(
    400,
    &[
        "password_too_short",
        "password_too_long",
        "password_too_weak",
    ],
)];

/// The error responses of these sets of refusals, plus [`EVERY_REQUEST`].
pub(in crate::http) fn error_responses(sets: &[Refusals]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for (status, codes) in sets.iter().copied().chain([EVERY_REQUEST]).flatten() {
        let known = by_status.entry(*status).or_default();
        for code in *codes {
            if !known.contains(code) {
                known.push(code);
            }
        }
    }
    by_status
        .into_iter()
        .map(|(status, codes)| (status.to_string(), error_response(status, &codes).into()))
        .collect()
}

/// One error response: the `Error` schema with `code` narrowed to `codes`.
fn error_response(status: u16, codes: &[&'static str]) -> ResponseBuilder {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let listed: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let narrowed = ObjectBuilder::new().property(
        "code",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes.iter().copied())),
    );
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("Error"))
        .item(narrowed);
    let mut response = ResponseBuilder::new()
        .description(format!("{reason}: {}", listed.join(", ")))
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        );
    let header = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    if status == 401 {
        response = response.header(
            "WWW-Authenticate",
            header("The challenge: `Bearer` (RFC 6750) or `Basic` (OAuth clients)"),
        );
    }
    if status == 429 || status == 503 {
        response = response.header("Retry-After", header("Seconds to wait before retrying"));
    }
    response
}

/// `GET /readyz`: what any request may be answered, but 503, which `readyz` documents
/// itself (its own body when the database does not answer, or an `Error`).
pub(in crate::http) struct Readyz;

impl utoipa::IntoResponses for Readyz {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = error_responses(&[]);
        responses.remove("503");
        responses
    }
}

/// Declares one type per operation whose `IntoResponses` are its error responses.
macro_rules! refusals {
    ($($(#[$doc:meta])* $name:ident: $($set:expr),+;)+) => {$(
        $(#[$doc])*
        pub(in crate::http) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_responses(&[$($set),+])
            }
        }
    )+};
}

refusals! {
    /// `POST /auth/register`.
    Register: JSON_BODY, STORE, PASSWORD_CHECK, NEW_PASSWORD,
        &[(400, &["email_invalid"]), (409, &["email_taken"])];
    /// `POST /auth/login`.
    Login: JSON_BODY, STORE, PASSWORD_CHECK,
        &[(401, &["invalid_credentials"]), (403, &["account_disabled", "email_not_verified"])];
    /// `POST /auth/refresh`.
    Refresh: JSON_BODY, STORE, &[
        (400, &["refresh_cookie_duplicated"]),
        (401, &[
            "refresh_token_missing",
            "refresh_token_invalid",
            "refresh_token_expired",
            "refresh_token_reused",
            "session_revoked",
        ]),
        (403, &["csrf_check_failed"]),
        (429, &["rate_limited"]),
    ];
    /// `POST /auth/logout`.
    Logout: JSON_BODY, STORE, &[
        (400, &["refresh_cookie_duplicated"]),
        (403, &["csrf_check_failed"]),
        (429, &["rate_limited"]),
    ];
    /// `GET /auth/me`.
    Me: BEARER;
    /// `GET /auth/revocations`.
    RevocationFeed: PARAMETERS, STORE, &[(401, &["feed_secret_invalid"]), (404, &["not_found"])];
    /// `GET /auth/sessions`.
    MySessions: BEARER, STORE;
    /// `DELETE /auth/sessions/{id}`.
    RevokeMySession: BEARER, PARAMETERS, STORE, &[(404, &["session_not_found"])];
    /// `POST /auth/logout-all`.
    LogoutAll: BEARER, JSON_BODY, STORE;
    /// `POST /auth/password`.
    ChangePassword: BEARER, JSON_BODY, STORE, PASSWORD_CHECK, NEW_PASSWORD,
        &[(401, &["invalid_credentials", "reauth_required"])];
    /// `GET /auth/events`.
    MyEvents: BEARER, PARAMETERS, STORE;
    /// `POST /auth/login/mfa`.
    LoginMfa: JSON_BODY, STORE, PASSWORD_CHECK, &[
        (400, &["mfa_code_missing"]),
        (401, &["mfa_code_invalid", "mfa_token_invalid", "mfa_token_expired"]),
        (403, &["account_disabled"]),
    ];
    /// `GET /auth/mfa`.
    MfaStatus: BEARER, STORE;
    /// `POST /auth/mfa/totp/enroll`.
    EnrollTotp: BEARER, STORE, &[(409, &["mfa_already_enabled"])];
    /// `POST /auth/mfa/totp/confirm`.
    ConfirmTotp: BEARER, JSON_BODY, STORE, &[
        (400, &["mfa_not_enabled", "mfa_code_missing"]),
        (401, &["mfa_code_invalid"]),
        (409, &["mfa_already_enabled"]),
    ];
    /// `DELETE /auth/mfa/totp` and `POST /auth/mfa/recovery-codes`.
    MfaChange: BEARER, JSON_BODY, STORE, PASSWORD_CHECK, &[
        (400, &["mfa_not_enabled", "mfa_code_missing"]),
        (401, &["mfa_code_invalid", "reauth_required"]),
    ];
    /// `POST /auth/password-reset`.
    RequestReset: JSON_BODY, STORE, &[(400, &["email_invalid"]), (429, &["rate_limited"])];
    /// `POST /auth/password-reset/confirm`.
    ConfirmReset: JSON_BODY, STORE, PASSWORD_CHECK, NEW_PASSWORD, &[
        (400, &["reset_token_invalid", "mfa_code_missing"]),
        (401, &["mfa_code_invalid"]),
    ];
    /// `POST /auth/verify-email`.
    VerifyEmail: JSON_BODY, STORE, &[(400, &["verification_token_invalid"]), (409, &["email_taken"])];
    /// `POST /auth/verify-email/resend`.
    ResendVerification: BEARER, STORE, &[(404, &["user_not_found"]), (429, &["rate_limited"])];
    /// `POST /auth/email`.
    ChangeEmail: BEARER, JSON_BODY, STORE, PASSWORD_CHECK,
        &[(400, &["email_invalid"]), (401, &["invalid_credentials"])];
    /// `GET /admin/users`.
    ListUsers: ADMIN, PARAMETERS, STORE, &[(400, &["email_invalid"])];
    /// `GET /admin/users/{id}`, `GET /admin/users/{id}/sessions`.
    ShowUser: ADMIN, PARAMETERS, STORE, &[(404, &["user_not_found"])];
    /// `PATCH /admin/users/{id}`.
    ChangeUser: ADMIN, PARAMETERS, JSON_BODY, STORE,
        &[(400, &["role_invalid"]), (404, &["user_not_found"]), (409, &["last_admin"])];
    /// `DELETE /admin/users/{id}`.
    DeleteUser: ADMIN, PARAMETERS, STORE, &[(404, &["user_not_found"]), (409, &["last_admin"])];
    /// `DELETE /admin/users/{id}/sessions`.
    RevokeUserSessions: ADMIN, PARAMETERS, STORE,
        &[(404, &["user_not_found", "session_not_found"])];
    /// `DELETE /admin/users/{id}/mfa`.
    ResetMfa: ADMIN, PARAMETERS, STORE, &[(400, &["mfa_not_enabled"]), (404, &["user_not_found"])];
    /// `GET /admin/security-events`.
    SecurityEvents: ADMIN, PARAMETERS, STORE, &[(404, &["user_not_found"])];
    /// `POST /admin/keys/rotate`.
    RotateKeys: ADMIN, STORE;
    /// `POST /admin/keys/{kid}/revoke`.
    RevokeKey: ADMIN, PARAMETERS, STORE, &[(404, &["key_not_found"])];
    /// `POST /oauth/introspect` and `POST /oauth/revoke` (RFC 6749 section 5.2 errors).
    OAuthClient: STORE, &[
        (400, &["invalid_request"]),
        (401, &["invalid_client"]),
        (429, &["rate_limited"]),
    ];
    /// Routes that answer from memory: only what any request may be answered.
    NoRefusal: &[];
}

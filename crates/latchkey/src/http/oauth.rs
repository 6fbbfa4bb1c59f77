//! The standard OAuth endpoints for resource services and clients: authorization server
//! metadata (RFC 8414), token introspection (RFC 7662) and token revocation (RFC 7009).
//!
//! Introspection and revocation take `application/x-www-form-urlencoded` bodies and
//! authenticate the calling client (`LATCHKEY_CLIENTS`) with HTTP Basic
//! (`client_secret_basic`) or `client_id`/`client_secret` in the body
//! (`client_secret_post`). Errors follow RFC 6749 section 5.2: `{"error": "<code>"}`
//! (with the same `code` field as every other Latchkey error).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::openapi::bodies::{Introspected, OAuthTokenForm, ServerMetadata};
use super::openapi::errors;
use super::AppState;
use crate::service::{Introspection, RequestContext, TokenHint};

/// Client authentication methods both endpoints accept.
const AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

/// The metadata and OAuth routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metadata))
        .routes(routes!(introspect))
        .routes(routes!(revoke))
}

/// RFC 8414 metadata. Latchkey has no authorization or token endpoint in the OAuth
/// sense (logins are its own API), so `response_types_supported` is empty.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth",
    responses((status = 200, description = "The metadata", body = ServerMetadata), errors::NoRefusal))]
async fn metadata(State(state): State<AppState>) -> Json<ServerMetadata> {
    let issuer = state.service.policy().issuer.clone();
    let base = issuer.trim_end_matches('/');
    let jwks = serde_json::to_value(state.service.key_ring().jwks()).unwrap_or(Value::Null);
    let mut algorithms: Vec<String> = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|key| key["alg"].as_str().map(str::to_owned))
        .collect();
    algorithms.sort();
    algorithms.dedup();
    Json(ServerMetadata {
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        introspection_endpoint: format!("{base}/oauth/introspect"),
        introspection_endpoint_auth_methods_supported: AUTH_METHODS,
        revocation_endpoint: format!("{base}/oauth/revoke"),
        revocation_endpoint_auth_methods_supported: AUTH_METHODS,
        response_types_supported: [],
        access_token_signing_alg_values_supported: algorithms,
        issuer,
    })
}

/// A token request's form fields.
struct TokenForm {
    token: String,
    hint: Option<TokenHint>,
}

fn invalid_request() -> ApiError {
    ApiError::oauth(StatusCode::BAD_REQUEST, "invalid_request", None)
}

/// Parse the form and authenticate the client (through the service, which backs off
/// failures): one authentication method, each parameter at most once, a `token`.
async fn authenticated_form(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<TokenForm, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(invalid_request());
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| invalid_request())?;
    let field = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next().map(String::as_str);
        if values.next().is_some() {
            return Err(invalid_request());
        }
        Ok(first)
    };
    let basic = headers.get(header::AUTHORIZATION);
    let posted = (field("client_id")?, field("client_secret")?);
    let presented = match (basic, posted) {
        (Some(_), (Some(_), _) | (_, Some(_))) => return Err(invalid_request()),
        (Some(value), _) => basic_credentials(value.as_bytes()),
        (None, (Some(id), Some(secret))) => Some((id.to_owned(), secret.to_owned())),
        (None, _) => None,
    };
    let presented = presented.as_ref().map(|(id, s)| (id.as_str(), s.as_str()));
    state
        .service
        .authenticate_client(&state.web.clients, presented, ctx)
        .await?;
    let token = field("token")?
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid_request)?;
    let hint = match field("token_type_hint")? {
        Some("access_token") => Some(TokenHint::AccessToken),
        Some("refresh_token") => Some(TokenHint::RefreshToken),
        _ => None,
    };
    Ok(TokenForm {
        token: token.to_owned(),
        hint,
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// RFC 7662 token introspection, for resource services that cannot verify tokens
/// themselves: `{"active": false}` for anything not active, with no reason.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = OAuthTokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = [])),
    responses((status = 200, description = "Whether the token is active, and its claims", body = Introspected),
        errors::OAuthClient))]
async fn introspect(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|_| invalid_request())?;
    let form = authenticated_form(&state, &ctx, &headers, &body).await?;
    let answer = match state.service.introspect(&form.token, form.hint).await? {
        Introspection::Inactive => Introspected::default(),
        Introspection::Access(claims) => Introspected {
            active: true,
            token_type: Some("Bearer"),
            sub: Some(claims.sub),
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            jti: Some(claims.jti),
            sid: Some(claims.sid),
            roles: Some(claims.roles),
        },
        Introspection::Refresh {
            user_id,
            session_id,
            issued_at,
            expires_at,
        } => Introspected {
            active: true,
            token_type: Some("refresh_token"),
            sub: Some(user_id.to_string()),
            iss: Some(state.service.policy().issuer.clone()),
            sid: Some(session_id.to_string()),
            iat: Some(issued_at),
            exp: Some(expires_at),
            ..Introspected::default()
        },
    };
    Ok(Json(answer).into_response())
}

/// RFC 7009 token revocation: a refresh token ends its session, an access token is
/// denied until it expires. 200 whether or not the token was known or live.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = OAuthTokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = [])),
    responses((status = 200, description = "Revoked, or nothing to revoke"), errors::OAuthClient))]
async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|_| invalid_request())?;
    let form = authenticated_form(&state, &ctx, &headers, &body).await?;
    state
        .service
        .revoke_token(&form.token, form.hint, &ctx)
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::basic_credentials;

    #[test]
    fn basic_credentials_are_url_decoded() {
        // "my%20api:s3cr%3At" → id "my api", secret "s3cr:t".
        let value = format!("Basic {}", base64_of("my%20api:s3cr%3At"));
        assert_eq!(
            basic_credentials(value.as_bytes()),
            Some(("my api".to_owned(), "s3cr:t".to_owned()))
        );
        assert_eq!(basic_credentials(b"Bearer abc"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
    }

    fn base64_of(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }
}

//! A verifier that keeps a Latchkey server's signing keys and revocations in step over
//! HTTP (feature `remote`).
//!
//! [`RemoteVerifier`] fetches `/.well-known/jwks.json`, refreshes it in the background,
//! refetches it at once when a token names an unknown `kid` (so a key rotation at the
//! server needs no restart), and optionally follows the server's revocation feed
//! (`GET /auth/revocations?after=<seq>`) so that logged-out tokens and sessions are
//! refused within a bounded delay. Verification itself stays local: no request per token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::AbortHandle;

use crate::claims::{verify_access_token, AccessClaims, Validation};
use crate::error::TokenError;
use crate::jwk::{Jwks, KeySet};
use crate::jws::CompactJws;

/// Default clock skew tolerated on `exp`, `nbf` and `iat`: 30 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default period of the background JWKS refresh: 5 minutes.
pub const DEFAULT_JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Default least time between two JWKS refetches caused by unknown `kid`s: 10 seconds.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default period of the revocation feed poll, the bound on how long a revoked token
/// stays accepted: 1 second.
pub const DEFAULT_REVOCATION_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default timeout of one HTTP request to the Latchkey server: 10 seconds.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest leeway [`RemoteVerifierBuilder::build`] accepts: 5 minutes. A larger one
/// would keep expired (and, without a feed, logged-out) tokens alive for longer than any
/// sane clock skew explains.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default longest time the revocation state may go without a successful read of the
/// feed before tokens are refused as `revocation_state_stale`: 60 seconds (sixty polls at
/// the default interval, so a few failed polls or a server restart go unnoticed, while an
/// outage cannot silently keep logged-out tokens alive for more than a minute).
pub const DEFAULT_MAX_REVOCATION_STALENESS: Duration = Duration::from_secs(60);

/// Responses larger than this (JWKS or one feed page) are refused.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Feed pages read in one poll at most; the rest follows at the next poll.
const MAX_PAGES_PER_POLL: usize = 64;
/// Background periods are never shorter than this.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Why a [`RemoteVerifier`] could not be built, or a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A required builder setting is missing.
    #[error("the verifier needs {0}")]
    MissingSetting(&'static str),
    /// A configured URL is not a valid absolute URL.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// `build` was called outside a Tokio runtime, which the background tasks need.
    #[error("the verifier must be built inside a Tokio runtime")]
    NoRuntime,
    /// The request failed before a response arrived (connection refused, timeout, TLS).
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with an unexpected status. A revocation feed answers 404
    /// when the server has no `LATCHKEY_REVOCATION_FEED_SECRET`, 401 for a wrong secret.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The response body is not what the protocol promises (bad JSON, too large).
    #[error("{url} sent an invalid response: {reason}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JWKS holds no key this crate can verify with (HS256 keys are never
    /// published: use [`RemoteVerifierBuilder::key_set`] for a shared secret).
    #[error("the JWKS at {url} holds no usable signature key")]
    NoUsableKeys {
        /// The JWKS URL.
        url: String,
    },
    /// A JWKS or revocation-feed URL is not `https`, and its host is not loopback
    /// (`127.0.0.0/8`, `::1`, `localhost`). Over plain HTTP the JWKS can be replaced by
    /// anyone on the path (who then signs their own tokens) and the feed secret travels
    /// in clear. Use `https`, or [`RemoteVerifierBuilder::allow_insecure_http`] on a
    /// network you trust.
    #[error("{setting} {url} is not https and not loopback; use https or allow_insecure_http")]
    InsecureUrl {
        /// Which setting: `jwks_url` or `revocation_feed`.
        setting: &'static str,
        /// The URL, without credentials or query.
        url: String,
    },
    /// The leeway is larger than [`MAX_LEEWAY`].
    #[error("a leeway of {leeway:?} is larger than the maximum of {max:?}")]
    LeewayTooLarge {
        /// The leeway asked for.
        leeway: Duration,
        /// The largest accepted.
        max: Duration,
    },
    /// A setting is out of its range (see the message).
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Clone)]
enum KeySource {
    Url(String),
    Static(Arc<KeySet>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(url).finish(),
            Self::Static(keys) => f.debug_tuple("Static").field(&keys.len()).finish(),
        }
    }
}

/// Settings for a [`RemoteVerifier`]; start with [`RemoteVerifier::builder`].
///
/// Required: a key source ([`jwks_url`](Self::jwks_url), [`jwks`](Self::jwks) or
/// [`key_set`](Self::key_set)), [`issuer`](Self::issuer) and
/// [`audience`](Self::audience). Everything else has a default.
#[derive(Debug, Clone)]
#[must_use]
pub struct RemoteVerifierBuilder {
    keys: Option<KeySource>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    jwks_refresh_interval: Duration,
    min_refetch_interval: Duration,
    revocation_feed: Option<(String, Secret)>,
    revocation_poll_interval: Duration,
    max_revocation_staleness: Option<Duration>,
    max_token_lifetime: Option<Duration>,
    allow_insecure_http: bool,
    http_client: Option<reqwest::Client>,
    http_timeout: Duration,
    fail_fast: bool,
}

impl Default for RemoteVerifierBuilder {
    fn default() -> Self {
        Self {
            keys: None,
            issuer: None,
            audience: None,
            leeway: DEFAULT_LEEWAY,
            jwks_refresh_interval: DEFAULT_JWKS_REFRESH_INTERVAL,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            revocation_feed: None,
            revocation_poll_interval: DEFAULT_REVOCATION_POLL_INTERVAL,
            max_revocation_staleness: Some(DEFAULT_MAX_REVOCATION_STALENESS),
            max_token_lifetime: None,
            allow_insecure_http: false,
            http_client: None,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            fail_fast: true,
        }
    }
}

impl RemoteVerifierBuilder {
    /// Fetch the keys from this JWKS URL, e.g. `https://auth.example.com/.well-known/jwks.json`.
    ///
    /// `https` URLs need a TLS backend in `reqwest`: this crate enables none, so turn one
    /// on in your own `Cargo.toml` (e.g. `reqwest = { version = "0.12", features =
    /// ["rustls-tls"] }`), or pass a client with [`http_client`](Self::http_client).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = Some(KeySource::Url(url.into()));
        self
    }

    /// Use a fixed JWKS instead of fetching one: no refresh, no refetch. `oct` keys in it
    /// are ignored, as by [`KeySet::from_jwks`].
    pub fn jwks(mut self, jwks: &Jwks) -> Self {
        self.keys = Some(KeySource::Static(Arc::new(KeySet::from_jwks(jwks))));
        self
    }

    /// Use a fixed key set instead of fetching one, for instance an HS256 shared secret
    /// built with [`VerificationKey::hs256`](crate::VerificationKey::hs256).
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.keys = Some(KeySource::Static(Arc::new(keys)));
        self
    }

    /// The expected `iss` (the Latchkey server's issuer). Required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The audience that `aud` must contain (this service's name). Required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default [`DEFAULT_LEEWAY`]; at most
    /// [`MAX_LEEWAY`] (more is refused by [`build`](Self::build) as
    /// [`RemoteError::LeewayTooLarge`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Refuse tokens whose lifetime `exp - iat` exceeds `max_lifetime` plus the leeway
    /// (see [`Validation::max_lifetime`]). Set it to the server's access-token TTL
    /// (`LATCHKEY_ACCESS_TTL`). Default: no bound.
    pub fn max_token_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_token_lifetime = Some(max_lifetime);
        self
    }

    /// Accept plain `http://` JWKS and feed URLs to hosts that are not loopback. Default
    /// `false`: such URLs are refused by [`build`](Self::build) as
    /// [`RemoteError::InsecureUrl`], because whoever can tamper with the traffic can
    /// replace the keys (and so mint tokens) and read the feed secret. Loopback hosts
    /// (`127.0.0.0/8`, `::1`, `localhost`) are always allowed, for development and
    /// same-host sidecars. Only turn this on inside a network you trust end to end.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How often the JWKS is refetched in the background. Default
    /// [`DEFAULT_JWKS_REFRESH_INTERVAL`]; never less than 10 ms.
    pub fn jwks_refresh_interval(mut self, every: Duration) -> Self {
        self.jwks_refresh_interval = every;
        self
    }

    /// The least time between two JWKS refetches triggered by tokens with an unknown
    /// `kid` (it bounds what a flood of forged `kid`s can cost the server). Default
    /// [`DEFAULT_MIN_REFETCH_INTERVAL`]. Also the retry delay after a failed refresh.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Follow the revocation feed at `url` (e.g.
    /// `https://auth.example.com/auth/revocations`), authenticating with the server's
    /// `LATCHKEY_REVOCATION_FEED_SECRET`. Without a feed, revoked tokens stay accepted
    /// until they expire.
    pub fn revocation_feed(mut self, url: impl Into<String>, secret: impl Into<String>) -> Self {
        self.revocation_feed = Some((url.into(), Secret(secret.into())));
        self
    }

    /// How often the revocation feed is polled: the bound on how long a revoked token
    /// stays accepted. Default [`DEFAULT_REVOCATION_POLL_INTERVAL`]; never less than 10 ms.
    pub fn revocation_poll_interval(mut self, every: Duration) -> Self {
        self.revocation_poll_interval = every;
        self
    }

    /// How long the revocation state may go without a successful read of the feed before
    /// the verifier fails closed: every token is then refused as
    /// [`TokenError::RevocationStateStale`] (code `revocation_state_stale`, 503 through
    /// the axum integration) and [`RemoteVerifier::is_healthy`] is `false`, until the
    /// feed is read again. The time counts from the start of the last successful read (from
    /// `build` if none succeeded yet, with [`fail_fast`](Self::fail_fast) off). Default
    /// `Some(`[`DEFAULT_MAX_REVOCATION_STALENESS`]`)`; it must be longer than the poll
    /// interval. `None` keeps accepting tokens on the last known revocations however
    /// old (fail open: logged-out tokens stay accepted during a feed outage). Has no
    /// effect without a feed.
    pub fn max_revocation_staleness(mut self, max: Option<Duration>) -> Self {
        self.max_revocation_staleness = max;
        self
    }

    /// Use this HTTP client (with your TLS, proxy and timeout settings) instead of a new
    /// one. [`http_timeout`](Self::http_timeout) does not apply to it.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Timeout of each request of the client this builder makes. Default
    /// [`DEFAULT_HTTP_TIMEOUT`].
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Whether [`build`](Self::build) fails when the first JWKS fetch or the first
    /// revocation sync fails. Default `true`: a service that cannot reach its auth server
    /// at start is misconfigured, and one that could not read the revocations would accept
    /// revoked tokens. With `false`, `build` succeeds anyway: tokens are refused as
    /// `token_invalid` until the keys arrive, and the background tasks keep retrying.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Build the verifier: fetch the JWKS, catch up with the revocation feed (see
    /// [`fail_fast`](Self::fail_fast)), and start the background tasks, which stop when
    /// the verifier is dropped. Must run inside a Tokio runtime.
    pub async fn build(self) -> Result<RemoteVerifier, RemoteError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RemoteError::NoRuntime)?;
        let source = self.keys.ok_or(RemoteError::MissingSetting(
            "a key source (jwks_url, jwks or key_set)",
        ))?;
        let issuer = self
            .issuer
            .ok_or(RemoteError::MissingSetting("an issuer"))?;
        let audience = self
            .audience
            .ok_or(RemoteError::MissingSetting("an audience"))?;
        if self.leeway > MAX_LEEWAY {
            return Err(RemoteError::LeewayTooLarge {
                leeway: self.leeway,
                max: MAX_LEEWAY,
            });
        }
        let poll_interval = self.revocation_poll_interval.max(MIN_PERIOD);
        if let (Some(max), Some(_)) = (self.max_revocation_staleness, &self.revocation_feed) {
            if max <= poll_interval {
                return Err(RemoteError::InvalidSetting {
                    setting: "max_revocation_staleness",
                    reason: format!(
                        "{max:?} is not longer than the revocation poll interval \
                         ({poll_interval:?}): the state would always be stale"
                    ),
                });
            }
        }
        let client = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .timeout(self.http_timeout)
                .build()
                .map_err(|e| RemoteError::Client(e.to_string()))?,
        };
        let (jwks_url, keys) = match source {
            KeySource::Url(url) => (
                Some(parse_url(&url, "jwks_url", self.allow_insecure_http)?),
                Arc::new(KeySet::new()),
            ),
            KeySource::Static(keys) => (None, keys),
        };
        let feed = match self.revocation_feed {
            Some((url, secret)) => Some(Feed {
                url: parse_url(&url, "revocation_feed", self.allow_insecure_http)?,
                secret,
                max_staleness: self.max_revocation_staleness,
            }),
            None => None,
        };
        let shared = Arc::new(Shared {
            validation: Validation {
                issuer,
                audience,
                leeway: self.leeway,
                max_lifetime: self.max_token_lifetime,
            },
            client,
            jwks_url,
            feed,
            keys: RwLock::new(KeyState {
                keys,
                fetched_at: None,
            }),
            revocations: RwLock::new(Revocations::default()),
            built_at: Instant::now(),
            last_refetch: AsyncMutex::new(None),
            min_refetch_interval: self.min_refetch_interval,
        });

        let mut keys_loaded = true;
        if shared.jwks_url.is_some() {
            if let Err(error) = shared.refresh_keys().await {
                if self.fail_fast {
                    return Err(error);
                }
                warn_fetch("JWKS", &error);
                keys_loaded = false;
            }
        }
        if shared.feed.is_some() {
            if let Err(error) = shared.sync_revocations().await {
                if self.fail_fast {
                    return Err(error);
                }
                warn_fetch("revocation feed", &error);
            }
        }

        let mut tasks = Vec::new();
        if shared.jwks_url.is_some() {
            let every = self.jwks_refresh_interval.max(MIN_PERIOD);
            let retry = self.min_refetch_interval.clamp(MIN_PERIOD, every);
            let first = if keys_loaded { every } else { retry };
            let task = refresh_keys_task(Arc::downgrade(&shared), first, every, retry);
            tasks.push(runtime.spawn(task).abort_handle());
        }
        if shared.feed.is_some() {
            let task = follow_revocations_task(Arc::downgrade(&shared), poll_interval);
            tasks.push(runtime.spawn(task).abort_handle());
        }
        Ok(RemoteVerifier { shared, tasks })
    }
}

/// Parse a JWKS or feed URL and refuse plain HTTP to a host that is not loopback
/// (unless `allow_insecure_http`), and any other scheme.
fn parse_url(
    url: &str,
    setting: &'static str,
    allow_insecure_http: bool,
) -> Result<reqwest::Url, RemoteError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| RemoteError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_insecure_http || is_loopback(&parsed) => Ok(parsed),
        "http" => Err(RemoteError::InsecureUrl {
            setting,
            url: without_secrets(&parsed),
        }),
        other => Err(RemoteError::InvalidUrl {
            url: without_secrets(&parsed),
            reason: format!("the scheme {other:?} is not https"),
        }),
    }
}

/// Whether the URL's host is loopback: `127.0.0.0/8`, `::1` or `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come in brackets; the URL parser has already normalised addresses.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The URL without user, password, query or fragment, for error messages.
fn without_secrets(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    // Only fails for URLs that cannot have credentials, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// Verifies Latchkey access tokens locally with keys fetched from the server's JWKS,
/// kept fresh in the background, and refuses tokens listed by the revocation feed.
///
/// Build one per process with [`RemoteVerifier::builder`] and share it (`Arc`); its
/// background tasks stop when it is dropped.
pub struct RemoteVerifier {
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
}

impl fmt::Debug for RemoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteVerifier")
            .field("validation", &self.shared.validation)
            .field(
                "jwks_url",
                &self.shared.jwks_url.as_ref().map(|u| u.as_str()),
            )
            .field(
                "revocation_feed",
                &self.shared.feed.as_ref().map(|feed| feed.url.as_str()),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for RemoteVerifier {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A snapshot of what a [`RemoteVerifier`] currently knows, for health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierStatus {
    /// How many verification keys are trusted.
    pub keys: usize,
    /// When the JWKS was last fetched successfully (`None` for fixed keys or before the
    /// first success).
    pub keys_fetched_at: Option<SystemTime>,
    /// The revocation feed cursor (`None` without a feed).
    pub revocation_cursor: Option<i64>,
    /// When the revocation feed was last read successfully.
    pub revocations_synced_at: Option<SystemTime>,
    /// How many revoked token ids (`jti`) are remembered.
    pub revoked_tokens: usize,
    /// How many revoked sessions (`sid`) are remembered.
    pub revoked_sessions: usize,
    /// Whether the revocation state is older than the maximum staleness, so that tokens
    /// are refused as `revocation_state_stale` (always `false` without a feed).
    pub revocations_stale: bool,
}

impl RemoteVerifier {
    /// Start configuring a verifier.
    pub fn builder() -> RemoteVerifierBuilder {
        RemoteVerifierBuilder::default()
    }

    /// Verify `token` now (system clock): signature, `typ`, `iss`, `aud`, `exp`, `nbf`,
    /// `iat`, then revocation. A token signed with a `kid` not yet known triggers one
    /// rate-limited JWKS refetch and one retry.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_at(token, unix_now()).await
    }

    /// [`verify`](Self::verify) at a given time, in Unix seconds (for tests).
    pub async fn verify_at(
        &self,
        token: &str,
        now_unix_secs: i64,
    ) -> Result<AccessClaims, TokenError> {
        let shared = &self.shared;
        let keys = shared.key_set();
        let claims = match verify_access_token(token, &keys, &shared.validation, now_unix_secs) {
            Err(TokenError::UnknownKey) if shared.jwks_url.is_some() && names_a_kid(token) => {
                let Some(fresh) = shared.refetch_for_unknown_kid(&keys).await else {
                    return Err(TokenError::UnknownKey);
                };
                verify_access_token(token, &fresh, &shared.validation, now_unix_secs)?
            }
            other => other?,
        };
        let kid = CompactJws::parse(token)
            .ok()
            .and_then(|jws| jws.header.kid.clone());
        shared.check_revocation(&claims, kid.as_deref())?;
        Ok(claims)
    }

    /// Whether the verifier can do its job now: it has at least one key, and (with a
    /// revocation feed) its revocation state is no older than the maximum staleness (see
    /// [`RemoteVerifierBuilder::max_revocation_staleness`]). While this is `false` because
    /// of the feed, every token is refused as `revocation_state_stale`. Use it in the
    /// service's readiness check.
    pub fn is_healthy(&self) -> bool {
        !self.shared.key_set().is_empty() && !self.shared.revocations_stale()
    }

    /// How old the revocation state is: the time since the last successful read of the
    /// feed began (since the verifier was built if none succeeded). `None` without a feed.
    pub fn revocation_staleness(&self) -> Option<Duration> {
        self.shared.revocation_staleness()
    }

    /// The validation settings (issuer, audience, leeway, maximum token lifetime).
    pub fn validation(&self) -> &Validation {
        &self.shared.validation
    }

    /// The keys currently trusted.
    pub fn key_set(&self) -> Arc<KeySet> {
        self.shared.key_set()
    }

    /// Refetch the JWKS now. On failure the current keys stay in use. Does nothing for
    /// fixed keys.
    pub async fn refresh_keys(&self) -> Result<(), RemoteError> {
        if self.shared.jwks_url.is_none() {
            return Ok(());
        }
        self.shared.refresh_keys().await.map(drop)
    }

    /// Read the revocation feed up to its end now. On failure the revocations known so
    /// far stay in force. Does nothing without a feed.
    pub async fn sync_revocations(&self) -> Result<(), RemoteError> {
        if self.shared.feed.is_none() {
            return Ok(());
        }
        self.shared.sync_revocations().await
    }

    /// What the verifier currently knows.
    pub fn status(&self) -> VerifierStatus {
        let keys = read(&self.shared.keys);
        let revocations = read(&self.shared.revocations);
        VerifierStatus {
            keys: keys.keys.len(),
            keys_fetched_at: keys.fetched_at,
            revocation_cursor: self.shared.feed.as_ref().map(|_| revocations.cursor),
            revocations_synced_at: revocations.synced_at,
            revoked_tokens: revocations.tokens.len(),
            revoked_sessions: revocations.sessions.len(),
            revocations_stale: self.shared.stale_given(&revocations),
        }
    }
}

/// Whether the token's header names a `kid`: only then can a refetch help.
fn names_a_kid(token: &str) -> bool {
    CompactJws::parse(token).is_ok_and(|jws| jws.header.kid.is_some())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

struct Feed {
    url: reqwest::Url,
    secret: Secret,
    /// Fail closed when the revocation state is older than this.
    max_staleness: Option<Duration>,
}

struct KeyState {
    keys: Arc<KeySet>,
    fetched_at: Option<SystemTime>,
}

struct Shared {
    validation: Validation,
    client: reqwest::Client,
    jwks_url: Option<reqwest::Url>,
    feed: Option<Feed>,
    keys: RwLock<KeyState>,
    revocations: RwLock<Revocations>,
    /// Where the revocation staleness counts from before the first successful read.
    built_at: Instant,
    /// When an unknown `kid` last caused a refetch; held during that refetch, so
    /// concurrent callers wait for it instead of fetching again (single flight).
    last_refetch: AsyncMutex<Option<Instant>>,
    min_refetch_interval: Duration,
}

impl Shared {
    fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&read(&self.keys).keys)
    }

    /// `RevocationStateStale` when the revocation state is too old to tell, `Revoked`
    /// when the token or its session is listed.
    fn check_revocation(&self, claims: &AccessClaims, kid: Option<&str>) -> Result<(), TokenError> {
        let revocations = read(&self.revocations);
        if self.stale_given(&revocations) {
            return Err(TokenError::RevocationStateStale);
        }
        if revocations.is_revoked(claims)
            || kid.is_some_and(|kid| revocations.keys.contains_key(kid))
        {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }

    fn revocation_staleness(&self) -> Option<Duration> {
        self.staleness_given(&read(&self.revocations))
    }

    fn staleness_given(&self, revocations: &Revocations) -> Option<Duration> {
        self.feed.as_ref()?;
        Some(revocations.fresh_as_of.unwrap_or(self.built_at).elapsed())
    }

    fn revocations_stale(&self) -> bool {
        self.stale_given(&read(&self.revocations))
    }

    /// Whether the revocation state is older than the feed's maximum staleness.
    fn stale_given(&self, revocations: &Revocations) -> bool {
        let Some(max) = self.feed.as_ref().and_then(|feed| feed.max_staleness) else {
            return false;
        };
        self.staleness_given(revocations)
            .is_some_and(|staleness| staleness > max)
    }

    /// Fetch the JWKS and trust exactly its keys from now on.
    async fn refresh_keys(&self) -> Result<Arc<KeySet>, RemoteError> {
        let Some(url) = &self.jwks_url else {
            return Ok(self.key_set());
        };
        let body = get(&self.client, url, None).await?;
        let jwks: Jwks =
            serde_json::from_slice(&body).map_err(|e| RemoteError::InvalidResponse {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let keys = KeySet::from_jwks(&jwks);
        if keys.is_empty() {
            // Most likely a broken deployment: keep verifying with the keys we have.
            return Err(RemoteError::NoUsableKeys {
                url: url.to_string(),
            });
        }
        let keys = Arc::new(keys);
        *write(&self.keys) = KeyState {
            keys: Arc::clone(&keys),
            fetched_at: Some(SystemTime::now()),
        };
        Ok(keys)
    }

    /// A refetch on behalf of a token whose `kid` is not in `seen`: at most one in flight
    /// and one per `min_refetch_interval`. Returns the keys to retry with, if any changed.
    async fn refetch_for_unknown_kid(&self, seen: &Arc<KeySet>) -> Option<Arc<KeySet>> {
        let mut last = self.last_refetch.lock().await;
        let current = self.key_set();
        if !Arc::ptr_eq(&current, seen) {
            // Someone else refreshed while we waited: retry with their result.
            return Some(current);
        }
        if last.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return None;
        }
        *last = Some(Instant::now());
        match self.refresh_keys().await {
            Ok(keys) => Some(keys),
            Err(error) => {
                warn_fetch("JWKS", &error);
                None
            }
        }
    }

    /// Read feed pages until the end (or `MAX_PAGES_PER_POLL`), then forget entries that
    /// no longer matter.
    async fn sync_revocations(&self) -> Result<(), RemoteError> {
        let Some(feed) = &self.feed else {
            return Ok(());
        };
        for _ in 0..MAX_PAGES_PER_POLL {
            let after = read(&self.revocations).cursor;
            // The page shows the feed as of (at least) the moment the request starts.
            let started = Instant::now();
            let mut url = feed.url.clone();
            url.query_pairs_mut()
                .append_pair("after", &after.to_string());
            let body = get(&self.client, &url, Some(&feed.secret)).await?;
            let page: FeedPage =
                serde_json::from_slice(&body).map_err(|e| RemoteError::InvalidResponse {
                    url: feed.url.to_string(),
                    reason: e.to_string(),
                })?;
            let caught_up = page.entries.is_empty() || page.next == after;
            let mut revocations = write(&self.revocations);
            revocations.apply(&page);
            revocations.synced_at = Some(SystemTime::now());
            revocations.fresh_as_of = Some(started);
            if caught_up {
                revocations.purge(unix_now(), self.validation.leeway);
                break;
            }
        }
        Ok(())
    }
}

/// GET `url` (with a bearer secret), expecting 200 and a body of bounded size.
async fn get(
    client: &reqwest::Client,
    url: &reqwest::Url,
    bearer: Option<&Secret>,
) -> Result<Vec<u8>, RemoteError> {
    // Never put the full URL of a feed request in errors: it is harmless, but keep the
    // error short and stable.
    let shown = || {
        let mut url = url.clone();
        url.set_query(None);
        url.to_string()
    };
    let mut request = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(secret) = bearer {
        request = request.bearer_auth(&secret.0);
    }
    let mut response = request.send().await.map_err(|e| RemoteError::Request {
        url: shown(),
        reason: describe(e),
    })?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(RemoteError::Status {
            url: shown(),
            status: response.status().as_u16(),
        });
    }
    let too_large = || RemoteError::InvalidResponse {
        url: shown(),
        reason: format!("larger than {MAX_RESPONSE_BYTES} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| RemoteError::Request {
        url: shown(),
        reason: describe(e),
    })? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error and its causes ("error sending request: ...: Connection refused"), without
/// the URL (the caller names it).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn refresh_keys_task(
    shared: Weak<Shared>,
    first: Duration,
    every: Duration,
    retry: Duration,
) {
    let mut delay = first;
    loop {
        tokio::time::sleep(delay).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        delay = match shared.refresh_keys().await {
            Ok(_) => every,
            Err(error) => {
                warn_fetch("JWKS", &error);
                retry
            }
        };
    }
}

async fn follow_revocations_task(shared: Weak<Shared>, every: Duration) {
    let mut failing = false;
    let mut stale = false;
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.sync_revocations().await {
            Ok(()) => {
                if failing {
                    tracing::info!("the revocation feed is readable again");
                }
                failing = false;
                stale = false;
            }
            Err(error) => {
                // Keep the revocations known so far; say so once, not once a second.
                if failing {
                    tracing::debug!(%error, "revocation feed still failing");
                } else {
                    warn_fetch("revocation feed", &error);
                }
                failing = true;
                if !stale && shared.revocations_stale() {
                    stale = true;
                    tracing::error!(
                        "the revocation state is older than its maximum staleness; \
                         refusing every token until the feed is readable again"
                    );
                }
                let mut revocations = write(&shared.revocations);
                revocations.purge(unix_now(), shared.validation.leeway);
            }
        }
    }
}

fn warn_fetch(what: &str, error: &RemoteError) {
    tracing::warn!(%error, "cannot read the {what}; keeping the last known state and retrying");
}

/// One page of `GET /auth/revocations?after=<seq>`.
#[derive(Debug, Deserialize)]
struct FeedPage {
    entries: Vec<FeedEntry>,
    next: i64,
}

#[derive(Debug, Deserialize)]
struct FeedEntry {
    kind: String,
    value: String,
    expires_at: i64,
}

/// Revoked token ids and sessions, each with the time after which it no longer matters.
#[derive(Debug, Default)]
struct Revocations {
    cursor: i64,
    tokens: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    /// Revoked signing keys, by `kid` (a leaked key): their tokens are refused.
    keys: HashMap<String, i64>,
    synced_at: Option<SystemTime>,
    /// When the last successful feed read started: the state is at least this fresh.
    fresh_as_of: Option<Instant>,
}

impl Revocations {
    fn apply(&mut self, page: &FeedPage) {
        for entry in &page.entries {
            let map = match entry.kind.as_str() {
                "access_token" => &mut self.tokens,
                "session" => &mut self.sessions,
                "key" => &mut self.keys,
                // A kind this version does not know: newer servers may add some.
                _ => continue,
            };
            let expires_at = map.entry(entry.value.clone()).or_insert(entry.expires_at);
            *expires_at = (*expires_at).max(entry.expires_at);
        }
        self.cursor = page.next;
    }

    /// Forget entries whose tokens have all expired, leeway included.
    fn purge(&mut self, now: i64, leeway: Duration) {
        let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        let live = |_: &String, expires_at: &mut i64| expires_at.saturating_add(leeway) > now;
        self.tokens.retain(live);
        self.sessions.retain(live);
        self.keys.retain(live);
    }

    fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.tokens.contains_key(&claims.jti) || self.sessions.contains_key(&claims.sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(json: &str) -> FeedPage {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn claims(jti: &str, sid: &str) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            sub: "user".into(),
            aud: vec!["aud".into()],
            sid: sid.into(),
            roles: vec![],
            iat: 0,
            exp: 100,
            nbf: None,
            email_verified: None,
            jti: jti.into(),
            amr: Vec::new(),
            auth_time: None,
        }
    }

    #[test]
    fn revocations_apply_kinds_keep_the_latest_expiry_and_purge_with_leeway() {
        let mut revocations = Revocations::default();
        revocations.apply(&page(
            r#"{"entries":[
                {"seq":1,"kind":"access_token","value":"j1","expires_at":100},
                {"seq":2,"kind":"session","value":"s1","expires_at":200},
                {"seq":3,"kind":"access_token","value":"j1","expires_at":150},
                {"seq":4,"kind":"something_new","value":"x","expires_at":900}
            ],"next":4}"#,
        ));
        assert_eq!(revocations.cursor, 4);
        assert!(revocations.is_revoked(&claims("j1", "other")));
        assert!(revocations.is_revoked(&claims("other", "s1")));
        assert!(!revocations.is_revoked(&claims("x", "x")));
        assert_eq!(revocations.tokens.get("j1"), Some(&150));

        // j1 matters until 150 + 30 s leeway.
        revocations.purge(179, Duration::from_secs(30));
        assert!(revocations.is_revoked(&claims("j1", "-")));
        revocations.purge(180, Duration::from_secs(30));
        assert!(!revocations.is_revoked(&claims("j1", "-")));
        assert!(revocations.is_revoked(&claims("-", "s1")));
        revocations.purge(231, Duration::from_secs(30));
        assert!(revocations.sessions.is_empty());
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_or_allowed() {
        let accepted = |url: &str, allow: bool| parse_url(url, "jwks_url", allow).is_ok();
        for url in [
            "https://auth.example.com/.well-known/jwks.json",
            "https://10.0.0.1:8443/auth/revocations",
            "http://127.0.0.1:8080/.well-known/jwks.json",
            "http://127.1.2.3/x",
            "http://[::1]:8080/x",
            "http://localhost:8080/x",
            "http://LOCALHOST/x",
        ] {
            assert!(accepted(url, false), "{url} should be accepted");
        }
        for url in [
            "http://auth.example.com/.well-known/jwks.json",
            "http://10.0.0.1:8080/x",
            "http://128.0.0.1/x",
            "http://0.0.0.0:8080/x",
            "http://[::ffff:7f00:1]/x",
            "http://localhost.example.com/x",
            "http://[2001:db8::1]/x",
        ] {
            assert_eq!(
                parse_url(url, "revocation_feed", false).map_err(|e| match e {
                    RemoteError::InsecureUrl { setting, .. } => setting,
                    other => panic!("{url}: {other:?}"),
                }),
                Err("revocation_feed"),
                "{url} should be refused"
            );
            assert!(
                accepted(url, true),
                "{url} should pass with allow_insecure_http"
            );
        }
        // Other schemes are never accepted, not even with allow_insecure_http.
        for url in ["ftp://127.0.0.1/x", "file:///etc/jwks.json"] {
            assert!(matches!(
                parse_url(url, "jwks_url", true),
                Err(RemoteError::InvalidUrl { .. })
            ));
        }
        // The error shows the URL without credentials or query.
        let error = parse_url(
            "http://user:hunter2@auth.example.com/feed?token=hunter3",
            "revocation_feed",
            false,
        )
        .map_err(|e| e.to_string());
        let message = error.err().unwrap_or_default();
        assert!(message.contains("auth.example.com/feed"), "{message}");
        assert!(!message.contains("hunter"), "{message}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let builder = RemoteVerifier::builder().revocation_feed("http://x/feed", "hunter2-secret");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }
}

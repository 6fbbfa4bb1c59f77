//! The server's settings: one typed struct, read from flags, `LATCHKEY_*` environment
//! variables (and a `.env` file), with a default for each, validated at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use latchkey_verify::Algorithm;
use secrecy::{ExposeSecret, SecretString};

mod urls;
// The settings' value types; `mail` and `webhooks` import them from here directly.
pub(crate) mod values;

pub(crate) use urls::is_loopback_authority;
pub use urls::redact_url;
pub use values::{ConfigError, CookieSecurity, HumanDuration, RateSpec, TrustedProxies};

/// Everything `latchkey serve` can be told.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Where state lives: `sqlite://latchkey.db` (created if missing, mode 0600) or
    /// `postgres://...` (use `sslmode=verify-full` or `require` beyond loopback).
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        default_value = "sqlite://latchkey.db",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub database_url: SecretString,

    /// Start even when the SQLite database file (or its `-wal`/`-shm`) can be read or
    /// written by group or others. Off: such a file stops the server at start-up.
    #[arg(long, env = "LATCHKEY_ALLOW_INSECURE_DB_PERMISSIONS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_insecure_db_permissions: bool,

    /// Redis for scale-out (`redis://host:6379`): shared rate limits and instant
    /// revocation fan-out between replicas. Unset: everything stays in process.
    #[arg(long, env = "LATCHKEY_REDIS_URL", hide_env_values = true, value_parser = parse_secret)]
    pub redis_url: Option<SecretString>,

    /// How long a request waits for a database connection before it fails with 503.
    #[arg(long, env = "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT", default_value = "5s")]
    pub database_acquire_timeout: HumanDuration,

    /// Maximum database connections in the pool.
    #[arg(long, env = "LATCHKEY_DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,

    /// The `iss` of issued tokens, usually the server's public URL.
    #[arg(long, env = "LATCHKEY_ISSUER", default_value = "http://127.0.0.1:8080")]
    pub issuer: String,

    /// The `aud` of issued tokens: the API they are meant for.
    #[arg(long, env = "LATCHKEY_AUDIENCE", default_value = "latchkey")]
    pub audience: String,

    /// Access-token lifetime.
    #[arg(long, env = "LATCHKEY_ACCESS_TTL", default_value = "15m")]
    pub access_ttl: HumanDuration,

    /// Refresh-token idle lifetime: a session unused this long ends.
    #[arg(long, env = "LATCHKEY_REFRESH_TTL", default_value = "7d")]
    pub refresh_ttl: HumanDuration,

    /// Absolute session lifetime from login, however active.
    #[arg(long, env = "LATCHKEY_SESSION_LIFETIME", default_value = "30d")]
    pub session_lifetime: HumanDuration,

    /// How long after a refresh token was spent a duplicate still gets the same successor
    /// (two tabs, retries). Longer than this is reuse, and revokes the session.
    #[arg(long, env = "LATCHKEY_REUSE_GRACE", default_value = "10s")]
    pub reuse_grace: HumanDuration,

    /// Clock skew tolerated when checking `exp`/`nbf`/`iat`.
    #[arg(long, env = "LATCHKEY_LEEWAY", default_value = "30s")]
    pub leeway: HumanDuration,

    /// Signing algorithm for new keys: EdDSA, ES256, RS256 or HS256.
    #[arg(long, env = "LATCHKEY_ALGORITHM", default_value = "EdDSA", value_parser = parse_algorithm)]
    pub algorithm: Algorithm,

    /// With HS256: the shared secret (at least 32 bytes). Without it a random secret is
    /// generated and stored like any other key.
    #[arg(long, env = "LATCHKEY_HS256_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub hs256_secret: Option<SecretString>,

    /// Browser origins allowed to use the refresh cookie and CORS, comma-separated
    /// (`https://app.example.com`). The server's own origin is always allowed. With a
    /// `Secure` cookie only `https://` origins, and `http://` loopback ones
    /// (`http://localhost:3000`, `http://127.0.0.1:5173`, `http://[::1]:8000`).
    #[arg(long, env = "LATCHKEY_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub allowed_origins: Vec<String>,

    /// Whether the refresh cookie is `Secure` (sent over HTTPS only, named
    /// `__Host-latchkey_refresh`, `Path=/`, no `Domain`: no other host can set it):
    /// `true`, `false` (local development over plain HTTP only), or `auto`: Secure unless
    /// the issuer is a plain-HTTP loopback address such as the default
    /// `http://127.0.0.1:8080`, so a first run works in a browser as it is.
    #[arg(long, env = "LATCHKEY_COOKIE_SECURE", default_value = "auto")]
    pub cookie_secure: CookieSecurity,

    /// The refresh cookie's `Path` when the cookie is not `Secure` (default `/auth`). A
    /// `Secure` cookie is a `__Host-` cookie, whose path is always `/`: any other value
    /// is refused then.
    #[arg(long, env = "LATCHKEY_COOKIE_PATH")]
    pub cookie_path: Option<String>,

    /// The `Strict-Transport-Security` header value; `off` to send none.
    #[arg(long, env = "LATCHKEY_HSTS", default_value = "max-age=31536000")]
    pub hsts: String,

    /// The proxies in front of Latchkey, whose `X-Forwarded-For` entries are believed:
    /// a hop count (`1`: one proxy, the client is the last entry) or a comma-separated
    /// list of addresses and CIDRs (`10.0.0.0/8,192.168.1.7`: the client is the
    /// right-most entry that is not one of them). Unset: the socket address only.
    #[arg(long, env = "LATCHKEY_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<TrustedProxies>,

    /// Replaced by `LATCHKEY_TRUSTED_PROXIES` (set it to `1` for one proxy); refused when
    /// true, so an upgrade cannot silently change whose address is used.
    #[arg(long, env = "LATCHKEY_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set, hide = true)]
    pub trust_forwarded_for: bool,

    /// Registrations per client IP.
    #[arg(long, env = "LATCHKEY_RATE_REGISTER_PER_IP", default_value = "20/1h")]
    pub rate_register_per_ip: RateSpec,

    /// Whether registration tells that an address has an account (409 `email_taken`).
    /// Off (the default): registering a taken address answers exactly as a fresh
    /// registration (201, same body, same work) and the address's owner gets a mail
    /// instead.
    #[arg(long, env = "LATCHKEY_REGISTRATION_ENUMERATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub registration_enumeration: bool,

    /// Login attempts per client IP.
    #[arg(long, env = "LATCHKEY_RATE_LOGIN_PER_IP", default_value = "30/1m")]
    pub rate_login_per_ip: RateSpec,

    /// Failed logins to one account from one client network (IPv4 /24, IPv6 /64)
    /// before each further attempt from there waits: 1 s, then 2 s, 4 s, ... A success
    /// resets it; an attacker elsewhere cannot lock the owner out.
    #[arg(long, env = "LATCHKEY_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,

    /// The longest wait the login back-off imposes.
    #[arg(long, env = "LATCHKEY_LOGIN_BACKOFF_CAP", default_value = "15m")]
    pub login_backoff_cap: HumanDuration,

    /// Failed logins to one account from all networks together before every attempt on
    /// it waits as above (distributed guessing); reaching it is a security event.
    #[arg(long, env = "LATCHKEY_LOGIN_ACCOUNT_CEILING", default_value_t = 100)]
    pub login_account_ceiling: u32,

    /// Refreshes per client IP.
    #[arg(long, env = "LATCHKEY_RATE_REFRESH_PER_IP", default_value = "600/1m")]
    pub rate_refresh_per_ip: RateSpec,

    /// Refreshes per account.
    #[arg(
        long,
        env = "LATCHKEY_RATE_REFRESH_PER_ACCOUNT",
        default_value = "120/1m"
    )]
    pub rate_refresh_per_account: RateSpec,

    /// Logouts per client IP (IPv6: per /64). Each logout writes to the store and is
    /// announced to every replica, so it is limited like the other writes.
    #[arg(long, env = "LATCHKEY_RATE_LOGOUT_PER_IP", default_value = "60/1m")]
    pub rate_logout_per_ip: RateSpec,

    /// Password hashes computed at once (each takes one core for ~25 ms). 0 = one per core.
    #[arg(long, env = "LATCHKEY_HASH_WORKERS", default_value_t = 0)]
    pub hash_workers: usize,

    /// Password-hash requests allowed to wait for a worker; beyond that, 503.
    #[arg(long, env = "LATCHKEY_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Percent of a hashing thread's time it may spend on password hashes while other
    /// requests are in flight (5-100; 100 = no budget). Keeps refreshes fast in a login
    /// flood; with nothing else to do, hashing always runs flat out.
    #[arg(long, env = "LATCHKEY_HASH_CPU_SHARE", default_value_t = 50)]
    pub hash_cpu_share: u8,

    /// How often to pick up revocations made by other processes sharing the database.
    #[arg(long, env = "LATCHKEY_REVOCATION_POLL", default_value = "1s")]
    pub revocation_poll: HumanDuration,

    /// How often to reload signing keys (to pick up `latchkey keys rotate`).
    #[arg(long, env = "LATCHKEY_KEY_RELOAD", default_value = "30s")]
    pub key_reload: HumanDuration,

    /// Secret that services present to read `GET /auth/revocations`. Unset: the feed is off.
    #[arg(long, env = "LATCHKEY_REVOCATION_FEED_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub revocation_feed_secret: Option<SecretString>,

    /// Access tokens whose verification is remembered (until their `exp`), so repeated
    /// requests with one token skip the signature check. 0 turns the cache off.
    #[arg(long, env = "LATCHKEY_VERIFIED_TOKEN_CACHE", default_value_t = 4096)]
    pub verified_token_cache: usize,

    /// Serve `GET /metrics` on this address only (recommended in production: keep it off
    /// the public listener). Unset: `/metrics` is served on the main listener.
    #[arg(long, env = "LATCHKEY_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// OAuth clients allowed to use `/oauth/introspect` and `/oauth/revoke`, as
    /// `id:secret,id2:secret2` (secrets of 16 characters or more). Unset: both answer
    /// 401 `invalid_client`.
    #[arg(long, env = "LATCHKEY_CLIENTS", hide_env_values = true, value_parser = parse_secret)]
    pub clients: Option<SecretString>,

    /// A file holding the master secret (32 bytes or more, e.g. `openssl rand -base64 48`)
    /// that seals the private signing keys in the database, so a copy of the database
    /// alone cannot sign tokens. Keys stored unsealed are sealed at the next start. Once
    /// set, it must stay set: sealed keys do not open without it.
    #[arg(long, env = "LATCHKEY_MASTER_SECRET_FILE")]
    pub master_secret_file: Option<std::path::PathBuf>,

    /// The master secret itself, for platforms that inject secrets as variables (prefer
    /// the file). Not both.
    #[arg(long, env = "LATCHKEY_MASTER_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub master_secret: Option<SecretString>,
    /// How long a client may take to send a request head (and how long a kept-alive
    /// connection may stay idle); the connection is closed after that.
    #[arg(long, env = "LATCHKEY_HEADER_TIMEOUT", default_value = "30s")]
    pub header_timeout: HumanDuration,

    /// How long a client may take to send a request body once its head has arrived;
    /// 408 `body_timeout` after that.
    #[arg(long, env = "LATCHKEY_BODY_TIMEOUT", default_value = "10s")]
    pub body_timeout: HumanDuration,

    /// How long the server may take to answer once the request has arrived; 503
    /// `request_timeout` after that.
    #[arg(long, env = "LATCHKEY_REQUEST_TIMEOUT", default_value = "30s")]
    pub request_timeout: HumanDuration,

    /// Client connections served at once. Beyond it a new connection is answered 503
    /// `too_many_connections` and closed.
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// The issuer authenticator apps show for TOTP (`otpauth://totp/<issuer>:<email>`);
    /// no `:` allowed.
    #[arg(long, env = "LATCHKEY_MFA_ISSUER", default_value = "Latchkey")]
    pub mfa_issuer: String,

    /// How recent the login behind an access token must be for sensitive changes
    /// (password change, turning the second factor off, new recovery codes); older
    /// sessions get 401 `reauth_required` and must log in again.
    #[arg(long, env = "LATCHKEY_REAUTH_WINDOW", default_value = "10m")]
    pub reauth_window: HumanDuration,

    /// How recent the login behind an access token must be for the admin routes
    /// (`/admin/*`); an older one, or one without the account's second factor, gets 401
    /// `reauth_required`. Refreshing does not make a login recent. The default is the
    /// default access-token lifetime: an admin's fresh login works for its first token's
    /// whole life, and a refreshed or leaked token stops being an admin credential then.
    #[arg(long, env = "LATCHKEY_ADMIN_MAX_AUTH_AGE", default_value = "15m")]
    pub admin_max_auth_age: HumanDuration,

    /// E-mail delivery, links and notices.
    #[command(flatten)]
    pub mail: crate::mail::MailConfig,

    /// Webhooks for security events (`LATCHKEY_WEBHOOK_*`).
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookConfig,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "LATCHKEY_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,

    /// The sign-in and account pages (`LATCHKEY_UI*`).
    #[command(flatten)]
    pub ui: crate::ui_settings::UiSettings,
}

/// An allowed origin as typed, without a trailing slash (`http://localhost:3000/` is
/// the origin `http://localhost:3000`; browsers send origins without one).
fn parse_origin(s: &str) -> Result<String, std::convert::Infallible> {
    Ok(s.trim().trim_end_matches('/').to_owned())
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    s.parse()
        .map_err(|e: latchkey_verify::UnsupportedAlgorithm| e.to_string())
}

impl Config {
    /// Refuse settings that are unsafe or contradict each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: &str| {
            Err(ConfigError {
                setting,
                reason: reason.to_owned(),
            })
        };
        if let Some(secret) = &self.hs256_secret {
            let secret = secret.expose_secret();
            if self.algorithm != Algorithm::HS256 {
                return fail(
                    "LATCHKEY_HS256_SECRET",
                    "set, but LATCHKEY_ALGORITHM is not HS256",
                );
            }
            if secret.len() < 32 {
                return fail("LATCHKEY_HS256_SECRET", "must be at least 32 bytes");
            }
        }
        if self.access_ttl.0 < Duration::from_secs(10)
            || self.access_ttl.0 > Duration::from_secs(24 * 3600)
        {
            return fail("LATCHKEY_ACCESS_TTL", "must be between 10s and 24h");
        }
        if self.refresh_ttl.0 <= self.access_ttl.0 {
            return fail(
                "LATCHKEY_REFRESH_TTL",
                "must be longer than LATCHKEY_ACCESS_TTL",
            );
        }
        if self.session_lifetime.0 < self.refresh_ttl.0 {
            return fail(
                "LATCHKEY_SESSION_LIFETIME",
                "must be at least LATCHKEY_REFRESH_TTL",
            );
        }
        if self.reuse_grace.0 > Duration::from_secs(120) {
            return fail(
                "LATCHKEY_REUSE_GRACE",
                "must be at most 2m: a long grace window weakens reuse detection",
            );
        }
        if let Some(clients) = &self.clients {
            if let Err(reason) = crate::clients::OAuthClients::parse(clients.expose_secret()) {
                return fail("LATCHKEY_CLIENTS", &reason);
            }
        }
        if self.leeway.0 > Duration::from_secs(300) {
            return fail("LATCHKEY_LEEWAY", "must be at most 5m");
        }
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            return fail("LATCHKEY_ISSUER/LATCHKEY_AUDIENCE", "must not be empty");
        }
        if self.mfa_issuer.trim().is_empty() || self.mfa_issuer.contains(':') {
            return fail(
                "LATCHKEY_MFA_ISSUER",
                "must be a non-empty name without ':'",
            );
        }
        if self.admin_max_auth_age.0 < Duration::from_secs(1)
            || self.admin_max_auth_age.0 > Duration::from_secs(24 * 3600)
        {
            return fail("LATCHKEY_ADMIN_MAX_AUTH_AGE", "must be between 1s and 24h");
        }
        if let Some(path) = &self.cookie_path {
            if !path.starts_with('/') || path.contains([';', ',', ' ']) || !path.is_ascii() {
                return fail("LATCHKEY_COOKIE_PATH", "must be a path starting with /");
            }
            if self.cookie_is_secure() && path != "/" {
                return fail(
                    "LATCHKEY_COOKIE_PATH",
                    "a Secure cookie is a __Host- cookie, whose path is always /: \
                     leave it unset (it only applies with LATCHKEY_COOKIE_SECURE=false)",
                );
            }
        }
        for origin in &self.allowed_origins {
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let ok =
                host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '*', '?', '#', '@', ' ']));
            if !ok {
                return fail(
                    "LATCHKEY_ALLOWED_ORIGINS",
                    "each origin must be scheme://host[:port], no wildcards or paths",
                );
            }
            if self.cookie_is_secure()
                && origin
                    .strip_prefix("http://")
                    .is_some_and(|authority| !is_loopback_authority(authority))
            {
                return fail(
                    "LATCHKEY_ALLOWED_ORIGINS",
                    "plain http:// origins cannot be allowed with a Secure cookie \
                     (loopback ones such as http://localhost:3000 excepted): use https://",
                );
            }
        }
        if self
            .revocation_feed_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            return fail(
                "LATCHKEY_REVOCATION_FEED_SECRET",
                "must be at least 32 bytes",
            );
        }
        if self.master_secret.is_some() && self.master_secret_file.is_some() {
            return fail(
                "LATCHKEY_MASTER_SECRET/LATCHKEY_MASTER_SECRET_FILE",
                "set one of them, not both",
            );
        }
        if self
            .master_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().trim().len() < 32)
        {
            return fail("LATCHKEY_MASTER_SECRET", "must be at least 32 bytes");
        }
        if self.trust_forwarded_for {
            return fail(
                "LATCHKEY_TRUST_FORWARDED_FOR",
                "is replaced by LATCHKEY_TRUSTED_PROXIES (a hop count such as 1, or proxy CIDRs)",
            );
        }
        if self.login_free_failures == 0 || self.login_account_ceiling < self.login_free_failures {
            return fail(
                "LATCHKEY_LOGIN_FREE_FAILURES/LATCHKEY_LOGIN_ACCOUNT_CEILING",
                "free failures must be at least 1, and the account ceiling at least as many",
            );
        }
        self.mail.validate()?;
        self.webhooks.validate()?;
        if self.hash_queue == 0 {
            return fail("LATCHKEY_HASH_QUEUE", "must be at least 1");
        }
        if !(5..=100).contains(&self.hash_cpu_share) {
            return fail(
                "LATCHKEY_HASH_CPU_SHARE",
                "must be a percentage from 5 to 100",
            );
        }
        let timeouts = [
            ("LATCHKEY_HEADER_TIMEOUT", self.header_timeout),
            ("LATCHKEY_BODY_TIMEOUT", self.body_timeout),
            ("LATCHKEY_REQUEST_TIMEOUT", self.request_timeout),
        ];
        for (setting, timeout) in timeouts {
            if timeout.0 < Duration::from_millis(100) || timeout.0 > Duration::from_secs(600) {
                return fail(setting, "must be between 100ms and 10m");
            }
        }
        if self.max_connections == 0 {
            return fail("LATCHKEY_MAX_CONNECTIONS", "must be at least 1");
        }
        Ok(())
    }

    /// Whether the refresh cookie is `Secure`, `auto` resolved against the issuer.
    pub fn cookie_is_secure(&self) -> bool {
        match self.cookie_secure {
            CookieSecurity::Always => true,
            CookieSecurity::Never => false,
            CookieSecurity::Auto => !self
                .issuer
                .strip_prefix("http://")
                .map(|rest| rest.split('/').next().unwrap_or(""))
                .is_some_and(is_loopback_authority),
        }
    }

    /// One line for the start-up log: which cookie mode is on, and why.
    pub fn cookie_mode_explained(&self) -> String {
        let secure = self.cookie_is_secure();
        let why = match self.cookie_secure {
            CookieSecurity::Always => "LATCHKEY_COOKIE_SECURE=true",
            CookieSecurity::Never => "LATCHKEY_COOKIE_SECURE=false",
            CookieSecurity::Auto if secure => {
                "LATCHKEY_COOKIE_SECURE=auto and the issuer is not a plain-HTTP loopback address"
            }
            CookieSecurity::Auto => {
                "LATCHKEY_COOKIE_SECURE=auto and the issuer is a plain-HTTP loopback address \
                 (local development); set LATCHKEY_ISSUER to the public https:// URL in production"
            }
        };
        if secure {
            format!(
                "refresh cookie: Secure, {} ({why})",
                self.refresh_cookie_name()
            )
        } else {
            format!("refresh cookie: not Secure, sent over plain HTTP ({why})")
        }
    }

    /// The refresh cookie's name: `__Host-` prefixed when the cookie is `Secure` (then
    /// only this host, over HTTPS, with `Path=/` and no `Domain`, can set it).
    pub fn refresh_cookie_name(&self) -> &'static str {
        if self.cookie_is_secure() {
            "__Host-latchkey_refresh"
        } else {
            "latchkey_refresh"
        }
    }

    /// The refresh cookie's `Path`: `/` for a `Secure` (`__Host-`) cookie, otherwise
    /// `LATCHKEY_COOKIE_PATH` (default `/auth`).
    pub fn refresh_cookie_path(&self) -> &str {
        match (&self.cookie_path, self.cookie_is_secure()) {
            (_, true) => "/",
            (Some(path), false) => path,
            (None, false) => "/auth",
        }
    }
}

#[cfg(test)]
mod tests;

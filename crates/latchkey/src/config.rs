//! The server's settings: one typed struct, read from flags, `LATCHKEY_*` environment
//! variables (and a `.env` file), with a default for each, validated at start-up.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use latchkey_verify::Algorithm;

/// A duration written as a number and a unit: `500ms`, `30s`, `15m`, `12h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{s:?}: expected a number and a unit, like 15m"))?;
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("{s:?}: the unit must be one of ms, s, m, h, d")),
        };
        n.checked_mul(unit_ms)
            .map(|ms| Self(Duration::from_millis(ms)))
            .ok_or_else(|| format!("{s:?}: too long"))
    }
}

/// A rate limit written as `count/period`, like `10/1m`: at most `count` requests per
/// `period`, spread out (a burst of `count` is allowed after a quiet period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Requests allowed per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl FromStr for RateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, period) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected count/period, like 10/1m"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the count must be a whole number"))?;
        let period = HumanDuration::from_str(period)?.0;
        if count == 0 || period.is_zero() {
            return Err(format!("{s:?}: count and period must be positive"));
        }
        Ok(Self { count, period })
    }
}

/// Everything `latchkey serve` can be told.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Where state lives: `sqlite://latchkey.db` (created if missing) or `postgres://...`.
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        default_value = "sqlite://latchkey.db"
    )]
    pub database_url: String,

    /// Redis for scale-out (`redis://host:6379`): shared rate limits and instant
    /// revocation fan-out between replicas. Unset: everything stays in process.
    #[arg(long, env = "LATCHKEY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

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
    #[arg(long, env = "LATCHKEY_HS256_SECRET", hide_env_values = true)]
    pub hs256_secret: Option<String>,

    /// Browser origins allowed to use the refresh cookie and CORS, comma-separated
    /// (`https://app.example.com`). The server's own origin is always allowed.
    #[arg(long, env = "LATCHKEY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Mark the refresh cookie `Secure` (sent over HTTPS only). Turn off only for local
    /// development over plain HTTP.
    #[arg(long, env = "LATCHKEY_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,

    /// The refresh cookie's `Path`: where the auth routes are mounted.
    #[arg(long, env = "LATCHKEY_COOKIE_PATH", default_value = "/auth")]
    pub cookie_path: String,

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
    #[arg(long, env = "LATCHKEY_REVOCATION_FEED_SECRET", hide_env_values = true)]
    pub revocation_feed_secret: Option<String>,

    /// Access tokens whose verification is remembered (until their `exp`), so repeated
    /// requests with one token skip the signature check. 0 turns the cache off.
    #[arg(long, env = "LATCHKEY_VERIFIED_TOKEN_CACHE", default_value_t = 4096)]
    pub verified_token_cache: usize,

    /// E-mail delivery, links and notices.
    #[command(flatten)]
    pub mail: crate::mail::MailConfig,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "LATCHKEY_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
}

/// Which proxies' `X-Forwarded-For` entries to believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProxies {
    /// This many proxies stand in front of Latchkey: the client is the entry this many
    /// places from the right of the chain (`X-Forwarded-For` entries, then the socket
    /// address).
    Hops(u8),
    /// Proxies at these networks: the client is the right-most address of the chain that
    /// is not one of them.
    Networks(Vec<ipnet::IpNet>),
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(hops) = s.parse::<u8>() {
            return match hops {
                1..=16 => Ok(Self::Hops(hops)),
                _ => Err(format!("{s:?}: a hop count must be 1 to 16")),
            };
        }
        let networks = s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<ipnet::IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("{part:?}: expected an address or CIDR such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if networks.is_empty() {
            return Err("expected a hop count or a list of addresses and CIDRs".to_owned());
        }
        Ok(Self::Networks(networks))
    }
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    s.parse()
        .map_err(|e: latchkey_verify::UnsupportedAlgorithm| e.to_string())
}

/// A setting that would make the server unsafe or unable to work.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The environment variable of the setting.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
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
        if self.leeway.0 > Duration::from_secs(300) {
            return fail("LATCHKEY_LEEWAY", "must be at most 5m");
        }
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            return fail("LATCHKEY_ISSUER/LATCHKEY_AUDIENCE", "must not be empty");
        }
        if !self.cookie_path.starts_with('/') || self.cookie_path.contains([';', ',', ' ']) {
            return fail("LATCHKEY_COOKIE_PATH", "must be a path starting with /");
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
        }
        if self
            .revocation_feed_secret
            .as_ref()
            .is_some_and(|s| s.len() < 32)
        {
            return fail(
                "LATCHKEY_REVOCATION_FEED_SECRET",
                "must be at least 32 bytes",
            );
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
        if self.hash_queue == 0 {
            return fail("LATCHKEY_HASH_QUEUE", "must be at least 1");
        }
        if !(5..=100).contains(&self.hash_cpu_share) {
            return fail(
                "LATCHKEY_HASH_CPU_SHARE",
                "must be a percentage from 5 to 100",
            );
        }
        Ok(())
    }

    /// The refresh cookie's name: `__Secure-` prefixed when the cookie is `Secure`.
    pub fn refresh_cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            "__Secure-latchkey_refresh"
        } else {
            "latchkey_refresh"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            "15m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(900)
        );
        assert_eq!(
            "7d".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        for bad in ["", "15", "m", "1w", "-1s", "1.5h"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rate_specs_parse() {
        let spec: RateSpec = "10/1m".parse().unwrap();
        assert_eq!((spec.count, spec.period), (10, Duration::from_secs(60)));
        for bad in ["10", "0/1m", "10/0s", "x/1m"] {
            assert!(bad.parse::<RateSpec>().is_err(), "{bad}");
        }
    }
}

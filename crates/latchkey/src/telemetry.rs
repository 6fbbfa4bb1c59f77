//! Metrics: one [`Metrics`] registry per server, with a named function per event so a
//! use case records what happened in one line (`self.metrics.refresh(Rotated)`).
//!
//! Every label value comes from a fixed set (an outcome word, a route template, a
//! status code, an error code): never a user id, an address, a token or a raw path, so
//! the number of series stays bounded whatever clients send. The registry is per server
//! (not a global recorder), so tests running several servers in one process read their
//! own counts. Rendered in the OpenMetrics text format, which Prometheus scrapes.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::hashing::HashPool;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rule {
    rule: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new pair was issued and the presented token spent.
    Rotated,
    /// A just-spent token came again within the grace window: the same successor.
    GraceReplay,
    /// A spent token came after the grace window: the session was revoked.
    ReuseDetected,
    /// The token (or its session) has expired.
    Expired,
    /// Not a token this server issued.
    Invalid,
    /// The session had been revoked.
    Revoked,
}

impl RefreshOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::GraceReplay => "grace_replay",
            Self::ReuseDetected => "reuse_detected",
            Self::Expired => "expired",
            Self::Invalid => "invalid",
            Self::Revoked => "revoked",
        }
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    error_responses: Family<Code, Counter>,
    logins: Family<Outcome, Counter>,
    refreshes: Family<Outcome, Counter>,
    token_checks: Family<Outcome, Counter>,
    token_cache: Family<Outcome, Counter>,
    revocations: Family<Kind, Counter>,
    rate_limited: Family<Rule, Counter>,
    webhook_deliveries: Family<Outcome, Counter>,
    hash_queue: Gauge,
    redis_healthy: Gauge,
    live_sessions: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry; password-hashing queue waits of `hashing` are recorded in it.
    pub fn new(hashing: &HashPool) -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let metrics = Self {
            requests: Family::default(),
            latency: HistogramFamily::new_with_constructor(latency_histogram),
            error_responses: Family::default(),
            logins: Family::default(),
            refreshes: Family::default(),
            token_checks: Family::default(),
            token_cache: Family::default(),
            revocations: Family::default(),
            rate_limited: Family::default(),
            webhook_deliveries: Family::default(),
            hash_queue: Gauge::default(),
            redis_healthy: Gauge::default(),
            live_sessions: Gauge::default(),
            registry: Registry::default(),
        };
        let hash_waits = latency_histogram();
        let observed = hash_waits.clone();
        hashing.observe_waits(move |waited| observed.observe(waited.as_secs_f64()));
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            metrics.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer, by method and route template",
            metrics.latency.clone(),
        );
        r.register(
            "error_responses",
            "Error responses by their stable code (store_unavailable, overloaded, ...)",
            metrics.error_responses.clone(),
        );
        r.register("logins", "Logins by outcome", metrics.logins.clone());
        r.register(
            "refreshes",
            "Refresh-token exchanges by outcome",
            metrics.refreshes.clone(),
        );
        r.register(
            "access_token_checks",
            "Access-token checks by outcome (valid or the refusal code)",
            metrics.token_checks.clone(),
        );
        r.register(
            "verified_token_cache",
            "Verified-token cache lookups (hit, miss)",
            metrics.token_cache.clone(),
        );
        r.register(
            "revocations",
            "Revocations made by this server (session, access_token, key)",
            metrics.revocations.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit, by rule",
            metrics.rate_limited.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, failed)",
            metrics.webhook_deliveries.clone(),
        );
        r.register(
            "password_hash_queue_depth",
            "Password-hashing jobs waiting for a worker",
            metrics.hash_queue.clone(),
        );
        r.register(
            "password_hash_wait_seconds",
            "Time password-hashing jobs waited for a worker",
            hash_waits,
        );
        r.register(
            "redis_healthy",
            "1 when Redis is configured and its last operation succeeded, else 0",
            metrics.redis_healthy.clone(),
        );
        r.register(
            "live_sessions",
            "Sessions neither revoked nor expired, counted every 30 s",
            metrics.live_sessions.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// A request answered: by method, route template (never the raw path) and status.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                route: route.clone(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }

    /// An error response with this stable code.
    pub fn error_response(&self, code: &'static str) {
        self.error_responses.get_or_create(&Code { code }).inc();
    }

    /// A login ended this way (one of a fixed set of labels; see `http::auth`).
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&Outcome { outcome }).inc();
    }

    /// A refresh ended this way.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        let outcome = outcome.label();
        self.refreshes.get_or_create(&Outcome { outcome }).inc();
    }

    /// An access token was checked: `valid`, or the refusal's code.
    pub fn token_check<T>(&self, result: &Result<T, latchkey_verify::TokenError>) {
        let outcome = match result {
            Ok(_) => "valid",
            Err(e) => e.code(),
        };
        self.token_checks.get_or_create(&Outcome { outcome }).inc();
    }

    /// A verified-token cache lookup hit or missed.
    pub fn token_cache(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.token_cache.get_or_create(&Outcome { outcome }).inc();
    }

    /// Something was revoked here: `session`, `access_token` or `key`.
    pub fn revocation(&self, kind: &'static str) {
        self.revocations.get_or_create(&Kind { kind }).inc();
    }

    /// A rate limit refused a request; `key` is the limiter key, of which only the rule
    /// (`login:ip`, `refresh:account`, ...) becomes a label.
    pub fn rate_limited(&self, key: &str) {
        self.rate_limited
            .get_or_create(&Rule { rule: rule_of(key) })
            .inc();
    }

    /// A webhook delivery attempt ended this way: `delivered`, `retry` (it will be tried
    /// again) or `failed` (given up).
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// The live-session count, from the periodic count.
    pub fn set_live_sessions(&self, count: u64) {
        self.live_sessions
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The text exposition, with the gauges read now: the hashing queue and, when Redis
    /// is configured, its health.
    pub fn render(&self, hash_queue: usize, redis_healthy: Option<bool>) -> String {
        self.hash_queue
            .set(i64::try_from(hash_queue).unwrap_or(i64::MAX));
        if let Some(healthy) = redis_healthy {
            self.redis_healthy.set(i64::from(healthy));
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        text
    }
}

/// The rule of a limiter key (`{action}:{scope}:{bucket}`), from a fixed list.
fn rule_of(key: &str) -> &'static str {
    const RULES: [&str; 9] = [
        "login:ip",
        "login:account",
        "register:ip",
        "register:account",
        "refresh:ip",
        "refresh:account",
        "logout:ip",
        "client_auth:network",
        "client_auth:client",
    ];
    let mut parts = key.splitn(3, ':');
    let rule = match (parts.next(), parts.next()) {
        (Some(action), Some(scope)) => format!("{action}:{scope}"),
        _ => String::new(),
    };
    RULES.into_iter().find(|r| *r == rule).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::rule_of;

    #[test]
    fn rate_limit_rules_are_bounded_labels() {
        assert_eq!(rule_of("login:ip:203.0.113.7"), "login:ip");
        assert_eq!(rule_of("refresh:account:0190-abc"), "refresh:account");
        assert_eq!(
            rule_of("register:account:kim@example.com"),
            "register:account"
        );
        assert_eq!(
            rule_of("client_auth:client:notes:api"),
            "client_auth:client"
        );
        assert_eq!(rule_of("anything:else:at:all"), "other");
        assert_eq!(rule_of("nocolon"), "other");
    }
}

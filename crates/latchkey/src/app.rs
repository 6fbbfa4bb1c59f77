//! Wiring: open the store, start the service and its background tasks, bind the
//! listener. [`Application::build`] binds before serving, so tests can start the real
//! server on port 0 and read the port.
//!
//! Connections are served by hyper's HTTP/1 server with a timer: a request head (or the
//! next one on a kept-alive connection) must arrive within `LATCHKEY_HEADER_TIMEOUT`,
//! or the connection is closed; at most `LATCHKEY_MAX_CONNECTIONS` connections are
//! served at once, and one more is answered 503 `too_many_connections` and closed.
//! Body and handler time limits are the router's (`http::limits`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::password::{HashCost, PasswordHasher};
use latchkey_core::refresh::RefreshKeys;
use latchkey_core::sealing::MasterSealers;
use latchkey_store::BackendSettings;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hashing::HashPool;
use crate::http::{self, AppState, WebSettings};
use crate::login_failures::{LocalFailures, RedisFailures};
use crate::ratelimit::LocalRateLimiter;
use crate::redis_link::{FanoutKey, RedisFanout, RedisLink, RedisRateLimiter};
use crate::service::{AuthService, Collaborators, ServicePolicy};
use crate::{clock::Clock, service::AuthError};

mod postgres_tls;
mod serve;

use postgres_tls::postgres_tls_warning;
use serve::{serve, ConnectionLimits};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database could not be opened: missing, unreachable, not migrated. The
    /// message says what to do and never carries the URL's password.
    #[error("cannot open the database: {0}")]
    Open(String),
    /// The store failed after opening.
    #[error("database: {0}")]
    Store(#[from] latchkey_core::store::StoreError),
    /// The service could not start (keys, secrets).
    #[error("could not start: {0}")]
    Service(#[from] AuthError),
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The password-hashing threads could not be started.
    #[error("could not start the password-hashing threads: {0}")]
    Threads(std::io::Error),
    /// The Redis URL does not parse.
    #[error(transparent)]
    Redis(#[from] crate::redis_link::InvalidRedisUrl),
    /// The master secret could not be read or is too short.
    #[error("LATCHKEY_MASTER_SECRET_FILE: {reason}")]
    MasterSecret {
        /// What is wrong (never the secret).
        reason: String,
    },
    /// Mail delivery could not be set up.
    #[error("mail: {0}")]
    Mail(#[from] crate::mail::MailSetupError),
    /// Webhook delivery could not be set up.
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks::WebhookSetupError),
    /// Argon2 parameters.
    #[error("password hasher: {0}")]
    Hasher(#[from] latchkey_core::password::PasswordError),
}

/// Build the service (store, keys, revocations) from the config, without HTTP or Redis.
/// Creates and migrates the database, and makes the first signing key and the secrets,
/// when they are missing.
pub async fn build_service(config: &Config) -> Result<Arc<AuthService>, StartError> {
    Ok(
        build_service_with(config, None, Database::CreateIfMissing, Clock::system())
            .await?
            .0,
    )
}

/// Like [`build_service`], on a database that exists and is migrated already (for
/// `latchkey keys rotate`: a mistyped URL must not create a new database).
pub async fn build_service_on_existing(config: &Config) -> Result<Arc<AuthService>, StartError> {
    Ok(
        build_service_with(config, None, Database::MustExist, Clock::system())
            .await?
            .0,
    )
}

/// Whether opening the database may create and migrate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// Create a missing SQLite file and apply pending migrations (`serve`, `migrate`,
    /// `user add`).
    CreateIfMissing,
    /// The database must exist with every migration applied; nothing is changed.
    MustExist,
}

async fn open_store(
    config: &Config,
    database: Database,
) -> Result<Arc<dyn latchkey_core::store::Store>, StartError> {
    let settings = backend_settings(config);
    let database_url = config.database_url.expose_secret();
    if let Some(warning) = postgres_tls_warning(database_url, std::env::var("PGSSLMODE").ok()) {
        tracing::warn!("{warning}");
    }
    let opened = match database {
        Database::CreateIfMissing => latchkey_store::open(database_url, settings).await,
        Database::MustExist => latchkey_store::open_existing(database_url, settings).await,
    };
    opened.map_err(open_error)
}

/// Create the database if it is missing and apply pending migrations; nothing else (no
/// keys, no secrets: the first `serve` makes those).
pub async fn migrate(config: &Config) -> Result<(), StartError> {
    config.validate()?;
    open_store(config, Database::CreateIfMissing).await?;
    Ok(())
}

/// The service for admin commands: no key or secret is made, and no Redis is used
/// (running servers pick up revocations from the store within
/// `LATCHKEY_REVOCATION_POLL`). With [`Database::MustExist`] nothing at all is created
/// or migrated. See [`AuthService::open_for_admin`].
pub async fn open_admin_service(
    config: &Config,
    database: Database,
) -> Result<Arc<AuthService>, StartError> {
    config.validate()?;
    let store = open_store(config, database).await?;
    let collaborators = Collaborators {
        limiter: Arc::new(LocalRateLimiter::default()),
        failures: Arc::new(LocalFailures::default()),
        fanout: None,
        hashing: hash_pool(config)?,
        clock: Clock::system(),
    };
    let service = AuthService::open_for_admin(
        store,
        ServicePolicy::from_config(config, master_sealers(config)?),
        collaborators,
    )?;
    Ok(Arc::new(service))
}

/// A failure to open the store, as one sentence: the store's own words without its
/// "store failure:" prefix.
fn open_error(error: latchkey_core::store::StoreError) -> StartError {
    use latchkey_core::store::StoreError;
    match error {
        StoreError::Internal(detail) | StoreError::Unavailable(detail) => StartError::Open(detail),
        other => StartError::Open(other.to_string()),
    }
}

fn backend_settings(config: &Config) -> BackendSettings {
    BackendSettings {
        max_connections: config.database_max_connections,
        acquire_timeout: config.database_acquire_timeout.0,
        sqlite_allow_insecure_permissions: config.allow_insecure_db_permissions,
        ..BackendSettings::default()
    }
}

fn hash_pool(config: &Config) -> Result<HashPool, StartError> {
    let hasher = PasswordHasher::new(HashCost::OWASP)?;
    let workers = match config.hash_workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    HashPool::new(
        hasher,
        workers,
        config.hash_queue,
        f64::from(config.hash_cpu_share) / 100.0,
    )
    .map_err(StartError::Threads)
}

/// Redis as the service uses it: the link, and the key sealing fan-out messages.
type RedisParts = (Arc<RedisLink>, Arc<FanoutKey>);

async fn build_service_with(
    config: &Config,
    redis: Option<Arc<RedisLink>>,
    database: Database,
    clock: Clock,
) -> Result<(Arc<AuthService>, Option<RedisParts>), StartError> {
    config.validate()?;
    let store = open_store(config, database).await?;
    let hashing = hash_pool(config)?;
    let redis = match redis {
        Some(link) => {
            // The same secret, name and candidate as `AuthService::start` (whichever asks
            // first stores it; both get the stored one).
            let master = store
                .secret_or_insert(
                    "refresh_token_master",
                    &RefreshKeys::generate_master_secret(),
                )
                .await?;
            Some((link, Arc::new(FanoutKey::derive(&master))))
        }
        None => None,
    };
    let collaborators = match &redis {
        Some((link, key)) => Collaborators {
            limiter: Arc::new(RedisRateLimiter::new(link.clone())),
            failures: Arc::new(RedisFailures::new(link.clone())),
            fanout: Some(Arc::new(RedisFanout::new(link.clone(), key.clone()))),
            hashing,
            clock,
        },
        None => Collaborators {
            limiter: Arc::new(LocalRateLimiter::default()),
            failures: Arc::new(LocalFailures::default()),
            fanout: None,
            hashing,
            clock,
        },
    };
    let policy = ServicePolicy::from_config(config, master_sealers(config)?);
    let service = AuthService::start(store, policy, collaborators).await?;
    Ok((Arc::new(service), redis))
}

/// The sealers from the configured master secret, if any.
fn master_sealers(config: &Config) -> Result<Option<MasterSealers>, StartError> {
    let secret = match (&config.master_secret_file, &config.master_secret) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| StartError::MasterSecret {
                reason: format!("could not read {}: {e}", path.display()),
            })?;
            text.trim().as_bytes().to_vec()
        }
        (None, Some(secret)) => secret.expose_secret().trim().as_bytes().to_vec(),
        (None, None) => return Ok(None),
    };
    MasterSealers::from_secret(&secret)
        .map(Some)
        .map_err(|e| StartError::MasterSecret {
            reason: e.to_string(),
        })
}

/// A built server, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    /// The separate `/metrics` listener (`LATCHKEY_METRICS_BIND`), if any.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
    limits: ConnectionLimits,
}

impl Application {
    /// Validate the config, open the store, set up keys, bind the address and start
    /// the background tasks.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// Like [`build`](Self::build), reading `clock` for every time comparison (tests
    /// pass a [`TestClock`](crate::clock::TestClock)'s clock to move time forward).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartError> {
        tracing::info!("{}", config.cookie_mode_explained());
        let redis = match &config.redis_url {
            Some(url) => Some(RedisLink::open(url.expose_secret()).await?),
            None => None,
        };
        let (service, redis) =
            build_service_with(&config, redis, Database::CreateIfMissing, clock.clone()).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let metrics_listener = match config.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let state = AppState {
            service: service.clone(),
            web: Arc::new(WebSettings::from_config(&config)),
            redis: redis.as_ref().map(|(link, _)| link.clone()),
        };
        let outbox = crate::mail::Outbox::new(
            &config.mail,
            service.store().clone(),
            service.email_keys(),
            service.mail_wake(),
        )?;
        let webhooks = crate::webhooks::WebhookWorker::start(
            &config.webhooks,
            service.store().clone(),
            service.metrics().clone(),
        )
        .await?;
        let mut tasks = spawn_background_tasks(service.clone(), &config);
        tasks.push(tokio::spawn(outbox.run(clock.clone())));
        if let Some(webhooks) = webhooks {
            tasks.push(tokio::spawn(webhooks.run(clock)));
        }
        if let Some((link, key)) = redis {
            tasks.push(link.spawn_subscriber(service, key));
        }
        Ok(Self {
            listener,
            metrics_listener,
            state,
            tasks,
            limits: ConnectionLimits {
                header_timeout: config.header_timeout.0,
                max_connections: config.max_connections,
            },
        })
    }

    /// The bound address (with the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address of the separate metrics listener, when `LATCHKEY_METRICS_BIND` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared state, to mount the router elsewhere or reach the service.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` completes, then stop accepting, let the open connections
    /// finish their requests, and stop the background tasks.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut tasks = self.tasks;
        if let Some(listener) = self.metrics_listener {
            let metrics = http::metrics_router(self.state.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, metrics).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            }));
        }
        let router = http::router(self.state);
        serve(self.listener, router, self.limits, shutdown).await;
        for task in tasks {
            task.abort();
        }
        Ok(())
    }
}

fn spawn_background_tasks(service: Arc<AuthService>, config: &Config) -> Vec<JoinHandle<()>> {
    let poll = config.revocation_poll.0.max(Duration::from_millis(50));
    let reload = config.key_reload.0.max(Duration::from_secs(1));
    let revocations = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = service
                    .revocations()
                    .sync_from(service.store().as_ref(), service.clock().now())
                    .await
                {
                    tracing::warn!(error = %e, "could not read new revocations");
                }
            }
        })
    };
    let keys = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(reload);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = service.reload_keys().await {
                    tracing::warn!(error = %e, "could not reload signing keys");
                }
            }
        })
    };
    let live_sessions = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = service.count_live_sessions().await {
                    tracing::warn!(error = %e, "could not count live sessions");
                }
            }
        })
    };
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            match service.purge().await {
                Ok(rows) => tracing::debug!(rows, "purged expired state"),
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
        }
    });
    vec![revocations, keys, live_sessions, purge]
}

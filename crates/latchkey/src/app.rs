//! Wiring: open the store, start the service and its background tasks, bind the
//! listener. [`Application::build`] binds before serving, so tests can start the real
//! server on port 0 and read the port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::password::{HashCost, PasswordHasher};
use latchkey_core::refresh::RefreshKeys;
use latchkey_store::BackendSettings;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hashing::HashPool;
use crate::http::{self, AppState, WebSettings};
use crate::login_failures::{LocalFailures, RedisFailures};
use crate::ratelimit::LocalRateLimiter;
use crate::redis_link::{FanoutKey, RedisFanout, RedisLink, RedisRateLimiter};
use crate::service::{AuthService, Collaborators, ServicePolicy};
use crate::{clock, service::AuthError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened or migrated.
    #[error("could not open the database: {0}")]
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
    /// Mail delivery could not be set up.
    #[error("mail: {0}")]
    Mail(#[from] crate::mail::MailSetupError),
    /// Argon2 parameters.
    #[error("password hasher: {0}")]
    Hasher(#[from] latchkey_core::password::PasswordError),
}

/// Build the service (store, keys, revocations) from the config, without HTTP or Redis.
pub async fn build_service(config: &Config) -> Result<Arc<AuthService>, StartError> {
    Ok(build_service_with(config, None).await?.0)
}

/// Redis as the service uses it: the link, and the key sealing fan-out messages.
type RedisParts = (Arc<RedisLink>, Arc<FanoutKey>);

async fn build_service_with(
    config: &Config,
    redis: Option<Arc<RedisLink>>,
) -> Result<(Arc<AuthService>, Option<RedisParts>), StartError> {
    config.validate()?;
    let settings = BackendSettings {
        max_connections: config.database_max_connections,
        acquire_timeout: config.database_acquire_timeout.0,
        ..BackendSettings::default()
    };
    let store = latchkey_store::open(&config.database_url, settings).await?;
    let hasher = PasswordHasher::new(HashCost::OWASP)?;
    let workers = match config.hash_workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let hashing = HashPool::new(
        hasher,
        workers,
        config.hash_queue,
        f64::from(config.hash_cpu_share) / 100.0,
    )
    .map_err(StartError::Threads)?;
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
        },
        None => Collaborators {
            limiter: Arc::new(LocalRateLimiter::default()),
            failures: Arc::new(LocalFailures::default()),
            fanout: None,
            hashing,
        },
    };
    let policy = ServicePolicy::from_config(config);
    let service = AuthService::start(store, policy, collaborators).await?;
    Ok((Arc::new(service), redis))
}

/// A built server, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// Validate the config, open the store, set up keys, bind the address and start
    /// the background tasks.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let redis = match &config.redis_url {
            Some(url) => Some(RedisLink::open(url).await?),
            None => None,
        };
        let (service, redis) = build_service_with(&config, redis).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
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
        let mut tasks = spawn_background_tasks(service.clone(), &config);
        tasks.push(tokio::spawn(outbox.run()));
        if let Some((link, key)) = redis {
            tasks.push(link.spawn_subscriber(service, key));
        }
        Ok(Self {
            listener,
            state,
            tasks,
        })
    }

    /// The bound address (with the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The shared state, to mount the router elsewhere or reach the service.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` completes, then stop the background tasks.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        for task in self.tasks {
            task.abort();
        }
        result
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
                    .sync_from(service.store().as_ref(), clock::now())
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
    vec![revocations, keys, purge]
}

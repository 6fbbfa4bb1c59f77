//! Password hashing off the async runtime, with bounded concurrency and a bounded queue:
//! a login flood waits its turn or is refused with 503, it never starves other requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use latchkey_core::password::{PasswordError, PasswordHasher};
use tokio::sync::Semaphore;

/// Why a hashing job did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashJobError {
    /// Too many hashing jobs are waiting already.
    #[error("too many password checks in progress")]
    Overloaded,
    /// The job failed or its thread died.
    #[error("password hashing failed")]
    Failed,
}

impl From<PasswordError> for HashJobError {
    fn from(_: PasswordError) -> Self {
        Self::Failed
    }
}

/// Runs Argon2 on the blocking thread pool, at most `workers` at a time.
#[derive(Debug, Clone)]
pub struct HashPool {
    hasher: PasswordHasher,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// A pool running at most `workers` hashes at once with at most `max_waiting` queued.
    pub fn new(hasher: PasswordHasher, workers: usize, max_waiting: usize) -> Self {
        Self {
            hasher,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// Run `job` with the hasher on a worker.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashJobError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher) -> T + Send + 'static,
    {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashJobError::Overloaded);
        }
        let guard = WaitingGuard(&self.waiting);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashJobError::Failed)?;
        drop(guard);
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || {
            let result = job(&hasher);
            drop(permit);
            result
        })
        .await
        .map_err(|_| HashJobError::Failed)
    }
}

//! Password hashing on a few dedicated threads, off the async runtime, with a bounded
//! queue: a login flood waits its turn or is refused with 503, it never starves other
//! requests.
//!
//! - Each worker thread owns one Argon2 working buffer ([`HashMemory`], 19 MiB at OWASP
//!   cost) and reuses it, so memory stays at `workers` buffers however many logins come.
//!   The buffer is made on a worker's first job and dropped after a quiet minute, so an
//!   idle server holds none.
//! - Workers run at a lower CPU priority (nice 10 on Unix): when refreshes and logins
//!   compete for a core, refreshes (cheap, latency-sensitive) go first.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use latchkey_core::password::{HashMemory, PasswordError, PasswordHasher};
use tokio::sync::oneshot;

/// Why a hashing job did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashJobError {
    /// Too many hashing jobs are waiting already.
    #[error("too many password checks in progress")]
    Overloaded,
    /// The job failed or its worker died.
    #[error("password hashing failed")]
    Failed,
}

impl From<PasswordError> for HashJobError {
    fn from(_: PasswordError) -> Self {
        Self::Failed
    }
}

type Job = Box<dyn FnOnce(&PasswordHasher, &mut HashMemory) + Send>;

/// Runs Argon2 jobs on `workers` dedicated threads.
#[derive(Debug, Clone)]
pub struct HashPool {
    queue: SyncSender<Job>,
}

/// CPU priority of the hashing threads (Unix nice value).
const WORKER_NICENESS: i32 = 10;

/// A worker idle this long gives its Argon2 buffer back.
const RELEASE_MEMORY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl HashPool {
    /// Start `workers` threads with at most `max_waiting` jobs queued for them.
    pub fn new(
        hasher: PasswordHasher,
        workers: usize,
        max_waiting: usize,
    ) -> std::io::Result<Self> {
        let (queue, jobs) = sync_channel::<Job>(max_waiting);
        let jobs = Arc::new(Mutex::new(jobs));
        for index in 0..workers.max(1) {
            let (hasher, jobs) = (hasher.clone(), jobs.clone());
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{index}"))
                .spawn(move || work(&hasher, &jobs))?;
        }
        Ok(Self { queue })
    }

    /// Run `job` with the hasher and a worker's memory.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashJobError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher, &mut HashMemory) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |hasher, memory| {
            let _ = reply.send(job(hasher, memory));
        });
        match self.queue.try_send(job) {
            Ok(()) => answer.await.map_err(|_| HashJobError::Failed),
            Err(TrySendError::Full(_)) => Err(HashJobError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(HashJobError::Failed),
        }
    }
}

/// A worker: lower its priority, then take jobs until the pool is dropped.
fn work(hasher: &PasswordHasher, jobs: &Mutex<Receiver<Job>>) {
    #[cfg(unix)]
    if let Err(e) = rustix::process::setpriority_process(None, WORKER_NICENESS) {
        tracing::debug!(error = %e, "could not lower the hashing thread's priority");
    }
    let mut memory: Option<HashMemory> = None;
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv_timeout(RELEASE_MEMORY_AFTER),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(hasher, memory.get_or_insert_with(|| hasher.new_memory())),
            Err(RecvTimeoutError::Timeout) => memory = None,
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

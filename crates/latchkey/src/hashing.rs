//! Password hashing on a few dedicated threads, off the async runtime, with a bounded
//! queue and a CPU budget: a login flood waits its turn or is refused with 503, it never
//! starves other requests.
//!
//! - Each worker thread owns one Argon2 working buffer ([`HashMemory`], 19 MiB at OWASP
//!   cost) and reuses it, so memory stays at `workers` buffers however many logins come.
//!   The buffer is made on a worker's first job and dropped after a quiet minute, so an
//!   idle server holds none.
//! - While other requests are in flight, workers keep to a share of their CPU time
//!   ([`HashPool::new`]'s `busy_share`): after a hash that took `t` of CPU, a worker rests
//!   `t * (1 - share) / share` before the next, unless the other requests finish first.
//!   With nothing else to do, hashing runs flat out. A scheduler priority alone does not
//!   do this: a refresh needs many short thread wake-ups, and at nice 10 a busy Argon2
//!   thread still delayed each of them, by up to 488 ms at p99 in a login flood, or
//!   starved logins instead (BENCHMARKS.md). Resting hands the core back outright.
//! - Requests that wait for a hash hold a [`HashLane`], so they do not count as other
//!   work; [`HashPool::track_request`] counts every request (the router does it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

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
    shared: Arc<Shared>,
    /// Dropped with the last clone of the pool: the workers then exit.
    _owner: Arc<CloseOnDrop>,
}

/// A worker idle this long gives its Argon2 buffer back.
const RELEASE_MEMORY_AFTER: Duration = Duration::from_secs(60);

/// How often a resting worker looks again whether other requests are still in flight.
const REST_STEP: Duration = Duration::from_millis(1);

struct Shared {
    queue: Mutex<Queue>,
    job_ready: Condvar,
    max_waiting: usize,
    /// Share of a worker's time it may hash while other requests are in flight (0, 1].
    busy_share: f64,
    /// Requests in flight, all kinds.
    requests: AtomicUsize,
    /// Requests in flight that wait for (or have used) a hash.
    hashing_requests: AtomicUsize,
    /// Told how long each job waited in the queue (for metrics).
    wait_observer: OnceLock<WaitObserver>,
}

/// Told how long a job waited for a worker.
type WaitObserver = Box<dyn Fn(Duration) + Send + Sync>;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("max_waiting", &self.max_waiting)
            .field("busy_share", &self.busy_share)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Shared {
    /// Whether requests other than hashing ones are in flight.
    fn others_in_flight(&self) -> bool {
        self.requests.load(Ordering::Acquire) > self.hashing_requests.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.0.queue.lock() {
            queue.closed = true;
        }
        self.0.job_ready.notify_all();
    }
}

/// Marks a request in flight until dropped (see [`HashPool::track_request`]).
#[derive(Debug)]
pub struct RequestInFlight(Arc<Shared>);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks a request as one that waits for hashing until dropped (see [`HashPool::lane`]).
#[derive(Debug)]
pub struct HashLane(Arc<Shared>);

impl Drop for HashLane {
    fn drop(&mut self) {
        self.0.hashing_requests.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// Start `workers` threads with at most `max_waiting` jobs queued for them. While
    /// other requests are in flight, each worker hashes at most `busy_share` of its time
    /// (clamped to 0.05..=1; 1 means no budget).
    pub fn new(
        hasher: PasswordHasher,
        workers: usize,
        max_waiting: usize,
        busy_share: f64,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            job_ready: Condvar::new(),
            max_waiting,
            busy_share: busy_share.clamp(0.05, 1.0),
            requests: AtomicUsize::new(0),
            hashing_requests: AtomicUsize::new(0),
            wait_observer: OnceLock::new(),
        });
        let owner = Arc::new(CloseOnDrop(shared.clone()));
        for index in 0..workers.max(1) {
            let (hasher, shared) = (hasher.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{index}"))
                .spawn(move || work(&hasher, &shared))?;
        }
        Ok(Self {
            shared,
            _owner: owner,
        })
    }

    /// Count a request as in flight until the guard is dropped.
    pub fn track_request(&self) -> RequestInFlight {
        self.shared.requests.fetch_add(1, Ordering::AcqRel);
        RequestInFlight(self.shared.clone())
    }

    /// Requests counted in flight now (see [`HashPool::track_request`]).
    pub fn requests_in_flight(&self) -> usize {
        self.shared.requests.load(Ordering::Acquire)
    }

    /// Mark the calling request as a hashing one (a login, a registration) until the
    /// guard is dropped: the CPU budget protects the other requests, not these.
    pub fn lane(&self) -> HashLane {
        self.shared.hashing_requests.fetch_add(1, Ordering::AcqRel);
        HashLane(self.shared.clone())
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().map_or(0, |queue| queue.jobs.len())
    }

    /// Tell `observer` how long each job waits for a worker from now on (the first
    /// observer set stays).
    pub fn observe_waits(&self, observer: impl Fn(Duration) + Send + Sync + 'static) {
        let _ = self.shared.wait_observer.set(Box::new(observer));
    }

    /// Run `job` with the hasher and a worker's memory.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashJobError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher, &mut HashMemory) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let (queued_at, shared) = (Instant::now(), Arc::downgrade(&self.shared));
        let job: Job = Box::new(move |hasher, memory| {
            if let Some(shared) = shared.upgrade() {
                if let Some(observe) = shared.wait_observer.get() {
                    observe(queued_at.elapsed());
                }
            }
            let _ = reply.send(job(hasher, memory));
        });
        {
            let mut queue = self.shared.queue.lock().map_err(|_| HashJobError::Failed)?;
            if queue.jobs.len() >= self.shared.max_waiting {
                return Err(HashJobError::Overloaded);
            }
            queue.jobs.push_back(job);
        }
        self.shared.job_ready.notify_one();
        answer.await.map_err(|_| HashJobError::Failed)
    }
}

/// A worker: take jobs until the pool is dropped, resting after each as the budget asks.
fn work(hasher: &PasswordHasher, shared: &Shared) {
    let mut memory: Option<HashMemory> = None;
    while let Some(job) = next_job(shared, &mut memory) {
        let started = thread_cpu_time();
        job(hasher, memory.get_or_insert_with(|| hasher.new_memory()));
        let used = thread_cpu_time().saturating_sub(started);
        rest(shared, used);
    }
}

/// Wait for the next job; drop `memory` after a quiet spell. `None` once the pool is gone.
fn next_job(shared: &Shared, memory: &mut Option<HashMemory>) -> Option<Job> {
    let mut queue = shared.queue.lock().ok()?;
    let mut idle_since = Instant::now();
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        if queue.closed {
            return None;
        }
        let (guard, timeout) = shared
            .job_ready
            .wait_timeout(queue, RELEASE_MEMORY_AFTER)
            .ok()?;
        queue = guard;
        if timeout.timed_out() && idle_since.elapsed() >= RELEASE_MEMORY_AFTER {
            *memory = None;
            idle_since = Instant::now();
        }
    }
}

/// After a hash that used `cpu` of CPU time, leave the core to other requests for as
/// long as the budget asks, or until no other request is in flight.
fn rest(shared: &Shared, cpu: Duration) {
    if shared.busy_share >= 1.0 {
        return;
    }
    let owed = cpu.mul_f64((1.0 - shared.busy_share) / shared.busy_share);
    let until = Instant::now() + owed;
    while shared.others_in_flight() && Instant::now() < until {
        std::thread::sleep(REST_STEP);
    }
}

/// CPU time used by the calling thread (wall time where the platform has no such clock).
fn thread_cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

#[cfg(test)]
mod tests {
    use latchkey_core::password::HashCost;

    use super::*;

    /// A pool with one worker that may hash 10% of its time while others are in flight,
    /// so a job of `BURN` CPU time is followed by a rest of 9 × `BURN`.
    fn pool() -> HashPool {
        let cost = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        HashPool::new(PasswordHasher::new(cost).unwrap(), 1, 8, 0.1).unwrap()
    }

    const BURN: Duration = Duration::from_millis(30);

    /// Burn `BURN` of the worker thread's CPU time; return when the job ended.
    fn burn() -> Instant {
        let start = thread_cpu_time();
        while thread_cpu_time().saturating_sub(start) < BURN {
            std::hint::black_box(0u64);
        }
        Instant::now()
    }

    /// Two jobs back to back: the time from the end of the first to the start of the
    /// second.
    async fn gap_between_two_jobs(pool: &HashPool) -> Duration {
        let first = pool.run(|_, _| burn());
        let second = pool.run(|_, _| Instant::now());
        let (first_ended, second_started) = tokio::join!(first, second);
        second_started.unwrap() - first_ended.unwrap()
    }

    #[tokio::test]
    async fn hashing_rests_while_other_requests_are_in_flight() {
        let pool = pool();
        let _other = pool.track_request();
        let gap = gap_between_two_jobs(&pool).await;
        assert!(gap >= BURN * 8, "rested only {gap:?}");
    }

    /// Rest as after a job that used an hour of CPU time, on another thread; the
    /// receiver hears when the rest is over. Only the order of events is checked: a
    /// rest that ends answers in microseconds, one that does not would take ~9 hours,
    /// so the minute allowed below separates the two on any machine.
    fn rest_after_an_hour_of_cpu(pool: &HashPool) -> std::sync::mpsc::Receiver<()> {
        let shared = pool.shared.clone();
        let (done, over) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            rest(&shared, Duration::from_secs(3600));
            let _ = done.send(());
        });
        over
    }

    const NEVER: Duration = Duration::from_secs(60);

    #[test]
    fn hashing_does_not_rest_when_only_hashing_requests_are_in_flight() {
        let pool = pool();
        let _login = (pool.track_request(), pool.lane());
        let over = rest_after_an_hour_of_cpu(&pool);
        assert!(
            over.recv_timeout(NEVER).is_ok(),
            "rested with nothing else to do"
        );
    }

    #[test]
    fn a_rest_ends_when_the_other_requests_finish() {
        let pool = pool();
        let other = pool.track_request();
        let over = rest_after_an_hour_of_cpu(&pool);
        drop(other);
        assert!(
            over.recv_timeout(NEVER).is_ok(),
            "kept resting after the other request ended"
        );
    }
}

//! A queue that hands what waits in it to one task, which applies it as a batch: the
//! PostgreSQL refresh path's reads and rotations each go through one
//! ([`super::state_batch`], [`super::rotation_batch`]), so a statement and a round trip
//! serve every request waiting instead of one.

use std::future::Future;
use std::sync::Arc;

use latchkey_core::store::StoreError;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most requests taken into one batch.
const MAX_BATCH: usize = 256;

/// Most requests waiting; beyond it a request is refused as busy (503) instead of
/// piling up behind a slow database.
const MAX_QUEUED: usize = 4096;

/// A request waiting for its batch, and where its answer goes.
type Queued<T, R> = (T, oneshot::Sender<Result<R, StoreError>>);

/// The handle through which requests are queued. The task ends when the last handle is
/// dropped.
#[derive(Debug)]
pub(super) struct BatchQueue<T, R> {
    queue: mpsc::Sender<Queued<T, R>>,
    /// Named in the error once the task has gone.
    name: &'static str,
}

impl<T, R> Clone for BatchQueue<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            name: self.name,
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> BatchQueue<T, R> {
    /// Start the task: it takes every request waiting (up to [`MAX_BATCH`]), awaits
    /// `apply` on them (one answer per request, in order) and answers, with at most
    /// `in_flight` batches applied at once. Must be called inside a Tokio runtime.
    pub(super) fn start<F, Fut>(name: &'static str, in_flight: usize, apply: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<R, StoreError>>> + Send + 'static,
    {
        let (queue, mut requests) = mpsc::channel::<Queued<T, R>>(MAX_QUEUED);
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let mut batch = Vec::with_capacity(MAX_BATCH);
                if requests.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    return;
                }
                let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                let answers = apply(items);
                tokio::spawn(async move {
                    for (reply, answer) in replies.into_iter().zip(answers.await) {
                        // A caller that went away (request cancelled) needs no answer.
                        let _ = reply.send(answer);
                    }
                    drop(slot);
                });
            }
        });
        Self { queue, name }
    }

    /// Queue `item` for the next batch and wait for its answer.
    pub(super) async fn ask(&self, item: T) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send((item, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => self.stopped(),
        })?;
        // A dropped reply means the batch's answers were cut short.
        answer.await.map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> StoreError {
        StoreError::Unavailable(format!("the PostgreSQL {} batch has stopped", self.name))
    }
}

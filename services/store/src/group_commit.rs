//! Group commit (docs/adr/0014-group-commit.md): requests made at the same
//! time by many tasks (appends, receipts, stream loads) are gathered and
//! answered by one statement each, instead of one statement, round trip
//! and commit per request.
//!
//! A queue has a few workers. A worker takes the first request waiting and
//! whatever else has arrived by then (up to a batch's limit), runs the
//! batch, and hands each request its own answer. Nothing waits for a
//! batch to fill: requests gather only while the workers are busy. A
//! request that finds nothing else in flight has nothing to gather with:
//! it runs at once in the caller's task, which saves the hand-over to a
//! worker and back (about 0.1 ms in `bench commands`).
//!
//! The workers are started on the runtime of the first request. Where they
//! cannot be (no runtime) or are gone (that runtime ended), a request runs
//! on its own, directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

/// A batch's answers, one per request, in the requests' order.
pub(crate) type BatchAnswers<Resp> = Pin<Box<dyn Future<Output = Vec<Resp>> + Send>>;

/// Runs one batch.
pub(crate) type RunBatch<Req, Resp> = fn(PgPool, Vec<Req>) -> BatchAnswers<Resp>;

type Job<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// A queue of requests of one kind, answered in batches.
pub(crate) struct BatchQueue<Req, Resp> {
    run: RunBatch<Req, Resp>,
    max_batch: usize,
    workers: usize,
    sender: OnceLock<mpsc::UnboundedSender<Job<Req, Resp>>>,
    /// Requests submitted and not yet answered.
    in_flight: AtomicUsize,
}

impl<Req, Resp> std::fmt::Debug for BatchQueue<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("max_batch", &self.max_batch)
            .field("workers", &self.workers)
            .field("started", &self.sender.get().is_some())
            .finish()
    }
}

/// Why a request got no answer from its batch.
#[derive(Debug)]
pub(crate) struct Unanswered;

impl Unanswered {
    /// The caller's error: `context` says what was asked, `consequence`
    /// what the caller can know and do (empty when nothing more).
    pub(crate) fn into_error(self, context: &'static str, consequence: &str) -> crate::StoreError {
        crate::StoreError::db(context)(sqlx::Error::Protocol(format!(
            "its batch ended before it answered{consequence}"
        )))
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> BatchQueue<Req, Resp> {
    pub(crate) fn new(run: RunBatch<Req, Resp>, max_batch: usize, workers: usize) -> Self {
        Self {
            run,
            max_batch: max_batch.max(1),
            workers: workers.max(1),
            sender: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Answers `request`, in a batch with whatever else is waiting.
    /// `Err(Unanswered)` only when the batch was lost before it answered
    /// (its runtime shut down): whether it ran is then unknown.
    pub(crate) async fn submit(&self, pool: &PgPool, request: Req) -> Result<Resp, Unanswered> {
        let counted = InFlight::enter(&self.in_flight);
        if counted.alone {
            return single(self.run, pool, request).await;
        }
        let Some(sender) = self.sender(pool) else {
            return single(self.run, pool, request).await;
        };
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError((request, _))) = sender.send((request, reply)) {
            return single(self.run, pool, request).await;
        }
        answer.await.map_err(|_| Unanswered)
    }

    fn sender(&self, pool: &PgPool) -> Option<&mpsc::UnboundedSender<Job<Req, Resp>>> {
        if let Some(sender) = self.sender.get() {
            return Some(sender);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..self.workers {
                runtime.spawn(work(
                    self.run,
                    pool.clone(),
                    receiver.clone(),
                    self.max_batch,
                ));
            }
            sender
        }))
    }
}

/// One request counted in flight until it is answered or given up.
struct InFlight<'a> {
    count: &'a AtomicUsize,
    /// Nothing else was in flight when it came.
    alone: bool,
}

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let before = count.fetch_add(1, Ordering::AcqRel);
        Self {
            count,
            alone: before == 0,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn single<Req, Resp>(
    run: RunBatch<Req, Resp>,
    pool: &PgPool,
    request: Req,
) -> Result<Resp, Unanswered> {
    run(pool.clone(), vec![request])
        .await
        .into_iter()
        .next()
        .ok_or(Unanswered)
}

/// One worker: takes what is waiting, runs it, answers, until every
/// sender is gone.
async fn work<Req, Resp>(
    run: RunBatch<Req, Resp>,
    pool: PgPool,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Job<Req, Resp>>>>,
    max_batch: usize,
) {
    loop {
        let jobs = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < max_batch {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        let (requests, replies): (Vec<Req>, Vec<oneshot::Sender<Resp>>) = jobs.into_iter().unzip();
        let answers = run(pool.clone(), requests).await;
        // A caller that stopped waiting simply drops its answer.
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

/// A copy of a batch's error for each of its requests (`sqlx::Error` is not
/// `Clone`): kinds that callers tell apart (unreachable, pool timeout) are
/// kept, the rest carry the message.
pub(crate) fn replicate(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::Io(e) => sqlx::Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    /// Answers each request, once it is let go, with the task that ran it.
    fn run_held(_pool: PgPool, held: Vec<Arc<Notify>>) -> BatchAnswers<Option<tokio::task::Id>> {
        Box::pin(async move {
            for release in &held {
                release.notified().await;
            }
            held.iter().map(|_| tokio::task::try_id()).collect()
        })
    }

    fn lazy_pool() -> PgPool {
        // Never connects: the batches here do not touch it.
        sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_request_runs_in_its_callers_task_and_one_beside_it_on_a_worker() {
        let queue: Arc<BatchQueue<Arc<Notify>, Option<tokio::task::Id>>> =
            Arc::new(BatchQueue::new(run_held, 8, 1));
        let pool = lazy_pool();

        let first_release = Arc::new(Notify::new());
        let (q, p, r) = (queue.clone(), pool.clone(), first_release.clone());
        let first = tokio::spawn(async move {
            let answer = q.submit(&p, r).await;
            (answer.ok().flatten(), tokio::task::id())
        });
        while queue.in_flight.load(Ordering::Acquire) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        let second_release = Arc::new(Notify::new());
        let (q, p, r) = (queue.clone(), pool.clone(), second_release.clone());
        let second = tokio::spawn(async move {
            let answer = q.submit(&p, r).await;
            (answer.ok().flatten(), tokio::task::id())
        });
        while queue.in_flight.load(Ordering::Acquire) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        first_release.notify_one();
        second_release.notify_one();

        let (ran_first, first_task) = first.await.expect("first");
        let (ran_second, second_task) = second.await.expect("second");
        assert_eq!(ran_first, Some(first_task), "alone: run by its caller");
        let ran_second = ran_second.expect("answered");
        assert_ne!(ran_second, second_task, "beside another: run by a worker");
        assert_ne!(ran_second, first_task);
        assert_eq!(
            queue.in_flight.load(Ordering::Acquire),
            0,
            "both counted out"
        );
    }
}

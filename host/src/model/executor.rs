//! The model executor: every wasm call a request or a batch run makes goes through here, off the
//! async executor, on a few dedicated call threads, and coalesced — jobs that are waiting for the
//! same model at the same moment share one wasm call (one fresh instance).
//!
//! It is built once, where the process starts ([`crate::serve::start`] for the server, the
//! `predict` command for a batch run), as a fallible step: a call thread that cannot be spawned
//! is a startup error naming it, never a panic on a request. It is stopped once, at the end
//! ([`Executor::stop`]): the queue is closed, the jobs already queued are run, and the threads
//! are joined. That join cannot hang: the executor holds the only sender, so once it is dropped
//! the threads leave as soon as the queue is empty, and every job in it is one wasm call bounded
//! by the runtime's time limit.
//!
//! Every job sent with [`Executor::call`] (or [`Executor::call_blocking`]) goes to one queue
//! served by the call threads. A call thread takes whatever is queued when it looks — it never
//! waits for more, so a lone request is not delayed — groups the jobs by model (the same
//! `Arc<Model>`, so an answer is never computed by a mixture of versions), and runs each group
//! as one matrix; each job gets its own rows' probabilities back through a oneshot channel.
//! Under load this turns many one-row calls into a few many-row calls, which is what the runtime
//! is fast at: the fixed cost of an instance and of waking a thread is paid once per group, not
//! once per request. Dedicated threads (rather than tokio's blocking pool) keep the hand-off to
//! one queue and one wake-up, and the thread count bounded.
//!
//! If a group's call fails (a trap, the time limit), its jobs are run again one by one, so that
//! the job that caused the failure is the only one that fails. A job keeps its slot's permit
//! (the HTTP edge's bound on calls queued or running) until its answer is sent, even if its
//! request was abandoned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::Model;
use crate::runtime::CallError;
use crate::telemetry::metrics::{Metrics, ReasonLabels};

/// Rows at most taken into one round of coalescing; a larger job runs alone.
pub const MAX_GROUP_ROWS: usize = 1024;

/// Threads the server runs model calls on: one per CPU, at least two (so that one call running
/// into the time limit never stops every other).
pub fn call_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Why the executor could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the model executor needs at least one call thread, 0 were asked for")]
    NoThreads,
    #[error("cannot spawn model call thread {} of {threads}: {error}", index + 1)]
    Spawn {
        index: usize,
        threads: usize,
        error: std::io::Error,
    },
}

/// Why a job got no answer from the model.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The executor was stopped (the server is shutting down).
    #[error("the model call threads stopped")]
    Stopped,
    /// The job was dropped before it was answered (a call thread died).
    #[error("a model call was dropped unanswered")]
    Unanswered,
    /// The model's call failed.
    #[error("{0}")]
    Call(CallError),
}

/// One job's answer: the probability of each of its rows.
type Reply = Result<Vec<f64>, CallError>;

/// One job: a model call for one request or one batch.
struct Job {
    model: Arc<Model>,
    /// Row-major, `n_rows × model's features`.
    rows: Vec<f64>,
    n_rows: usize,
    /// The request's model slot, released when the job is dropped after its answer is sent;
    /// `None` where the caller bounds its calls itself (a batch run waits for each).
    _permit: Option<OwnedSemaphorePermit>,
    reply: oneshot::Sender<Reply>,
}

/// The call threads and their queue. Share it behind an `Arc`; [`Executor::stop`] it once at
/// the end (dropping it stops it too).
pub struct Executor {
    /// The queue's only sender; taken by [`Executor::stop`], which closes the queue.
    queue: RwLock<Option<Sender<Job>>>,
    /// The call threads, joined by [`Executor::stop`].
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Call threads whose loop has not returned yet.
    running: Arc<AtomicUsize>,
}

/// How a call thread is spawned: [`std::thread::Builder::spawn`], or a stand-in in tests.
type Spawn<'a> = dyn FnMut(usize, std::thread::Builder, Box<dyn FnOnce() + Send>) -> std::io::Result<JoinHandle<()>>
    + 'a;

impl Executor {
    /// Starts `threads` call threads. Their wasm calls are timed, and failures counted, in
    /// `metrics` when given.
    pub fn start(threads: usize, metrics: Option<Arc<Metrics>>) -> Result<Executor, StartError> {
        Self::start_with(threads, metrics, &mut |_, builder, body| {
            builder.spawn(body)
        })
    }

    fn start_with(
        threads: usize,
        metrics: Option<Arc<Metrics>>,
        spawn: &mut Spawn<'_>,
    ) -> Result<Executor, StartError> {
        if threads == 0 {
            return Err(StartError::NoThreads);
        }
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let executor = Executor {
            queue: RwLock::new(Some(sender)),
            threads: Mutex::new(Vec::with_capacity(threads)),
            running: Arc::new(AtomicUsize::new(0)),
        };
        for index in 0..threads {
            let receiver = receiver.clone();
            let metrics = metrics.clone();
            // Counted before the spawn; the guard moves into the thread and uncounts it when
            // its loop returns, or here when the spawn fails and drops the closure unrun.
            let alive = Running::count(&executor.running);
            let body = Box::new(move || {
                let _alive = alive;
                call_thread(&receiver, metrics.as_deref());
            });
            let builder = std::thread::Builder::new().name(format!("modelhost-call-{index}"));
            match spawn(index, builder, body) {
                Ok(handle) => executor.lock_threads().push(handle),
                Err(error) => {
                    // The threads already started leave once the queue is closed.
                    executor.stop();
                    return Err(StartError::Spawn {
                        index,
                        threads,
                        error,
                    });
                }
            }
        }
        Ok(executor)
    }

    /// Runs `rows` (row-major, the model's features per row) through `model` on a call thread,
    /// possibly in one call with other jobs for the same model. `permit` is held until the
    /// answer is sent, even if this future is dropped first.
    pub async fn call(
        &self,
        model: Arc<Model>,
        rows: Vec<f64>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Vec<f64>, JobError> {
        let answer = self.submit(model, rows, permit)?;
        answered(answer.await)
    }

    /// [`Executor::call`] for a thread that may block (not an async executor's thread).
    pub fn call_blocking(&self, model: Arc<Model>, rows: Vec<f64>) -> Result<Vec<f64>, JobError> {
        let answer = self.submit(model, rows, None)?;
        answered(answer.blocking_recv())
    }

    /// Queues a job; its answer arrives on the returned channel.
    fn submit(
        &self,
        model: Arc<Model>,
        rows: Vec<f64>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<oneshot::Receiver<Reply>, JobError> {
        let n_rows = rows.len() / model.info().features.len().max(1);
        let (reply, answer) = oneshot::channel();
        let job = Job {
            model,
            rows,
            n_rows,
            _permit: permit,
            reply,
        };
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        let sender = queue.as_ref().ok_or(JobError::Stopped)?;
        sender.send(job).map_err(|_| JobError::Stopped)?;
        Ok(answer)
    }

    /// Closes the queue, lets the call threads finish the jobs already in it, and joins them.
    /// Blocks (run it off the async executor); later calls get [`JobError::Stopped`]. Calling it
    /// again does nothing. Returns how many threads had panicked (their jobs answered as
    /// [`JobError::Unanswered`]).
    pub fn stop(&self) -> usize {
        drop(self.queue.write().unwrap_or_else(|e| e.into_inner()).take());
        let threads = std::mem::take(&mut *self.lock_threads());
        threads
            .into_iter()
            .map(JoinHandle::join)
            .filter(Result::is_err)
            .count()
    }

    /// Call threads still running their loop: as many as started until [`Executor::stop`],
    /// 0 once it returned.
    pub fn running_threads(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Executor {
    /// No call thread outlives its executor. The threads are idle or finishing a bounded call by
    /// then, so this waits at most for that call.
    fn drop(&mut self) {
        self.stop();
    }
}

/// A job's answer as the caller sees it.
fn answered(answer: Result<Reply, oneshot::error::RecvError>) -> Result<Vec<f64>, JobError> {
    answer
        .map_err(|_| JobError::Unanswered)?
        .map_err(JobError::Call)
}

/// One running call thread, counted while it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn count(running: &Arc<AtomicUsize>) -> Running {
        running.fetch_add(1, Ordering::SeqCst);
        Running(running.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One call thread: take what is queued, run it, repeat, until the queue is closed and empty.
fn call_thread(receiver: &Mutex<Receiver<Job>>, metrics: Option<&Metrics>) {
    loop {
        let taken = {
            // One thread at a time waits on the channel; the others wait for this lock.
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            let Ok(first) = receiver.recv() else { return };
            let mut rows = first.n_rows;
            let mut taken = vec![first];
            while rows < MAX_GROUP_ROWS {
                let Ok(job) = receiver.try_recv() else { break };
                rows += job.n_rows;
                taken.push(job);
            }
            taken
        };
        for group in by_model(taken) {
            run_group(group, metrics);
        }
    }
}

/// Splits jobs into groups of the same model, keeping their order within a group.
fn by_model(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut groups: Vec<Vec<Job>> = Vec::new();
    for job in jobs {
        match groups
            .iter_mut()
            .find(|g| Arc::ptr_eq(&g[0].model, &job.model))
        {
            Some(group) => group.push(job),
            None => groups.push(vec![job]),
        }
    }
    groups
}

/// Runs a group as one call; on failure, each job alone.
fn run_group(group: Vec<Job>, metrics: Option<&Metrics>) {
    if group.len() == 1 {
        let job = group.into_iter().next().expect("one job");
        let result = call(&job.model, &job.rows, metrics, true);
        let _ = job.reply.send(result);
        return;
    }
    let model = group[0].model.clone();
    let mut matrix = Vec::with_capacity(group.iter().map(|j| j.rows.len()).sum());
    for job in &group {
        matrix.extend_from_slice(&job.rows);
    }
    // A failure here is not counted: the jobs are retried alone, and their failures are.
    match call(&model, &matrix, metrics, false) {
        Ok(probabilities) => {
            let mut rest = probabilities.as_slice();
            for job in group {
                let (mine, tail) = rest.split_at(job.n_rows.min(rest.len()));
                rest = tail;
                let _ = job.reply.send(Ok(mine.to_vec()));
            }
        }
        Err(_) => {
            for job in group {
                let result = call(&job.model, &job.rows, metrics, true);
                let _ = job.reply.send(result);
            }
        }
    }
}

/// One wasm call, timed, and its failure counted if `count_errors`.
fn call(
    model: &Model,
    rows: &[f64],
    metrics: Option<&Metrics>,
    count_errors: bool,
) -> Result<Vec<f64>, CallError> {
    let started = Instant::now();
    let result = model.predict(rows);
    let Some(metrics) = metrics else {
        return result;
    };
    metrics
        .wasm_call_duration
        .observe(started.elapsed().as_secs_f64());
    if let Err(error) = &result
        && count_errors
    {
        metrics
            .wasm_call_errors
            .get_or_create(&ReasonLabels {
                reason: error.reason().to_string(),
            })
            .inc();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Limits, Runtime};
    use std::time::Duration;
    use tokio::sync::Semaphore;

    fn load(runtime: &Runtime, bytes: &[u8]) -> Arc<Model> {
        Arc::new(Model::load(runtime, bytes, "test.wasm".into()).unwrap())
    }

    fn default_model_bytes() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../registry/churn/model.wasm"
        ))
        .unwrap()
    }

    fn row(tenure: f64) -> Vec<f64> {
        vec![tenure, 2.0, 30.0, 0.0, 1.0]
    }

    type Answer = oneshot::Receiver<Result<Vec<f64>, CallError>>;

    fn job(model: &Arc<Model>, rows: Vec<f64>) -> (Job, Answer) {
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let (reply, answer) = oneshot::channel();
        let n_rows = rows.len() / 5;
        let job = Job {
            model: model.clone(),
            rows,
            n_rows,
            _permit: Some(permit),
            reply,
        };
        (job, answer)
    }

    /// Queues `jobs`, then serves them on this thread until the queue is closed.
    fn serve_all(jobs: Vec<Job>, metrics: &Metrics) {
        let (sender, receiver) = channel();
        for job in jobs {
            sender.send(job).unwrap();
        }
        drop(sender);
        call_thread(&Mutex::new(receiver), Some(metrics));
    }

    fn calls(metrics: &Metrics) -> String {
        metrics
            .encode()
            .lines()
            .find(|l| l.starts_with("modelhost_wasm_call_duration_seconds_count"))
            .unwrap()
            .to_string()
    }

    #[test]
    fn queued_requests_share_one_call_and_each_gets_its_own_rows() {
        let runtime = Runtime::new(Limits::default()).unwrap();
        let model = load(&runtime, &default_model_bytes());
        let metrics = Metrics::new(None);
        let mut answers = Vec::new();
        let mut jobs = Vec::new();
        for i in 0..10 {
            // Requests of 1 to 3 rows each.
            let rows: Vec<f64> = (0..=i % 3).flat_map(|k| row((i * 5 + k) as f64)).collect();
            let (job, answer) = job(&model, rows.clone());
            jobs.push(job);
            answers.push((rows, answer));
        }
        serve_all(jobs, &metrics);
        assert_eq!(
            calls(&metrics),
            "modelhost_wasm_call_duration_seconds_count 1"
        );
        for (rows, mut answer) in answers {
            let got = answer.try_recv().unwrap().unwrap();
            assert_eq!(got, model.predict(&rows).unwrap(), "the same as alone");
        }
    }

    #[test]
    fn different_models_never_share_a_call() {
        let runtime = Runtime::new(Limits::default()).unwrap();
        let bytes = default_model_bytes();
        let (old, new) = (load(&runtime, &bytes), load(&runtime, &bytes));
        let metrics = Metrics::new(None);
        let (a, _ra) = job(&old, row(1.0));
        let (b, _rb) = job(&new, row(2.0));
        let (c, _rc) = job(&old, row(3.0));
        let groups = by_model(vec![a, b, c]);
        assert_eq!(groups.len(), 2);
        assert!(groups[0].iter().all(|j| Arc::ptr_eq(&j.model, &old)));
        assert_eq!(groups[0].len(), 2);
        assert!(Arc::ptr_eq(&groups[1][0].model, &new));
        let (a, _ra) = job(&old, row(1.0));
        let (b, _rb) = job(&new, row(2.0));
        serve_all(vec![a, b], &metrics);
        assert_eq!(
            calls(&metrics),
            "modelhost_wasm_call_duration_seconds_count 2"
        );
    }

    #[test]
    fn a_failing_group_is_retried_alone_so_only_the_culprit_fails() {
        let runtime = Runtime::new(Limits {
            timeout: Duration::from_millis(100),
            ..Limits::default()
        })
        .unwrap();
        // Scores 0.25, but loops when a call's first row has tenure 199.
        let bytes = wat::parse_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/hostile/selective.wat"
        ))
        .unwrap();
        let model = load(&runtime, &bytes);
        let metrics = Metrics::new(None);
        let (looping, mut looped) = job(&model, row(199.0));
        let (fine, mut answered) = job(&model, row(6.0));
        serve_all(vec![looping, fine], &metrics);
        assert!(matches!(
            looped.try_recv().unwrap(),
            Err(CallError::Timeout(_))
        ));
        assert_eq!(answered.try_recv().unwrap().unwrap(), [0.25]);
        // The group's failure is not counted, the culprit's is.
        assert!(
            metrics
                .encode()
                .contains(r#"modelhost_wasm_call_errors_total{reason="timeout"} 1"#)
        );
    }

    #[test]
    fn an_executor_without_threads_is_refused() {
        let error = Executor::start(0, None).err().expect("refused");
        assert!(matches!(error, StartError::NoThreads));
        assert_eq!(
            error.to_string(),
            "the model executor needs at least one call thread, 0 were asked for"
        );
    }

    #[test]
    fn a_thread_that_cannot_be_spawned_is_a_startup_error_and_stops_the_others() {
        let exited = Arc::new(AtomicUsize::new(0));
        let mut spawn =
            |index: usize, builder: std::thread::Builder, body: Box<dyn FnOnce() + Send>| {
                if index == 2 {
                    return Err(std::io::Error::other("no more threads"));
                }
                let exited = exited.clone();
                builder.spawn(move || {
                    body();
                    exited.fetch_add(1, Ordering::SeqCst);
                })
            };
        let error = Executor::start_with(4, None, &mut spawn)
            .err()
            .expect("refused");
        assert_eq!(
            error.to_string(),
            "cannot spawn model call thread 3 of 4: no more threads"
        );
        // The two threads that did start were joined before the error was returned.
        assert_eq!(exited.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn stop_answers_the_queued_jobs_then_joins_every_thread() {
        let runtime = Runtime::new(Limits::default()).unwrap();
        let model = load(&runtime, &default_model_bytes());
        let metrics = Arc::new(Metrics::new(None));
        let executor = Executor::start(2, Some(metrics.clone())).unwrap();
        assert_eq!(executor.running_threads(), 2);
        assert_eq!(
            executor.call_blocking(model.clone(), row(4.0)).unwrap(),
            model.predict(&row(4.0)).unwrap()
        );
        let answers: Vec<_> = (0..20)
            .map(|i| {
                let rows = row(i as f64);
                let answer = executor.submit(model.clone(), rows.clone(), None).unwrap();
                (rows, answer)
            })
            .collect();
        assert_eq!(executor.stop(), 0, "no thread panicked");
        assert_eq!(executor.running_threads(), 0);
        // Nothing queued before the stop is lost.
        for (rows, mut answer) in answers {
            assert_eq!(
                answer.try_recv().unwrap().unwrap(),
                model.predict(&rows).unwrap()
            );
        }
        assert!(matches!(
            executor.call_blocking(model.clone(), row(5.0)),
            Err(JobError::Stopped)
        ));
        assert_eq!(executor.stop(), 0, "a second stop does nothing");
    }

    #[test]
    fn an_abandoned_job_keeps_its_slot_until_its_call_returns() {
        let runtime = Runtime::new(Limits::default()).unwrap();
        let model = load(&runtime, &default_model_bytes());
        // The one call thread waits for `open` before it takes any job.
        let (open, gate) = channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let mut spawn = |_, builder: std::thread::Builder, body: Box<dyn FnOnce() + Send>| {
            let gate = gate.clone();
            builder.spawn(move || {
                let _ = gate.lock().unwrap().recv();
                body();
            })
        };
        let executor = Executor::start_with(1, None, &mut spawn).unwrap();
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().unwrap();
        // The request goes away at once: its answer's receiver is dropped.
        drop(executor.submit(model, row(7.0), Some(permit)).unwrap());
        assert_eq!(slots.available_permits(), 0, "held by the queued job");
        open.send(()).unwrap();
        assert_eq!(executor.stop(), 0);
        assert_eq!(slots.available_permits(), 1, "released once its call ran");
    }
}

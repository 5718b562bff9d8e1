//! Model calls: off the async executor, on a few dedicated call threads, and coalesced —
//! requests that are waiting for the same model at the same moment share one wasm call (one
//! fresh instance).
//!
//! Every prediction that has its model slot (see [`limits`](super::limits)) sends a [`Job`] to
//! a channel served by [`call_threads`] threads. A call thread takes whatever is queued when it
//! looks — it never waits for more, so a lone request is not delayed — groups the jobs by model
//! (the same `Arc<Model>`, so an answer is never computed by a mixture of versions), and runs
//! each group as one matrix; each job gets its own rows' probabilities back through a oneshot
//! channel. Under load this turns many one-row calls into a few many-row calls, which is what
//! the runtime is fast at: the fixed cost of an instance and of waking a thread is paid once
//! per group, not once per request. Dedicated threads (rather than tokio's blocking pool) keep
//! the hand-off to one queue and one wake-up, and the thread count bounded.
//!
//! If a group's call fails (a trap, the time limit), its jobs are run again one by one, so that
//! the request that caused the failure is the only one that fails. A job keeps its slot's permit
//! until its answer is sent, even if its request was abandoned.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::model::Model;
use crate::runtime::CallError;
use crate::telemetry::metrics::{Metrics, ReasonLabels};

/// Rows at most taken into one round of coalescing; a larger request runs alone.
pub const MAX_GROUP_ROWS: usize = 1024;

/// One request's model call.
pub struct Job {
    pub model: Arc<Model>,
    /// Row-major, `n_rows × model's features`.
    pub rows: Vec<f64>,
    pub n_rows: usize,
    /// The request's model slot, released when the job is dropped after its answer is sent.
    #[allow(dead_code)]
    pub permit: OwnedSemaphorePermit,
    pub reply: oneshot::Sender<Result<Vec<f64>, CallError>>,
}

/// Threads that run model calls: one per CPU, at least two (so that one call running into the
/// time limit never stops every other).
pub fn call_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Starts the call threads; they stop when every sender is dropped.
pub fn start(metrics: Arc<Metrics>) -> Sender<Job> {
    let (sender, receiver) = channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..call_threads() {
        let receiver = receiver.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name(format!("modelhost-call-{i}"))
            .spawn(move || serve(&receiver, &metrics))
            .expect("cannot spawn a model call thread");
    }
    sender
}

/// One call thread: take what is queued, run it, repeat.
fn serve(receiver: &Mutex<Receiver<Job>>, metrics: &Metrics) {
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
fn run_group(group: Vec<Job>, metrics: &Metrics) {
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
    metrics: &Metrics,
    count_errors: bool,
) -> Result<Vec<f64>, CallError> {
    let started = Instant::now();
    let result = model.predict(rows);
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
            permit,
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
        serve(&Mutex::new(receiver), metrics);
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
}

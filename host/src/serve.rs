//! `modelhost serve`: wires the runtime, the active slot, the watcher and the router together.
//!
//! [`start`] starts the model executor's call threads, binds, starts the watcher and the HTTP
//! server, and returns a [`Server`] handle whose address tests use and whose
//! [`Server::shutdown`] stops all three. The first model is loaded by the
//! watcher like every later one, so probes report "starting" until it serves; if the registry
//! has none and a seed directory is configured, it is first copied in from there
//! ([`crate::registry::seed`]). The watcher polls
//! every `poll_interval` and, unless `watch_events` is false, also wakes on file-system events
//! (see [`crate::watch`]). Every model of `MODEL_NAMES` gets its own unit ([`Served`]: slot,
//! drift window) in the [`Catalog`] and its own watcher ([`Fleet`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{AppState, EdgeLimits, Observers, app_with_grpc};
use crate::model::executor::{self, Executor};
use crate::model::{ActiveModel, Catalog, Served};
use crate::runtime::Runtime;
use crate::telemetry::drift::Thresholds;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::predlog::{LogSettings, PredictionLog};
use crate::watch::{Fleet, Schedule, Watcher};

/// A running server.
pub struct Server {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The default model's serving slot, for tests and embedding.
    pub active: Arc<ActiveModel>,
    /// The default model's registry watcher.
    pub watcher: Arc<Watcher>,
    /// Every served model.
    pub catalog: Arc<Catalog>,
    /// The handlers' shared state (metrics, readiness).
    pub state: AppState,
    /// The prediction log, if enabled.
    pub predlog: Option<PredictionLog>,
    /// The model executor the handlers call through; [`Server::shutdown`] stops it.
    pub executor: Arc<Executor>,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    watching: JoinHandle<()>,
    shutdown_delay: Duration,
    drain_timeout: Duration,
}

impl Server {
    /// The graceful stop Kubernetes expects: `/ready` answers 503 at once, the listener stays
    /// open for `shutdown_delay` (so endpoints are withdrawn before connections are refused),
    /// then closes; in-flight requests get `drain_timeout` to finish; the model executor's call
    /// threads finish what is queued and are joined; the watcher stops and the prediction log
    /// is flushed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.state.start_draining();
        if !self.shutdown_delay.is_zero() {
            tracing::info!(
                delay_ms = self.shutdown_delay.as_millis() as u64,
                "not ready any more; closing the listener after the delay"
            );
            tokio::time::sleep(self.shutdown_delay).await;
        }
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(self.drain_timeout, &mut self.http).await;
        let result = match drained {
            Ok(joined) => joined
                .context("http task panicked")?
                .map_err(anyhow::Error::from),
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.drain_timeout.as_millis() as u64,
                    "in-flight requests did not finish in time; closing them"
                );
                self.http.abort();
                Ok(())
            }
        };
        // No request is left to wait for an answer; the jobs still queued (at most one per model
        // slot, each bounded by the call time limit) run, and the threads leave.
        let executor = self.executor.clone();
        let panicked = tokio::task::spawn_blocking(move || executor.stop())
            .await
            .context("stopping the model executor panicked")?;
        if panicked > 0 {
            tracing::error!(threads = panicked, "model call threads had panicked");
        }
        self.watching.await.context("watcher task panicked")?;
        if let Some(log) = self.predlog.take() {
            tokio::task::spawn_blocking(move || log.close())
                .await
                .context("prediction log writer panicked")?;
        }
        tracing::info!("stopped");
        result
    }

    /// Waits until the server stops on its own (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.http.await.context("http task panicked")??;
        Ok(())
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Binds `config.host:config.port` and serves until [`Server::shutdown`].
pub async fn start(config: &Config) -> anyhow::Result<Server> {
    let limits = config.limits();
    let runtime = Arc::new(Runtime::new(limits)?);
    let active = Arc::new(ActiveModel::new());
    let predlog = config.prediction_log.then(|| {
        PredictionLog::start(
            &config.log_dir,
            LogSettings {
                max_bytes: config.log_max_bytes,
                keep: config.log_keep,
                ..LogSettings::default()
            },
        )
    });
    let default = Arc::new(Served::in_folder(
        &config.model_name,
        &config.model_folder,
        active.clone(),
        &config.registry_dir,
        config.drift_window,
    ));
    let catalog = Arc::new(Catalog::new(
        default,
        &config.model_names,
        &config.registry_dir,
        config.drift_window,
    ));
    let metrics = Metrics::new(predlog.as_ref().map(|log| log.counters_handle()));
    // One model keeps its series as they always were; several are told apart by a label.
    let metrics = Arc::new(if catalog.names_each_model() {
        metrics.labelling_models()
    } else {
        metrics
    });
    let executor = Arc::new(
        Executor::start(executor::call_threads(), Some(metrics.clone()))
            .context("cannot start the model executor")?,
    );
    let fleet = Fleet::new(
        runtime,
        catalog.clone(),
        &config.registry_dir,
        metrics.clone(),
    );
    let watcher = fleet.default_watcher().clone();

    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);

    let observers = Observers {
        metrics,
        predlog: predlog.clone(),
        drift_window: config.drift_window,
        drift_thresholds: Thresholds {
            z: config.drift_z_threshold,
            psi: config.drift_psi_threshold,
        },
        monitoring_token: config.monitoring_token.as_deref().map(str::to_owned),
    };
    let state = AppState::serving(
        catalog.clone(),
        config.max_concurrency,
        observers,
        executor.clone(),
    )
    .with_max_batch_rows(config.max_batch_rows)
    .with_edge_limits(EdgeLimits {
        request_timeout: config.request_timeout,
        queue_timeout: config.queue_timeout,
    });
    let router = app_with_grpc(state.clone(), config.max_body_bytes);
    let http = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let schedule = Schedule {
        poll_interval: config.poll_interval,
        events: config.watch_events,
    };
    // Temp files of writers killed mid-write; nothing waits for the count, which is logged. A
    // model directory given directly is not the server's to clean (nor to seed: `Config` then
    // has no seed directory): it may be read-only.
    let (registry_dir, folder) = (config.registry_dir.clone(), config.model_folder.clone());
    if !config.model_dir_given {
        tokio::task::spawn_blocking(move || {
            crate::registry::remove_stale_temps_logged(&registry_dir, &folder)
        });
    }
    if let Some(seed_dir) = config.seed_dir.clone() {
        // Before the watcher's first check, so a seeded model loads like any other. The probes
        // already answer meanwhile.
        let (registry_dir, model_name) = (config.registry_dir.clone(), config.model_name.clone());
        let seeding = tokio::task::spawn_blocking(move || {
            crate::registry::seed::seed_logged(&registry_dir, &seed_dir, &model_name)
        });
        let _ = seeding.await;
    }
    let watching = tokio::spawn(fleet.run(schedule, stop_rx));
    tracing::info!(
        %addr,
        model = %config.model_name,
        models = %catalog.names(),
        model_dir = %config.model_dir().display(),
        "modelhost listening"
    );
    Ok(Server {
        addr,
        active,
        watcher,
        catalog,
        state,
        predlog,
        executor,
        stop,
        http,
        watching,
        shutdown_delay: config.shutdown_delay,
        drain_timeout: config.drain_timeout,
    })
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    if let Ok(cwd) = std::env::current_dir()
        && let Some(found) = config.locate_default_registry(&cwd)
    {
        tracing::info!(
            registry = %found.display(),
            "no ./registry here; serving the registry found above the working directory"
        );
    }
    if config.monitoring_token.is_none() {
        tracing::warn!(
            "neither MONITORING_TOKEN nor MONITORING_TOKEN_FILE is set; monitoring endpoints will be open"
        );
    }
    // Listening to interrupts from here on, so one that arrives while the server turns from the
    // first signal to the graceful stop is still seen as the second.
    let mut interrupts = Interrupts::listen();
    let mut server = start(&config).await?;
    let signal = shutdown_signal(&mut interrupts).await;
    tracing::info!(?signal, "shutdown signal received");
    if signal == Signal::Interrupt {
        // Ctrl-C is a person at a terminal, not a load balancer to be given time: no delay.
        server.shutdown_delay = Duration::ZERO;
    }
    // Whatever the first signal, an interrupt during the graceful stop ends the process now.
    tokio::spawn(async move {
        interrupts.next().await;
        tracing::warn!("second interrupt: exiting without waiting for the graceful stop");
        std::process::exit(130);
    });
    server.shutdown().await
}

/// The signal that asked the server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (Kubernetes, systemd, `kill`).
    Terminate,
}

/// SIGINT as a stream registered once: unlike a fresh `tokio::signal::ctrl_c()` per wait, it
/// sees every interrupt delivered after [`Interrupts::listen`], however late it is awaited.
struct Interrupts {
    #[cfg(unix)]
    stream: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn listen() -> Self {
        Interrupts {
            #[cfg(unix)]
            stream: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// The next interrupt (never, if none can be listened to).
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(stream) = &mut self.stream
            && stream.recv().await.is_some()
        {
            return;
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_ok() {
            return;
        }
        std::future::pending::<()>().await
    }
}

async fn shutdown_signal(interrupts: &mut Interrupts) -> Signal {
    let ctrl_c = interrupts.next();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => Signal::Interrupt,
        _ = term => Signal::Terminate,
    }
}

//! `modelhost serve`: wires the runtime, the active slot, the watcher and the router together.
//!
//! [`start`] binds, starts the watcher and the HTTP server, and returns a [`Server`] handle whose
//! address tests use and whose [`Server::shutdown`] stops both. The first model is loaded by the
//! watcher like every later one, so probes report "starting" until it serves. The watcher polls
//! every `poll_interval` and, unless `watch_events` is false, also wakes on file-system events
//! (see [`crate::watch`]).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{AppState, app};
use crate::model::ActiveModel;
use crate::runtime::Runtime;
use crate::watch::{Schedule, Watcher};

/// A running server.
pub struct Server {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The serving slot, for tests and embedding.
    pub active: Arc<ActiveModel>,
    /// The registry watcher.
    pub watcher: Arc<Watcher>,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    watching: JoinHandle<()>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish, stops the watcher.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.http.await.context("http task panicked")??;
        self.watching.await.context("watcher task panicked")?;
        Ok(())
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
    let watcher = Arc::new(Watcher::new(
        runtime,
        active.clone(),
        &config.registry_dir,
        &config.model_name,
    ));

    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);

    let state = AppState::new(
        active.clone(),
        config.registry_dir.clone(),
        config.model_name.clone(),
        config.max_concurrency,
    );
    let router = app(state, config.max_body_bytes);
    let http = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    let schedule = Schedule {
        poll_interval: config.poll_interval,
        events: config.watch_events,
    };
    let watching = tokio::spawn(watcher.clone().run(schedule, stopped(stop_rx)));
    tracing::info!(
        %addr,
        model = %config.model_name,
        registry = %config.registry_dir.display(),
        "modelhost listening"
    );
    Ok(Server {
        addr,
        active,
        watcher,
        stop,
        http,
        watching,
    })
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.monitoring_token.is_none() {
        tracing::warn!("MONITORING_TOKEN is not set; monitoring endpoints will be open");
    }
    let server = start(&config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
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
        _ = ctrl_c => {},
        _ = term => {},
    }
}

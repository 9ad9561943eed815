//! # federation-operator
//!
//! The fednet operator, as a library the thin `main.rs` calls: [`run`] serves health and
//! metrics, campaigns for the Lease ([`leader`]), and while it leads runs the hub
//! controllers and member watches ([`controllers`], [`member_watch`]); on SIGTERM or SIGINT
//! it lets running reconciles finish, releases the Lease and exits.
//!
//! # Leadership and writes
//! Everything that writes (both controllers, and through them the engine) runs in one task
//! that exists only while this replica holds the Lease. When the Lease is lost, or cannot
//! be renewed within the renew deadline, that task is aborted at once: in-flight requests
//! are dropped at their next await point, and no new ones start. A standby only reads the
//! Lease.

pub mod config;
pub mod controllers;
pub mod http;
pub mod hub_client;
pub mod leader;
pub mod measured_backend;
pub mod member_watch;
pub mod metrics;
pub mod telemetry;

pub use config::Config;
pub use hub_client::hub_client;
pub use metrics::Metrics;

use controllers::ControllerSettings;
use http::Health;
use kube::Client;
use leader::{LeaderElector, LeaseSettings};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config, hub: Client, metrics: Metrics) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;
    run_until(config, hub, metrics, shutdown).await
}

/// Runs the operator until `shutdown` is cancelled (what [`run`] does on a signal).
pub async fn run_until(
    config: Config,
    hub: Client,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity = config.identity();
    let health = Health::new(config.leader_election);
    let http_stop = CancellationToken::new();
    let servers = http::serve(
        config.health_addr,
        config.metrics_addr,
        health.clone(),
        metrics.clone(),
        http_stop.clone(),
    )
    .await?;
    let settings = ControllerSettings {
        namespace: config.namespace.clone(),
        identity: identity.clone(),
        tuning: config.tuning.clone(),
    };
    info!(%identity, leader_election = config.leader_election, "starting");

    if config.leader_election {
        let (leading_tx, mut leading) = watch::channel(false);
        let elector_stop = CancellationToken::new();
        let elector = LeaderElector::new(
            hub.clone(),
            LeaseSettings {
                name: config.lease_name.clone(),
                namespace: config.lease_namespace(),
                identity,
                duration: config.tuning.lease_duration,
                renew_deadline: config.tuning.lease_renew_deadline,
                retry_period: config.tuning.lease_retry_period,
            },
        );
        let elector = tokio::spawn(elector.run(leading_tx, elector_stop.clone()));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                r = leading.wait_for(|l| *l) => if r.is_err() { break },
            }
            let stop = CancellationToken::new();
            let running = start_controllers(&hub, &settings, &metrics, &health, stop.clone());
            tokio::select! {
                () = shutdown.cancelled() => {
                    stop_gracefully(running, stop, &config, &health).await;
                    step_down(&metrics, &health);
                    break;
                }
                _ = leading.wait_for(|l| !*l) => {
                    // Lost the lease: stop writing now, not after the grace period.
                    warn!("no longer the leader; controllers stopped");
                    stop.cancel();
                    running.abort();
                    let _ = running.await;
                    step_down(&metrics, &health);
                }
            }
        }
        health.set_stopping();
        elector_stop.cancel();
        if let Err(e) = elector.await {
            warn!(error = %e, "leader election task failed");
        }
    } else {
        let stop = shutdown.child_token();
        let running = start_controllers(&hub, &settings, &metrics, &health, stop.clone());
        shutdown.cancelled().await;
        stop_gracefully(running, stop, &config, &health).await;
    }
    http_stop.cancel();
    for server in servers {
        let _ = server.await;
    }
    info!("stopped");
    Ok(())
}

fn start_controllers(
    hub: &Client,
    settings: &ControllerSettings,
    metrics: &Metrics,
    health: &Arc<Health>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    metrics.leader.set(1);
    health.set_leading(true);
    let (synced_tx, mut synced_rx) = watch::channel(false);
    let follow = health.clone();
    let gauge = metrics.caches_synced.clone();
    let follow_stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = follow_stop.cancelled() => {}
            r = synced_rx.wait_for(|s| *s) => if r.is_ok() {
                follow.set_synced(true);
                gauge.set(1);
            },
        }
    });
    tokio::spawn(controllers::run(
        hub.clone(),
        settings.clone(),
        metrics.clone(),
        synced_tx,
        stop,
    ))
}

fn step_down(metrics: &Metrics, health: &Health) {
    metrics.leader.set(0);
    metrics.caches_synced.set(0);
    // The aborted controllers could not clear them: a standby exports no network gauges.
    metrics.set_caches(None, None);
    health.set_leading(false);
    health.set_synced(false);
}

async fn stop_gracefully(
    mut running: JoinHandle<()>,
    stop: CancellationToken,
    config: &Config,
    health: &Health,
) {
    health.set_stopping();
    stop.cancel();
    let grace = config.tuning.shutdown_grace;
    if tokio::time::timeout(grace, &mut running).await.is_err() {
        warn!(
            ?grace,
            "reconciles still running after the grace period; cutting them"
        );
        running.abort();
        let _ = running.await;
    }
}

fn spawn_signal_handler(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
        shutdown.cancel();
    });
    Ok(())
}

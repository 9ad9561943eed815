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
//! be renewed within the renew deadline, that task is aborted at once, also during a graceful
//! shutdown. Aborting takes effect only at the task's next await point, so writes are also
//! *fenced* ([`fence`]): each write to a member or to the hub is refused, or cut, once the
//! instant until which this replica's leadership is valid has passed. A standby only reads
//! the Lease.
//!
//! # Sharded replicas
//! With `--shards N` (N > 1) every replica runs the controllers, and each network and member
//! probe is handled only by the replica holding its shard's Lease, its writes fenced on that
//! Lease ([`shard`], run by [`sharded`]). `--shards 1`, the default, is the single Lease
//! above, unchanged.
//!
//! # A replica never holds the Lease without working
//! If the controllers task ends while nothing asked it to (it panicked, or returned), the
//! operator stops its controllers, releases the Lease and [`run`] returns an error, so the
//! process exits non-zero and is restarted, and a standby takes over at once.

pub mod config;
pub mod controllers;
pub mod fence;
pub mod fenced_backend;
pub mod http;
pub mod hub_client;
pub mod leader;
pub mod measured_backend;
pub mod member_watch;
pub mod metrics;
pub mod shard;
pub mod sharded;
pub mod telemetry;

pub use config::Config;
pub use hub_client::{hub_client, hub_config};
pub use metrics::Metrics;

use controllers::{ControllerRun, ControllerSettings};
use fence::Fence;
use futures::future::BoxFuture;
use http::Health;
use kube::Client;
use leader::{LeaderElector, LeaseSettings};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Starts the controllers: [`controllers::run`] in the binary, something else in tests of
/// what happens around it.
pub type ControllersFn = Arc<dyn Fn(ControllerRun) -> BoxFuture<'static, ()> + Send + Sync>;

/// The real controllers.
pub fn real_controllers() -> ControllersFn {
    Arc::new(|run| Box::pin(controllers::run(run)))
}

/// Why the operator stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The controllers panicked while this replica was serving.
    #[error("the controllers panicked: {0}")]
    ControllersPanicked(String),
    /// The controllers returned while this replica was serving and nothing asked them to.
    #[error("the controllers stopped on their own while this replica was serving")]
    ControllersReturned,
    /// The leader election task panicked.
    #[error("leader election failed: {0}")]
    Election(String),
}

impl RunError {
    pub(crate) fn controllers(ended: Result<(), JoinError>) -> Self {
        match ended {
            Ok(()) => Self::ControllersReturned,
            Err(e) => Self::ControllersPanicked(e.to_string()),
        }
    }
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config, hub: kube::Config, metrics: Metrics) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;
    run_until(config, hub, metrics, shutdown).await
}

/// Runs the operator until `shutdown` is cancelled (what [`run`] does on a signal).
///
/// # Errors
/// Startup failures (clients, listeners), and a [`RunError`] when the controllers or the
/// leader election end on their own.
pub async fn run_until(
    config: Config,
    hub: kube::Config,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_until_with(config, hub, metrics, shutdown, real_controllers()).await
}

/// [`run_until`] with the controllers started by `controllers`.
///
/// # Errors
/// As [`run_until`].
pub async fn run_until_with(
    config: Config,
    hub: kube::Config,
    metrics: Metrics,
    shutdown: CancellationToken,
    controllers: ControllersFn,
) -> anyhow::Result<()> {
    if config.shards > 1 {
        return sharded::run(config, hub, metrics, shutdown, controllers).await;
    }
    let identity = config.identity();
    let agent = hub_client::user_agent(&identity);
    let fence = if config.leader_election {
        Fence::closed()
    } else {
        Fence::unfenced()
    };
    let elector_hub = hub_client(&hub, &agent, &metrics, None)?;
    let controllers_hub = hub_client(&hub, &agent, &metrics, Some(&fence))?;
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
    let start = Starter {
        controllers,
        hub: controllers_hub,
        settings: ControllerSettings {
            namespace: config.namespace.clone(),
            identity: identity.clone(),
            tuning: config.tuning.clone(),
        },
        metrics: metrics.clone(),
        health: health.clone(),
        fence: fence.clone(),
    };
    info!(%identity, leader_election = config.leader_election, "starting");

    let mut failure: Option<RunError> = None;
    if config.leader_election {
        let (leading_tx, mut leading) = watch::channel(false);
        let elector_stop = CancellationToken::new();
        let elector = LeaderElector::new(
            elector_hub,
            LeaseSettings {
                name: config.lease_name.clone(),
                namespace: config.lease_namespace(),
                identity,
                duration: config.tuning.lease_duration,
                renew_deadline: config.tuning.lease_renew_deadline,
                retry_period: config.tuning.lease_retry_period,
            },
        );
        let elector = tokio::spawn(elector.run(leading_tx, fence.clone(), elector_stop.clone()));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                r = leading.wait_for(|l| *l) => if r.is_err() { break },
            }
            let stop = CancellationToken::new();
            let mut running = start.controllers(stop.clone());
            tokio::select! {
                () = shutdown.cancelled() => {
                    let mut watch = leading.clone();
                    let lost = async move {
                        // A closed channel means the elector is gone: nothing renews any more.
                        let _ = watch.wait_for(|l| !*l).await;
                    };
                    failure = stop_gracefully(running, stop, &config, &health, lost).await;
                    step_down(&metrics, &health);
                    break;
                }
                // `is_ok` so that no borrow of `leading` outlives the branch.
                _ = async { leading.wait_for(|l| !*l).await.is_ok() } => {
                    // Lost the lease: stop writing now, not after the grace period.
                    warn!("no longer the leader; controllers stopped");
                    stop.cancel();
                    running.abort();
                    let _ = running.await;
                    step_down(&metrics, &health);
                }
                ended = &mut running => {
                    // Nothing asked them to stop: a replica must not hold the Lease without
                    // working. Hand it over and exit non-zero, so the replica is restarted.
                    let e = RunError::controllers(ended);
                    error!(error = %e, "controllers ended while leading; releasing the lease");
                    failure = Some(e);
                    step_down(&metrics, &health);
                    break;
                }
            }
        }
        health.set_stopping();
        fence.close();
        elector_stop.cancel();
        if let Err(e) = elector.await {
            warn!(error = %e, "leader election task failed");
            failure.get_or_insert(RunError::Election(e.to_string()));
        }
    } else {
        let stop = shutdown.child_token();
        let mut running = start.controllers(stop.clone());
        tokio::select! {
            () = shutdown.cancelled() => {
                failure = stop_gracefully(running, stop, &config, &health, std::future::pending()).await;
            }
            ended = &mut running => {
                let e = RunError::controllers(ended);
                error!(error = %e, "controllers ended; exiting");
                failure = Some(e);
            }
        }
        health.set_stopping();
    }
    http_stop.cancel();
    for server in servers {
        let _ = server.await;
    }
    match failure {
        Some(e) => Err(e.into()),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}

/// What starting the controllers needs, captured once.
struct Starter {
    controllers: ControllersFn,
    hub: Client,
    settings: ControllerSettings,
    metrics: Metrics,
    health: Arc<Health>,
    fence: Fence,
}

impl Starter {
    fn controllers(&self, stop: CancellationToken) -> JoinHandle<()> {
        self.metrics.leader.set(1);
        self.health.set_leading(true);
        let (synced_tx, mut synced_rx) = watch::channel(false);
        let follow = self.health.clone();
        let gauge = self.metrics.caches_synced.clone();
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
        tokio::spawn((self.controllers)(ControllerRun {
            hub: self.hub.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
            fence: self.fence.clone(),
            synced: synced_tx,
            shutdown: stop,
            shards: None,
        }))
    }
}

fn step_down(metrics: &Metrics, health: &Health) {
    metrics.leader.set(0);
    metrics.caches_synced.set(0);
    // The aborted controllers could not clear them: a standby exports no network gauges.
    metrics.set_caches(None, None);
    health.set_leading(false);
    health.set_synced(false);
}

/// Lets running reconciles finish for at most the grace period, and not past the moment
/// `lost` resolves (leadership lost): writing after that would break "one writer". Returns
/// the failure if the controllers panicked.
pub(crate) async fn stop_gracefully(
    mut running: JoinHandle<()>,
    stop: CancellationToken,
    config: &Config,
    health: &Health,
    lost: impl Future<Output = ()>,
) -> Option<RunError> {
    health.set_stopping();
    stop.cancel();
    let grace = config.tuning.shutdown_grace;
    tokio::select! {
        ended = &mut running => return ended.err().map(|e| RunError::ControllersPanicked(e.to_string())),
        () = tokio::time::sleep(grace) => warn!(
            ?grace,
            "reconciles still running after the grace period; cutting them"
        ),
        () = lost => warn!("lost the lease while stopping; cutting running reconciles"),
    }
    running.abort();
    let _ = running.await;
    None
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

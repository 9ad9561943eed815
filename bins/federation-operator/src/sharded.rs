//! The operator with sharded replicas (`--shards N`, N > 1): what [`crate::run_until_with`]
//! does in that mode (see [`crate::shard`] for the design).
//!
//! # Order of things
//! 1. Health and metrics are served; the controllers start at once (their watches are
//!    reads; nothing writes until a shard is held, every shard's fence being shut).
//! 2. Once their caches are synced the replica is ready and joins the shard ring (its
//!    heartbeat, then its shards), so shards only move to a replica that can work at once.
//! 3. On SIGTERM the controllers get the grace period to finish their passes while the
//!    shards are still renewed; then every fence is shut, the shards are released and the
//!    heartbeat deleted, so the others take over within a round.
//!
//! As in single-Lease mode, controllers that end on their own make [`run`] release
//! everything and return an error, and so does a coordinator that dies.

use crate::config::Config;
use crate::controllers::{ControllerRun, ControllerSettings};
use crate::fence::Fence;
use crate::http::{self, Health};
use crate::hub_client::{fenced_view, hub_client, user_agent};
use crate::metrics::Metrics;
use crate::shard::ShardRouting;
use crate::shard::coordinator::{Coordinator, ShardSettings};
use crate::shard::table::{LeaseNames, LeaseTimings};
use crate::{ControllersFn, RunError, stop_gracefully};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Runs a sharded replica until `shutdown` is cancelled.
///
/// # Errors
/// Startup failures (clients, listeners), and a [`RunError`] when the controllers or the
/// shard coordinator end on their own.
pub async fn run(
    config: Config,
    hub: kube::Config,
    metrics: Metrics,
    shutdown: CancellationToken,
    controllers: ControllersFn,
) -> anyhow::Result<()> {
    let identity = config.identity();
    let agent = user_agent(&identity);
    let shards = config.shards;
    // Unfenced: the watches, the reads, and the Leases (renewing opens the fences).
    let reads = hub_client(&hub, &agent, &metrics, None)?;
    let fences: Vec<Fence> = (0..shards).map(|_| Fence::closed()).collect();
    let hubs: Vec<kube::Client> = fences.iter().map(|f| fenced_view(&reads, f)).collect();
    // The controllers' base context writes nothing: its fence is never opened.
    let never = Fence::closed();
    let base_hub = fenced_view(&reads, &never);
    let (owned_tx, owned_rx) = watch::channel(crate::shard::HeldShards::new());
    let health = Health::sharded();
    let http_stop = CancellationToken::new();
    let servers = http::serve(
        config.health_addr,
        config.metrics_addr,
        health.clone(),
        metrics.clone(),
        http_stop.clone(),
    )
    .await?;
    info!(%identity, shards, "starting a sharded replica");

    let (synced_tx, mut synced_rx) = watch::channel(false);
    let stop = CancellationToken::new();
    let mut running = tokio::spawn(controllers(ControllerRun {
        hub: base_hub,
        settings: ControllerSettings {
            namespace: config.namespace.clone(),
            identity: identity.clone(),
            tuning: config.tuning.clone(),
        },
        metrics: metrics.clone(),
        fence: never,
        synced: synced_tx,
        shutdown: stop.clone(),
        shards: Some(ShardRouting {
            count: shards,
            fences: fences.clone().into(),
            hubs: hubs.into(),
            owned: owned_rx,
            registry_hub: reads.clone(),
        }),
    }));
    let t = &config.tuning;
    // The Leases get a client of their own, as the single-Lease elector does: renewals do
    // not queue behind the controllers' requests.
    let coordinator = Coordinator::new(
        hub_client(&hub, &agent, &metrics, None)?,
        ShardSettings {
            names: LeaseNames {
                prefix: config.lease_name.clone(),
                namespace: config.lease_namespace(),
            },
            identity,
            shards,
            timings: LeaseTimings {
                duration: t.lease_duration,
                renew_deadline: t.lease_renew_deadline,
            },
            retry_period: t.lease_retry_period,
        },
        fences.clone(),
        owned_tx,
        metrics.clone(),
    );
    // Joins the ring once the caches are synced (ready from then on).
    let ring_stop = CancellationToken::new();
    let mut ring = {
        let stop = ring_stop.clone();
        let health = health.clone();
        let synced_gauge = metrics.caches_synced.clone();
        tokio::spawn(async move {
            let synced = tokio::select! {
                () = stop.cancelled() => return,
                r = synced_rx.wait_for(|s| *s) => r.is_ok(),
            };
            if synced {
                health.set_synced(true);
                synced_gauge.set(1);
                coordinator.run(stop).await;
            }
        })
    };

    let failure = tokio::select! {
        // The controllers first: when they end, the ring ends too (no more sync to wait for).
        biased;
        ended = &mut running => {
            let e = RunError::controllers(ended);
            error!(error = %e, "controllers ended on their own; releasing the shards");
            Some(e)
        }
        () = shutdown.cancelled() => {
            stop_gracefully(running, stop, &config, &health, std::future::pending()).await
        }
        ended = &mut ring => {
            let e = RunError::Election(match ended {
                Ok(()) => "the shard coordinator stopped on its own".to_owned(),
                Err(e) => e.to_string(),
            });
            error!(error = %e, "shard coordinator ended; stopping");
            for fence in &fences {
                fence.close();
            }
            stop.cancel();
            running.abort();
            let _ = running.await;
            return finish(Some(e), &health, &metrics, &fences, http_stop, servers).await;
        }
    };
    ring_stop.cancel();
    let failure = match ring.await {
        Err(e) if failure.is_none() => {
            warn!(error = %e, "shard coordinator failed");
            Some(RunError::Election(e.to_string()))
        }
        _ => failure,
    };
    finish(failure, &health, &metrics, &fences, http_stop, servers).await
}

/// Shuts every fence and the HTTP servers, and says how the run ended.
async fn finish(
    failure: Option<RunError>,
    health: &Health,
    metrics: &Metrics,
    fences: &[Fence],
    http_stop: CancellationToken,
    servers: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    health.set_stopping();
    for fence in fences {
        fence.close();
    }
    metrics.shards_held.set(0);
    metrics.caches_synced.set(0);
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

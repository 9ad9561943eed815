//! `/healthz`, `/readyz` and `/metrics`.
//!
//! - `/healthz`: 200 while the process serves requests.
//! - `/readyz`: 200 when the controllers' caches are synced, or, with leader election on,
//!   while this replica stands by (a standby is healthy and ready to take over); 503 while
//!   a leader's caches fill and once shutdown began. A sharded replica runs its controllers
//!   all the time: it is ready once its caches are synced, whether it holds shards or none
//!   (a standby for the others' shards), since only then does it join the shard ring.
//! - `/metrics`: Prometheus text format.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// What `/readyz` answers from.
#[derive(Debug)]
pub struct Health {
    leader_election: bool,
    sharded: bool,
    leading: AtomicBool,
    synced: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    /// Fresh state: not leading, not synced.
    pub fn new(leader_election: bool) -> Arc<Self> {
        Arc::new(Self {
            leader_election,
            sharded: false,
            leading: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        })
    }

    /// Fresh state of a sharded replica: not synced.
    pub fn sharded() -> Arc<Self> {
        Arc::new(Self {
            leader_election: true,
            sharded: true,
            leading: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        })
    }

    /// Whether this replica runs the controllers now.
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
    }

    /// Whether the running controllers' caches are synced.
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    /// Shutdown began.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The `/readyz` verdict and why.
    pub fn readiness(&self) -> (bool, &'static str) {
        if self.stopping.load(Ordering::SeqCst) {
            return (false, "shutting down");
        }
        if self.sharded {
            return if self.synced.load(Ordering::SeqCst) {
                (true, "serving its shards")
            } else {
                (false, "caches not synced")
            };
        }
        let leading = self.leading.load(Ordering::SeqCst);
        if self.leader_election && !leading {
            return (true, "standing by");
        }
        if self.synced.load(Ordering::SeqCst) {
            (
                true,
                if self.leader_election {
                    "leading"
                } else {
                    "running"
                },
            )
        } else {
            (false, "caches not synced")
        }
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Metrics,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.readiness() {
        (true, why) => (StatusCode::OK, why),
        (false, why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Binds the health and metrics addresses (one listener when they are equal) and serves
/// until `shutdown` is cancelled. Binding errors are returned at once.
pub async fn serve(
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
    health: Arc<Health>,
    metrics_state: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let state = AppState {
        health,
        metrics: metrics_state,
    };
    let health_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let metrics_routes = Router::new().route("/metrics", get(metrics));
    let plan: Vec<(SocketAddr, Router<AppState>)> = if health_addr == metrics_addr {
        vec![(health_addr, health_routes.merge(metrics_routes))]
    } else {
        vec![(health_addr, health_routes), (metrics_addr, metrics_routes)]
    };
    let mut tasks = Vec::new();
    for (addr, router) in plan {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
        let bound = listener.local_addr()?;
        info!(address = %bound, "serving HTTP");
        let app = router.with_state(state.clone());
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "HTTP server stopped");
            }
        }));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_leadership_and_sync() {
        let h = Health::new(true);
        assert_eq!(h.readiness(), (true, "standing by"));
        h.set_leading(true);
        assert_eq!(h.readiness(), (false, "caches not synced"));
        h.set_synced(true);
        assert_eq!(h.readiness(), (true, "leading"));
        h.set_stopping();
        assert!(!h.readiness().0);
        let single = Health::new(false);
        assert!(!single.readiness().0);
        single.set_synced(true);
        assert_eq!(single.readiness(), (true, "running"));
        // A sharded replica is ready once synced, with or without shards.
        let sharded = Health::sharded();
        assert!(!sharded.readiness().0);
        sharded.set_synced(true);
        assert_eq!(sharded.readiness(), (true, "serving its shards"));
        sharded.set_stopping();
        assert!(!sharded.readiness().0);
    }
}

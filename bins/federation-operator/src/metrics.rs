//! Prometheus metrics (`prometheus-client`), served on `/metrics`.
//!
//! Counters and histograms are updated where things happen; the per-network link gauges and
//! the member reachability gauge are computed at scrape time from the controllers' caches,
//! so they always show the last written status and vanish with the object.

use federation_core::api::{ConditionExt, FederatedNetwork, LinkPhase, MemberCluster, REACHABLE};
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Labels of a reconcile counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `FederatedNetwork` or `MemberCluster`.
    pub kind: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of a reconcile error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The reconciled kind.
    pub kind: String,
    /// `ControllerError::metric_label`.
    pub error: String,
}

/// Labels of the reconcile duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The reconciled kind.
    pub kind: String,
}

/// Labels of backend operation counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// Backend kind.
    pub backend: String,
    /// `observe`, `apply` or `delete`.
    pub operation: String,
    /// `ok`, or the error's metric label.
    pub result: String,
}

/// Labels of the hub request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`).
    pub method: String,
    /// The resource addressed (`leases`, `memberclusters/status`, ...).
    pub resource: String,
}

/// Labels of member watch event counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabels {
    /// Member name.
    pub member: String,
}

/// Labels of the shard move counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardMoveLabels {
    /// `acquired`, `released` (handed to the replica that should own it) or `lost` (not
    /// renewed in time, or taken).
    pub change: String,
}

/// The caches the scrape-time gauges read; set while controllers run.
#[derive(Default)]
struct Caches {
    networks: Option<Store<FederatedNetwork>>,
    members: Option<Store<MemberCluster>>,
}

/// Every metric of the operator. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Reconciles by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile errors by kind and error label.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Reconcile durations by kind, in seconds.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Backend operations on targets, by operation and result.
    pub backend_operations: Family<BackendLabels, Counter>,
    /// Objects the backend applied or deleted, by operation.
    pub backend_objects: Family<BackendLabels, Counter>,
    /// Requests this replica sent to the hub, by method.
    pub hub_requests: Family<RequestLabels, Counter>,
    /// Events seen by member watches, per member.
    pub member_watch_events: Family<MemberLabels, Counter>,
    /// 1 while this replica leads (or leader election is off), else 0.
    pub leader: Gauge,
    /// 1 once the controllers' caches are synced, else 0.
    pub caches_synced: Gauge,
    /// Shards this replica holds (sharded mode; 0 otherwise).
    pub shards_held: Gauge,
    /// Shards this replica acquired, released or lost.
    pub shard_moves: Family<ShardMoveLabels, Counter>,
    caches: Arc<RwLock<Caches>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered under the `fednet_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fednet");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration =
            Family::<KindLabels, Histogram>::new_with_constructor(duration_histogram);
        let backend_operations = Family::<BackendLabels, Counter>::default();
        let backend_objects = Family::<BackendLabels, Counter>::default();
        let hub_requests = Family::<RequestLabels, Counter>::default();
        let member_watch_events = Family::<MemberLabels, Counter>::default();
        let leader = Gauge::default();
        let caches_synced = Gauge::default();
        let shards_held = Gauge::default();
        let shard_moves = Family::<ShardMoveLabels, Counter>::default();
        let caches = Arc::new(RwLock::new(Caches::default()));
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by kind and error",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles by kind",
            reconcile_duration.clone(),
        );
        registry.register(
            "backend_operations",
            "Backend operations on member targets by operation and result",
            backend_operations.clone(),
        );
        registry.register(
            "backend_objects",
            "Objects applied or deleted on members by operation",
            backend_objects.clone(),
        );
        registry.register(
            "hub_requests",
            "HTTP requests this replica sent to the hub API server, by method and resource",
            hub_requests.clone(),
        );
        registry.register(
            "member_watch_events",
            "Changes to owned backend objects seen by member watches",
            member_watch_events.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease (or runs without leader election)",
            leader.clone(),
        );
        registry.register(
            "caches_synced",
            "1 once the controllers' caches are synced",
            caches_synced.clone(),
        );
        registry.register(
            "shards_held",
            "Shards this replica holds (sharded replicas only)",
            shards_held.clone(),
        );
        registry.register(
            "shard_moves",
            "Shards this replica acquired, released to their new owner, or lost",
            shard_moves.clone(),
        );
        registry.register_collector(Box::new(StatusCollector {
            caches: caches.clone(),
        }));
        Self {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            reconcile_duration,
            backend_operations,
            backend_objects,
            hub_requests,
            member_watch_events,
            leader,
            caches_synced,
            shards_held,
            shard_moves,
            caches,
        }
    }

    /// Records one reconcile.
    pub fn observe_reconcile(&self, kind: &str, elapsed: Duration, error: Option<&'static str>) {
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    kind: kind.to_owned(),
                    error: error.to_owned(),
                })
                .inc();
        }
    }

    /// Counts `n` shard moves of one kind (`acquired`, `released`, `lost`).
    pub fn count_shard_moves(&self, change: &str, n: usize) {
        self.shard_moves
            .get_or_create(&ShardMoveLabels {
                change: change.to_owned(),
            })
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Lets the scrape-time gauges read these caches (or none, when controllers stop).
    pub fn set_caches(
        &self,
        networks: Option<Store<FederatedNetwork>>,
        members: Option<Store<MemberCluster>>,
    ) {
        if let Ok(mut c) = self.caches.write() {
            c.networks = networks;
            c.members = members;
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn duration_histogram() -> Histogram {
    // 10 ms to about 80 s: a pass over a hung member lasts its target timeout.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

#[derive(Debug)]
struct StatusCollector {
    caches: Arc<RwLock<Caches>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

/// Link counts of one network by phase: (up, down, pending).
pub fn link_counts(net: &FederatedNetwork) -> (i64, i64, i64) {
    let links = net
        .status
        .as_ref()
        .map(|s| s.links.as_slice())
        .unwrap_or_default();
    let count = |phase: LinkPhase| {
        i64::try_from(links.iter().filter(|l| l.phase == phase).count()).unwrap_or(i64::MAX)
    };
    (
        count(LinkPhase::Up),
        count(LinkPhase::Down),
        count(LinkPhase::Pending),
    )
}

/// 1 reachable, 0 unreachable, -1 not probed yet.
pub fn reachability(member: &MemberCluster) -> i64 {
    match member
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(REACHABLE))
        .map(|c| c.status.as_str())
    {
        Some("True") => 1,
        Some("False") => 0,
        _ => -1,
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(caches) = self.caches.read() else {
            return Ok(());
        };
        if let Some(networks) = &caches.networks {
            let state = networks.state();
            let mut family = encoder.encode_descriptor(
                "network_links",
                "Links of each network by state (up, down, pending), from its status",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for net in &state {
                let (up, down, pending) = link_counts(net);
                let ns = net.namespace().unwrap_or_default();
                let name = net.name_any();
                for (st, value) in [("up", up), ("down", down), ("pending", pending)] {
                    let labels = [
                        ("namespace", ns.as_str()),
                        ("network", name.as_str()),
                        ("state", st),
                    ];
                    ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        if let Some(members) = &caches.members {
            let state = members.state();
            let mut family = encoder.encode_descriptor(
                "member_reachable",
                "1 if the member answered its last probe, 0 if not, -1 if not probed yet",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for m in &state {
                let name = m.name_any();
                let labels = [("member", name.as_str())];
                ConstGauge::new(reachability(m)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_are_exported() {
        let m = Metrics::new();
        m.observe_reconcile("FederatedNetwork", Duration::from_millis(30), None);
        m.observe_reconcile("FederatedNetwork", Duration::from_millis(30), Some("hub"));
        m.leader.set(1);
        let text = m.encode().unwrap();
        assert!(
            text.contains(r#"fednet_reconciles_total{kind="FederatedNetwork",result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"fednet_reconcile_errors_total{kind="FederatedNetwork",error="hub"} 1"#
            )
        );
        assert!(text.contains("fednet_reconcile_duration_seconds_bucket"));
        assert!(text.contains("fednet_leader 1"));
    }
}

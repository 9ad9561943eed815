//! Reconcile functions for the hub's kinds, ready to be driven by `kube::runtime::Controller`
//! (the operator binary only wires them up).
//!
//! - [`reconcile_network`]: plans a `FederatedNetwork`, runs the engine of its backend,
//!   writes the network's and its services' statuses when they changed, and tears the
//!   network down behind the [`NETWORK_FINALIZER`](crate::api::NETWORK_FINALIZER).
//! - [`reconcile_member`]: probes a `MemberCluster` and writes its status when it changed;
//!   behind the [`MEMBER_FINALIZER`](crate::api::MEMBER_FINALIZER) its deletion waits until
//!   no network's inventory names it (or it is abandoned); a member is reported
//!   `Unreachable` only after repeated failures
//!   ([`member_unhealthy`](crate::cluster::member_unhealthy) is the planner's rule).

mod claims;
mod inventory;
mod member;
mod network;

pub use claims::conflicting_claim;
pub use inventory::{inventory_uses_member, recorded_targets, sweep_targets};
pub use member::reconcile_member;
pub use network::{error_policy, reconcile_network};

use crate::api::FIELD_MANAGER;
use crate::api::{BackendKind, FederatedNetwork, FederatedService, MemberCluster};
use crate::cluster::{FailurePolicy, MemberRegistry, ProbeStreaks};
use crate::engine::Engine;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Source of the current time, injectable so tests control `lastTransitionTime`.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Everything the reconcile functions share.
#[derive(Clone)]
pub struct Context {
    /// Client of the hub cluster.
    pub hub: Client,
    /// Member clients.
    pub registry: Arc<MemberRegistry>,
    /// One engine per backend kind this operator serves.
    pub engines: BTreeMap<BackendKind, Engine>,
    /// Publishes Kubernetes Events on hub objects.
    pub recorder: Option<Recorder>,
    /// The clock.
    pub clock: Clock,
    /// Requeue delays and probe thresholds.
    pub timing: Timing,
    /// Consecutive failed probes per member, in memory (see [`reconcile_member`]).
    pub probe_streaks: Arc<ProbeStreaks>,
    /// Watch-fed copies of the hub's kinds: when set, a pass reads them instead of listing.
    pub hub_stores: Option<HubStores>,
}

/// Watch-fed copies of the hub's kinds (the controllers' caches), read by a network pass
/// instead of listing: a pass at rest costs the hub no request.
#[derive(Clone)]
pub struct HubStores {
    /// Every `MemberCluster`.
    pub members: Store<MemberCluster>,
    /// The served `FederatedService`s.
    pub services: Store<FederatedService>,
    /// Every `FederatedNetwork` in every namespace, for per-cluster claims. Until it has
    /// listed (or when the operator may not watch networks cluster-wide, so it never does),
    /// claims are checked against a fresh list instead.
    pub networks: Store<FederatedNetwork>,
}

/// How often things are looked at again, and how many failed probes make a member unhealthy.
#[derive(Clone, Debug)]
pub struct Timing {
    /// After a pass that wrote or found something still moving.
    pub progressing: Duration,
    /// After a pass that found everything converged (drift is still caught by watches).
    pub converged: Duration,
    /// Between member probes.
    pub probe_interval: Duration,
    /// Time budget of one member probe.
    pub probe_timeout: Duration,
    /// Failed probes in a row before a member is reported `Unreachable` and planned as
    /// unhealthy (default 3; 0 is taken as 1).
    pub probe_failure_threshold: u32,
    /// How long a member's probes must have been failing, at least, before it is reported
    /// `Unreachable` (default 60 s: with the default interval the third failure comes about
    /// then; it keeps probes that come faster than the interval from shortening the wait).
    pub probe_failure_min_duration: Duration,
    /// How long before a member's token expires it is reported (`CredentialsExpiring`).
    pub credential_warning: Duration,
}

impl Timing {
    /// The thresholds of failing probes.
    pub fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy {
            threshold: self.probe_failure_threshold,
            min_duration: self.probe_failure_min_duration,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            progressing: Duration::from_secs(3),
            converged: Duration::from_secs(300),
            probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(5),
            probe_failure_threshold: 3,
            probe_failure_min_duration: Duration::from_secs(60),
            credential_warning: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Context {
    /// A context with the system clock and default timing.
    pub fn new(
        hub: Client,
        registry: Arc<MemberRegistry>,
        engines: BTreeMap<BackendKind, Engine>,
    ) -> Self {
        Self {
            hub,
            registry,
            engines,
            recorder: None,
            clock: Arc::new(Timestamp::now),
            timing: Timing::default(),
            probe_streaks: Arc::new(ProbeStreaks::default()),
            hub_stores: None,
        }
    }
}

/// Errors of the reconcile functions. Each is retried by the controller's error policy.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A hub API call failed.
    #[error("{verb} {what} on the hub: {source}")]
    Hub {
        /// What was being done.
        verb: &'static str,
        /// The object or kind.
        what: String,
        /// Client error.
        #[source]
        source: kube::Error,
    },
    /// A hub cache has not listed yet.
    #[error("the hub's {0} cache has not synced yet")]
    CacheNotSynced(&'static str),
    /// Teardown is not finished: some members still hold objects of the network.
    #[error("teardown of {network} pending on: {pending}")]
    TeardownPending {
        /// The network.
        network: String,
        /// Targets and why.
        pending: String,
    },
    /// A `MemberCluster` being deleted still has networks holding objects in it.
    #[error("member {member} is still used by networks: {networks}")]
    MemberInUse {
        /// The member.
        member: String,
        /// The networks (`namespace/name`).
        networks: String,
    },
    /// The object lacks a namespace or name.
    #[error("object without {0}")]
    MissingField(&'static str),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl ControllerError {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Hub { .. } | Self::CacheNotSynced(_) => "hub",
            Self::TeardownPending { .. } => "teardown_pending",
            Self::MemberInUse { .. } => "member_in_use",
            Self::MissingField(_) => "missing_field",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// Server-side applies `status` to the status subresource of the object `name`, under the one
/// fednet field manager.
async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
) -> Result<(), ControllerError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&());
    let patch = json!({"apiVersion": K::api_version(&()), "kind": kind, "status": status});
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(hub_error("patch status of", format!("{kind} {name}")))?;
    Ok(())
}

/// Records an Event on a hub object. Best effort: failing to record one must not fail the
/// reconcile. Notes are cut to the 1 KiB the Events API accepts.
async fn record_event<K>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    action: &str,
    reason: &str,
    note: &str,
) where
    K: Resource<DynamicType = ()>,
{
    let Some(recorder) = &ctx.recorder else {
        return;
    };
    let event = KubeEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1024).collect()),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(error = %e, "could not record event");
    }
}

fn hub_error(
    verb: &'static str,
    what: impl Into<String>,
) -> impl FnOnce(kube::Error) -> ControllerError {
    let what = what.into();
    move |source| ControllerError::Hub { verb, what, source }
}

//! The seam every backend implements.
//!
//! A backend has a pure half and an effectful half:
//! - pure: [`NetworkBackend::capabilities`], [`NetworkBackend::validate`],
//!   [`NetworkBackend::targets`], [`NetworkBackend::render`] and [`NetworkBackend::assess`]
//!   are functions of their inputs, so they are tested without I/O;
//! - effectful: [`NetworkBackend::observe`], [`NetworkBackend::apply`],
//!   [`NetworkBackend::delete`] talk to one [`Target`] each, and are tested against real API
//!   servers (or, for REST controllers, a contract mock of the real spec).
//!
//! The engine owns the order of calls, concurrency, timeouts, retries, diffing and orphan
//! cleanup, so a backend never has to re-implement them.
//!
//! # The contract a backend author signs
//! - **Render from what was read.** `render` gets only the targets observed this pass. An
//!   object whose content depends on a target (or an observation) that is missing this pass
//!   is neither rendered from guesses nor left out: it is put in
//!   [`DesiredState::retained`], and the engine keeps it exactly as it is. Leaving it out
//!   would make it an orphan and delete working connectivity during someone else's outage.
//! - **Own only what you made.** Rendered objects carry the network's ownership labels. An
//!   object of the same key found without them is refused ([`BackendError::NotOwned`]),
//!   unless the backend marks the desired object [`DesiredObject::adopting`] because an
//!   upstream controller made it from one of the network's own objects.
//! - **Delete what you observed.** Deletions carry the observed uid as a precondition.
//! - **Say what is shared.** [`NetworkBackend::singletons`] names per-cluster objects that
//!   only one network may hold (Skupper's one Site per namespace); the controller lets the
//!   network that claimed one first keep it and refuses the others.
//! - **Say the order.** [`NetworkBackend::teardown_phase`] orders removal across targets
//!   (members before a broker); [`Observed::operations`] reports work still running on a
//!   target, during which the engine writes nothing more there.
//! - **Decorate without dropping answers.** A wrapper (metrics, fencing) writes only the
//!   effectful calls and takes the pure ones from
//!   [`delegate_pure_backend_methods!`](crate::delegate_pure_backend_methods), so a method
//!   with a default can never fall back to the default behind the wrapped backend's back.

mod delegate;
mod error;
mod objects;
mod redact;

pub use error::BackendError;
pub use objects::{
    Deletion, DesiredObject, DesiredState, ObjectKey, Observed, ObservedObject, Operation,
    drops_applied_fields, is_subset,
};

use crate::api::{BackendKind, InventoryTarget, LinkPhase, TargetKind, TopologyKind};
use crate::plan::{NetworkPlan, NetworkRef, RejectedService};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where a backend's objects live. Not always a member cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", content = "name")]
pub enum Target {
    /// A member cluster, by `MemberCluster` name.
    Member(String),
    /// A broker cluster (Submariner), by `MemberCluster` name.
    Broker(String),
    /// A REST controller (SD-WAN), by a name the backend chooses.
    Controller(String),
}

impl Target {
    /// The member cluster this target lives in, if it is one.
    pub fn member(&self) -> Option<&str> {
        match self {
            Self::Member(m) | Self::Broker(m) => Some(m),
            Self::Controller(_) => None,
        }
    }
}

impl From<&Target> for InventoryTarget {
    fn from(t: &Target) -> Self {
        let (kind, name) = match t {
            Target::Member(n) => (TargetKind::Member, n),
            Target::Broker(n) => (TargetKind::Broker, n),
            Target::Controller(n) => (TargetKind::Controller, n),
        };
        Self {
            kind,
            name: name.clone(),
        }
    }
}

impl From<&InventoryTarget> for Target {
    fn from(t: &InventoryTarget) -> Self {
        match t.kind {
            TargetKind::Member => Self::Member(t.name.clone()),
            TargetKind::Broker => Self::Broker(t.name.clone()),
            TargetKind::Controller => Self::Controller(t.name.clone()),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Member(n) => write!(f, "member/{n}"),
            Self::Broker(n) => write!(f, "broker/{n}"),
            Self::Controller(n) => write!(f, "controller/{n}"),
        }
    }
}

/// The network layer a backend connects at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Layer {
    /// Pod and service IP connectivity (Submariner, SD-WAN).
    L3,
    /// Application-level service connectivity (Skupper).
    L7,
}

/// What a backend can do; the core refuses networks a backend cannot serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The layer it connects at.
    pub layer: Layer,
    /// Whether members may have overlapping pod or service CIDRs.
    pub overlapping_cidrs: bool,
    /// Whether link costs are honoured.
    pub link_costs: bool,
    /// Whether traffic between members is encrypted.
    pub encryption: bool,
    /// Whether a broker cluster is needed.
    pub needs_broker: bool,
    /// Topology strategies it can realise.
    pub topologies: Vec<TopologyKind>,
    /// Whether a shared service can be offered to some members only. When not (an MCS
    /// `ServiceExport` is imported by the whole cluster set), a service whose consumers are
    /// not every member of the network is refused ([`refuse_unservable_services`]).
    pub restricted_consumers: bool,
}

/// One reason a network cannot be served, with the field it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidationIssue {
    /// JSON path of the offending field, e.g. `spec.backend.skupper.ha`.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl std::fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Health of one planned link as the backend reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkHealth {
    /// Dialing member.
    pub dialer: String,
    /// Accepting member.
    pub acceptor: String,
    /// Namespace (site) of the link.
    pub namespace: String,
    /// Up, Pending or Down.
    pub phase: LinkPhase,
    /// Why it is not up.
    pub message: Option<String>,
}

/// Health of one shared service in one consuming member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceHealth {
    /// `FederatedService` name.
    pub service: String,
    /// Consuming member.
    pub consumer: String,
    /// Whether the consumer can reach the service.
    pub ready: bool,
    /// Why not.
    pub message: Option<String>,
}

/// What the backend reads off the observed objects.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Health {
    /// One entry per planned link.
    pub links: Vec<LinkHealth>,
    /// One entry per (service, consumer).
    pub services: Vec<ServiceHealth>,
    /// Members whose sites are not ready yet, with the reason.
    pub members_not_ready: BTreeMap<String, String>,
}

/// A per-cluster object only one network may hold, such as Skupper's one `Site` per
/// namespace or Submariner's one `Submariner` resource per cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Singleton {
    /// Where it lives.
    pub target: Target,
    /// What it is, stable and human-readable (`Site in namespace apps`).
    pub what: String,
}

impl std::fmt::Display for Singleton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.what, self.target)
    }
}

/// What one pass reads: the network, and the member namespaces where it may hold objects
/// (those it spans now, and those it spanned before and has not yet been proven to have
/// left, from its inventory). A backend that also writes in fixed namespaces of its own
/// (Submariner's `submariner-operator`, a broker namespace) reads those as well, and says so
/// in its [`NetworkBackend::member_access`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObserveScope {
    /// The network.
    pub network: NetworkRef,
    /// Member namespaces to read, sorted.
    pub namespaces: BTreeSet<String>,
}

impl ObserveScope {
    /// A scope over `namespaces`.
    pub fn new<I, S>(network: NetworkRef, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            network,
            namespaces: namespaces.into_iter().map(Into::into).collect(),
        }
    }
}

/// Where an [`AccessRule`] applies in a member.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum AccessScope {
    /// In each namespace the member's networks span.
    NetworkNamespaces,
    /// In one fixed namespace the backend owns (Submariner's `submariner-operator`).
    Namespace(String),
    /// Across the cluster: cluster-scoped kinds (creating a backend's own namespace), or a
    /// backend that does not read namespace by namespace yet. Listed by `fedctl join`.
    Cluster,
}

/// Verbs on resources of one API group, granted in a scope: one rule of a Role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccessRule {
    /// API group (`""` for the core group).
    pub api_group: String,
    /// Plural resource names.
    pub resources: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Only these objects (RBAC `resourceNames`); empty: any.
    pub resource_names: Vec<String>,
    /// Where.
    pub scope: AccessScope,
}

/// A network backend. Implementations are `Send + Sync` and shared behind an `Arc`.
#[cfg_attr(any(test, feature = "mockall"), mockall::automock)]
#[async_trait]
pub trait NetworkBackend: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Backend-specific checks of a plan (pure). An empty list means it can be served.
    /// The engine has already checked the plan against [`Self::capabilities`].
    fn validate(&self, plan: &NetworkPlan) -> Vec<ValidationIssue>;

    /// Every target the plan touches (pure).
    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target>;

    /// The desired objects per target (pure). `observed` carries what was read from the
    /// targets this pass (e.g. a site's resolved endpoints), so rendering can depend on it;
    /// a target missing from `observed` could not be read and should still be rendered from
    /// what is known, or left out.
    fn render(
        &self,
        plan: &NetworkPlan,
        observed: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError>;

    /// Per-link and per-service health, read off observed objects (pure). Stale or missing
    /// state is never reported as healthy.
    fn assess(&self, plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health;

    /// Reads everything the network owns on `target` (by ownership label) in the scope's
    /// namespaces, plus whatever else rendering needs from it. Kubernetes backends read
    /// namespace by namespace, never cluster-wide, so the namespaced access of
    /// [`Self::member_access`] is enough.
    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError>;

    /// Creates or updates `objects` on `target` (server-side apply for Kubernetes targets).
    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError>;

    /// Deletes `objects` from `target`, each only if it still has the observed uid; objects
    /// already gone count as deleted.
    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError>;

    /// Whether removing this no-longer-desired object must wait until the planned links of
    /// its target are up (make before break). Link credentials and links say yes; a
    /// service's listener, say, need not wait.
    fn waits_for_links(&self, key: &ObjectKey) -> bool;

    /// The targets on a registered member where this backend may have written, searched by
    /// ownership label when a network's inventory was lost (pure).
    fn candidate_targets(&self, member: &str) -> Vec<Target> {
        vec![Target::Member(member.to_owned())]
    }

    /// Per-cluster objects the plan needs that only one network may hold (pure).
    fn singletons(&self, _plan: &NetworkPlan) -> Vec<Singleton> {
        Vec::new()
    }

    /// Order of deletions within a target, lower first: what uses an object goes before it
    /// (a Link before the Secret it names, the Site last) (pure).
    fn deletion_order(&self, _key: &ObjectKey) -> u8 {
        0
    }

    /// What the backend's identity in a member must be allowed to do there (pure): the
    /// source of the Roles `fedctl join` creates, of `deploy/member-rbac/` and of the checks
    /// `fedctl doctor` runs. Backends without member clusters as targets need nothing.
    fn member_access(&self) -> Vec<AccessRule> {
        Vec::new()
    }

    /// The kinds the backend owns in member (and broker) clusters, each once: watched so a
    /// change to one triggers a pass of its network (pure). None for controller targets.
    fn member_kinds(&self) -> Vec<crate::kubernetes::ManagedKind> {
        Vec::new()
    }

    /// Fixed namespaces the backend writes in besides the network's own (Submariner's
    /// `submariner-operator`), read and watched there too (pure).
    fn own_namespaces(&self) -> Vec<String> {
        Vec::new()
    }

    /// When a target is cleaned up relative to the others: lower phases first; a target of
    /// phase `p` loses objects only once every target of a lower phase holds none (pure).
    fn teardown_phase(&self, _target: &Target) -> u8 {
        0
    }
}

/// Checks a plan against a backend's capabilities (pure).
pub fn check_capabilities(caps: &Capabilities, plan: &NetworkPlan) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    if !caps.topologies.contains(&plan.topology_kind) {
        issues.push(ValidationIssue {
            field: "spec.topology.type".into(),
            message: format!(
                "this backend cannot realise a {:?} topology",
                plan.topology_kind
            ),
        });
    }
    if !caps.link_costs && plan.topology.links.iter().any(|l| l.cost != 1) {
        issues.push(ValidationIssue {
            field: "spec.topology".into(),
            message: "this backend does not support link costs; remove them or use cost 1".into(),
        });
    }
    let overlap = (!caps.overlapping_cidrs)
        .then(|| plan.overlapping_cidrs().into_iter().next())
        .flatten();
    if let Some((a, b, cidr)) = overlap {
        issues.push(ValidationIssue {
            field: "spec.members".into(),
            message: format!("members {a} and {b} overlap in {cidr}; this backend cannot connect overlapping CIDRs"),
        });
    }
    issues
}

/// Reason of a shared service refused because its backend cannot restrict consumers.
pub const CONSUMERS_UNSUPPORTED: &str = "ConsumersUnsupported";

/// Moves the shared services a backend cannot serve from `plan.services` to
/// `plan.rejected_services`, each with the reason (pure). Today: a service restricted to
/// some consumers, on a backend without [`Capabilities::restricted_consumers`].
pub fn refuse_unservable_services(caps: &Capabilities, plan: &mut NetworkPlan) {
    if caps.restricted_consumers {
        return;
    }
    let members: BTreeSet<&str> = plan.members.iter().map(|m| m.name.as_str()).collect();
    let (kept, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.services)
        .into_iter()
        .partition(|s| {
            let consumers: BTreeSet<&str> = s.consumers.iter().map(String::as_str).collect();
            consumers == members
        });
    plan.services = kept;
    for s in refused {
        plan.rejected_services.push(RejectedService {
            name: s.name,
            reason: CONSUMERS_UNSUPPORTED.into(),
            message: format!(
                "the {} backend shares a service with every member of the network; it cannot restrict it to {}: remove spec.consumers",
                plan.backend.kind,
                s.consumers.join(", ")
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConsumerSelection;
    use crate::fixtures::{full_mesh, network, plan_of, service};

    fn caps(restricted_consumers: bool) -> Capabilities {
        Capabilities {
            layer: Layer::L3,
            overlapping_cidrs: true,
            link_costs: false,
            encryption: true,
            needs_broker: true,
            topologies: vec![TopologyKind::FullMesh],
            restricted_consumers,
        }
    }

    #[test]
    fn services_for_some_consumers_are_refused_only_where_the_backend_cannot_restrict() {
        let net = network("prod", &["a", "b", "c"], full_mesh());
        let everyone = service("everyone", "prod", "a");
        let mut some = service("some", "prod", "a");
        some.spec.consumers = Some(ConsumerSelection {
            names: vec!["b".into()],
            selector: None,
        });
        let mut all_named = service("all-named", "prod", "a");
        all_named.spec.consumers = Some(ConsumerSelection {
            names: vec!["a".into(), "b".into(), "c".into()],
            selector: None,
        });
        let services = [everyone, some, all_named];
        let planned = plan_of(&net, &["a", "b", "c"], &services);

        let mut plan = planned.clone();
        refuse_unservable_services(&caps(true), &mut plan);
        assert_eq!(
            plan, planned,
            "a backend that can restrict consumers serves all"
        );

        let mut plan = planned;
        refuse_unservable_services(&caps(false), &mut plan);
        let served: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(served, ["all-named", "everyone"]);
        assert_eq!(plan.rejected_services.len(), 1);
        assert_eq!(plan.rejected_services[0].name, "some");
        assert_eq!(plan.rejected_services[0].reason, CONSUMERS_UNSUPPORTED);
    }
}

//! # federation-submariner
//!
//! The Submariner backend of fednet. A network names a broker (`spec.backend.submariner.broker`,
//! a `MemberCluster`); fednet keeps the broker's namespace, client Role and `Broker` resource
//! there, and per member a ServiceAccount `cluster-<clusterId>` with a token. Each member is
//! joined with a broker connection Secret, the network's IPsec PSK Secret and a `Submariner`
//! resource for the Submariner operator; each shared service becomes an MCS `ServiceExport`
//! in its exporters, which Lighthouse imports in every other member.
//!
//! # Tokens
//! Broker tokens are minted with the TokenRequest API (not long-lived token Secrets): they
//! expire ([`render::TOKEN_LIFETIME_SECS`]), are renewed once a third of their life is
//! left (the old one stays valid meanwhile, so members never go without), need no
//! kube-controller-manager on the broker, and are bound to their Secret on the broker, so
//! deleting that Secret revokes the token at once.
//!
//! Rendering and health assessment are pure ([`render::render`], [`assess::assess`]); the
//! effects go through `federation_core::kubernetes` with server-side apply, one field manager
//! and the network's ownership labels.

pub mod assess;
pub mod globalnet;
mod hub;
pub mod kinds;
pub mod names;
mod read;
pub mod render;
mod token;
pub mod validate;

use async_trait::async_trait;
use federation_core::api::{BackendKind, TopologyKind};
use federation_core::backend::{
    AccessRule, AccessScope, BackendError, Capabilities, Deletion, DesiredObject, DesiredState,
    Health, Layer, NetworkBackend, ObjectKey, ObserveScope, Observed, ObservedObject, Singleton,
    Target, ValidationIssue,
};
use federation_core::cluster::MemberRegistry;
use federation_core::kubernetes::{apply_objects, delete_objects, read_owned, target_client};
use federation_core::plan::NetworkPlan;
use kinds::{
    ALL, BROKER_NAMESPACE, BROKER_OWNED, CLUSTER, ENDPOINT, ENDPOINT_SLICE, GATEWAY, MEMBER_OWNED,
    NAMESPACE, OPERATOR_NAMESPACE, SERVICE_IMPORT, SUBMARINER,
};
use kube::Client;
use kube::api::ListParams;
use read::{get_cluster_scoped, list_unowned};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock, so tests can move time (token renewal) without waiting.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The Submariner backend.
pub struct SubmarinerBackend {
    registry: Arc<MemberRegistry>,
    clock: Clock,
}

impl SubmarinerBackend {
    /// A backend reaching members (and the broker) through `registry`, and the hub through
    /// the registry's hub client.
    pub fn new(registry: Arc<MemberRegistry>) -> Self {
        Self {
            registry,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// The same backend reading time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> u64 {
        (self.clock)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    }

    async fn client(&self, target: &Target) -> Result<Client, BackendError> {
        target_client(&self.registry, target, "Submariner").await
    }

    async fn observe_member(
        &self,
        client: &Client,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Vec<ObservedObject>, BackendError> {
        // The network's namespaces (its ServiceExports) and the operator's (the join).
        let mut scope = scope.clone();
        scope.namespaces.insert(OPERATOR_NAMESPACE.to_owned());
        let mut objects = read_owned(&self.registry, client, target, MEMBER_OWNED, &scope).await?;
        if !objects
            .iter()
            .any(|o| o.key.kind == NAMESPACE.kind && o.key.name == OPERATOR_NAMESPACE)
        {
            objects
                .extend(get_cluster_scoped(client, target, &NAMESPACE, OPERATOR_NAMESPACE).await?);
        }
        // Read for health: the gateways, and what Lighthouse imported.
        objects.extend(
            list_unowned(
                client,
                target,
                &GATEWAY,
                Some(OPERATOR_NAMESPACE),
                &ListParams::default(),
            )
            .await?,
        );
        objects.extend(
            list_unowned(
                client,
                target,
                &SERVICE_IMPORT,
                None,
                &ListParams::default(),
            )
            .await?,
        );
        let slices = ListParams::default().labels(assess::SOURCE_CLUSTER_LABEL);
        objects.extend(list_unowned(client, target, &ENDPOINT_SLICE, None, &slices).await?);
        Ok(objects)
    }

    async fn observe_broker(
        &self,
        client: &Client,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Vec<ObservedObject>, BackendError> {
        let network = &scope.network;
        let broker_scope = ObserveScope::new(network.clone(), [BROKER_NAMESPACE]);
        let mut objects =
            read_owned(&self.registry, client, target, BROKER_OWNED, &broker_scope).await?;
        let namespace_is_ours = objects
            .iter()
            .any(|o| o.key.kind == NAMESPACE.kind && o.key.name == BROKER_NAMESPACE);
        if namespace_is_ours {
            // The gateways' Cluster and Endpoint objects outlive their gateways (a known
            // upstream leftover). In the network's own broker namespace, those of a cluster
            // that no longer has its ServiceAccount there (it left) are the network's to
            // remove.
            let accounts: BTreeSet<String> = objects
                .iter()
                .filter(|o| o.owned && o.key.kind == kinds::SERVICE_ACCOUNT.kind)
                .filter_map(|o| names::cluster_of_account(&o.key.name).map(str::to_owned))
                .collect();
            for kind in [&CLUSTER, &ENDPOINT] {
                for mut o in list_unowned(
                    client,
                    target,
                    kind,
                    Some(BROKER_NAMESPACE),
                    &ListParams::default(),
                )
                .await?
                {
                    let cluster = o.body["spec"]["cluster_id"].as_str().unwrap_or_default();
                    o.owned = !cluster.is_empty() && !accounts.contains(cluster);
                    objects.push(o);
                }
            }
        }
        objects.push(hub::network_psk(self.registry.hub(), network).await?);
        Ok(objects)
    }
}

/// What Submariner offers: L3 pod and service connectivity through encrypted gateway
/// tunnels, a broker, only a full mesh, no link costs, overlapping CIDRs only with Globalnet
/// (checked by [`validate::validate`]), and services shared with the whole cluster set.
pub fn capabilities() -> Capabilities {
    Capabilities {
        layer: Layer::L3,
        overlapping_cidrs: true,
        link_costs: false,
        encryption: true,
        needs_broker: true,
        topologies: vec![TopologyKind::FullMesh],
        restricted_consumers: false,
    }
}

/// What fednet's identity needs in a member or broker cluster for Submariner: cluster-wide
/// (`deploy/member-rbac/submariner.yaml` is the same list; a test keeps them equal). Wider
/// than Skupper's: the backend makes the operator's and the broker's namespaces, mints broker
/// tokens and binds the broker client Role, and reads imports and slices across namespaces.
/// Narrowing it to namespaced Roles is future work.
pub fn member_access() -> Vec<AccessRule> {
    const ALL_VERBS: &[&str] = &[
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    const READ: &[&str] = &["get", "list", "watch"];
    let rule = |group: &str, resources: &[&str], verbs: &[&str], names: &[&str]| AccessRule {
        api_group: group.to_owned(),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names: names.iter().map(|n| (*n).to_owned()).collect(),
        scope: AccessScope::Cluster,
    };
    vec![
        rule(
            "",
            &["namespaces", "secrets", "serviceaccounts"],
            ALL_VERBS,
            &[],
        ),
        rule("", &["serviceaccounts/token"], &["create"], &[]),
        rule(
            "rbac.authorization.k8s.io",
            &["roles", "rolebindings"],
            ALL_VERBS,
            &[],
        ),
        rule(
            "rbac.authorization.k8s.io",
            &["roles"],
            &["bind", "escalate"],
            &[kinds::BROKER_CLIENT_ROLE],
        ),
        rule(
            "submariner.io",
            &["submariners", "brokers", "clusters", "endpoints"],
            ALL_VERBS,
            &[],
        ),
        rule("submariner.io", &["gateways"], READ, &[]),
        rule("multicluster.x-k8s.io", &["serviceexports"], ALL_VERBS, &[]),
        rule("multicluster.x-k8s.io", &["serviceimports"], READ, &[]),
        rule("discovery.k8s.io", &["endpointslices"], READ, &[]),
    ]
}

#[async_trait]
impl NetworkBackend for SubmarinerBackend {
    fn member_access(&self) -> Vec<AccessRule> {
        member_access()
    }

    fn member_kinds(&self) -> Vec<federation_core::kubernetes::ManagedKind> {
        let mut kinds = MEMBER_OWNED.to_vec();
        for k in BROKER_OWNED {
            if !kinds.contains(k) {
                kinds.push(k.clone());
            }
        }
        kinds
    }

    fn own_namespaces(&self) -> Vec<String> {
        vec![OPERATOR_NAMESPACE.to_owned(), BROKER_NAMESPACE.to_owned()]
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Submariner
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn validate(&self, plan: &NetworkPlan) -> Vec<ValidationIssue> {
        validate::validate(plan)
    }

    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target> {
        plan.members
            .iter()
            .map(|m| Target::Member(m.name.clone()))
            .chain(render::broker_target(plan))
            .collect()
    }

    fn render(
        &self,
        plan: &NetworkPlan,
        observed: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError> {
        Ok(render::render(plan, observed, self.now()))
    }

    fn assess(&self, plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
        assess::assess(plan, observed)
    }

    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        let client = self.client(target).await?;
        let mut objects = match target {
            Target::Broker(_) => self.observe_broker(&client, target, scope).await?,
            _ => self.observe_member(&client, target, scope).await?,
        };
        // A namespace Kubernetes is already removing needs nothing more from fednet (its
        // contents go with it); counting it would hold a teardown until it is gone.
        for o in &mut objects {
            if o.key.kind == NAMESPACE.kind && !o.body["metadata"]["deletionTimestamp"].is_null() {
                o.owned = false;
            }
        }
        Ok(Observed::of(objects))
    }

    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        let client = self.client(target).await?;
        for object in objects {
            match token::mint_request(object) {
                Some(account) => {
                    let broker = target.member().unwrap_or_default();
                    let endpoint = hub::broker_endpoint(self.registry.hub(), broker).await?;
                    token::mint(&client, target, object, account, &endpoint, self.now()).await?;
                }
                None => apply_objects(&client, target, ALL, std::slice::from_ref(object)).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        let client = self.client(target).await?;
        let mut ordered = objects.to_vec();
        ordered.sort_by_key(|d| self.deletion_order(&d.key));
        for d in &ordered {
            if d.key.kind == NAMESPACE.kind && d.key.name == OPERATOR_NAMESPACE {
                // The operator's cleanup creates uninstall workloads in this namespace: it
                // must not be terminating before the operator released the Submariner.
                let left = list_unowned(
                    &client,
                    target,
                    &SUBMARINER,
                    Some(OPERATOR_NAMESPACE),
                    &ListParams::default(),
                )
                .await?;
                if !left.is_empty() {
                    return Err(BackendError::Other(format!(
                        "{target}: namespace {OPERATOR_NAMESPACE} is kept until the Submariner operator has finished its cleanup"
                    )));
                }
            }
            delete_objects(&client, target, ALL, std::slice::from_ref(d)).await?;
        }
        Ok(())
    }

    fn waits_for_links(&self, key: &ObjectKey) -> bool {
        // Exports and the gateways' leftovers carry no connectivity; the join and its
        // credentials do.
        !matches!(key.kind.as_str(), "ServiceExport" | "Cluster" | "Endpoint")
    }

    fn candidate_targets(&self, member: &str) -> Vec<Target> {
        vec![
            Target::Member(member.to_owned()),
            Target::Broker(member.to_owned()),
        ]
    }

    fn singletons(&self, plan: &NetworkPlan) -> Vec<Singleton> {
        // The operator reconciles one Submariner per cluster, and a broker namespace serves
        // one cluster set.
        let mut out: Vec<Singleton> = plan
            .members
            .iter()
            .map(|m| Singleton {
                target: Target::Member(m.name.clone()),
                what: format!(
                    "the Submariner join ({OPERATOR_NAMESPACE}/{})",
                    kinds::SUBMARINER_NAME
                ),
            })
            .collect();
        out.extend(render::broker_target(plan).map(|target| Singleton {
            target,
            what: format!("the Submariner broker (namespace {BROKER_NAMESPACE})"),
        }));
        out
    }

    fn deletion_order(&self, key: &ObjectKey) -> u8 {
        // Exports first; then the join, whose finalizer the operator releases after its
        // cleanup; then credentials; the namespaces last.
        match key.kind.as_str() {
            "ServiceExport" => 0,
            "Submariner" => 1,
            "Secret" | "ServiceAccount" | "RoleBinding" | "Cluster" | "Endpoint" => 2,
            "Broker" | "Role" => 3,
            _ => 4,
        }
    }

    fn teardown_phase(&self, target: &Target) -> u8 {
        // Members leave the broker before the broker goes.
        match target {
            Target::Broker(_) => 1,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests;

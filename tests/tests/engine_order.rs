//! Ordered teardown and operations in flight, on real control planes: a small backend over
//! ConfigMaps shaped like Submariner's (objects in each member, and per member one object on a
//! broker that must outlive the member's own) drives the real engine against three real API
//! servers. Only the backend is a test fixture; every read and write goes to kube-apiserver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use federation_core::api::{BackendKind, TopologyKind};
use federation_core::backend::{
    BackendError, Capabilities, Deletion, DesiredObject, DesiredState, Health, Layer,
    NetworkBackend, ObjectKey, ObserveScope, Observed, Operation, Target, ValidationIssue,
};
use federation_core::engine::{Engine, EngineConfig, TargetOutcome};
use federation_core::kubernetes::{ManagedKind, apply_objects, delete_objects, list_owned};
use federation_core::plan::{NetworkPlan, PlanInput, plan};
use federation_testkit::ControlPlanes;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const CONFIG_MAP: ManagedKind = ManagedKind::namespaced("v1", "ConfigMap", "configmaps");
/// Label of a ConfigMap that stands for an operation still running on a target.
const OPERATION: &str = "test.fednet.io/operation";

struct BrokeredBackend {
    clients: BTreeMap<Target, Client>,
    namespace: String,
    data: String,
}

impl BrokeredBackend {
    fn client(&self, t: &Target) -> Result<&Client, BackendError> {
        self.clients.get(t).ok_or_else(|| BackendError::Gone {
            target: t.to_string(),
            reason: "unknown".into(),
        })
    }

    fn object(&self, plan: &NetworkPlan, name: &str) -> DesiredObject {
        DesiredObject::new(
            ObjectKey::namespaced("v1", "ConfigMap", &self.namespace, name),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": self.namespace,
                                "labels": plan.network.ownership_labels()},
                   "data": {"v": self.data}}),
        )
    }
}

fn broker() -> Target {
    Target::Broker("hub".into())
}

#[async_trait]
impl NetworkBackend for BrokeredBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Submariner
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            layer: Layer::L3,
            overlapping_cidrs: true,
            link_costs: false,
            encryption: true,
            needs_broker: true,
            topologies: vec![TopologyKind::FullMesh],
            restricted_consumers: true,
        }
    }
    fn validate(&self, _: &NetworkPlan) -> Vec<ValidationIssue> {
        Vec::new()
    }
    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target> {
        let mut t: BTreeSet<Target> = plan
            .members
            .iter()
            .map(|m| Target::Member(m.name.clone()))
            .collect();
        t.insert(broker());
        t
    }
    fn render(
        &self,
        plan: &NetworkPlan,
        _: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError> {
        let mut d = DesiredState::default();
        for m in &plan.members {
            d.push(Target::Member(m.name.clone()), self.object(plan, "joined"));
            d.push(broker(), self.object(plan, &format!("cluster-{}", m.name)));
        }
        Ok(d)
    }
    fn assess(&self, _: &NetworkPlan, _: &BTreeMap<Target, Observed>) -> Health {
        Health::default()
    }
    async fn observe(&self, t: &Target, scope: &ObserveScope) -> Result<Observed, BackendError> {
        let client = self.client(t)?;
        // This backend writes in a namespace of its own (as Submariner does in
        // `submariner-operator`), not in the network's: it reads there.
        let own = ObserveScope::new(scope.network.clone(), [self.namespace.clone()]);
        let objects = list_owned(client, t, &[CONFIG_MAP], &own).await?;
        let running = Api::<ConfigMap>::namespaced(client.clone(), &self.namespace)
            .list(&ListParams::default().labels(OPERATION))
            .await
            .map_err(|e| BackendError::Other(e.to_string()))?;
        let operations = running
            .items
            .iter()
            .map(|o| Operation {
                id: o.name_any(),
                description: "join".into(),
            })
            .collect();
        Ok(Observed {
            objects,
            operations,
        })
    }
    async fn apply(&self, t: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        apply_objects(self.client(t)?, t, &[CONFIG_MAP], objects).await
    }
    async fn delete(&self, t: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        delete_objects(self.client(t)?, t, &[CONFIG_MAP], objects).await
    }
    fn waits_for_links(&self, _: &ObjectKey) -> bool {
        false
    }
    fn teardown_phase(&self, t: &Target) -> u8 {
        u8::from(matches!(t, Target::Broker(_)))
    }
}

fn plan_of(members: &[&str]) -> NetworkPlan {
    let net: federation_core::api::FederatedNetwork = serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": "net", "namespace": "fednet"},
        "spec": {"backend": {"type": "Submariner", "submariner": {"broker": "hub"}},
                 "members": {"names": members}, "namespaces": ["apps"],
                 "topology": {"type": "FullMesh"}}}))
    .unwrap();
    let mcs: Vec<federation_core::api::MemberCluster> = members
        .iter()
        .map(|m| {
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": m},
                "spec": {"clusterId": m, "kubeconfigSecretRef": {"namespace": "x", "name": "y"}}}))
            .unwrap()
        })
        .collect();
    plan(PlanInput {
        network: &net,
        member_clusters: &mcs,
        services: &[],
        unhealthy: &BTreeSet::new(),
    })
    .unwrap()
}

async fn names_on(client: &Client, ns: &str) -> BTreeSet<String> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("fednet.io/network"))
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_leave_before_the_broker_and_running_operations_hold_writes() {
    let planes = ControlPlanes::builder().clusters(3).start().await.unwrap();
    let ns = planes.shared_test_namespace().await.unwrap();
    let [hub, a, b] = [0, 1, 2].map(|i| planes.clusters()[i].client());
    let backend = |data: &str| BrokeredBackend {
        clients: BTreeMap::from([
            (broker(), hub.clone()),
            (Target::Member("a".into()), a.clone()),
            (Target::Member("b".into()), b.clone()),
        ]),
        namespace: ns.clone(),
        data: data.into(),
    };
    let config = EngineConfig {
        target_timeout: Duration::from_secs(3),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    let engine = Engine::new(std::sync::Arc::new(backend("1")), config.clone());
    let both = plan_of(&["a", "b"]);
    let recorded: BTreeSet<Target> = [
        broker(),
        Target::Member("a".into()),
        Target::Member("b".into()),
    ]
    .into();
    engine.reconcile(&both, &recorded).await;
    assert!(engine.reconcile(&both, &recorded).await.is_converged());
    assert_eq!(
        names_on(&hub, &ns).await,
        BTreeSet::from(["cluster-a".to_owned(), "cluster-b".to_owned()])
    );

    // An operation runs in b: b gets no write (not even the new data) and is not converged.
    let running: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "join-job", "labels": {OPERATION: "running"}}}))
    .unwrap();
    let b_maps = Api::<ConfigMap>::namespaced(b.clone(), &ns);
    b_maps
        .create(&PostParams::default(), &running)
        .await
        .unwrap();
    let version = b_maps.get("joined").await.unwrap().resource_version();
    let engine = Engine::new(std::sync::Arc::new(backend("2")), config.clone());
    let report = engine.reconcile(&both, &recorded).await;
    assert!(matches!(
        &report.targets[&Target::Member("b".into())].outcome,
        TargetOutcome::InFlight { operations } if operations[0].contains("join-job")
    ));
    assert!(!report.is_converged());
    assert_eq!(
        b_maps.get("joined").await.unwrap().resource_version(),
        version
    );
    b_maps
        .delete("join-job", &Default::default())
        .await
        .unwrap();
    engine.reconcile(&both, &recorded).await;
    assert_eq!(
        b_maps.get("joined").await.unwrap().data.unwrap()["v"],
        "2",
        "written once the operation finished"
    );

    // b leaves while its API server hangs: the broker keeps b's object until b is clean.
    let only_a = plan_of(&["a"]);
    planes.clusters()[2].pause().unwrap();
    let report = engine.reconcile(&only_a, &recorded).await;
    assert!(names_on(&hub, &ns).await.contains("cluster-b"));
    assert_eq!(report.targets[&broker()].orphans_waiting, 1);
    planes.clusters()[2].resume().unwrap();
    engine.reconcile(&only_a, &recorded).await;
    assert!(names_on(&b, &ns).await.is_empty(), "b cleaned first");
    engine.reconcile(&only_a, &recorded).await;
    assert_eq!(
        names_on(&hub, &ns).await,
        BTreeSet::from(["cluster-a".to_owned()]),
        "then the broker's object for b"
    );

    // Teardown while a hangs: the broker is not touched until a is clean.
    planes.clusters()[1].pause().unwrap();
    let network = only_a.observe_scope();
    let report = engine.teardown(&network, &recorded).await;
    assert!(!report.is_complete());
    assert!(
        report.targets[&broker()]
            .as_ref()
            .is_err_and(|e| e.contains("phase 0"))
    );
    assert_eq!(names_on(&hub, &ns).await.len(), 1, "the broker waits");
    planes.clusters()[1].resume().unwrap();
    let report = engine.teardown(&network, &recorded).await;
    assert!(report.is_complete(), "{report:?}");
    for c in [&hub, &a, &b] {
        assert!(names_on(c, &ns).await.is_empty());
    }
}

//! The harness of the Skupper end-to-end tests: a hub and three member clusters on real control
//! planes, the members registered on the hub through kubeconfig Secrets, the Skupper controller
//! double acting in the members, and the controller functions driven pass by pass.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness: a failed step is a failed test"
)]

use federation_core::api::{
    BackendKind, FederatedNetwork, FederatedService, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    MemberCluster, NETWORK_LABEL, REACHABLE, crds,
};
use federation_core::cluster::MemberRegistry;
use federation_core::controller::{Context, ControllerError, reconcile_member, reconcile_network};
use federation_core::engine::{Engine, EngineConfig};
use federation_core::plan::NetworkRef;
use federation_skupper::{SkupperBackend, kinds, names};
use federation_testkit::doubles::skupper::{SimulatedSite, SkupperControllerDouble};
use federation_testkit::{Cluster, ControlPlanes, Upstream, upstream_crds};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The member clusters, in cluster order (clusters 1, 2, 3; cluster 0 is the hub).
pub const MEMBERS: [&str; 3] = ["central", "east", "west"];

/// How long a network may take to converge.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(90);

/// An object in a member: (kind, namespace, name).
pub type Key = (String, String, String);

/// Objects per member.
pub type Objects = BTreeMap<String, BTreeSet<Key>>;

/// A running federation: hub, members, double and controller context.
pub struct SkupperEnv {
    /// The control planes (the double is stopped before they go).
    pub planes: ControlPlanes,
    /// Hub client.
    pub hub: Client,
    /// Hub namespace of the networks, services and kubeconfig Secrets.
    pub hub_ns: String,
    /// What the controller functions share.
    pub ctx: Arc<Context>,
    double: Option<SkupperControllerDouble>,
}

impl Drop for SkupperEnv {
    fn drop(&mut self) {
        // Stop polling before the API servers go away.
        self.double.take();
    }
}

/// A key.
pub fn key(kind: &str, ns: &str, name: &str) -> Key {
    (kind.to_owned(), ns.to_owned(), name.to_owned())
}

impl SkupperEnv {
    /// Starts four clusters, installs the fednet CRDs in the hub and Skupper's in the members,
    /// registers the members and starts the double.
    pub async fn start() -> Self {
        let planes = ControlPlanes::builder()
            .clusters(4)
            .start()
            .await
            .expect("control planes start");
        let skupper = upstream_crds(&[Upstream::Skupper]).unwrap();
        let hub_cluster = &planes.clusters()[0];
        futures::future::try_join_all(
            planes.clusters()[1..]
                .iter()
                .map(|c| c.install_crds(&skupper)),
        )
        .await
        .unwrap();
        hub_cluster.install_crds(&crds()).await.unwrap();
        let hub = hub_cluster.client();
        let hub_ns = hub_cluster.test_namespace().await.unwrap();
        for (name, cluster) in MEMBERS.iter().zip(&planes.clusters()[1..]) {
            register(&hub, &hub_ns, name, cluster).await;
        }
        let registry = Arc::new(MemberRegistry::new(hub.clone()));
        let config = EngineConfig {
            target_timeout: Duration::from_secs(3),
            max_attempts: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..EngineConfig::default()
        };
        let engine = Engine::new(Arc::new(SkupperBackend::new(registry.clone())), config);
        let mut ctx = Context::new(
            hub.clone(),
            registry,
            BTreeMap::from([(BackendKind::Skupper, engine)]),
        );
        ctx.timing.probe_timeout = Duration::from_secs(2);
        ctx.recorder = Some(kube::runtime::events::Recorder::new(
            hub.clone(),
            kube::runtime::events::Reporter {
                controller: "fednet-tests".into(),
                instance: None,
            },
        ));
        // Passes come back to back here: the failure threshold (three probes) alone decides
        // when a hung member is planned as unhealthy.
        ctx.timing.probe_failure_min_duration = Duration::ZERO;
        let double = SkupperControllerDouble::spawn(
            MEMBERS
                .iter()
                .zip(&planes.clusters()[1..])
                .map(|(name, c)| SimulatedSite {
                    cluster: (*name).to_owned(),
                    client: c.client(),
                })
                .collect(),
        );
        Self {
            planes,
            hub,
            hub_ns,
            ctx: Arc::new(ctx),
            double: Some(double),
        }
    }

    /// The Skupper controller double, for the faults it can inject.
    pub fn double(&self) -> &SkupperControllerDouble {
        self.double
            .as_ref()
            .expect("the double runs while the env lives")
    }

    /// The uid of every labelled object of the network in `members`.
    pub async fn uids(&self, network: &str, members: &[&str]) -> BTreeMap<(String, Key), String> {
        self.labelled(network, members)
            .await
            .into_iter()
            .flat_map(|(m, objects)| {
                objects.into_iter().map(move |(k, o)| {
                    let uid = o["metadata"]["uid"].as_str().unwrap().to_owned();
                    ((m.clone(), k), uid)
                })
            })
            .collect()
    }

    /// The cluster of a member.
    pub fn member(&self, name: &str) -> &Cluster {
        let i = MEMBERS.iter().position(|m| *m == name).expect("a member");
        &self.planes.clusters()[i + 1]
    }

    /// A namespace of the same fresh name in every cluster: where a network's sites live.
    pub async fn workload_namespace(&self) -> String {
        self.planes.shared_test_namespace().await.unwrap()
    }

    /// The hub's API of networks.
    pub fn networks(&self) -> Api<FederatedNetwork> {
        Api::namespaced(self.hub.clone(), &self.hub_ns)
    }

    /// Creates a network with this spec.
    pub async fn create_network(&self, name: &str, spec: Value) {
        let net: FederatedNetwork = serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
            "metadata": {"name": name}, "spec": spec}))
        .unwrap();
        self.networks()
            .create(&PostParams::default(), &net)
            .await
            .unwrap();
    }

    /// Merge-patches a network's spec.
    pub async fn patch_network(&self, name: &str, spec: Value) {
        self.networks()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap();
    }

    /// Shares service `orders` (port `http`: 80 -> 8080) of `network` from `exporter` to all members.
    pub async fn share_orders(&self, network: &str, ns: &str, exporter: &str) {
        let svc: FederatedService = serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
            "metadata": {"name": format!("{network}-orders")},
            "spec": {"network": network, "namespace": ns, "serviceName": "orders",
                     "exporters": [{"member": exporter, "selector": {"app": "orders"}}],
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
        .unwrap();
        Api::<FederatedService>::namespaced(self.hub.clone(), &self.hub_ns)
            .create(&PostParams::default(), &svc)
            .await
            .unwrap();
    }

    /// The shared service of `network`.
    pub async fn service(&self, network: &str) -> FederatedService {
        Api::<FederatedService>::namespaced(self.hub.clone(), &self.hub_ns)
            .get(&format!("{network}-orders"))
            .await
            .unwrap()
    }

    /// The status of a member's `Reachable` condition on the hub.
    pub async fn reachable(&self, member: &str) -> Option<String> {
        let mc = Api::<MemberCluster>::all(self.hub.clone())
            .get(member)
            .await
            .unwrap();
        let status = mc.status?;
        let reachable = status.conditions.iter().find(|c| c.type_ == REACHABLE)?;
        Some(reachable.status.clone())
    }

    /// The `MemberCluster` of a member, if it exists.
    pub async fn member_cluster(&self, name: &str) -> Option<MemberCluster> {
        Api::<MemberCluster>::all(self.hub.clone())
            .get_opt(name)
            .await
            .unwrap()
    }

    /// Reasons of the Events recorded on a network.
    pub async fn event_reasons(&self, network: &str) -> Vec<String> {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.hub.clone(), &self.hub_ns);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(network))
            .filter_map(|e| e.reason)
            .collect()
    }

    /// The network, if it exists.
    pub async fn network(&self, name: &str) -> Option<FederatedNetwork> {
        self.networks().get_opt(name).await.unwrap()
    }

    /// Deletes the network (its finalizer keeps it until teardown is done).
    pub async fn delete_network(&self, name: &str) {
        self.networks()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// One pass: probe every member, then reconcile the network as it is now.
    pub async fn pass(&self, name: &str) -> Result<(), ControllerError> {
        let members = Api::<MemberCluster>::all(self.hub.clone())
            .list(&ListParams::default())
            .await
            .unwrap();
        for m in members.items {
            match reconcile_member(Arc::new(m), self.ctx.clone()).await {
                // A member being deleted waits for the networks: expected, not a failure.
                Ok(_) | Err(ControllerError::MemberInUse { .. }) => {}
                Err(e) => panic!("member pass: {e}"),
            }
        }
        match self.network(name).await {
            Some(net) => reconcile_network(Arc::new(net), self.ctx.clone())
                .await
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// Passes (with short pauses for the double) until `check` gives a value, or panics
    /// after `within` with the network's status.
    pub async fn drive_until<T>(
        &self,
        name: &str,
        what: &str,
        within: Duration,
        mut check: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let result = self.pass(name).await;
            if let Some(v) = check().await {
                return v;
            }
            if Instant::now() > deadline {
                let status = self.network(name).await.and_then(|n| n.status);
                panic!(
                    "{what}: not reached within {within:?}; last pass {result:?}; status {status:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Drives the network until it is Ready for its current generation.
    pub async fn converge(&self, name: &str) -> FederatedNetwork {
        self.drive_until(
            name,
            &format!("network {name} Ready"),
            CONVERGE_WITHIN,
            async || self.network(name).await.filter(is_ready),
        )
        .await
    }

    /// The label selector of everything a network owns.
    pub fn selector(&self, network: &str) -> String {
        format!(
            "{NETWORK_LABEL}={}.{network},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
            self.hub_ns
        )
    }

    /// Every object carrying the network's ownership labels, per member of `members`.
    pub async fn labelled(
        &self,
        network: &str,
        members: &[&str],
    ) -> BTreeMap<String, BTreeMap<Key, Value>> {
        let params = ListParams::default().labels(&self.selector(network));
        let mut out = BTreeMap::new();
        for m in members {
            out.insert((*m).to_owned(), self.list(m, None, &params).await);
        }
        out
    }

    /// Every object of the kinds the backend writes in namespace `ns` of a member, labelled or not.
    pub async fn all_in_namespace(&self, member: &str, ns: &str) -> BTreeSet<Key> {
        let objects = self.list(member, Some(ns), &ListParams::default()).await;
        objects.into_keys().collect()
    }

    async fn list(
        &self,
        member: &str,
        ns: Option<&str>,
        params: &ListParams,
    ) -> BTreeMap<Key, Value> {
        let client = self.member(member).client();
        let mut objects = BTreeMap::new();
        for kind in kinds::OWNED {
            let (group, version) = kind
                .api_version
                .rsplit_once('/')
                .unwrap_or(("", kind.api_version));
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, kind.kind),
                kind.plural,
            );
            let api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            for o in api.list(params).await.unwrap().items {
                let k = key(kind.kind, &o.namespace().unwrap_or_default(), &o.name_any());
                objects.insert(k, serde_json::to_value(&o).unwrap());
            }
        }
        objects
    }

    /// The keys of [`Self::labelled`].
    pub async fn labelled_keys(&self, network: &str, members: &[&str]) -> Objects {
        self.labelled(network, members)
            .await
            .into_iter()
            .map(|(m, o)| (m, o.into_keys().collect()))
            .collect()
    }

    /// Waits until every labelled Skupper object of the network in `members` reports ready,
    /// so the double has nothing left to write.
    pub async fn settled(&self, network: &str, members: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let objects = self.labelled(network, members).await;
            let pending: Vec<&Key> = objects
                .values()
                .flat_map(|o| o.iter())
                .filter(|(k, o)| k.0 != "Secret" && !object_ready(o))
                .map(|(k, _)| k)
                .collect();
            if pending.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "never settled: {pending:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// resourceVersions of every labelled object of the network, and of the network and its
    /// shared service on the hub.
    pub async fn versions(&self, network: &str) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .labelled(network, &MEMBERS)
            .await
            .into_iter()
            .flat_map(|(m, objects)| {
                objects.into_iter().map(move |(k, o)| {
                    let rv = o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    (format!("{m}: {k:?}"), rv)
                })
            })
            .collect();
        let net = self.network(network).await.unwrap();
        out.insert("network".into(), net.resource_version().unwrap());
        out.insert(
            "service".into(),
            self.service(network).await.resource_version().unwrap(),
        );
        out
    }

    /// What a plan with these links and this shared service (exported from `exporter`,
    /// consumed by every member) needs in each member: a Site everywhere, a Certificate in each
    /// acceptor, a Secret and a Link in each dialer, the Connector in the exporter and a
    /// Listener in every other member.
    pub fn expected(
        &self,
        network: &str,
        ns: &str,
        members: &[&str],
        links: &[(&str, &str)],
        exporter: &str,
    ) -> Objects {
        let net = NetworkRef::new(&self.hub_ns, network);
        let mut out: Objects = members
            .iter()
            .map(|m| ((*m).to_owned(), BTreeSet::new()))
            .collect();
        let mut add = |m: &str, kind: &str, name: String| {
            out.get_mut(m).unwrap().insert(key(kind, ns, &name));
        };
        let port = names::service_port(&format!("{network}-orders"), "http");
        for m in members {
            add(m, "Site", names::site(&net));
            let binding = if *m == exporter {
                "Connector"
            } else {
                "Listener"
            };
            add(m, binding, port.clone());
        }
        for (dialer, acceptor) in links {
            let name = names::link(&net, dialer, acceptor);
            add(acceptor, "Certificate", name.clone());
            add(dialer, "Secret", name.clone());
            add(dialer, "Link", name);
        }
        out
    }
}

async fn register(hub: &Client, ns: &str, name: &str, cluster: &Cluster) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(format!("{name}-kubeconfig")),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_owned(),
            ByteString(cluster.kubeconfig_yaml().as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(hub.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mc: MemberCluster = serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
        "spec": {"clusterId": name, "kubeconfigSecretRef": {"namespace": ns, "name": format!("{name}-kubeconfig")}}
    }))
    .unwrap();
    Api::<MemberCluster>::all(hub.clone())
        .create(&PostParams::default(), &mc)
        .await
        .unwrap();
}

/// Whether a network is Ready for its current generation.
pub fn is_ready(net: &FederatedNetwork) -> bool {
    condition(net, "Ready").is_some_and(|c| c.0 == "True")
        && net.status.as_ref().and_then(|s| s.observed_generation) == net.metadata.generation
}

/// (status, reason, message) of a network condition.
pub fn condition(net: &FederatedNetwork, type_: &str) -> Option<(String, String, String)> {
    net.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Whether a Skupper object reports itself ready (`status.status` or, for a Certificate, its
/// Ready condition).
pub fn object_ready(o: &Value) -> bool {
    o["status"]["status"] == "Ready"
        || o["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Whether a Link object is Operational.
pub fn operational(o: &Value) -> bool {
    o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Operational" && c["status"] == "True")
}

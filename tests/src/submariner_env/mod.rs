//! The harness of the Submariner tests: a hub that is also the broker and three members on
//! real control planes, the real Submariner operator in each of them (the broker's watching
//! the broker namespace), the real Lighthouse agent in each member once the operator rendered
//! it, and stand-ins for what nodes would do ([`node_stand_in`]). The controller functions are
//! driven pass by pass, as in the Skupper tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness: a failed step is a failed test"
)]

pub mod node_stand_in;
pub mod processes;

use crate::operator_env::{apply_json, service_account_kubeconfig};
use crate::skupper_env::is_ready;
use federation_core::api::{
    BackendKind, FederatedNetwork, FederatedService, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    MemberCluster, NETWORK_LABEL, crds,
};
use federation_core::cluster::MemberRegistry;
use federation_core::controller::{Context, ControllerError, reconcile_member, reconcile_network};
use federation_core::engine::{Engine, EngineConfig};
use federation_submariner::SubmarinerBackend;
use federation_testkit::{Cluster, ControlPlanes, Upstream, upstream_crds};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use node_stand_in::{NodeStandIns, StandInMember};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::process::Child;
use tokio::sync::Mutex;

/// The member clusters, in cluster order (clusters 1, 2, 3; cluster 0 is the hub and broker).
pub const MEMBERS: [&str; 3] = ["central", "east", "west"];
/// The `MemberCluster` naming the hub as the broker.
pub const BROKER: &str = "broker";
/// How long a network may take to converge (the operator and agents run on two shared cores).
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(180);
/// The operator's namespace in members.
pub const OPERATOR_NS: &str = "submariner-operator";
/// The broker namespace.
pub const BROKER_NS: &str = "submariner-k8s-broker";

/// A resource by group, version, kind and plural.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// `Submariner` (operator).
pub fn submariner_resource() -> ApiResource {
    resource("submariner.io", "v1alpha1", "Submariner", "submariners")
}

/// Pod and service CIDRs of the i-th member (distinct).
pub fn cidrs(i: usize) -> (String, String) {
    (
        format!("10.{}.0.0/16", i + 1),
        format!("10.{}.0.0/16", 101 + i),
    )
}

/// A running federation over Submariner.
pub struct SubmarinerEnv {
    /// Hub client.
    pub hub: Client,
    /// Hub namespace of networks, services and kubeconfig Secrets.
    pub hub_ns: String,
    /// What the controller functions share.
    pub ctx: Arc<Context>,
    /// Seconds added to the backend's clock (moves token expiry closer).
    pub clock_offset: Arc<AtomicU64>,
    /// The node stand-ins (agents among them).
    pub stand_ins: Arc<Mutex<NodeStandIns>>,
    /// Where the processes' logs and the agents' folders are.
    pub dir: PathBuf,
    stand_in_task: tokio::task::JoinHandle<()>,
    operators: Vec<Child>,
    _tmp: tempfile::TempDir,
    /// The control planes (dropped last).
    pub planes: ControlPlanes,
}

impl Drop for SubmarinerEnv {
    fn drop(&mut self) {
        self.stand_in_task.abort();
        for o in &mut self.operators {
            let _ = o.start_kill();
        }
    }
}

impl SubmarinerEnv {
    /// Starts four clusters, the operators, the stand-ins, and registers the members.
    pub async fn start() -> Self {
        let assets =
            processes::assets().expect("the Submariner binaries (hack/submariner/assets.sh)");
        let planes = ControlPlanes::builder()
            .clusters(4)
            .start()
            .await
            .expect("control planes start");
        let hub_cluster = &planes.clusters()[0];
        hub_cluster.install_crds(&crds()).await.unwrap();
        // The operator's own CRDs must exist before it starts (an installation ships them);
        // it installs the dataplane and MCS CRDs itself.
        let submariner = upstream_crds(&[Upstream::Submariner]).unwrap();
        futures::future::try_join_all(
            planes
                .clusters()
                .iter()
                .map(|c| c.install_crds(&submariner)),
        )
        .await
        .unwrap();
        let hub = hub_cluster.client();
        let hub_ns = hub_cluster.test_namespace().await.unwrap();
        register(&hub, &hub_ns, BROKER, "broker", hub_cluster, None).await;
        for (i, (name, cluster)) in MEMBERS.iter().zip(&planes.clusters()[1..]).enumerate() {
            register(&hub, &hub_ns, name, name, cluster, Some(cidrs(i))).await;
            prepare_member(cluster, &assets).await;
        }
        // FEDNET_KEEP_LOGS=1 keeps the processes' logs after the test.
        let mut tmp = tempfile::Builder::new()
            .prefix("fednet-submariner-")
            .tempdir()
            .unwrap();
        if std::env::var_os("FEDNET_KEEP_LOGS").is_some() {
            tmp.disable_cleanup(true);
        }
        let dir = tmp.path().to_path_buf();
        // Each operator binds the fixed metrics port on its own loopback address.
        let octet = std::process::id() % 250 + 1;
        let mut operators = Vec::new();
        for (i, c) in planes.clusters().iter().enumerate() {
            let (name, ns) = if i == 0 {
                ("broker", BROKER_NS)
            } else {
                (MEMBERS[i - 1], OPERATOR_NS)
            };
            let ip = format!("127.83.{octet}.{}", i + 1);
            operators.push(
                processes::start_operator(&assets, &dir, name, c.kubeconfig_path(), ns, &ip)
                    .unwrap(),
            );
        }
        let members = MEMBERS
            .iter()
            .zip(&planes.clusters()[1..])
            .enumerate()
            .map(|(i, (name, c))| {
                let url = url_host_port(c.server_url());
                StandInMember {
                    name: (*name).to_owned(),
                    cluster_id: (*name).to_owned(),
                    client: c.client_with_timeout(Duration::from_secs(2)).unwrap(),
                    host: url.0,
                    port: url.1,
                    ca_pem: c.ca_certificate_pem().to_owned(),
                    cidrs: cidrs(i),
                }
            })
            .collect();
        let stand_ins = Arc::new(Mutex::new(NodeStandIns::new(members, assets, dir.clone())));
        let task_stand_ins = stand_ins.clone();
        let stand_in_task = tokio::spawn(async move {
            loop {
                task_stand_ins.lock().await.tick().await;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        });

        let registry = Arc::new(MemberRegistry::new(hub.clone()));
        let clock_offset = Arc::new(AtomicU64::new(0));
        let offset = clock_offset.clone();
        let backend = SubmarinerBackend::new(registry.clone()).with_clock(Arc::new(move || {
            SystemTime::now() + Duration::from_secs(offset.load(Ordering::Relaxed))
        }));
        let config = EngineConfig {
            target_timeout: Duration::from_secs(5),
            max_attempts: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..EngineConfig::default()
        };
        let engine = Engine::new(Arc::new(backend), config);
        let mut ctx = Context::new(
            hub.clone(),
            registry,
            BTreeMap::from([(BackendKind::Submariner, engine)]),
        );
        ctx.timing.probe_timeout = Duration::from_secs(2);
        ctx.timing.probe_failure_min_duration = Duration::ZERO;
        ctx.recorder = Some(kube::runtime::events::Recorder::new(
            hub.clone(),
            kube::runtime::events::Reporter {
                controller: "fednet-tests".into(),
                instance: None,
            },
        ));
        Self {
            hub,
            hub_ns,
            ctx: Arc::new(ctx),
            clock_offset,
            stand_ins,
            dir,
            stand_in_task,
            operators,
            _tmp: tmp,
            planes,
        }
    }

    /// The cluster of a member (or of the broker).
    pub fn cluster(&self, name: &str) -> &Cluster {
        if name == BROKER {
            return &self.planes.clusters()[0];
        }
        let i = MEMBERS.iter().position(|m| *m == name).expect("a member");
        &self.planes.clusters()[i + 1]
    }

    /// A dynamic API of `resource` in `namespace` of cluster `name`.
    pub fn api(&self, name: &str, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.cluster(name).client(), namespace, resource)
    }

    /// The member's `Submariner`, if any.
    pub async fn submariner(&self, member: &str) -> Option<DynamicObject> {
        self.api(member, &submariner_resource(), OPERATOR_NS)
            .get_opt("submariner")
            .await
            .unwrap()
    }

    /// The hub's API of networks.
    pub fn networks(&self) -> Api<FederatedNetwork> {
        Api::namespaced(self.hub.clone(), &self.hub_ns)
    }

    /// Creates a Submariner network of `members` (a full mesh over the hub's broker) with
    /// extra `submariner` settings.
    pub async fn create_network(&self, name: &str, members: &[&str], ns: &str, settings: Value) {
        let mut submariner = json!({"broker": BROKER});
        if let (Some(s), Value::Object(extra)) = (submariner.as_object_mut(), settings) {
            s.extend(extra);
        }
        let net: FederatedNetwork = serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork", "metadata": {"name": name},
            "spec": {"backend": {"type": "Submariner", "submariner": submariner}, "members": {"names": members},
                     "namespaces": [ns], "topology": {"type": "FullMesh"}}}))
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

    /// The workload `orders` in `member`: a Service and an EndpointSlice, as a Deployment and
    /// kube-controller-manager would leave them (stand-ins for pods).
    pub async fn run_orders(&self, member: &str, ns: &str) {
        let c = self.cluster(member);
        c.create_namespace(ns).await.ok();
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders", "namespace": ns},
                         "spec": {"selector": {"app": "orders"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}});
        let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                           "metadata": {"name": "orders-pods", "namespace": ns, "labels": {"kubernetes.io/service-name": "orders"}},
                           "addressType": "IPv4",
                           "endpoints": [{"addresses": ["10.2.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false}}],
                           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]});
        let pp = PatchParams::apply("fednet-test-workload").force();
        self.api(member, &resource("", "v1", "Service", "services"), ns)
            .patch("orders", &pp, &Patch::Apply(&svc))
            .await
            .unwrap();
        self.api(
            member,
            &resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
            ns,
        )
        .patch("orders-pods", &pp, &Patch::Apply(&slice))
        .await
        .unwrap();
    }

    /// Shares `orders` of `network` from `exporter` (consumers: `consumers`, or every member).
    pub async fn share_orders(
        &self,
        network: &str,
        ns: &str,
        exporter: &str,
        consumers: Option<Value>,
    ) {
        let mut spec = json!({"network": network, "namespace": ns, "serviceName": "orders",
                              "exporters": [{"member": exporter, "selector": {"app": "orders"}}],
                              "ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
        if let Some(c) = consumers {
            spec["consumers"] = c;
        }
        let svc: FederatedService = serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
            "metadata": {"name": format!("{network}-orders")}, "spec": spec}))
        .unwrap();
        self.services()
            .create(&PostParams::default(), &svc)
            .await
            .unwrap();
    }

    /// The hub's API of shared services.
    pub fn services(&self) -> Api<FederatedService> {
        Api::namespaced(self.hub.clone(), &self.hub_ns)
    }

    /// One pass: probe every member, then reconcile the network as it is now.
    pub async fn pass(&self, name: &str) -> Result<(), ControllerError> {
        let members = Api::<MemberCluster>::all(self.hub.clone())
            .list(&ListParams::default())
            .await
            .unwrap();
        for m in members.items {
            match reconcile_member(Arc::new(m), self.ctx.clone()).await {
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

    /// Passes until `check` gives a value, or panics after `within` with the network's status.
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
                    "{what}: not reached within {within:?}; last pass {result:?}; status {status:#?}; logs in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
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

    /// Every object of the kinds fednet writes that carries the network's labels, in `cluster`.
    pub async fn labelled(&self, network: &str, cluster: &str) -> BTreeSet<String> {
        let params = ListParams::default().labels(&self.selector(network));
        let mut out = BTreeSet::new();
        for k in federation_submariner::kinds::ALL {
            let (group, version) = k
                .api_version
                .rsplit_once('/')
                .unwrap_or(("", k.api_version));
            let api: Api<DynamicObject> = Api::all_with(
                self.cluster(cluster).client(),
                &resource(group, version, k.kind, k.plural),
            );
            match api.list(&params).await {
                Ok(list) => out.extend(list.items.iter().map(|o| {
                    format!(
                        "{} {}/{}",
                        k.kind,
                        o.namespace().unwrap_or_default(),
                        o.name_any()
                    )
                })),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => panic!("list {}: {e}", k.kind),
            }
        }
        out
    }

    /// Names of the objects of `resource` in `namespace` of `cluster` (none if the kind is not
    /// installed there).
    pub async fn names(
        &self,
        cluster: &str,
        resource: &ApiResource,
        namespace: &str,
    ) -> BTreeSet<String> {
        match self
            .api(cluster, resource, namespace)
            .list(&ListParams::default())
            .await
        {
            Ok(l) => l.items.iter().map(ResourceExt::name_any).collect(),
            Err(kube::Error::Api(s)) if s.code == 404 => BTreeSet::new(),
            Err(e) => panic!("list: {e}"),
        }
    }
}

fn url_host_port(url: &str) -> (String, u16) {
    let rest = url.trim_start_matches("https://");
    let (host, port) = rest.rsplit_once(':').unwrap();
    (host.to_owned(), port.trim_end_matches('/').parse().unwrap())
}

async fn register(
    hub: &Client,
    ns: &str,
    name: &str,
    cluster_id: &str,
    cluster: &Cluster,
    cidrs: Option<(String, String)>,
) {
    // fednet reaches the cluster as a user would set it up: the ServiceAccount, ClusterRole
    // and binding of deploy/member-rbac/submariner.yaml and a token for it, not as admin.
    let kubeconfig = member_kubeconfig(name, cluster).await;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(format!("{name}-kubeconfig")),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_owned(),
            ByteString(kubeconfig.into_bytes()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(hub.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut spec = json!({"clusterId": cluster_id, "kubeconfigSecretRef": {"namespace": ns, "name": format!("{name}-kubeconfig")}});
    if let Some((pods, services)) = cidrs {
        spec["network"] = json!({"podCidrs": [pods], "serviceCidrs": [services]});
    }
    let mc: MemberCluster = serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name}, "spec": spec}))
    .unwrap();
    Api::<MemberCluster>::all(hub.clone())
        .create(&PostParams::default(), &mc)
        .await
        .unwrap();
}

/// What installing the Submariner operator in a member leaves (besides the operator process):
/// its namespace, the cluster's CoreDNS configuration it edits, and the operator's RBAC for
/// the Lighthouse agent (from the operator module, copied by `hack/submariner/assets.sh`).
async fn prepare_member(cluster: &Cluster, assets: &std::path::Path) {
    cluster.create_namespace(OPERATOR_NS).await.unwrap();
    let pp = PatchParams::apply("fednet-test-install").force();
    let coredns = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
                         "data": {"Corefile": ".:53 {\n    errors\n    forward . /etc/resolv.conf\n}\n"}});
    Api::<DynamicObject>::namespaced_with(
        cluster.client(),
        "kube-system",
        &resource("", "v1", "ConfigMap", "configmaps"),
    )
    .patch("coredns", &pp, &Patch::Apply(&coredns))
    .await
    .unwrap();
    for file in ["service_account", "cluster_role", "cluster_role_binding"] {
        let text =
            std::fs::read_to_string(assets.join(format!("rbac/lighthouse-agent/{file}.yaml")))
                .unwrap();
        let mut doc: Value = serde_yaml::from_str(&text).unwrap();
        if let Some(subjects) = doc.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                s["namespace"] = OPERATOR_NS.into();
            }
        }
        let (group, version) = doc["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .map_or(("", "v1"), |(g, v)| (g, v));
        let kind = doc["kind"].as_str().unwrap().to_owned();
        let plural = format!("{}s", kind.to_lowercase());
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        let r = resource(group, version, &kind, &plural);
        let api: Api<DynamicObject> = if kind == "ServiceAccount" {
            Api::namespaced_with(cluster.client(), OPERATOR_NS, &r)
        } else {
            Api::all_with(cluster.client(), &r)
        };
        api.patch(&name, &pp, &Patch::Apply(&doc)).await.unwrap();
    }
}

/// The member RBAC manifest for Submariner shipped in `deploy/`.
pub fn member_rbac_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/member-rbac/submariner.yaml")
}

/// Applies `deploy/member-rbac/submariner.yaml` in a cluster; a kubeconfig for its identity.
async fn member_kubeconfig(name: &str, cluster: &Cluster) -> String {
    let text = std::fs::read_to_string(member_rbac_path()).unwrap();
    let client = cluster.client();
    if cluster.create_namespace("fednet-system").await.is_err() {
        // Made already (a second registration of the same cluster).
    }
    let mut account = ("fednet-system".to_owned(), "fednet-operator".to_owned());
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
        if doc.is_null() {
            continue;
        }
        if doc["kind"] == "ServiceAccount" {
            account = (
                doc["metadata"]["namespace"].as_str().unwrap().to_owned(),
                doc["metadata"]["name"].as_str().unwrap().to_owned(),
            );
        }
        apply_json(&client, &doc).await.unwrap();
    }
    service_account_kubeconfig(cluster, name, &account.0, &account.1)
        .await
        .unwrap()
}

/// The fednet operator binary, running against the environment's hub (serving the networks
/// of the hub namespace, no leader election, fast timings); killed when dropped.
pub struct FednetOperator {
    /// The process.
    pub child: Child,
    /// Its log file.
    pub log: PathBuf,
}

impl FednetOperator {
    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl SubmarinerEnv {
    /// Starts the fednet operator binary (built if needed) on the hub, instead of driving the
    /// controller functions from the test.
    pub async fn start_fednet_operator(&self) -> anyhow::Result<FednetOperator> {
        let bin = crate::operator_env::operator_binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = self.dir.join("fednet-operator.log");
        let file = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(bin)
            .arg(format!(
                "--kubeconfig={}",
                self.cluster(BROKER).kubeconfig_path().display()
            ))
            .arg(format!("--namespace={}", self.hub_ns))
            .arg(format!("--lease-namespace={}", self.hub_ns))
            .args(["--identity=submariner-demo", "--leader-election=false"])
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .arg(format!("--health-addr=127.0.0.1:{port}"))
            .args(crate::operator_env::FAST_FLAGS)
            .env("RUST_LOG", "info,federation_core=debug")
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()?;
        Ok(FednetOperator { child, log })
    }

    /// Waits (without driving passes: the operator does) until `check` gives a value.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        mut check: impl AsyncFnMut() -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = check().await {
                return Ok(v);
            }
            if Instant::now() > deadline {
                anyhow::bail!("{what}: not reached within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The test kit on real control planes: isolation between clusters, upstream CRD schemas
//! enforced by a real API server, fault handles, and teardown.
//!
//! Needs the envtest binaries (`hack/envtest/assets.sh`).

use std::time::{Duration, Instant};

use federation_testkit::{ControlPlanes, EtcdLayout, Upstream, process_exists};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, ValidationDirective,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "data": { "written-by": "control_plane test" },
    }))
    .unwrap()
}

#[tokio::test]
async fn clusters_are_isolated_from_each_other() {
    let planes = ControlPlanes::start(3).await.unwrap();
    assert_eq!(planes.len(), 3);
    let namespace = planes.shared_test_namespace().await.unwrap();
    let [first, others @ ..] = planes.clusters() else {
        panic!("three clusters expected");
    };

    Api::<ConfigMap>::namespaced(first.client(), &namespace)
        .create(&PostParams::default(), &config_map("only-in-first"))
        .await
        .unwrap();

    for other in others {
        assert_ne!(other.server_url(), first.server_url());
        let found = Api::<ConfigMap>::namespaced(other.client(), &namespace)
            .get_opt("only-in-first")
            .await
            .unwrap();
        assert!(
            found.is_none(),
            "{} sees a ConfigMap of {}",
            other.name(),
            first.name()
        );
    }

    // The kubeconfig written to disk is self-contained and verifies the server with the test CA.
    for cluster in planes.clusters() {
        let from_file = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
        let config = Config::from_custom_kubeconfig(from_file, &KubeConfigOptions::default())
            .await
            .unwrap();
        assert!(!config.accept_invalid_certs);
        let version = Client::try_from(config)
            .unwrap()
            .apiserver_version()
            .await
            .unwrap();
        assert_eq!(version.git_version, "v1.37.2", "{}", cluster.name());
    }
}

/// A namespaced or cluster-scoped object of an upstream kind.
struct Sample {
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    name: &'static str,
    spec: Value,
}

impl Sample {
    fn api(&self, client: Client, namespace: &str) -> Api<DynamicObject> {
        let (group, version) = self.api_version.split_once('/').unwrap();
        let gvk = GroupVersionKind::gvk(group, version, self.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, self.plural);
        if self.namespaced {
            Api::namespaced_with(client, namespace, &resource)
        } else {
            Api::all_with(client, &resource)
        }
    }

    fn object(&self) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": { "name": self.name },
            "spec": self.spec,
        }))
        .unwrap()
    }
}

fn sample(
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    name: &'static str,
    spec: Value,
) -> Sample {
    Sample {
        api_version,
        kind,
        plural,
        namespaced: true,
        name,
        spec,
    }
}

/// One object of each kind a backend writes, as the backend would write it.
fn valid_samples() -> Vec<Sample> {
    const SKUPPER: &str = "skupper.io/v2alpha1";
    vec![
        sample(
            SKUPPER,
            "Site",
            "sites",
            "east",
            json!({ "linkAccess": "default", "ha": false }),
        ),
        sample(
            SKUPPER,
            "Link",
            "links",
            "to-west",
            json!({
                "endpoints": [
                    { "name": "inter-router", "host": "west.example", "port": "55671", "group": "skupper-router" },
                    { "name": "edge", "host": "west.example", "port": "45671", "group": "skupper-router" },
                ],
                "tlsCredentials": "to-west",
                "cost": 2,
            }),
        ),
        sample(
            SKUPPER,
            "Certificate",
            "certificates",
            "east-client",
            json!({
                "ca": "skupper-site-ca", "subject": "east", "client": true,
            }),
        ),
        sample(
            SKUPPER,
            "AccessGrant",
            "accessgrants",
            "for-west",
            json!({
                "redemptionsAllowed": 1, "expirationWindow": "15m",
            }),
        ),
        sample(
            SKUPPER,
            "AccessToken",
            "accesstokens",
            "from-west",
            json!({
                "url": "https://west.example:9090/0e1f", "code": "secret-code",
                "ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "linkCost": 1,
            }),
        ),
        sample(
            SKUPPER,
            "Connector",
            "connectors",
            "backend",
            json!({
                "routingKey": "backend", "port": 8080, "selector": "app=backend",
            }),
        ),
        sample(
            SKUPPER,
            "Listener",
            "listeners",
            "backend",
            json!({
                "routingKey": "backend", "host": "backend", "port": 8080,
            }),
        ),
        // The operator CR: every field BACKENDS.md lists as required, CIDRs always supplied.
        sample(
            "submariner.io/v1alpha1",
            "Submariner",
            "submariners",
            "submariner",
            json!({
                "broker": "k8s",
                "brokerK8sApiServer": "broker.example:6443",
                "brokerK8sApiServerToken": "token",
                "brokerK8sCA": "Y2E=",
                "brokerK8sRemoteNamespace": "submariner-k8s-broker",
                "brokerK8sSecret": "submariner-broker-secret",
                "ceIPSecDebug": false,
                "ceIPSecPSKSecret": "submariner-ipsec-psk",
                "cableDriver": "libreswan",
                "clusterCIDR": "10.244.0.0/16",
                "clusterID": "east",
                "debug": false,
                "namespace": "submariner-operator",
                "natEnabled": false,
                "serviceCIDR": "10.96.0.0/16",
                "serviceDiscoveryEnabled": true,
            }),
        ),
        sample(
            "submariner.io/v1alpha1",
            "Broker",
            "brokers",
            "submariner-broker",
            json!({
                "components": ["service-discovery", "connectivity"], "globalnetEnabled": false,
            }),
        ),
        // Broker-side dataplane CRDs use snake_case field names.
        sample(
            "submariner.io/v1",
            "Cluster",
            "clusters",
            "east",
            json!({
                "cluster_id": "east", "cluster_cidr": ["10.244.0.0/16"],
                "service_cidr": ["10.96.0.0/16"], "global_cidr": [], "color_codes": ["blue"],
            }),
        ),
        sample(
            "submariner.io/v1",
            "Endpoint",
            "endpoints",
            "east-submariner-cable-east-192-0-2-10",
            json!({
                "cluster_id": "east", "cable_name": "submariner-cable-east-192-0-2-10",
                "hostname": "gateway-east", "subnets": ["10.244.0.0/16", "10.96.0.0/16"],
                "private_ip": "192.0.2.10", "public_ip": "198.51.100.10", "nat_enabled": false,
                "backend": "libreswan", "backend_config": { "natt-discovery-port": "4490" },
            }),
        ),
        // Lighthouse reads v1alpha1 ServiceExports.
        sample(
            "multicluster.x-k8s.io/v1alpha1",
            "ServiceExport",
            "serviceexports",
            "backend",
            json!({}),
        ),
        Sample {
            api_version: "about.k8s.io/v1alpha1",
            kind: "ClusterProperty",
            plural: "clusterproperties",
            namespaced: false,
            name: "cluster.clusterset.k8s.io",
            spec: json!({ "value": "east" }),
        },
    ]
}

/// Objects the real schemas must reject, with a fragment of the expected message.
fn invalid_samples() -> Vec<(Sample, &'static str)> {
    const SKUPPER: &str = "skupper.io/v2alpha1";
    vec![
        (
            sample(
                SKUPPER,
                "Link",
                "links",
                "no-endpoints",
                json!({ "tlsCredentials": "x", "cost": 1 }),
            ),
            "spec.endpoints: Required value",
        ),
        (
            sample(
                SKUPPER,
                "Connector",
                "connectors",
                "string-port",
                json!({
                    "routingKey": "backend", "port": "8080", "selector": "app=backend",
                }),
            ),
            "spec.port",
        ),
        (
            sample(
                SKUPPER,
                "Listener",
                "listeners",
                "no-host",
                json!({ "routingKey": "backend", "port": 8080 }),
            ),
            "spec.host: Required value",
        ),
        (
            sample(
                "submariner.io/v1alpha1",
                "Submariner",
                "submariners",
                "incomplete",
                json!({
                    "clusterID": "east", "broker": "k8s",
                }),
            ),
            "spec.serviceCIDR: Required value",
        ),
        (
            sample(
                "submariner.io/v1",
                "Endpoint",
                "endpoints",
                "string-nat",
                json!({
                    "cluster_id": "east", "cable_name": "c", "hostname": "h", "subnets": [],
                    "private_ip": "192.0.2.1", "public_ip": "198.51.100.1", "nat_enabled": "no",
                    "backend": "libreswan",
                }),
            ),
            "spec.nat_enabled",
        ),
        (
            Sample {
                api_version: "about.k8s.io/v1alpha1",
                kind: "ClusterProperty",
                plural: "clusterproperties",
                namespaced: false,
                name: "clusterset.k8s.io",
                spec: json!({ "value": "" }),
            },
            "spec.value",
        ),
    ]
}

#[tokio::test]
async fn upstream_schemas_accept_backend_objects_and_reject_invalid_ones() {
    let planes = ControlPlanes::builder()
        .upstream_crds(&Upstream::ALL)
        .start()
        .await
        .unwrap();
    let cluster = &planes.clusters()[0];
    let namespace = cluster.test_namespace().await.unwrap();
    // Strict field validation: a field the schema does not know fails instead of being pruned,
    // so these samples also prove that every field name is right.
    let strict = PatchParams::apply("control-plane-test").validation(ValidationDirective::Strict);

    for sample in valid_samples() {
        let api = sample.api(cluster.client(), &namespace);
        let written = api
            .patch(sample.name, &strict, &Patch::Apply(sample.object()))
            .await
            .unwrap_or_else(|e| panic!("{} {} rejected: {e}", sample.kind, sample.name));
        assert_eq!(
            written.data["spec"], sample.spec,
            "{} was altered",
            sample.kind
        );
    }

    for (sample, expected) in invalid_samples() {
        let api = sample.api(cluster.client(), &namespace);
        match api.create(&PostParams::default(), &sample.object()).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(
                    status.code, 422,
                    "{} {}: {status:?}",
                    sample.kind, sample.name
                );
                assert!(
                    status.message.contains(expected),
                    "{} {}: expected {expected:?} in {:?}",
                    sample.kind,
                    sample.name,
                    status.message
                );
            }
            other => panic!("{} {} not rejected: {other:?}", sample.kind, sample.name),
        }
    }
}

#[tokio::test]
async fn fault_handles_pause_resume_kill_and_restart() {
    let planes = ControlPlanes::start(1).await.unwrap();
    let cluster = &planes.clusters()[0];
    let namespace = cluster.test_namespace().await.unwrap();
    Api::<ConfigMap>::namespaced(cluster.client(), &namespace)
        .create(&PostParams::default(), &config_map("survives-restart"))
        .await
        .unwrap();

    // Paused: the socket accepts but nothing answers, so only the client's timeout ends the call.
    let quick = cluster.client_with_timeout(Duration::from_secs(2)).unwrap();
    let namespaces = Api::<Namespace>::all(quick.clone());
    // Warm the pool: the request after the pause then waits on an open connection (a read
    // timeout), as a controller's long-lived client would.
    namespaces.get("default").await.unwrap();
    cluster.pause().unwrap();
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), namespaces.get("default"))
        .await
        .expect("the client timeout should end the request, not the test's guard");
    let error = outcome.expect_err("a paused server answered");
    eprintln!("paused server: {error} after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    cluster.resume().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match namespaces.get("default").await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("resumed server not answering yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("resumed server never answered: {e}"),
        }
    }

    let old_pid = cluster.apiserver_pid().unwrap();
    cluster.kill().await.unwrap();
    assert_eq!(cluster.apiserver_pid(), None);
    assert!(!process_exists(old_pid));
    assert!(
        namespaces.get("default").await.is_err(),
        "a killed server answered"
    );
    assert!(
        cluster.pause().is_err(),
        "pausing a killed server must fail"
    );

    cluster.restart().await.unwrap();
    assert_ne!(cluster.apiserver_pid(), Some(old_pid));
    let kept = Api::<ConfigMap>::namespaced(cluster.client(), &namespace)
        .get("survives-restart")
        .await
        .unwrap();
    assert_eq!(kept.data.unwrap()["written-by"], "control_plane test");
}

#[tokio::test]
async fn dropping_the_kit_leaves_no_process_and_no_temp_folder() {
    for layout in [EtcdLayout::Shared, EtcdLayout::PerCluster] {
        let planes = ControlPlanes::builder()
            .clusters(2)
            .etcd_layout(layout)
            .start()
            .await
            .unwrap();
        let pids: Vec<u32> = planes.processes().iter().filter_map(|p| p.pid).collect();
        let expected = if layout == EtcdLayout::Shared { 3 } else { 4 };
        assert_eq!(pids.len(), expected, "{layout:?}: {:?}", planes.processes());
        let dir = planes.temp_dir().unwrap().to_owned();
        assert!(dir.join("cluster-1/kube-apiserver.log").is_file());
        // A stopped process must be killed too.
        planes.clusters()[1].pause().unwrap();

        drop(planes);
        for pid in pids {
            assert!(!process_exists(pid), "{layout:?}: pid {pid} survived");
        }
        assert!(!dir.exists(), "{layout:?}: {} survived", dir.display());
    }

    // The same when a test panics while holding the kit.
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let planes = ControlPlanes::start(1).await.unwrap();
        let pids: Vec<u32> = planes.processes().iter().filter_map(|p| p.pid).collect();
        sender
            .send((pids, planes.temp_dir().unwrap().to_owned()))
            .unwrap();
        panic!("deliberate panic while the control planes run");
    });
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    let (pids, dir) = receiver.await.unwrap();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(!process_exists(pid), "pid {pid} survived a panic");
    }
    assert!(!dir.exists(), "{} survived a panic", dir.display());
}

#[tokio::test]
async fn audit_logs_record_writes_with_their_user_agent_and_not_reads() {
    let planes = ControlPlanes::builder()
        .clusters(1)
        .audit_writes(true)
        .start()
        .await
        .unwrap();
    let cluster = &planes.clusters()[0];
    let namespace = cluster.test_namespace().await.unwrap();
    let mut config = cluster.config();
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static("audit-test/1 (writer)"),
    ));
    let client = Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let before = k8s_openapi::jiff::Timestamp::now();
    api.create(&PostParams::default(), &config_map("audited"))
        .await
        .unwrap();
    api.get("audited").await.unwrap();
    api.delete("audited", &DeleteParams::default())
        .await
        .unwrap();

    let events = cluster.audit_events().await.unwrap();
    let mine: Vec<_> = events
        .iter()
        .filter(|e| e.user_agent == "audit-test/1 (writer)")
        .collect();
    let verbs: std::collections::BTreeSet<&str> = mine.iter().map(|e| e.verb.as_str()).collect();
    assert_eq!(
        verbs,
        ["create", "delete"].into_iter().collect(),
        "reads are not recorded: {mine:#?}"
    );
    for e in &mine {
        assert_eq!(e.user.username, federation_testkit::ADMIN_USER);
        // Same machine, same clock: received after the test took `before` (1 ms: the log
        // has microseconds, the test's clock more).
        assert!(
            e.request_received_timestamp.0
                >= before - k8s_openapi::jiff::SignedDuration::from_millis(1),
            "{e:?}"
        );
        assert_eq!(
            e.object_ref.as_ref().and_then(|o| o.resource.as_deref()),
            Some("configmaps")
        );
    }
    assert!(
        mine.iter().any(|e| e.stage == "ResponseComplete"
            && e.response_status.as_ref().and_then(|s| s.code) == Some(201)),
        "{mine:#?}"
    );

    // Without the option there is no log, and asking for it says so.
    let plain = ControlPlanes::start(1).await.unwrap();
    assert!(plain.clusters()[0].audit_events().await.is_err());
}

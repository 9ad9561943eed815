//! The controller functions of federation-core against real API servers: member probes
//! through kubeconfig Secrets, and a network's finalizer, status and teardown (with a mocked
//! backend: the backend seam itself is exercised by the backend crates' tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{
    ConditionExt, FederatedNetwork, MemberCluster, NETWORK_FINALIZER, REACHABLE, READY,
    TopologyKind, crds,
};
use federation_core::backend::{
    Capabilities, DesiredObject, DesiredState, Health, Layer, LinkHealth, MockNetworkBackend,
    ObjectKey, Observed, ObservedObject, Target,
};
use federation_core::cluster::{MemberRegistry, member_silent, member_unhealthy};
use federation_core::controller::{Context, reconcile_member, reconcile_network};
use federation_core::engine::{Engine, EngineConfig};
use federation_testkit::ControlPlanes;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn put_kubeconfig_secret(hub: &kube::Client, ns: &str, name: &str, kubeconfig: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_owned(),
            ByteString(kubeconfig.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(hub.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

async fn put_member(hub: &kube::Client, name: &str, ns: &str, secret: &str) -> MemberCluster {
    let mc: MemberCluster = serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
        "spec": {"clusterId": name, "kubeconfigSecretRef": {"namespace": ns, "name": secret}}
    }))
    .unwrap();
    Api::<MemberCluster>::all(hub.clone())
        .create(&PostParams::default(), &mc)
        .await
        .unwrap()
}

fn context(
    hub: &kube::Client,
    engines: BTreeMap<federation_core::api::BackendKind, Engine>,
) -> Arc<Context> {
    probing_context(hub, engines, 1)
}

/// A context whose members turn Unreachable after `threshold` failed probes in a row (no
/// minimum duration: the test drives probes back to back).
fn probing_context(
    hub: &kube::Client,
    engines: BTreeMap<federation_core::api::BackendKind, Engine>,
    threshold: u32,
) -> Arc<Context> {
    let mut ctx = Context::new(
        hub.clone(),
        Arc::new(MemberRegistry::new(hub.clone())),
        engines,
    );
    ctx.timing.probe_timeout = Duration::from_secs(2);
    ctx.timing.probe_failure_threshold = threshold;
    ctx.timing.probe_failure_min_duration = Duration::ZERO;
    Arc::new(ctx)
}

/// (status, reason, message) of a member's Reachable condition.
fn reachable(member: &MemberCluster) -> (String, String, String) {
    let c = member
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(REACHABLE))
        .unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// A hub with the fednet CRDs and one member, `east`, registered through a kubeconfig
/// Secret: (the control planes, the hub client, the hub namespace of the Secret).
async fn hub_with_member_east() -> (ControlPlanes, kube::Client, String) {
    let planes = ControlPlanes::builder()
        .clusters(2)
        .crds(crds())
        .start()
        .await
        .unwrap();
    let hub = planes.clusters()[0].client();
    let ns = planes.clusters()[0].test_namespace().await.unwrap();
    put_kubeconfig_secret(
        &hub,
        &ns,
        "east-kubeconfig",
        planes.clusters()[1].kubeconfig_yaml(),
    )
    .await;
    put_member(&hub, "east", &ns, "east-kubeconfig").await;
    (planes, hub, ns)
}

#[tokio::test]
async fn member_probe_follows_reachability_and_refuses_insecure_credentials() {
    let (planes, hub, ns) = hub_with_member_east().await;
    let member_cluster = &planes.clusters()[1];
    let ctx = context(&hub, BTreeMap::new());
    let members: Api<MemberCluster> = Api::all(hub.clone());

    reconcile_member(Arc::new(members.get("east").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let east = members.get("east").await.unwrap();
    let status = east.status.clone().unwrap();
    assert!(status.conditions.is_true(REACHABLE), "{status:?}");
    assert!(
        status
            .server_version
            .as_deref()
            .unwrap()
            .starts_with("v1.37"),
        "{status:?}"
    );

    // At rest a probe that finds the same facts writes nothing.
    let version = east.resource_version();
    reconcile_member(Arc::new(east), ctx.clone()).await.unwrap();
    assert_eq!(
        members.get("east").await.unwrap().resource_version(),
        version
    );

    // A hung member turns Reachable False without blocking the reconcile (this context's
    // threshold is one failed probe).
    member_cluster.pause().unwrap();
    let started = std::time::Instant::now();
    reconcile_member(Arc::new(members.get("east").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    member_cluster.resume().unwrap();
    let east = members.get("east").await.unwrap();
    let reachable = east
        .status
        .as_ref()
        .unwrap()
        .conditions
        .condition(REACHABLE)
        .unwrap()
        .clone();
    assert_eq!(
        (reachable.status.as_str(), reachable.reason.as_str()),
        ("False", "Unreachable")
    );
    assert_eq!(
        east.status.as_ref().unwrap().server_version,
        status.server_version,
        "last known version kept"
    );

    reconcile_member(Arc::new(east), ctx.clone()).await.unwrap();
    assert!(
        members
            .get("east")
            .await
            .unwrap()
            .status
            .unwrap()
            .conditions
            .is_true(REACHABLE)
    );

    // A kubeconfig that skips TLS verification is refused, and no key material is echoed.
    let mut insecure: serde_yaml::Value =
        serde_yaml::from_str(member_cluster.kubeconfig_yaml()).unwrap();
    insecure["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = true.into();
    let insecure = serde_yaml::to_string(&insecure).unwrap();
    put_kubeconfig_secret(&hub, &ns, "west-kubeconfig", &insecure).await;
    put_member(&hub, "west", &ns, "west-kubeconfig").await;
    reconcile_member(Arc::new(members.get("west").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let west = members.get("west").await.unwrap();
    let reachable = west
        .status
        .unwrap()
        .conditions
        .condition(REACHABLE)
        .unwrap()
        .clone();
    assert_eq!(reachable.reason, "InvalidCredentials");
    assert!(
        reachable.message.contains("insecure-skip-tls-verify"),
        "{}",
        reachable.message
    );
    assert!(!reachable.message.contains("BEGIN"), "no PEM in messages");
}

#[tokio::test]
async fn member_turns_unhealthy_only_after_the_failure_threshold_and_lost_credentials_are_not_downtime()
 {
    let (planes, hub, ns) = hub_with_member_east().await;
    let member_cluster = &planes.clusters()[1];
    let ctx = probing_context(&hub, BTreeMap::new(), 3);
    let members: Api<MemberCluster> = Api::all(hub.clone());
    let probe = async || {
        reconcile_member(Arc::new(members.get("east").await.unwrap()), ctx.clone())
            .await
            .unwrap();
        members.get("east").await.unwrap()
    };
    let healthy = probe().await;
    assert_eq!(reachable(&healthy).0, "True");
    assert!(!member_unhealthy(&healthy));

    // Hung for two probes (below the threshold of three): the first says once that the member
    // stopped responding (passes stop waiting for it), the second writes nothing; the member
    // stays healthy for planning.
    member_cluster.pause().unwrap();
    let failures = || ctx.probe_streaks.get("east").map(|s| s.failures);
    let silent = probe().await;
    assert_eq!(failures(), Some(1));
    assert_ne!(silent.resource_version(), healthy.resource_version());
    assert!(member_silent(&silent) && !member_unhealthy(&silent));
    assert_eq!(reachable(&silent), reachable(&healthy));
    let east = probe().await;
    assert_eq!(failures(), Some(2));
    assert_eq!(east.resource_version(), silent.resource_version());
    assert!(!member_unhealthy(&east));
    // The third failure crosses it: Unreachable, once.
    let down = probe().await;
    assert_eq!(failures(), Some(3));
    assert_ne!(down.resource_version(), healthy.resource_version());
    assert_eq!(reachable(&down).1, "Unreachable", "{:?}", reachable(&down));
    assert!(member_unhealthy(&down));
    assert_eq!(
        down.status.as_ref().unwrap().server_version,
        healthy.status.as_ref().unwrap().server_version,
        "last known version kept"
    );
    // Further failures of the same kind produce byte-identical status: no write.
    for _ in 0..2 {
        assert_eq!(probe().await.resource_version(), down.resource_version());
    }
    member_cluster.resume().unwrap();
    let back = probe().await;
    assert_eq!(reachable(&back).0, "True");
    assert!(!member_unhealthy(&back));

    // A failure, then an answer, then two failures: the streak started over, still healthy.
    member_cluster.pause().unwrap();
    probe().await;
    member_cluster.resume().unwrap();
    let answered = probe().await;
    member_cluster.pause().unwrap();
    let first = probe().await;
    let second = probe().await;
    for east in [&first, &second] {
        assert_eq!(reachable(east), reachable(&answered));
        assert!(member_silent(east) && !member_unhealthy(east));
    }
    assert_eq!(second.resource_version(), first.resource_version());
    member_cluster.resume().unwrap();

    // The kubeconfig Secret is deleted: a credentials problem naming the Secret, not downtime,
    // and repeated probes do not rewrite it.
    Api::<Secret>::namespaced(hub.clone(), &ns)
        .delete("east-kubeconfig", &DeleteParams::default())
        .await
        .unwrap();
    let lost = probe().await;
    let (status, reason, message) = reachable(&lost);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("Unknown", "CredentialsUnavailable")
    );
    assert!(
        message.contains(&format!("{ns}/east-kubeconfig")),
        "{message}"
    );
    assert!(!member_unhealthy(&lost));
    for _ in 0..3 {
        assert_eq!(probe().await.resource_version(), lost.resource_version());
    }
}

fn marker(member: &str) -> ObjectKey {
    ObjectKey::namespaced("v1", "ConfigMap", "apps", &format!("site-{member}"))
}

/// A backend whose objects already exist everywhere and whose links are all up: the
/// controller should find the network converged and write nothing more.
fn converged_backend(deletes: Arc<AtomicUsize>) -> MockNetworkBackend {
    let mut b = MockNetworkBackend::new();
    b.expect_kind()
        .return_const(federation_core::api::BackendKind::Skupper);
    b.expect_capabilities().returning(|| Capabilities {
        layer: Layer::L7,
        overlapping_cidrs: true,
        link_costs: true,
        encryption: true,
        needs_broker: false,
        topologies: vec![TopologyKind::FullMesh],
        restricted_consumers: true,
    });
    b.expect_validate().returning(|_| Vec::new());
    b.expect_targets().returning(|plan| {
        plan.members
            .iter()
            .map(|m| Target::Member(m.name.clone()))
            .collect()
    });
    b.expect_render().returning(|plan, _| {
        let mut d = DesiredState::default();
        for m in &plan.members {
            d.push(
                Target::Member(m.name.clone()),
                DesiredObject::new(marker(&m.name), json!({"data": {"x": "1"}})),
            );
        }
        Ok(d)
    });
    b.expect_assess().returning(|plan, _| Health {
        links: plan
            .topology
            .links
            .iter()
            .map(|l| LinkHealth {
                dialer: l.dialer.clone(),
                acceptor: l.acceptor.clone(),
                namespace: "apps".into(),
                phase: federation_core::api::LinkPhase::Up,
                message: None,
            })
            .collect(),
        ..Default::default()
    });
    let gone = Arc::new(std::sync::Mutex::new(BTreeSet::<Target>::new()));
    let deleted = gone.clone();
    b.expect_observe().returning(move |target, _| {
        let m = target.member().unwrap().to_owned();
        let objects = if deleted.lock().unwrap().contains(target) {
            Vec::new()
        } else {
            vec![ObservedObject {
                key: marker(&m),
                body: json!({"data": {"x": "1"}}),
                owned: true,
            }]
        };
        Ok(Observed {
            objects,
            operations: Vec::new(),
        })
    });
    b.expect_apply().times(0);
    b.expect_waits_for_links().returning(|_| true);
    b.expect_candidate_targets()
        .returning(|m| vec![Target::Member(m.to_owned())]);
    b.expect_singletons().returning(|_| Vec::new());
    b.expect_teardown_phase().returning(|_| 0);
    b.expect_deletion_order().returning(|_| 0);
    b.expect_delete().returning(move |target, keys| {
        deletes.fetch_add(keys.len(), Ordering::SeqCst);
        gone.lock().unwrap().insert(target.clone());
        Ok(())
    });
    b
}

#[tokio::test]
async fn network_gets_a_finalizer_a_ready_status_and_is_torn_down() {
    let planes = ControlPlanes::builder()
        .clusters(1)
        .crds(crds())
        .start()
        .await
        .unwrap();
    let hub = planes.clusters()[0].client();
    let ns = planes.clusters()[0].test_namespace().await.unwrap();
    for m in ["a", "b", "c"] {
        put_member(&hub, m, &ns, "unused").await;
    }
    let deletes = Arc::new(AtomicUsize::new(0));
    let engine = Engine::new(
        Arc::new(converged_backend(deletes.clone())),
        EngineConfig::default(),
    );
    let ctx = context(
        &hub,
        BTreeMap::from([(federation_core::api::BackendKind::Skupper, engine)]),
    );
    let nets: Api<FederatedNetwork> = Api::namespaced(hub.clone(), &ns);
    let net: FederatedNetwork = serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork", "metadata": {"name": "net"},
        "spec": {"backend": {"type": "Skupper"}, "members": {"names": ["a", "b", "c"]}, "namespaces": ["apps"],
                 "topology": {"type": "FullMesh"}}
    }))
    .unwrap();
    nets.create(&PostParams::default(), &net).await.unwrap();

    // First pass adds the finalizer; the next one plans, runs the engine and writes status.
    reconcile_network(Arc::new(nets.get("net").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let net = nets.get("net").await.unwrap();
    assert!(net.finalizers().iter().any(|f| f == NETWORK_FINALIZER));
    reconcile_network(Arc::new(net), ctx.clone()).await.unwrap();
    let net = nets.get("net").await.unwrap();
    let status = net.status.clone().unwrap();
    assert!(status.conditions.is_true(READY), "{status:?}");
    assert_eq!(status.links_summary.as_deref(), Some("3/3"));
    assert_eq!(status.observed_generation, net.metadata.generation);

    // At rest: no write at all, the object's resourceVersion does not move.
    let version = net.resource_version();
    reconcile_network(Arc::new(net), ctx.clone()).await.unwrap();
    assert_eq!(nets.get("net").await.unwrap().resource_version(), version);

    // Deleting it tears down every member's objects, then releases the finalizer.
    nets.delete("net", &DeleteParams::default()).await.unwrap();
    reconcile_network(Arc::new(nets.get("net").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    assert_eq!(deletes.load(Ordering::SeqCst), 3);
    assert!(
        nets.get_opt("net").await.unwrap().is_none(),
        "finalizer released, object gone"
    );
}

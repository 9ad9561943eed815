//! The operator binary on real control planes: a hub and three members, the Skupper
//! controller double standing in for Skupper's controller, and the operator run as a child
//! process (located or built as `federation_tests::operator_env::operator_binary` explains).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{
    ConditionExt, DEGRADED, FederatedNetwork, FederatedService, LinkPhase, MemberPhase, READY,
};
use federation_tests::operator_env::APP_NAMESPACE;
use federation_tests::operator_env::metrics::{operator_requests_on, parse, sum};
use federation_tests::operator_env::{
    EXPORTER, FedEnv, HUB_NAMESPACE, OperatorOptions, OperatorProcess, SERVICE, TOPOLOGY_HUB,
};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(120);

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == net.metadata.generation
    })
}

fn metric(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    sum(&parse(text), name, filter)
}

/// Hub requests a replica sent, leaving out its Lease (renewing is not "writing").
fn hub_requests_beyond_lease(text: &str, methods: &[&str]) -> f64 {
    parse(text)
        .iter()
        .filter(|s| s.name == "fednet_hub_requests_total")
        .filter(|s| s.label("resource") != Some("leases"))
        .filter(|s| s.label("method").is_some_and(|m| methods.contains(&m)))
        .map(|s| s.value)
        .sum()
}

const WRITES: &[&str] = &["POST", "PUT", "PATCH", "DELETE"];

#[tokio::test]
async fn converges_a_three_member_network_and_stops_cleanly() {
    let mut env = FedEnv::start_audited(3).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let mut op = OperatorProcess::start(&env, OperatorOptions::fast("solo"), logs.path())
        .await
        .unwrap();
    op.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.apply_network().await.unwrap();

    let net = env
        .wait_network("Ready", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(60)));
    let status = net.status.unwrap();
    assert_eq!(status.links.len(), 2, "{status:?}");
    assert!(status.links.iter().all(|l| l.phase == LinkPhase::Up));
    assert!(status.members.iter().all(|m| m.phase == MemberPhase::Ready));
    env.check_inventory().await.unwrap();
    let svc = Api::<FederatedService>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .get(SERVICE)
        .await
        .unwrap();
    assert!(
        svc.status
            .as_ref()
            .is_some_and(|s| s.conditions.is_true(READY)),
        "{:?}",
        svc.status
    );

    // Metrics: reconciles, reachability and links as the status says.
    let text = op.metrics().await.unwrap();
    assert!(
        metric(
            &text,
            "fednet_reconciles_total",
            &[("kind", "FederatedNetwork"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            "fednet_reconciles_total",
            &[("kind", "MemberCluster")]
        ) >= 3.0
    );
    assert_eq!(metric(&text, "fednet_member_reachable", &[]), 3.0, "{text}");
    assert_eq!(
        metric(
            &text,
            "fednet_network_links",
            &[("network", "shop"), ("state", "up")]
        ),
        2.0
    );
    assert_eq!(metric(&text, "fednet_leader", &[]), 1.0);

    // At rest a converged network causes no writes: neither to members nor to the hub.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = op.metrics().await.unwrap();
    let member_requests_before = member_requests(&env).await;
    let member_writes_before = operator_member_writes(&env).await;
    assert!(
        !member_writes_before.is_empty(),
        "the audit logs show the operator's writes while converging"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = op.metrics().await.unwrap();
    assert_eq!(
        hub_requests_beyond_lease(&before, WRITES),
        hub_requests_beyond_lease(&after, WRITES),
        "hub writes at rest"
    );
    assert_eq!(
        metric(&before, "fednet_backend_objects_total", &[]),
        metric(&after, "fednet_backend_objects_total", &[]),
        "member writes at rest"
    );
    let member_requests_after = member_requests(&env).await;
    // Probes (every 2 s here) keep reading members at rest ...
    assert!(
        member_requests_after > member_requests_before,
        "the members were not even probed"
    );
    // ... but their audit logs show no write from the operator.
    assert_eq!(
        member_writes_before,
        operator_member_writes(&env).await,
        "operator writes to members at rest"
    );

    // Drift in a member is seen by the member watch and repaired at once, not at the
    // periodic requeue (five minutes here).
    let listener = federation_skupper::names::service_port(SERVICE, "http");
    let west = env.member("west").unwrap().client();
    let listeners: Api<DynamicObject> = Api::namespaced_with(
        west,
        APP_NAMESPACE,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("skupper.io", "v2alpha1", "Listener"),
            "listeners",
        ),
    );
    listeners
        .patch(
            &listener,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"port": 9999}})),
        )
        .await
        .unwrap();
    let edited = std::time::Instant::now();
    loop {
        let port = listeners.get(&listener).await.unwrap().data["spec"]["port"].clone();
        if port == 8080 {
            break;
        }
        assert!(
            edited.elapsed() < Duration::from_secs(15),
            "drift not repaired: port {port}\n{}",
            op.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = op.metrics().await.unwrap();
    assert!(
        metric(
            &text,
            "fednet_member_watch_events_total",
            &[("member", "west")]
        ) > 0.0
    );

    // SIGTERM: exits 0 and releases the lease.
    assert_eq!(
        op.terminate(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
    assert_eq!(env.lease_holder().await, None);
}

/// Writes the operator (the only client authenticating as a service account here) made to
/// the members, read from their audit logs: (member, verb, URI) of each completed request.
async fn operator_member_writes(env: &FedEnv) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, c) in env.members().iter().zip(env.member_clusters()) {
        for e in c.audit_events().await.unwrap() {
            if e.stage == "ResponseComplete"
                && e.user.username.starts_with("system:serviceaccount:")
                && ["create", "update", "patch", "delete"].contains(&e.verb.as_str())
            {
                out.push((name.clone(), e.verb, e.request_uri));
            }
        }
    }
    out
}

async fn member_requests(env: &FedEnv) -> f64 {
    let mut total = 0.0;
    for c in env.member_clusters() {
        total += operator_requests_on(c).await.unwrap();
    }
    total
}

#[tokio::test]
async fn killed_mid_reconcile_and_restarted_it_converges_without_duplicates_or_orphans() {
    let mut env = FedEnv::start(3).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let mut first = OperatorProcess::start(&env, OperatorOptions::fast("first"), logs.path())
        .await
        .unwrap();
    first.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.apply_network().await.unwrap();

    // Kill it as soon as it has written into a member, long before the network converges.
    let started = std::time::Instant::now();
    loop {
        let mut written = 0;
        for m in env.members() {
            written += env.owned_objects(m).await.unwrap().len();
        }
        if written > 0 {
            break;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "nothing written: {}",
            first.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await.unwrap();
    assert!(
        !ready(&env.network().await.unwrap()),
        "converged before the kill"
    );

    // A replacement with another identity takes over once the dead holder's lease expires.
    let second = OperatorProcess::start(&env, OperatorOptions::fast("second"), logs.path())
        .await
        .unwrap();
    env.wait_lease_holder("second", Duration::from_secs(20))
        .await;
    env.wait_network("Ready", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", second.log_tail(60)));
    env.check_inventory().await.unwrap();
}

#[tokio::test]
async fn with_two_replicas_only_the_leader_writes_and_the_standby_takes_over() {
    let mut env = FedEnv::start(3).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let mut leader = OperatorProcess::start(&env, OperatorOptions::fast("replica-a"), logs.path())
        .await
        .unwrap();
    env.wait_lease_holder("replica-a", Duration::from_secs(20))
        .await;
    let standby = OperatorProcess::start(&env, OperatorOptions::fast("replica-b"), logs.path())
        .await
        .unwrap();
    leader.wait_ready(Duration::from_secs(60)).await.unwrap();
    standby.wait_ready(Duration::from_secs(60)).await.unwrap();
    assert_eq!(standby.get("/readyz").await.unwrap().1, "standing by");

    env.apply_network().await.unwrap();
    env.wait_network("Ready", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nleader log:\n{}", leader.log_tail(60)));
    env.check_inventory().await.unwrap();
    assert_eq!(env.lease_holder().await.as_deref(), Some("replica-a"));

    // The leader did the work; the standby wrote nothing anywhere and reconciled nothing.
    let a = leader.metrics().await.unwrap();
    let b = standby.metrics().await.unwrap();
    assert_eq!(metric(&a, "fednet_leader", &[]), 1.0);
    assert!(
        metric(
            &a,
            "fednet_backend_objects_total",
            &[("operation", "apply")]
        ) > 0.0
    );
    assert_eq!(metric(&b, "fednet_leader", &[]), 0.0);
    assert_eq!(metric(&b, "fednet_reconciles_total", &[]), 0.0, "{b}");
    assert_eq!(metric(&b, "fednet_backend_operations_total", &[]), 0.0);
    // It only reads the Lease (a GET every retry period): nothing else, not even a read.
    assert_eq!(
        hub_requests_beyond_lease(&b, &["GET", "POST", "PUT", "PATCH", "DELETE"]),
        0.0,
        "{b}"
    );
    assert_eq!(
        metric(
            &b,
            "fednet_hub_requests_total",
            &[("resource", "leases"), ("method", "PUT")]
        ),
        0.0
    );
    assert!(
        metric(
            &b,
            "fednet_hub_requests_total",
            &[("resource", "leases"), ("method", "GET")]
        ) > 0.0
    );

    // The leader dies without releasing the lease; the standby takes over and serves a
    // change: the service goes away, so its Connector and Listeners must go too.
    leader.kill().await.unwrap();
    env.wait_lease_holder("replica-b", Duration::from_secs(20))
        .await;
    Api::<FederatedService>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .delete(SERVICE, &DeleteParams::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let mut services = 0;
        for m in env.members() {
            services += env
                .owned_objects(m)
                .await
                .unwrap()
                .iter()
                .filter(|(kind, _, _)| kind == "Connector" || kind == "Listener")
                .count();
        }
        if services == 0 {
            break;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "service objects left: {services}\n{}",
            standby.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = standby.metrics().await.unwrap();
    assert_eq!(metric(&b, "fednet_leader", &[]), 1.0);
    // The service's Connector and its two Listeners, and nothing else.
    assert_eq!(
        metric(
            &b,
            "fednet_backend_objects_total",
            &[("operation", "delete")]
        ),
        3.0,
        "{b}"
    );
    env.wait_network("Ready", CONVERGE, ready).await.unwrap();
}

#[tokio::test]
async fn a_paused_member_degrades_the_network_and_its_return_restores_ready() {
    let mut env = FedEnv::start(3).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let op = OperatorProcess::start(&env, OperatorOptions::fast("solo"), logs.path())
        .await
        .unwrap();
    op.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.apply_network().await.unwrap();

    // Pause a spoke as soon as the reconcile has started writing.
    let west = env.member("west").unwrap();
    let started = std::time::Instant::now();
    while env.owned_objects(TOPOLOGY_HUB).await.unwrap().is_empty() {
        assert!(started.elapsed() < CONVERGE, "{}", op.log_tail(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    west.pause().unwrap();

    // The others converge; the network says Degraded and names the paused member.
    let others_converged = |net: &FederatedNetwork| {
        let Some(s) = net.status.as_ref() else {
            return false;
        };
        let member_ready = |name: &str| {
            s.members
                .iter()
                .any(|m| m.name == name && m.phase == MemberPhase::Ready)
        };
        let link_up = s.links.iter().any(|l| {
            l.dialer == EXPORTER && l.acceptor == TOPOLOGY_HUB && l.phase == LinkPhase::Up
        });
        s.conditions.is_true(DEGRADED)
            && !s.conditions.is_true(READY)
            && member_ready(TOPOLOGY_HUB)
            && member_ready(EXPORTER)
            && link_up
            && s.members
                .iter()
                .any(|m| m.name == "west" && m.phase != MemberPhase::Ready)
    };
    let degraded = env
        .wait_network(
            "Degraded with the others converged",
            CONVERGE,
            others_converged,
        )
        .await;
    let degraded = match degraded {
        Ok(net) => net,
        Err(e) => {
            west.resume().unwrap();
            panic!("{e:#}\noperator log:\n{}", op.log_tail(80));
        }
    };
    let message = degraded
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(DEGRADED))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("west"), "{message}");
    let expected = env.expected_objects();
    for m in [TOPOLOGY_HUB, EXPORTER] {
        assert_eq!(env.owned_objects(m).await.unwrap(), expected[m], "{m}");
    }

    // Nobody acts: resuming the member brings Ready back.
    west.resume().unwrap();
    env.wait_network("Ready again", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\noperator log:\n{}", op.log_tail(80)));
    env.check_inventory().await.unwrap();
}

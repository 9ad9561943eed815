//! Leader safety on real control planes: the leader is cut off from the hub (a TCP proxy
//! between it and the hub's API server stops forwarding) while the standby still reaches the
//! hub and takes the Lease. What each replica wrote where is read from the API servers' own
//! audit logs, not from the operator's metrics: each replica's hub and member clients send a
//! User-Agent naming it.
//!
//! What this test can and cannot catch today: the Skupper backend reads each member's
//! `MemberCluster` and kubeconfig Secret from the hub before every member operation, so a
//! leader cut off from the hub cannot start new member writes at all, fenced or not (its last
//! member write lands within milliseconds of the cut). Reverting the fence, or even the
//! step-down, leaves the audit assertions green; only the step-down assertions at the end
//! fail without a step-down. The test pins the end-to-end property for when member clients no
//! longer need the hub per operation (cached clients); the fence itself is pinned by the unit
//! tests in `federation-operator` (`fence`, `fenced_backend`) and by
//! `hub_writes_are_fenced_once_the_lease_is_lost_even_outside_the_controllers_task`, which
//! fail without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{ConditionExt, FederatedNetwork, READY};
use federation_testkit::{AuditEvent, Cluster};
use federation_tests::operator_env::metrics::{parse, sum};
use federation_tests::operator_env::{
    APP_NAMESPACE, EXPORTER, FedEnv, OperatorOptions, OperatorProcess, SERVICE,
};
use federation_tests::tcp_proxy::{Cut, TcpProxy};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CONVERGE: Duration = Duration::from_secs(120);
/// `--lease-renew-deadline` in the operator's fast flags.
const RENEW_DEADLINE: Duration = Duration::from_secs(3);
/// How late after the renew deadline a request of the old leader may be *received* and still
/// count as sent before it. The fence stops requests from starting after the deadline; one
/// handed to its connection just before it still has to be scheduled, written to the socket,
/// read, and stamped by the API server (after TLS and HTTP parsing) on a 2-core machine
/// shared by five API servers, etcd, two operators and the test. Audit timestamps and the
/// test's clock are the same host clock, so no skew is involved. 250 ms is well under the
/// 1 s (`lease duration - renew deadline`) that actually keeps it ahead of a new leader, and
/// that separation is asserted separately below.
const CLOCK_MARGIN: Duration = Duration::from_millis(250);
const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == net.metadata.generation
    })
}

fn skupper(cluster: &Cluster, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        cluster.client(),
        APP_NAMESPACE,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("skupper.io", "v2alpha1", kind),
            plural,
        ),
    )
}

/// Write requests of one replica in a cluster's audit log, one event per request.
async fn writes_by(cluster: &Cluster, identity: &str) -> Vec<AuditEvent> {
    let tag = format!("({identity})");
    let mut events: Vec<AuditEvent> = cluster
        .audit_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.user_agent.contains(&tag) && WRITE_VERBS.contains(&e.verb.as_str()))
        .collect();
    events.sort_by_key(|e| e.request_received_timestamp.0);
    events.dedup_by(|a, b| a.audit_id == b.audit_id);
    events
}

fn describe(e: &AuditEvent) -> String {
    format!(
        "{} {} {} ({})",
        e.request_received_timestamp.0, e.verb, e.request_uri, e.user_agent
    )
}

#[tokio::test]
async fn a_leader_cut_off_from_the_hub_sends_no_member_write_after_its_renew_deadline() {
    let test_started = Instant::now();
    let mut env = FedEnv::start_audited(3).await.unwrap();
    env.start_double();
    let logs = tempfile::tempdir().unwrap();

    // replica-a reaches the hub only through the proxy; replica-b directly.
    let hub_addr: SocketAddr = env
        .hub()
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(hub_addr).await.unwrap();
    let mut options = OperatorOptions::fast("replica-a");
    options.kubeconfig = Some(env.hub_kubeconfig_via(proxy.addr(), logs.path()).unwrap());
    let old = OperatorProcess::start(&env, options, logs.path())
        .await
        .unwrap();
    env.wait_lease_holder("replica-a", Duration::from_secs(20))
        .await;
    let new = OperatorProcess::start(&env, OperatorOptions::fast("replica-b"), logs.path())
        .await
        .unwrap();
    old.wait_ready(Duration::from_secs(60)).await.unwrap();
    new.wait_ready(Duration::from_secs(60)).await.unwrap();
    env.apply_network().await.unwrap();
    env.wait_network("Ready", CONVERGE, ready)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nleader log:\n{}", old.log_tail(60)));
    let converged = test_started.elapsed();

    // Keep the leader writing to a member: drift in west every 250 ms, which the member
    // watch sees and whoever leads repairs.
    let listener_name = federation_skupper::names::service_port(SERVICE, "http");
    let west = env.member("west").unwrap();
    let listeners = skupper(west, "Listener", "listeners");
    let drifting = CancellationToken::new();
    let drift = {
        let listeners = listeners.clone();
        let name = listener_name.clone();
        let stop = drifting.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let _ = listeners
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(serde_json::json!({"spec": {"port": 9999}})),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let drift_started = Timestamp::now();
    let waited = Instant::now();
    while !writes_by(west, "replica-a")
        .await
        .iter()
        .any(|e| e.request_received_timestamp.0 > drift_started)
    {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the leader does not repair drift\n{}",
            old.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Cut: open connections dropped, new ones accepted and never answered. Taken before the
    // cut, `cut_at` is no later than the moment replica-a lost the hub.
    let cut_at = Timestamp::now();
    let cut = Instant::now();
    proxy.cut(Cut::Blackhole);

    env.wait_lease_holder("replica-b", Duration::from_secs(20))
        .await;
    let takeover = cut.elapsed();
    // Drift goes on until well after replica-a's deadline: it would repair it if it wrote.
    let past_deadline = RENEW_DEADLINE + Duration::from_secs(3);
    tokio::time::sleep(past_deadline.saturating_sub(cut.elapsed())).await;
    drifting.cancel();
    drift.await.unwrap();
    // Something else to repair, after the deadline: a member object goes missing.
    let connectors = skupper(env.member(EXPORTER).unwrap(), "Connector", "connectors");
    connectors
        .delete(&listener_name, &DeleteParams::default())
        .await
        .unwrap();

    // replica-b converges the network alone: every object back, the drift undone.
    let repairing = Instant::now();
    loop {
        let port = listeners.get(&listener_name).await.unwrap().data["spec"]["port"].clone();
        let inventory = env.check_inventory().await;
        if port == 8080 && inventory.is_ok() {
            break;
        }
        assert!(
            repairing.elapsed() < CONVERGE,
            "not repaired: port {port}, {inventory:?}\nnew leader log:\n{}",
            new.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let repaired = repairing.elapsed();
    env.wait_network("Ready", CONVERGE, ready).await.unwrap();
    // Let the API servers finish writing the audit events of the last requests.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The audit logs.
    let deadline = cut_at + SignedDuration::try_from(RENEW_DEADLINE + CLOCK_MARGIN).unwrap();
    let mut old_member_writes = Vec::new();
    let mut new_member_writes = Vec::new();
    for (name, cluster) in env.members().iter().zip(env.member_clusters()) {
        let old_writes = writes_by(cluster, "replica-a").await;
        let late: Vec<String> = old_writes
            .iter()
            .filter(|e| e.request_received_timestamp.0 > deadline)
            .map(describe)
            .collect();
        assert!(
            late.is_empty(),
            "{name}: the old leader wrote after its renew deadline ({deadline}):\n{}",
            late.join("\n")
        );
        old_member_writes.extend(old_writes);
        new_member_writes.extend(writes_by(cluster, "replica-b").await);
    }
    // The hub too (status writes, Events): replica-a cannot reach it, so this holds
    // trivially here; it guards the audit plumbing and the fenced hub client's User-Agent.
    let hub_late: Vec<String> = writes_by(env.hub(), "replica-a")
        .await
        .iter()
        .filter(|e| e.request_received_timestamp.0 > deadline)
        .map(describe)
        .collect();
    assert!(hub_late.is_empty(), "{}", hub_late.join("\n"));

    // The old leader was working right up to the cut, so its silence means something.
    let recent = cut_at - SignedDuration::from_secs(2);
    assert!(
        old_member_writes
            .iter()
            .any(|e| e.request_received_timestamp.0 > recent),
        "replica-a wrote nothing to members in the 2 s before the cut"
    );
    // One writer: every member write of the old leader precedes every one of the new leader.
    let old_last = old_member_writes
        .iter()
        .map(|e| e.request_received_timestamp.0)
        .max()
        .unwrap();
    let new_first = new_member_writes
        .iter()
        .map(|e| e.request_received_timestamp.0)
        .min()
        .expect("the new leader wrote nothing to members");
    assert!(
        old_last < new_first,
        "overlap: replica-a's last member write {old_last}, replica-b's first {new_first}"
    );
    assert!(new_first > cut_at);

    // The old leader is alive, cut off, and knows it does not lead.
    let metrics = old.metrics().await.unwrap();
    assert_eq!(
        sum(&parse(&metrics), "fednet_leader", &[]),
        0.0,
        "{metrics}"
    );
    assert_eq!(old.get("/readyz").await.unwrap().1, "standing by");
    assert!(
        old.log_tail(200).contains("stopping writes"),
        "{}",
        old.log_tail(60)
    );

    eprintln!(
        "timings: converged {converged:?} after start; lease taken over {takeover:?} after the \
         cut; replica-a's last member write {} after the cut; replica-b's first {} after the \
         cut; repaired {repaired:?} after the deletion; {} old-leader and {} new-leader member \
         writes; whole test {:?}",
        old_last.duration_since(cut_at),
        new_first.duration_since(cut_at),
        old_member_writes.len(),
        new_member_writes.len(),
        test_started.elapsed()
    );
    drop(proxy);
}

//! Sharded replicas on real control planes: three operator processes (`--shards 12`) share
//! twelve networks on a hub and three members. Who wrote what, where and when is read from
//! the API servers' own audit logs (each replica's clients name it in their User-Agent);
//! who holds which shard, from the shard Leases on the hub.
//!
//! 1. The three replicas split the shards; the networks converge, and every network is
//!    written (in members and on the hub) by exactly one replica: its shard's holder.
//! 2. One replica is SIGKILLed; a `FederatedService` is added to one of its networks right
//!    after. The survivors take its shards over once its Leases expire and write the new
//!    service within the lease duration plus one pass.
//! 3. It is started again: rendezvous hashing gives it back exactly its shards (the others
//!    release them rather than let them expire), and the networks, already converged, see no
//!    member writes at all in the window after the restart: no write storm.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{ConditionExt, FederatedNetwork, READY};
use federation_testkit::{AuditEvent, Cluster};
use federation_tests::operator_env::metrics::{parse, sum};
use federation_tests::operator_env::{
    EXPORTER, FedEnv, HUB_NAMESPACE, OperatorOptions, OperatorProcess, TOPOLOGY_HUB, apply_json,
    member_rbac_documents,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const SHARDS: u32 = 12;
const NETWORKS: usize = 12;
const REPLICAS: [&str; 3] = ["replica-0", "replica-1", "replica-2"];
const CONVERGE: Duration = Duration::from_secs(180);
/// `--lease-duration` and `--lease-retry-period` in the operator's fast flags.
const LEASE_DURATION: Duration = Duration::from_secs(4);
const RETRY_PERIOD: Duration = Duration::from_millis(500);
/// One network pass, at most, on this shared 2-core machine (three members, four API
/// servers, three operators): the time from a shard being taken over to its new
/// service's objects being in the members.
const ONE_PASS: Duration = Duration::from_secs(5);
const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

fn namespace(i: usize) -> String {
    format!("app-{i}")
}

fn network_name(i: usize) -> String {
    format!("net-{i}")
}

fn network(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": network_name(i), "namespace": HUB_NAMESPACE},
        "spec": {
            "backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct"}},
            "members": {"selector": {"matchLabels": {"env": "prod"}}},
            "namespaces": [namespace(i)],
            "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": [TOPOLOGY_HUB], "spokeCost": 1}}
        }
    })
}

fn service(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
        "metadata": {"name": format!("orders-{i}"), "namespace": HUB_NAMESPACE},
        "spec": {
            "network": network_name(i), "namespace": namespace(i), "serviceName": "orders",
            "exporters": [{"member": EXPORTER, "selector": {"app": "orders"}}],
            "ports": [{"name": "http", "port": 8080}]
        }
    })
}

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == net.metadata.generation
    })
}

/// The member namespaces of the networks, with the member RBAC of the Skupper backend in
/// each (the environment binds it in its own namespace only).
async fn prepare_members(env: &FedEnv) {
    let rbac = member_rbac_documents("skupper-namespace.yaml").unwrap();
    for cluster in env.member_clusters() {
        for i in 0..NETWORKS {
            cluster.create_namespace(&namespace(i)).await.unwrap();
            for doc in &rbac {
                let mut doc = doc.clone();
                doc["metadata"]["namespace"] = namespace(i).into();
                apply_json(&cluster.client(), &doc).await.unwrap();
            }
        }
    }
}

async fn wait_all_ready(env: &FedEnv, ops: &[&OperatorProcess]) {
    let api = Api::<FederatedNetwork>::namespaced(env.hub().client(), HUB_NAMESPACE);
    let started = Instant::now();
    loop {
        let nets = api.list(&ListParams::default()).await.unwrap().items;
        let not_ready: Vec<String> = nets
            .iter()
            .filter(|n| !ready(n))
            .map(|n| n.metadata.name.clone().unwrap_or_default())
            .collect();
        if nets.len() == NETWORKS && not_ready.is_empty() {
            return;
        }
        if started.elapsed() > CONVERGE {
            let logs: Vec<String> = ops.iter().map(|o| o.log_tail(30)).collect();
            panic!(
                "not Ready within {CONVERGE:?}: {not_ready:?}\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Shard → holder, from the shard Leases (a released Lease has no holder).
async fn holders(env: &FedEnv) -> BTreeMap<u32, String> {
    let api = Api::<Lease>::namespaced(env.hub().client(), HUB_NAMESPACE);
    let mut out = BTreeMap::new();
    for shard in 0..SHARDS {
        let holder = api
            .get_opt(&format!("fednet-operator-shard-{shard}"))
            .await
            .unwrap()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        if let Some(h) = holder {
            out.insert(shard, h);
        }
    }
    out
}

/// Waits until the shard holders satisfy `done` and stay so for a second; returns them and
/// when they first did.
async fn wait_holders(
    env: &FedEnv,
    what: &str,
    timeout: Duration,
    done: impl Fn(&BTreeMap<u32, String>) -> bool,
) -> (BTreeMap<u32, String>, Instant) {
    let started = Instant::now();
    let mut stable_since: Option<(Instant, BTreeMap<u32, String>)> = None;
    loop {
        let now = holders(env).await;
        if done(&now) {
            match &stable_since {
                Some((since, seen)) if *seen == now => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        return (now, *since);
                    }
                }
                _ => stable_since = Some((Instant::now(), now.clone())),
            }
        } else {
            stable_since = None;
        }
        assert!(
            started.elapsed() < timeout,
            "shards not {what} within {timeout:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The identity in a fednet User-Agent, `fednet-operator/<version> (<identity>)`.
fn identity_of(event: &AuditEvent) -> Option<String> {
    let rest = event.user_agent.strip_prefix("fednet-operator/")?;
    let (_, id) = rest.split_once(" (")?;
    Some(id.trim_end_matches(')').to_owned())
}

/// Write requests of fednet replicas, one event per request.
async fn fednet_writes(cluster: &Cluster) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = cluster
        .audit_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| identity_of(e).is_some() && WRITE_VERBS.contains(&e.verb.as_str()))
        .collect();
    events.sort_by_key(|e| e.request_received_timestamp.0);
    events.dedup_by(|a, b| a.audit_id == b.audit_id);
    events
}

fn within(e: &AuditEvent, from: Timestamp, to: Timestamp) -> bool {
    let at = e.request_received_timestamp.0;
    at >= from && at < to
}

/// Network index → replicas that wrote for it between `from` and `to`: in members (by the
/// member namespace) and on the hub (its status, by name).
async fn writers(
    env: &FedEnv,
    from: Timestamp,
    to: Timestamp,
) -> BTreeMap<usize, BTreeSet<String>> {
    let by_namespace: BTreeMap<String, usize> = (0..NETWORKS).map(|i| (namespace(i), i)).collect();
    let by_name: BTreeMap<String, usize> = (0..NETWORKS).map(|i| (network_name(i), i)).collect();
    let mut out: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for cluster in env.member_clusters() {
        for e in fednet_writes(cluster)
            .await
            .iter()
            .filter(|e| within(e, from, to))
        {
            let ns = e.object_ref.as_ref().and_then(|o| o.namespace.clone());
            if let Some(i) = ns.and_then(|ns| by_namespace.get(&ns).copied()) {
                out.entry(i).or_default().extend(identity_of(e));
            }
        }
    }
    for e in fednet_writes(env.hub())
        .await
        .iter()
        .filter(|e| within(e, from, to))
    {
        let Some(o) = e.object_ref.as_ref() else {
            continue;
        };
        if o.resource.as_deref() != Some("federatednetworks") {
            continue;
        }
        if let Some(i) = o.name.as_ref().and_then(|n| by_name.get(n).copied()) {
            out.entry(i).or_default().extend(identity_of(e));
        }
    }
    out
}

/// Member writes of fednet replicas in the networks' namespaces between `from` and `to`.
async fn member_writes(env: &FedEnv, from: Timestamp, to: Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    for cluster in env.member_clusters() {
        for e in fednet_writes(cluster)
            .await
            .iter()
            .filter(|e| within(e, from, to))
        {
            out.push(format!(
                "{} {} {} ({})",
                e.request_received_timestamp.0, e.verb, e.request_uri, e.user_agent
            ));
        }
    }
    out
}

async fn start(env: &FedEnv, identity: &str, logs: &Path) -> OperatorProcess {
    let mut options = OperatorOptions::fast(identity);
    options.extra_args = vec![format!("--shards={SHARDS}")];
    OperatorProcess::start(env, options, logs).await.unwrap()
}

/// A shard move counter summed over the running replicas.
async fn moves(ops: &[OperatorProcess], change: &str) -> f64 {
    let mut total = 0.0;
    for op in ops {
        if let Ok(text) = op.metrics().await {
            total += sum(
                &parse(&text),
                "fednet_shard_moves_total",
                &[("change", change)],
            );
        }
    }
    total
}

fn skupper(cluster: &Cluster, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        cluster.client(),
        ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("skupper.io", "v2alpha1", kind),
            plural,
        ),
    )
}

#[tokio::test]
async fn three_replicas_share_twelve_networks_take_over_a_dead_ones_and_give_them_back() {
    let test_started = Instant::now();
    let mut env = FedEnv::start_audited(3).await.unwrap();
    prepare_members(&env).await;
    env.start_double();
    let logs = tempfile::tempdir().unwrap();

    // 1. Three replicas split the shards, then the networks arrive.
    let mut ops = Vec::new();
    for id in REPLICAS {
        ops.push(start(&env, id, logs.path()).await);
    }
    for op in &ops {
        op.wait_ready(Duration::from_secs(60)).await.unwrap();
    }
    let (before, _) = wait_holders(
        &env,
        "split over three replicas",
        Duration::from_secs(30),
        |h| h.len() == SHARDS as usize && h.values().collect::<BTreeSet<_>>().len() == 3,
    )
    .await;
    let t0 = Timestamp::now();
    for i in 0..NETWORKS {
        apply_json(&env.hub().client(), &network(i)).await.unwrap();
    }
    wait_all_ready(&env, &ops.iter().collect::<Vec<_>>()).await;
    let converged = test_started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every network was written by one replica only, and it was its shard's holder.
    let phase1 = writers(&env, t0, Timestamp::now()).await;
    assert_eq!(phase1.len(), NETWORKS, "networks nobody wrote: {phase1:?}");
    for (i, who) in &phase1 {
        assert_eq!(who.len(), 1, "network {i} written by {who:?}");
    }
    let holder_ids: BTreeSet<&String> = before.values().collect();
    let owner: BTreeMap<usize, String> = phase1
        .iter()
        .map(|(i, who)| (*i, who.iter().next().unwrap().clone()))
        .collect();
    assert!(owner.values().all(|o| holder_ids.contains(o)));
    let per_replica = |id: &str| owner.values().filter(|o| *o == id).count();
    eprintln!(
        "networks per replica: {:?}",
        REPLICAS.map(|id| (id, per_replica(id)))
    );

    // 2. SIGKILL the replica that owns the most networks; add a service to one of them.
    let victim_index = (0..REPLICAS.len())
        .max_by_key(|k| per_replica(REPLICAS[*k]))
        .unwrap();
    let victim = REPLICAS[victim_index];
    let victims_network = *owner.iter().find(|(_, o)| *o == victim).unwrap().0;
    let victims_shards: BTreeSet<u32> = before
        .iter()
        .filter(|(_, h)| *h == victim)
        .map(|(s, _)| *s)
        .collect();
    ops[victim_index].kill().await.unwrap();
    let killed_at = Timestamp::now();
    let killed = Instant::now();
    apply_json(&env.hub().client(), &service(victims_network))
        .await
        .unwrap();
    // Skupper objects are named after the FederatedService.
    let listener =
        federation_skupper::names::service_port(&format!("orders-{victims_network}"), "http");
    let listeners = skupper(
        env.member("west").unwrap(),
        &namespace(victims_network),
        "Listener",
        "listeners",
    );
    let connectors = skupper(
        env.member(EXPORTER).unwrap(),
        &namespace(victims_network),
        "Connector",
        "connectors",
    );
    loop {
        let done = listeners.get_opt(&listener).await.unwrap().is_some()
            && connectors.get_opt(&listener).await.unwrap().is_some();
        if done {
            break;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            let survivors: Vec<String> = ops
                .iter_mut()
                .filter_map(|o| o.running().then(|| o.log_tail(80)))
                .collect();
            panic!(
                "the service of {victim}'s network {victims_network} was never written; \
                 holders {:?}\n{}",
                holders(&env).await,
                survivors.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let service_written = killed.elapsed();
    let survivors: BTreeSet<String> = REPLICAS
        .iter()
        .filter(|r| **r != victim)
        .map(|r| (*r).to_owned())
        .collect();
    let (during, taken_over) = wait_holders(&env, "taken over", Duration::from_secs(30), |h| {
        h.len() == SHARDS as usize && h.values().all(|o| survivors.contains(o))
    })
    .await;
    // Polled every 100 ms: good to that.
    let takeover = taken_over.saturating_duration_since(killed);
    // The survivors kept their own shards: only the victim's moved.
    for (shard, holder) in &before {
        if holder != victim {
            assert_eq!(
                during.get(shard),
                Some(holder),
                "shard {shard} moved needlessly"
            );
        }
    }
    wait_all_ready(
        &env,
        &[&ops[(victim_index + 1) % 3], &ops[(victim_index + 2) % 3]],
    )
    .await;
    assert!(
        service_written <= LEASE_DURATION + 2 * RETRY_PERIOD + ONE_PASS,
        "the new service of {victim}'s network was written {service_written:?} after the kill"
    );
    let phase2 = writers(&env, killed_at, Timestamp::now()).await;
    for (i, who) in &phase2 {
        assert_eq!(
            who.len(),
            1,
            "network {i} written by {who:?} after the kill"
        );
        assert!(!who.contains(victim));
    }
    assert!(phase2.contains_key(&victims_network));

    // 3. The victim comes back: exactly its shards move back, and nothing is rewritten.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let released_before = moves(&ops, "released").await;
    let lost_before = moves(&ops, "lost").await;
    let restarted_at = Timestamp::now();
    let restarted = Instant::now();
    ops[victim_index] = start(&env, victim, logs.path()).await;
    ops[victim_index]
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    // Ready means synced: it joins the ring now.
    let rejoined = Instant::now();
    let (after, back) = wait_holders(&env, "given back", Duration::from_secs(60), |h| {
        *h == before
    })
    .await;
    let moved_back = back.saturating_duration_since(rejoined);
    // A window after the restart for a write storm to show.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(holders(&env).await, after);
    let storm = member_writes(&env, restarted_at, Timestamp::now()).await;
    assert!(
        storm.is_empty(),
        "member writes after the restart:\n{}",
        storm.join("\n")
    );
    wait_all_ready(&env, &ops.iter().collect::<Vec<_>>()).await;
    let hub_writes_after: Vec<AuditEvent> = fednet_writes(env.hub())
        .await
        .into_iter()
        .filter(|e| e.request_received_timestamp.0 >= restarted_at)
        .collect();
    let lease_writes = hub_writes_after
        .iter()
        .filter(|e| e.object_ref.as_ref().and_then(|o| o.resource.as_deref()) == Some("leases"))
        .count();
    let other_hub_writes: Vec<String> = hub_writes_after
        .iter()
        .filter(|e| e.object_ref.as_ref().and_then(|o| o.resource.as_deref()) != Some("leases"))
        .map(|e| format!("{} {}", e.verb, e.request_uri))
        .collect();

    // Metrics: the victim holds its shards again, all twelve are held once.
    let mut held = 0.0;
    for op in &ops {
        let text = op.metrics().await.unwrap();
        held += sum(&parse(&text), "fednet_shards_held", &[]);
    }
    assert_eq!(held, f64::from(SHARDS));
    let text = ops[victim_index].metrics().await.unwrap();
    assert_eq!(
        sum(&parse(&text), "fednet_shards_held", &[]),
        victims_shards.len() as f64
    );
    let released = moves(&ops, "released").await - released_before;
    let lost = moves(&ops, "lost").await - lost_before;
    // Handed back by the survivors releasing them: they were alive and renewing, so
    // nothing else could have moved them.
    assert!(released >= 1.0, "no shard released");

    eprintln!(
        "figures: converged {converged:?} after start; {victim} (shards {victims_shards:?}) \
         killed: its shards all held by the others {takeover:?} after the kill, its network's \
         new service written {service_written:?} after it; \
         restarted: shards back {moved_back:?} after it was ready ({released} released, \
         {lost} lost to load), then 0 member writes, \
         {lease_writes} Lease writes and {} other hub writes in the {:?} after it {:?}; \
         whole test {:?}",
        other_hub_writes.len(),
        restarted.elapsed(),
        other_hub_writes,
        test_started.elapsed()
    );
}

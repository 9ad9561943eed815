//! The SD-WAN backend's Headscale adapter against a real Headscale process (v0.29.2, built by
//! hack/headscale/build.sh) and a real hub kube-apiserver, driven by the real engine.
//!
//! In the first test every edge runs a real Tailscale client (tailscaled, userspace
//! networking) announcing its member's prefixes, so links come Up for real; the others
//! register edges without a client (offline, announcing nothing), which is enough to prove
//! what fednet writes and removes on the controller.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use async_trait::async_trait;
use common::{ADMIN_POLICY, Env, all_ports, prefixes, rules_of};
use federation_core::api::{FederatedNetwork, LinkPhase};
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, NetworkBackend, ObserveScope, Observed, Target,
};
use federation_core::delegate_pure_backend_methods;
use federation_core::engine::{Engine, TargetOutcome};
use federation_core::plan::NetworkRef;
use federation_sdwan::fixtures::{full_mesh, hub_spoke, service};
use federation_sdwan::headscale::RTT_UNKNOWN;
use federation_testkit::Headscale;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn routes(ns: &[u8]) -> Vec<String> {
    let mut r: Vec<String> = ns.iter().flat_map(|n| prefixes(*n)).collect();
    r.sort();
    r
}

#[tokio::test]
async fn a_full_mesh_and_a_hub_and_spoke_network_converge_side_by_side_and_tear_down_cleanly() {
    let env = Env::start_online(&["a", "b", "c", "d", "e", "f"]).await;
    let mesh = env.network("mesh", &["a", "b", "c"], full_mesh()).await;
    let star = env
        .network("star", &["d", "e", "f"], hub_spoke(&["d"]))
        .await;
    let (mesh_plan, star_plan) = (env.plan(&mesh, &[]), env.plan(&star, &[]));

    let started = std::time::Instant::now();
    let reports = env.converge(&mesh_plan).await;
    eprintln!(
        "full mesh of 3 converged in {} passes, {:?}",
        reports.len(),
        started.elapsed()
    );
    assert!(
        reports.len() <= 2,
        "one pass writes, the next finds nothing to do"
    );
    env.converge(&star_plan).await;

    let policy = env.policy().await;
    assert!(
        policy.starts_with(ADMIN_POLICY.lines().next().unwrap()),
        "the administrators' text stays first:\n{policy}"
    );
    assert!(policy.contains("// Operators may reach the jump host."));
    assert!(policy.contains(
        r#"{"action": "accept", "src": ["192.168.50.0/24"], "dst": ["192.168.60.10/32:22"]},"#
    ));
    // Full mesh: every site reaches the two others.
    let mesh_rules = rules_of(&policy, "mesh");
    assert_eq!(mesh_rules.len(), 3);
    assert_eq!(mesh_rules["site/a"], all_ports(&[2, 3]));
    assert_eq!(mesh_rules["site/b"], all_ports(&[1, 3]));
    // Hub-and-spoke: spokes reach the hub only, the hub reaches every spoke.
    let star_rules = rules_of(&policy, "star");
    assert_eq!(star_rules["site/e"], all_ports(&[4]));
    assert_eq!(star_rules["site/f"], all_ports(&[4]));
    assert_eq!(star_rules["site/d"], all_ports(&[5, 6]));
    // Each edge has exactly its member's prefixes approved.
    let approved = env.approved().await;
    for (i, m) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        assert_eq!(
            approved[&format!("edge-{m}")],
            routes(&[i as u8 + 1]),
            "edge-{m}"
        );
    }

    // Status says what Headscale knows: edges online, routes approved and served; RTT and
    // loss unknown.
    let report = env
        .engine
        .reconcile(&mesh_plan, &BTreeSet::from([env.target()]))
        .await;
    assert!(
        report.is_converged(),
        "at rest nothing is written: {report:#?}"
    );
    assert_eq!(report.health.links.len(), 3);
    assert!(report.health.members_not_ready.is_empty(), "{report:#?}");
    for link in &report.health.links {
        assert_eq!(link.phase, LinkPhase::Up, "{link:?}");
        assert_eq!(link.message.as_deref(), Some(RTT_UNKNOWN));
    }

    // An edge whose client goes away: its links are no longer up, and status says why.
    env.headscale.kill_client("edge-c").await.unwrap();
    let mut report = env
        .engine
        .reconcile(&mesh_plan, &BTreeSet::from([env.target()]))
        .await;
    for _ in 0..50 {
        if !report.health.members_not_ready.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        report = env
            .engine
            .reconcile(&mesh_plan, &BTreeSet::from([env.target()]))
            .await;
    }
    assert!(
        report.health.members_not_ready["c"].contains("edge node edge-c is offline"),
        "{report:#?}"
    );
    for link in report
        .health
        .links
        .iter()
        .filter(|l| l.dialer == "c" || l.acceptor == "c")
    {
        assert_eq!(link.phase, LinkPhase::Pending, "{link:?}");
    }
    let ab = report
        .health
        .links
        .iter()
        .find(|l| l.dialer != "c" && l.acceptor != "c")
        .unwrap();
    assert_eq!(ab.phase, LinkPhase::Up, "the others are untouched");

    // Teardown of one network leaves the other exactly as it was, then the admin's policy.
    let before_star = rules_of(&env.policy().await, "star");
    let teardown = env
        .engine
        .teardown(&mesh_plan.observe_scope(), &BTreeSet::from([env.target()]))
        .await;
    assert!(teardown.is_complete(), "{teardown:#?}");
    let policy = env.policy().await;
    assert!(rules_of(&policy, "mesh").is_empty());
    assert_eq!(rules_of(&policy, "star"), before_star);
    let approved = env.approved().await;
    assert!(approved["edge-a"].is_empty() && approved["edge-c"].is_empty());
    assert_eq!(approved["edge-e"], routes(&[5]));
    let teardown = env
        .engine
        .teardown(&star_plan.observe_scope(), &BTreeSet::from([env.target()]))
        .await;
    assert!(teardown.is_complete(), "{teardown:#?}");
    assert_eq!(
        env.policy().await,
        ADMIN_POLICY,
        "nothing of fednet is left"
    );
    assert!(env.approved().await.values().all(Vec::is_empty));
}

#[tokio::test]
async fn members_join_and_leave_and_approvals_fednet_did_not_make_stay() {
    let env = Env::start(&["a", "b", "c"]).await;
    // An administrator approved a route of b's (and an unrelated one) before fednet came.
    let b_id = node_id(&env, "edge-b").await;
    env.headscale
        .cli(&[
            "nodes",
            "approve-routes",
            "-i",
            &b_id,
            "-r",
            "10.2.0.0/16,192.168.7.0/24",
        ])
        .await
        .unwrap();
    let mut net = env.network("grow", &["a", "b"], full_mesh()).await;
    env.converge(&env.plan(&net, &[])).await;
    let rules = rules_of(&env.policy().await, "grow");
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["site/a", "site/b"]);

    // c joins.
    net.spec.members.names.push("c".into());
    let net = env.save(&net).await;
    env.converge(&env.plan(&net, &[])).await;
    let rules = rules_of(&env.policy().await, "grow");
    assert_eq!(rules["site/a"], all_ports(&[2, 3]));
    assert_eq!(rules["site/c"], all_ports(&[1, 2]));
    assert_eq!(env.approved().await["edge-c"], routes(&[3]));

    // b leaves: its rule goes, fednet's approvals on edge-b go, the administrator's stay.
    let mut net: FederatedNetwork = net;
    net.spec.members.names.retain(|m| m != "b");
    let net = env.save(&net).await;
    env.converge(&env.plan(&net, &[])).await;
    let policy = env.policy().await;
    let rules = rules_of(&policy, "grow");
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["site/a", "site/c"]);
    assert_eq!(rules["site/a"], all_ports(&[3]));
    assert!(!policy.contains("fednet:route edge-b"), "{policy}");
    assert_eq!(
        env.approved().await["edge-b"],
        ["10.2.0.0/16", "192.168.7.0/24"],
        "only what fednet approved itself (10.102.0.0/16) was withdrawn"
    );
}

#[tokio::test]
async fn a_service_policy_appears_and_goes_with_its_federated_service() {
    let env = Env::start(&["a", "b", "c"]).await;
    let net = env
        .network("apps", &["a", "b", "c"], hub_spoke(&["a"]))
        .await;
    let web = service("web", "apps", "b", 8080);
    env.converge(&env.plan(&net, std::slice::from_ref(&web)))
        .await;
    let rules = rules_of(&env.policy().await, "apps");
    assert_eq!(
        rules["service/web/b"],
        prefixes(2)
            .iter()
            .map(|p| format!("{p}:8080,8081"))
            .collect::<Vec<_>>(),
        "the service's port and target port, on the exporter's prefixes"
    );
    let policy = env.policy().await;
    let line = policy
        .lines()
        .find(|l| l.ends_with("// fednet:rule service/web/b"))
        .unwrap();
    let rule: serde_json::Value =
        serde_json::from_str(line.trim().split(", //").next().unwrap()).unwrap();
    assert_eq!(
        rule["src"],
        serde_json::json!(routes(&[1, 3])),
        "from the consumers a and c"
    );
    let report = env
        .engine
        .reconcile(
            &env.plan(&net, std::slice::from_ref(&web)),
            &BTreeSet::from([env.target()]),
        )
        .await;
    assert_eq!(report.health.services.len(), 3, "one per consumer");
    for s in &report.health.services {
        // The exporter serves itself; the others wait for their offline edges.
        assert_eq!(s.ready, s.consumer == "b", "{s:?}");
    }

    env.converge(&env.plan(&net, &[])).await;
    let rules = rules_of(&env.policy().await, "apps");
    assert!(!rules.contains_key("service/web/b"));
    assert_eq!(rules.len(), 3, "the overlay rules stay");
}

/// Kills the controller right after the `after`-th successful apply: a crash between two
/// writes of a pass.
struct CrashAfter {
    inner: Arc<dyn NetworkBackend>,
    headscale: Arc<Headscale>,
    after: usize,
    applied: AtomicUsize,
}

#[async_trait]
impl NetworkBackend for CrashAfter {
    delegate_pure_backend_methods!(inner);

    async fn observe(&self, t: &Target, n: &ObserveScope) -> Result<Observed, BackendError> {
        self.inner.observe(t, n).await
    }

    async fn apply(&self, t: &Target, o: &[DesiredObject]) -> Result<(), BackendError> {
        self.inner.apply(t, o).await?;
        if self.applied.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.headscale.kill().await.unwrap();
        }
        Ok(())
    }

    async fn delete(&self, t: &Target, d: &[Deletion]) -> Result<(), BackendError> {
        self.inner.delete(t, d).await
    }
}

#[tokio::test]
async fn a_controller_crash_between_writes_leaves_no_duplicate_and_loses_nothing() {
    let env = Env::start(&["a", "b", "c"]).await;
    let recorded = BTreeSet::from([env.target()]);
    // A pass writes the rules, then the routes of a, b and c: crash after each of the first
    // three writes in turn.
    for after in 1..=3 {
        let name = format!("crash-{after}");
        let net = env.network(&name, &["a", "b", "c"], full_mesh()).await;
        let plan = env.plan(&net, &[service("web", &name, "b", 8080)]);
        let crashing = Engine::new(
            Arc::new(CrashAfter {
                inner: env.backend(),
                headscale: env.headscale.clone(),
                after,
                applied: AtomicUsize::new(0),
            }),
            Env::engine_config(),
        );
        let report = crashing.reconcile(&plan, &recorded).await;
        assert!(
            matches!(
                report.targets[&env.target()].outcome,
                TargetOutcome::Failed { .. }
            ),
            "the pass is cut short: {report:#?}"
        );
        env.headscale.restart().await.unwrap();
        env.converge(&plan).await;

        let policy = env.policy().await;
        assert_eq!(
            policy
                .matches(&format!("// fednet:begin {}/{name} ", env.namespace))
                .count(),
            1
        );
        assert_eq!(policy.matches("// fednet:end ").count(), 1, "{policy}");
        let rules = rules_of(&policy, &name);
        assert_eq!(
            rules.keys().collect::<Vec<_>>(),
            ["service/web/b", "site/a", "site/b", "site/c"],
            "{policy}"
        );
        for edge in ["edge-a", "edge-b", "edge-c"] {
            assert_eq!(
                policy.matches(&format!("// fednet:route {edge} ")).count(),
                1,
                "{policy}"
            );
        }
        let approved = env.approved().await;
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(approved[&format!("edge-{m}")], routes(&[i as u8 + 1]));
        }
        let teardown = env.engine.teardown(&plan.observe_scope(), &recorded).await;
        assert!(teardown.is_complete(), "{teardown:#?}");
        assert_eq!(env.policy().await, ADMIN_POLICY, "after crash {after}");
        assert!(env.approved().await.values().all(Vec::is_empty));
    }
}

async fn node_id(env: &Env, name: &str) -> String {
    let out = env
        .headscale
        .cli(&["nodes", "list", "-o", "json"])
        .await
        .unwrap();
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    nodes
        .iter()
        .find(|n| n["given_name"] == name)
        .map(|n| n["id"].to_string())
        .unwrap()
}

#[tokio::test]
async fn a_wrong_api_key_or_an_unreachable_or_untrusted_controller_writes_nothing() {
    let env = Env::start(&["a", "b"]).await;
    let before = (env.policy().await, env.approved().await);

    // A key the controller does not know.
    env.put_secret(
        "wrong-token",
        "hskey-api-notAKey-0000000000000000000000000000",
    )
    .await;
    let mut net = env.network("denied", &["a", "b"], full_mesh()).await;
    if let Some(s) = net.spec.backend.sdwan.as_mut() {
        s.credentials_secret_ref.name = "wrong-token".into();
    }
    let net = env.save(&net).await;
    let report = env
        .engine
        .reconcile(&env.plan(&net, &[]), &BTreeSet::from([env.target()]))
        .await;
    let error = failure(&report, &env.target());
    assert!(error.contains("refused the API key (HTTP 401"), "{error}");
    assert!(!error.contains("notAKey"), "no secret in errors: {error}");

    // No CA bundle: the controller's certificate is not trusted, and TLS stays verified.
    let mut net = env.network("untrusted", &["a", "b"], full_mesh()).await;
    if let Some(s) = net.spec.backend.sdwan.as_mut() {
        s.ca_bundle = None;
    }
    let net = env.save(&net).await;
    let report = env
        .engine
        .reconcile(&env.plan(&net, &[]), &BTreeSet::from([env.target()]))
        .await;
    let error = failure(&report, &env.target());
    assert!(
        error.contains("no connection") && error.to_lowercase().contains("certificate"),
        "{error}"
    );

    // Nobody listening.
    let mut net = env.network("nowhere", &["a", "b"], full_mesh()).await;
    let closed = "https://127.0.0.1:9".to_owned();
    if let Some(s) = net.spec.backend.sdwan.as_mut() {
        s.controller_url = closed.clone();
    }
    let net = env.save(&net).await;
    let target = Target::Controller(closed);
    let report = env
        .engine
        .reconcile(&env.plan(&net, &[]), &BTreeSet::from([target.clone()]))
        .await;
    let error = failure(&report, &target);
    assert!(
        error.contains("no connection to controller/https://127.0.0.1:9"),
        "{error}"
    );

    assert_eq!(
        (env.policy().await, env.approved().await),
        before,
        "nothing was written"
    );
}

fn failure(report: &federation_core::engine::ReconcileReport, target: &Target) -> String {
    match &report.targets[target].outcome {
        TargetOutcome::Failed { error } => error.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_controller_crash_at_any_moment_of_a_pass_leaves_no_duplicate_and_loses_nothing() {
    let env = Env::start(&["a", "b", "c"]).await;
    let recorded = BTreeSet::from([env.target()]);
    // The crash lands wherever the pass is after `delay`: inside a read-modify-write of the
    // policy, between recording an approval and making it, or after the pass.
    for (round, delay_ms) in [40u64, 120, 250, 400, 700].into_iter().enumerate() {
        let name = format!("anytime-{round}");
        let net = env.network(&name, &["a", "b", "c"], full_mesh()).await;
        let plan = env.plan(&net, &[service("web", &name, "b", 8080)]);
        let headscale = env.headscale.clone();
        let crash = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            headscale.kill().await.unwrap();
        });
        let _ = env.engine.reconcile(&plan, &recorded).await;
        crash.await.unwrap();
        env.headscale.restart().await.unwrap();
        env.converge(&plan).await;

        let policy = env.policy().await;
        assert_eq!(policy.matches("// fednet:begin ").count(), 1, "{policy}");
        assert_eq!(policy.matches("// fednet:end ").count(), 1, "{policy}");
        assert_eq!(rules_of(&policy, &name).len(), 4, "{policy}");
        for edge in ["edge-a", "edge-b", "edge-c"] {
            assert_eq!(
                policy.matches(&format!("// fednet:route {edge} ")).count(),
                1,
                "{policy}"
            );
        }
        let approved = env.approved().await;
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(
                approved[&format!("edge-{m}")],
                routes(&[i as u8 + 1]),
                "round {round}"
            );
        }
        let teardown = env.engine.teardown(&plan.observe_scope(), &recorded).await;
        assert!(teardown.is_complete(), "{teardown:#?}");
        assert_eq!(env.policy().await, ADMIN_POLICY, "round {round}");
        assert!(env.approved().await.values().all(Vec::is_empty));
    }
}

/// Reaches one controller with a fixed key (no hub).
struct FixedAccess(federation_sdwan::access::ControllerAccess);

#[async_trait]
impl federation_sdwan::access::AccessResolver for FixedAccess {
    async fn access(
        &self,
        _: &NetworkRef,
    ) -> Result<federation_sdwan::access::ControllerAccess, BackendError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_controller_without_a_policy_is_not_given_one() {
    // Without a policy Headscale lets every node reach every other; a policy holding only
    // fednet's rules would cut everything else, so fednet refuses to write the first one.
    let headscale = Headscale::start().await.unwrap();
    headscale.create_user("edges").await.unwrap();
    for m in ["a", "b"] {
        headscale
            .create_node("edges", &format!("edge-{m}"))
            .await
            .unwrap();
    }
    let access = federation_sdwan::access::ControllerAccess {
        adapter: federation_core::api::SdwanAdapter::Headscale,
        url: headscale.url().to_owned(),
        token: federation_sdwan::access::Token::new(headscale.create_api_key().await.unwrap()),
        ca_bundle: Some(headscale.ca_pem().to_owned()),
        organization: None,
        service_registry: None,
    };
    let engine = Engine::new(
        Arc::new(federation_sdwan::SdwanBackend::new(Arc::new(FixedAccess(
            access,
        )))),
        Env::engine_config(),
    );
    let mut s = federation_sdwan::fixtures::settings(
        federation_core::api::SdwanAdapter::Headscale,
        headscale.url(),
        "unused",
    );
    s.ca_bundle = Some(headscale.ca_pem().to_owned());
    let net = federation_sdwan::fixtures::network("bare", &["a", "b"], full_mesh(), s);
    let plan = federation_sdwan::fixtures::plan(
        &net,
        &federation_sdwan::fixtures::members(&["a", "b"]),
        &[],
    );
    let target = Target::Controller(headscale.url().to_owned());
    let report = engine
        .reconcile(&plan, &BTreeSet::from([target.clone()]))
        .await;
    let rejected = &report.targets[&target].rejected;
    assert_eq!(
        rejected.len(),
        3,
        "the rules and both approvals: {report:#?}"
    );
    assert!(
        rejected
            .iter()
            .all(|r| r.error.contains("has no ACL policy")),
        "{rejected:#?}"
    );
    let policy = headscale.cli(&["policy", "get"]).await;
    assert!(policy.is_err(), "still no policy: {policy:?}");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(
        &headscale
            .cli(&["nodes", "list", "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        nodes
            .iter()
            .all(|n| n["approved_routes"].as_array().is_none_or(Vec::is_empty)),
        "nothing approved: {nodes:#?}"
    );
}

//! The flexiManage adapter, contract-verified: the real engine drives it against a stateful
//! fake controller placed behind Prism in proxy mode with flexiManage's published OpenAPI spec
//! (`prism proxy --errors`), so every request the adapter sends and every answer it relies on
//! is checked against the spec. This is not a test against a real flexiManage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flexi;

use async_trait::async_trait;
use federation_core::api::{FederatedNetwork, LinkPhase, SdwanAdapter};
use federation_core::backend::{BackendError, Target};
use federation_core::engine::{Engine, EngineConfig, ReconcileReport, TargetOutcome};
use federation_core::plan::{NetworkPlan, NetworkRef};
use federation_sdwan::SdwanBackend;
use federation_sdwan::access::{AccessResolver, ControllerAccess, Token};
use federation_sdwan::fixtures::{self, full_mesh, hub_spoke, members, network, settings};
use flexi::{FlexiEnv, ORG, TOKEN};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

struct Static(ControllerAccess);

#[async_trait]
impl AccessResolver for Static {
    async fn access(&self, _: &NetworkRef) -> Result<ControllerAccess, BackendError> {
        Ok(self.0.clone())
    }
}

struct Env {
    flexi: FlexiEnv,
    engine: Engine,
}

const MEMBERS: [&str; 4] = ["a", "b", "c", "d"];

impl Env {
    async fn start() -> Self {
        Self::with_token(TOKEN).await
    }

    async fn with_token(token: &str) -> Self {
        let flexi = FlexiEnv::start().await;
        {
            let mut s = flexi.state.lock().unwrap();
            for m in MEMBERS {
                s.add_device(&fixtures::edge(m), true);
            }
        }
        let access = ControllerAccess {
            adapter: SdwanAdapter::FlexiManage,
            url: flexi.url.clone(),
            token: Token::new(token),
            ca_bundle: Some(flexi.ca_pem.clone()),
            organization: Some(ORG.into()),
            service_registry: None,
        };
        let engine = Engine::new(
            Arc::new(SdwanBackend::new(Arc::new(Static(access)))),
            EngineConfig {
                target_timeout: Duration::from_secs(30),
                max_attempts: 3,
                ..EngineConfig::default()
            },
        );
        Self { flexi, engine }
    }

    fn target(&self) -> Target {
        Target::Controller(self.flexi.url.clone())
    }

    fn net(
        &self,
        name: &str,
        names: &[&str],
        topology: federation_core::api::TopologySpec,
    ) -> FederatedNetwork {
        network(
            name,
            names,
            topology,
            settings(SdwanAdapter::FlexiManage, &self.flexi.url, "unused"),
        )
    }

    fn plan(&self, net: &FederatedNetwork) -> NetworkPlan {
        fixtures::plan(net, &members(&MEMBERS), &[])
    }

    async fn pass(&self, plan: &NetworkPlan) -> ReconcileReport {
        self.engine
            .reconcile(plan, &BTreeSet::from([self.target()]))
            .await
    }

    async fn converge(&self, plan: &NetworkPlan) -> Vec<ReconcileReport> {
        let mut reports = Vec::new();
        for _ in 0..6 {
            let r = self.pass(plan).await;
            let done = r.is_converged();
            reports.push(r);
            if done {
                return reports;
            }
        }
        panic!("no convergence: {:#?}", reports.last());
    }

    fn pairs(&self) -> Vec<(String, String)> {
        self.flexi
            .state
            .lock()
            .unwrap()
            .tunnel_pairs()
            .into_iter()
            .collect()
    }

    fn assert_contract_kept(&self) {
        let s = self.flexi.state.lock().unwrap();
        assert_eq!(
            s.applies_without_devices, 0,
            "never an apply without explicit devices"
        );
        assert_eq!(s.calls_without_org, 0, "?org= on every call");
        for apply in &s.applies {
            assert!(!apply["devices"].as_object().unwrap().is_empty(), "{apply}");
        }
    }
}

fn p(a: &str, b: &str) -> (String, String) {
    (format!("edge-{a}"), format!("edge-{b}"))
}

#[tokio::test]
async fn a_full_mesh_converges_grows_shrinks_and_tears_down_through_the_contract() {
    let env = Env::start().await;
    let mut net = env.net("mesh", &["a", "b", "c"], full_mesh());
    let reports = env.converge(&env.plan(&net)).await;
    assert!(reports.len() <= 3, "{} passes", reports.len());
    assert_eq!(env.pairs(), [p("a", "b"), p("a", "c"), p("b", "c")]);
    {
        let s = env.flexi.state.lock().unwrap();
        let tunnel_applies: Vec<_> = s
            .applies
            .iter()
            .filter(|a| a["method"] == "tunnels")
            .collect();
        assert_eq!(tunnel_applies.len(), 1, "a fresh full mesh is one apply");
        let meta = &tunnel_applies[0]["meta"];
        assert_eq!(meta["topology"], "fullMesh");
        assert!(meta["advancedOptions"].is_object());
        assert_eq!(tunnel_applies[0]["devices"].as_object().unwrap().len(), 3);
        assert_eq!(s.labels.len(), 1);
        let labelled = s
            .devices
            .iter()
            .filter(|d| d["interfaces"][0]["pathlabels"].as_array().unwrap().len() == 1)
            .count();
        assert_eq!(
            labelled, 3,
            "the three edges' WAN interfaces carry the network's label"
        );
    }
    let report = env.pass(&env.plan(&net)).await;
    assert!(report.is_converged(), "{report:#?}");
    assert_eq!(report.health.links.len(), 3);
    for l in &report.health.links {
        assert_eq!(l.phase, LinkPhase::Up, "{l:?}");
        assert_eq!(l.message.as_deref(), Some("rtt 12.5 ms, drop rate 0.5"));
    }

    // d joins: its three tunnels, each a two-device apply.
    net.spec.members.names.push("d".into());
    env.converge(&env.plan(&net)).await;
    assert_eq!(env.pairs().len(), 6);

    // b leaves: exactly its tunnels go, by deltunnels naming them.
    net.spec.members.names.retain(|m| m != "b");
    env.converge(&env.plan(&net)).await;
    assert_eq!(env.pairs(), [p("a", "c"), p("a", "d"), p("c", "d")]);
    {
        let s = env.flexi.state.lock().unwrap();
        let deletes: Vec<_> = s
            .applies
            .iter()
            .filter(|a| a["method"] == "deltunnels")
            .collect();
        assert_eq!(deletes.len(), 3);
        for d in deletes {
            assert_eq!(d["tunnels"].as_object().unwrap().len(), 1, "{d}");
            assert_eq!(d["devices"].as_object().unwrap().len(), 2, "{d}");
        }
        let b = s.devices.iter().find(|d| d["name"] == "edge-b").unwrap();
        assert!(
            b["interfaces"][0]["pathlabels"]
                .as_array()
                .unwrap()
                .is_empty(),
            "b's label removed"
        );
    }

    let plan = env.plan(&net);
    let t = env
        .engine
        .teardown(&plan.observe_scope(), &BTreeSet::from([env.target()]))
        .await;
    assert!(t.is_complete(), "{t:#?}");
    let s = env.flexi.state.lock().unwrap();
    assert!(s.tunnels.is_empty() && s.labels.is_empty());
    drop(s);
    env.assert_contract_kept();
}

#[tokio::test]
async fn hub_and_spoke_is_one_apply_with_its_hub_and_a_moved_hub_makes_before_it_breaks() {
    let env = Env::start().await;
    let net = env.net("star", &["a", "b", "c", "d"], hub_spoke(&["a"]));
    env.converge(&env.plan(&net)).await;
    assert_eq!(env.pairs(), [p("a", "b"), p("a", "c"), p("a", "d")]);
    {
        let s = env.flexi.state.lock().unwrap();
        let applies: Vec<_> = s
            .applies
            .iter()
            .filter(|a| a["method"] == "tunnels")
            .collect();
        assert_eq!(applies.len(), 1);
        assert_eq!(applies[0]["meta"]["topology"], "hubAndSpoke");
        let hub_id = s.devices.iter().find(|d| d["name"] == "edge-a").unwrap()["_id"].clone();
        assert_eq!(applies[0]["meta"]["hub"], hub_id);
    }

    // The hub moves to b while d is offline: b's new tunnels are made, and a's old ones stay
    // until every planned link is up (make before break).
    env.flexi
        .state
        .lock()
        .unwrap()
        .set_connected("edge-d", false);
    let mut net = net;
    net.spec.topology = hub_spoke(&["b"]);
    let plan = env.plan(&net);
    env.pass(&plan).await;
    let report = env.pass(&plan).await;
    assert!(
        report.targets[&env.target()].orphans_waiting > 0,
        "{report:#?}"
    );
    assert_eq!(
        env.pairs(),
        [
            p("a", "b"),
            p("a", "c"),
            p("a", "d"),
            p("b", "c"),
            p("b", "d")
        ],
        "old tunnels kept while b-d is not up"
    );
    env.flexi
        .state
        .lock()
        .unwrap()
        .set_connected("edge-d", true);
    env.converge(&plan).await;
    assert_eq!(env.pairs(), [p("a", "b"), p("b", "c"), p("b", "d")]);
    env.assert_contract_kept();
}

#[tokio::test]
async fn failed_inactive_throttled_and_slow_jobs() {
    let env = Env::start().await;
    let net = env.net("jobs", &["a", "b", "c"], full_mesh());
    let plan = env.plan(&net);

    // A job that fails: the object is refused with the job's error, nothing is created, and
    // the next pass applies again.
    env.flexi.state.lock().unwrap().fail_next_apply = true;
    let first = env.pass(&plan).await;
    let rejected = &first.targets[&env.target()].rejected;
    assert!(
        rejected
            .iter()
            .any(|r| r.error.contains("failed: ") && r.error.contains("tunnel creation failed")),
        "{first:#?}"
    );
    assert!(env.pairs().is_empty());
    env.converge(&plan).await;
    assert_eq!(env.pairs().len(), 3);

    // An offline device: its jobs stay inactive, which is not a failure; its links are
    // pending with the reason.
    let star = env.net("offline", &["a", "b", "d"], hub_spoke(&["a"]));
    env.flexi
        .state
        .lock()
        .unwrap()
        .set_connected("edge-d", false);
    let reports = env.converge(&env.plan(&star)).await;
    assert!(
        reports
            .iter()
            .all(|r| r.targets[&env.target()].rejected.is_empty()),
        "{reports:#?}"
    );
    let last = reports.last().unwrap();
    let ad = last
        .health
        .links
        .iter()
        .find(|l| l.acceptor == "d" || l.dialer == "d")
        .unwrap();
    assert_eq!(ad.phase, LinkPhase::Pending);
    assert!(
        ad.message
            .as_deref()
            .unwrap()
            .contains("device offline: edge-d"),
        "{ad:?}"
    );
    assert!(last.health.members_not_ready["d"].contains("offline"));

    // A 429 is waited out (Retry-After), not reported as an error.
    let throttled = env.net("throttled", &["b", "c"], full_mesh());
    env.flexi.state.lock().unwrap().throttle_applies = 1;
    let report = env.pass(&env.plan(&throttled)).await;
    assert!(
        matches!(
            report.targets[&env.target()].outcome,
            TargetOutcome::Changed { .. }
        ),
        "{report:#?}"
    );
    assert!(report.targets[&env.target()].rejected.is_empty());

    // Jobs still running are operations in flight: nothing more is written meanwhile.
    let slow = env.net("slow", &["c", "d"], full_mesh());
    env.flexi.state.lock().unwrap().job_polls_until_done = 1_000;
    env.pass(&env.plan(&slow)).await;
    let in_flight = env.pass(&env.plan(&slow)).await;
    assert!(
        matches!(
            in_flight.targets[&env.target()].outcome,
            TargetOutcome::InFlight { .. }
        ),
        "{in_flight:#?}"
    );
    env.flexi.state.lock().unwrap().job_polls_until_done = 0;
    env.converge(&env.plan(&slow)).await;
    env.assert_contract_kept();
}

#[tokio::test]
async fn a_wrong_access_key_is_named_and_nothing_is_written() {
    let env = Env::with_token("not-the-key").await;
    let net = env.net("denied", &["a", "b"], full_mesh());
    let report = env.pass(&env.plan(&net)).await;
    match &report.targets[&env.target()].outcome {
        TargetOutcome::Failed { error } => {
            assert!(
                error.contains("refused the access key (HTTP 401"),
                "{error}"
            );
            assert!(!error.contains("not-the-key"));
        }
        other => panic!("{other:?}"),
    }
    let s = env.flexi.state.lock().unwrap();
    assert!(s.applies.is_empty() && s.labels.is_empty() && s.tunnels.is_empty());
}

#[tokio::test]
async fn prism_really_checks_requests_and_responses_against_the_spec() {
    let env = Env::start().await;
    // A request the spec forbids (a path label without its required fields) is refused by
    // Prism before it reaches the fake.
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(env.flexi.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = http
        .post(format!("{}/pathlabels?org={ORG}", env.flexi.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422, "{}", answer.text().await.unwrap());
    assert!(env.flexi.state.lock().unwrap().labels.is_empty());

    // An answer the spec forbids (a job id that is not an integer) fails the adapter's call.
    env.flexi.state.lock().unwrap().off_spec_jobs = true;
    let net = env.net("offspec", &["a", "b"], full_mesh());
    let report = env.pass(&env.plan(&net)).await;
    let t = &report.targets[&env.target()];
    // Prism answers 500 (VIOLATIONS) instead of the off-spec answer.
    assert!(
        matches!(&t.outcome, TargetOutcome::Failed { error } if error.contains("HTTP 500 from /jobs/")),
        "{report:#?}"
    );
}

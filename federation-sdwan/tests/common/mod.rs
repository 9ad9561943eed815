//! The environment of the Headscale tests: a real Headscale process (TLS from a CA made for
//! it), a real hub kube-apiserver holding the networks and the API key Secret, and the real
//! engine driving the SD-WAN backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster, SdwanAdapter};
use federation_core::backend::Target;
use federation_core::engine::{Engine, EngineConfig, ReconcileReport};
use federation_core::plan::{NetworkPlan, NetworkRef};
use federation_sdwan::SdwanBackend;
use federation_sdwan::access::HubAccessResolver;
use federation_sdwan::fixtures::{self, edge, members};
use federation_testkit::{ControlPlanes, Headscale};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The user that owns the edge nodes.
pub const EDGE_USER: &str = "edges";
/// The Secret holding the API key.
pub const TOKEN_SECRET: &str = "headscale-token";

/// The administrators' policy fednet must leave alone: a rule and comments of theirs.
pub const ADMIN_POLICY: &str = r#"// Written by the tailnet's administrators.
{
  "acls": [
    // Operators may reach the jump host.
    {"action": "accept", "src": ["192.168.50.0/24"], "dst": ["192.168.60.10/32:22"]},
  ],
}
"#;

pub struct Env {
    pub headscale: Arc<Headscale>,
    pub hub: ControlPlanes,
    pub namespace: String,
    pub engine: Engine,
    pub members: Vec<MemberCluster>,
}

impl Env {
    /// Headscale with a client-less (offline) node per member in `names` and the
    /// administrators' policy, and a hub with the API key Secret.
    pub async fn start(names: &[&str]) -> Self {
        Self::start_with(names, false).await
    }

    /// As [`Self::start`], but every edge runs a real Tailscale client announcing its
    /// member's prefixes: online nodes whose approved routes are served.
    pub async fn start_online(names: &[&str]) -> Self {
        Self::start_with(names, true).await
    }

    async fn start_with(names: &[&str], online: bool) -> Self {
        let (headscale, hub) = tokio::join!(
            Headscale::start(),
            ControlPlanes::builder()
                .clusters(1)
                .crds(federation_core::api::crds())
                .start()
        );
        let (headscale, hub) = (headscale.unwrap(), hub.unwrap());
        headscale.create_user(EDGE_USER).await.unwrap();
        for (name, n) in names.iter().zip(1u8..) {
            if online {
                headscale
                    .join(EDGE_USER, &edge(name), &prefixes(n))
                    .await
                    .unwrap();
            } else {
                headscale.create_node(EDGE_USER, &edge(name)).await.unwrap();
            }
        }
        let env_dir = tempfile::tempdir().unwrap();
        let policy_file = env_dir.path().join("policy.hujson");
        std::fs::write(&policy_file, ADMIN_POLICY).unwrap();
        headscale
            .cli(&["policy", "set", "-f", policy_file.to_str().unwrap()])
            .await
            .unwrap();
        let namespace = hub.clusters()[0].test_namespace().await.unwrap();
        let key = headscale.create_api_key().await.unwrap();
        let engine = Engine::new(
            Arc::new(SdwanBackend::new(Arc::new(HubAccessResolver::new(
                hub.clusters()[0].client(),
            )))),
            Self::engine_config(),
        );
        let env = Self {
            headscale: Arc::new(headscale),
            hub,
            namespace,
            engine,
            members: members(names),
        };
        env.put_secret(TOKEN_SECRET, &key).await;
        env
    }

    /// The engine settings of these tests: short budgets, so a dead controller fails fast.
    pub fn engine_config() -> EngineConfig {
        EngineConfig {
            target_timeout: Duration::from_secs(15),
            max_attempts: 2,
            initial_backoff: Duration::from_millis(100),
            ..EngineConfig::default()
        }
    }

    /// A backend reading networks and Secrets from this hub.
    pub fn backend(&self) -> Arc<SdwanBackend> {
        Arc::new(SdwanBackend::new(Arc::new(HubAccessResolver::new(
            self.hub(),
        ))))
    }

    pub fn hub(&self) -> kube::Client {
        self.hub.clusters()[0].client()
    }

    pub async fn put_secret(&self, name: &str, token: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.hub(), &self.namespace);
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.data = Some(BTreeMap::from([(
            "token".to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )]));
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }

    /// A network over `names` on this Headscale, created on the hub (the backend reads its
    /// settings there).
    pub async fn network(
        &self,
        name: &str,
        names: &[&str],
        topology: federation_core::api::TopologySpec,
    ) -> FederatedNetwork {
        let mut settings =
            fixtures::settings(SdwanAdapter::Headscale, self.headscale.url(), TOKEN_SECRET);
        settings.credentials_secret_ref.namespace = self.namespace.clone();
        settings.ca_bundle = Some(self.headscale.ca_pem().to_owned());
        let mut net = fixtures::network(name, names, topology, settings);
        net.metadata.namespace = Some(self.namespace.clone());
        self.save(&net).await
    }

    /// Creates or replaces the network on the hub.
    pub async fn save(&self, net: &FederatedNetwork) -> FederatedNetwork {
        let api: Api<FederatedNetwork> = Api::namespaced(self.hub(), &self.namespace);
        let mut net = net.clone();
        match api
            .get_opt(&net.metadata.name.clone().unwrap())
            .await
            .unwrap()
        {
            Some(old) => {
                net.metadata.resource_version = old.metadata.resource_version;
                api.replace(
                    &net.metadata.name.clone().unwrap(),
                    &PostParams::default(),
                    &net,
                )
                .await
                .unwrap()
            }
            None => {
                net.metadata.resource_version = None;
                api.create(&PostParams::default(), &net).await.unwrap()
            }
        }
    }

    pub fn plan(&self, net: &FederatedNetwork, services: &[FederatedService]) -> NetworkPlan {
        let mut services = services.to_vec();
        for s in &mut services {
            s.metadata.namespace = Some(self.namespace.clone());
        }
        let mut plan = fixtures::plan(net, &self.members, &services);
        plan.network = NetworkRef::new(&self.namespace, net.metadata.name.as_deref().unwrap());
        plan
    }

    pub fn target(&self) -> Target {
        Target::Controller(self.headscale.url().to_owned())
    }

    /// Passes until one writes nothing; returns every report, the last converged.
    pub async fn converge(&self, plan: &NetworkPlan) -> Vec<ReconcileReport> {
        let recorded = BTreeSet::from([self.target()]);
        let mut reports = Vec::new();
        for _ in 0..5 {
            let report = self.engine.reconcile(plan, &recorded).await;
            let done = report.is_converged();
            reports.push(report);
            if done {
                return reports;
            }
        }
        panic!("no convergence in 5 passes: {:#?}", reports.last());
    }

    /// The policy as the controller stores it (the CLI prints it with one more newline).
    pub async fn policy(&self) -> String {
        let shown = self.headscale.cli(&["policy", "get"]).await.unwrap();
        shown.strip_suffix('\n').unwrap_or(&shown).to_owned()
    }

    /// Approved routes per node name.
    pub async fn approved(&self) -> BTreeMap<String, Vec<String>> {
        let out = self
            .headscale
            .cli(&["nodes", "list", "-o", "json"])
            .await
            .unwrap();
        let nodes: Vec<Value> = serde_json::from_str(&out).unwrap();
        nodes
            .iter()
            .map(|n| {
                let mut routes: Vec<String> = n["approved_routes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect();
                routes.sort();
                (n["given_name"].as_str().unwrap().to_owned(), routes)
            })
            .collect()
    }
}

/// The ACL rules fednet wrote for `network`, by id, with their destinations.
pub fn rules_of(policy: &str, network: &str) -> BTreeMap<String, Vec<String>> {
    let (mut inside, mut out) = (false, BTreeMap::new());
    for line in policy.lines().map(str::trim) {
        if line.starts_with("// fednet:begin ") && line.contains(&format!("/{network} ")) {
            inside = true;
        } else if line.starts_with("// fednet:end ") {
            inside = false;
        } else if inside && let Some((json, id)) = line.rsplit_once("// fednet:rule ") {
            let rule: Value = serde_json::from_str(json.trim().trim_end_matches(',')).unwrap();
            let dst = rule["dst"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            out.insert(id.to_owned(), dst);
        }
    }
    out
}

/// The prefixes of fixture member number `n` (1-based), as the rules spell them.
pub fn prefixes(n: u8) -> Vec<String> {
    let mut p = vec![
        format!("10.{n}.0.0/16"),
        format!("10.{}.0.0/16", 100 + u16::from(n)),
    ];
    p.sort();
    p
}

/// `prefix:*` for every prefix of these members.
pub fn all_ports(ns: &[u8]) -> Vec<String> {
    ns.iter()
        .flat_map(|n| prefixes(*n))
        .map(|p| format!("{p}:*"))
        .collect()
}

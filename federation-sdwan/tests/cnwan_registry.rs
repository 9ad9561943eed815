//! Publishing shared services to a CN-WAN service registry in a real etcd (the binary the
//! project builds for its control planes), driven by the real engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use federation_core::api::{SdwanAdapter, ServiceRegistrySettings, ServiceSdwanPolicy};
use federation_core::backend::{BackendError, Target};
use federation_core::engine::{Engine, EngineConfig, ReconcileReport, TargetOutcome};
use federation_core::plan::{NetworkPlan, NetworkRef};
use federation_sdwan::SdwanBackend;
use federation_sdwan::access::{AccessResolver, ControllerAccess, Token};
use federation_sdwan::fixtures::{self, full_mesh, members, network, service, settings};
use federation_sdwan::registry;
use federation_testkit::EtcdServer;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Every network of these tests publishes to the same etcd.
struct RegistryOnly(ServiceRegistrySettings);

#[async_trait]
impl AccessResolver for RegistryOnly {
    async fn access(&self, _: &NetworkRef) -> Result<ControllerAccess, BackendError> {
        Ok(ControllerAccess {
            adapter: SdwanAdapter::Headscale,
            url: "https://controller.invalid".into(),
            token: Token::new("unused"),
            ca_bundle: None,
            organization: None,
            service_registry: Some(self.0.clone()),
        })
    }
}

struct Env {
    etcd: EtcdServer,
    settings: ServiceRegistrySettings,
    engine: Engine,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Self {
        let etcd = EtcdServer::start().await.unwrap();
        let settings = ServiceRegistrySettings {
            etcd_url: etcd.client_url().to_owned(),
            prefix: None,
        };
        let backend = SdwanBackend::new(Arc::new(RegistryOnly(settings.clone())));
        Self {
            etcd,
            engine: Engine::new(Arc::new(backend), EngineConfig::default()),
            settings,
            http: reqwest::Client::new(),
        }
    }

    fn target(&self) -> Target {
        registry::target(&self.settings)
    }

    fn plan(
        &self,
        name: &str,
        names: &[&str],
        services: &[federation_core::api::FederatedService],
    ) -> NetworkPlan {
        let mut s = settings(SdwanAdapter::Headscale, "https://controller.invalid", "t");
        s.service_registry = Some(self.settings.clone());
        let net = network(name, names, full_mesh(), s);
        fixtures::plan(&net, &members(&["a", "b", "c"]), services)
    }

    /// Passes until the registry target writes nothing (the controller target is not
    /// recorded: these tests exercise the registry alone).
    async fn converge(&self, plan: &NetworkPlan) -> ReconcileReport {
        let recorded = BTreeSet::from([self.target()]);
        for _ in 0..4 {
            let report = self.engine.reconcile(plan, &recorded).await;
            if report.targets[&self.target()].outcome == TargetOutcome::Converged {
                return report;
            }
        }
        panic!("the registry did not converge");
    }

    /// Every key under `/service-registry/` with its YAML value.
    async fn dump(&self) -> BTreeMap<String, Value> {
        let answer: Value = self
            .http
            .post(format!("{}/v3/kv/range", self.etcd.client_url()))
            .json(&json!({"key": B64.encode("/service-registry/"), "range_end": B64.encode("/service-registry0")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["kvs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                let text = |f: &str| {
                    String::from_utf8(B64.decode(kv[f].as_str().unwrap()).unwrap()).unwrap()
                };
                (text("key"), serde_yaml::from_str(&text("value")).unwrap())
            })
            .collect()
    }

    async fn put(&self, key: &str, yaml: &str) {
        self.http
            .post(format!("{}/v3/kv/put", self.etcd.client_url()))
            .json(&json!({"key": B64.encode(key), "value": B64.encode(yaml)}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

const NS: &str = "/service-registry/namespaces/apps";

#[tokio::test]
async fn services_are_published_with_their_traffic_profile_and_removed_on_unexport() {
    let env = Env::start().await;
    let mut web = service("web", "east", "b", 8080);
    web.spec.sdwan = Some(ServiceSdwanPolicy {
        traffic_profile: Some("video".into()),
        ..Default::default()
    });
    let east = env.plan("east", &["a", "b", "c"], std::slice::from_ref(&web));
    env.converge(&east).await;

    let keys = env.dump().await;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        [
            NS,
            &format!("{NS}/services/web"),
            &format!("{NS}/services/web/endpoints/b-http")
        ]
    );
    let endpoint = &keys[&format!("{NS}/services/web/endpoints/b-http")];
    assert_eq!(endpoint["name"], "b-http");
    assert_eq!(endpoint["serviceName"], "web");
    assert_eq!(endpoint["namespaceName"], "apps");
    assert_eq!(
        endpoint["address"], "192.0.2.2",
        "the exporter's gateway hint"
    );
    assert_eq!(endpoint["port"], 8080);
    assert_eq!(endpoint["metadata"]["traffic-profile"], "video");
    assert_eq!(endpoint["metadata"]["owner"], "fednet-operator");
    assert_eq!(
        endpoint["metadata"]["fednet.io/network"],
        "fednet-system.east"
    );
    assert_eq!(
        keys[&format!("{NS}/services/web")]["metadata"]["traffic-profile"],
        "video"
    );

    // A second network shares the namespace key without owning it.
    let west = env.plan(
        "west",
        &["a", "b", "c"],
        &[service("db", "west", "c", 5432)],
    );
    env.converge(&west).await;
    assert_eq!(env.dump().await.len(), 5);

    // Unexport: east's service and endpoint go, the namespace stays for west.
    env.converge(&env.plan("east", &["a", "b", "c"], &[])).await;
    let keys = env.dump().await;
    assert!(!keys.keys().any(|k| k.contains("/web")), "{keys:?}");
    assert!(keys.contains_key(NS) && keys.contains_key(&format!("{NS}/services/db")));

    // The last network out removes the namespace too.
    let t = env
        .engine
        .teardown(&east.observe_scope(), &BTreeSet::from([env.target()]))
        .await;
    assert!(t.is_complete(), "{t:#?}");
    let t = env
        .engine
        .teardown(&west.observe_scope(), &BTreeSet::from([env.target()]))
        .await;
    assert!(t.is_complete(), "{t:#?}");
    assert!(env.dump().await.is_empty(), "nothing of fednet is left");
}

#[tokio::test]
async fn keys_another_tool_wrote_are_neither_changed_nor_deleted() {
    let env = Env::start().await;
    // The CN-WAN operator's namespace and a service of its own, in the same namespace.
    let theirs_ns = "name: apps\nmetadata:\n  owner: cnwan-operator\n";
    let theirs_api = "name: api\nnamespaceName: apps\nmetadata:\n  owner: cnwan-operator\n";
    env.put(NS, theirs_ns).await;
    env.put(&format!("{NS}/services/api"), theirs_api).await;

    let plan = env.plan(
        "east",
        &["a", "b", "c"],
        &[
            service("web", "east", "b", 8080),
            service("api", "east", "a", 9090),
        ],
    );
    let recorded = BTreeSet::from([env.target()]);
    let report = env.engine.reconcile(&plan, &recorded).await;
    let rejected = &report.targets[&env.target()].rejected;
    // Their service, and the endpoint that would have gone under it.
    assert_eq!(rejected.len(), 2, "{report:#?}");
    for r in rejected {
        assert!(r.error.contains("was not made by this network"), "{r:?}");
        assert!(r.error.contains("cnwan-operator"), "{r:?}");
    }

    let keys = env.dump().await;
    assert_eq!(
        keys[NS]["metadata"]["owner"], "cnwan-operator",
        "their namespace is used as it is"
    );
    assert_eq!(
        keys[&format!("{NS}/services/api")]["metadata"]["owner"],
        "cnwan-operator"
    );
    assert!(keys.contains_key(&format!("{NS}/services/web/endpoints/b-http")));
    assert!(
        !keys.keys().any(|k| k.contains("/api/endpoints/")),
        "{keys:?}"
    );

    let t = env.engine.teardown(&plan.observe_scope(), &recorded).await;
    assert!(t.is_complete(), "{t:#?}");
    let keys = env.dump().await;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        [NS, &format!("{NS}/services/api")]
    );
    assert_eq!(keys[NS], serde_yaml::from_str::<Value>(theirs_ns).unwrap());
}

#[tokio::test]
async fn a_delete_is_a_transaction_on_the_revision_that_was_read() {
    use federation_core::backend::NetworkBackend;
    let env = Env::start().await;
    let plan = env.plan(
        "east",
        &["a", "b", "c"],
        &[service("web", "east", "b", 8080)],
    );
    env.converge(&plan).await;
    let backend = SdwanBackend::new(Arc::new(RegistryOnly(env.settings.clone())));
    let observed = backend
        .observe(&env.target(), &plan.observe_scope())
        .await
        .unwrap();
    let endpoint = observed
        .objects
        .iter()
        .find(|o| o.key.kind == registry::ENDPOINT)
        .unwrap();
    let stale = endpoint.deletion();
    assert!(stale.uid.is_some(), "deletes carry the revision read");

    // Someone rewrites the endpoint after it was read: the delete must not remove it.
    let key = format!("{NS}/services/web/endpoints/b-http");
    let mut value = env.dump().await[&key].clone();
    value["port"] = json!(8443);
    env.put(&key, &serde_yaml::to_string(&value).unwrap()).await;
    let err = backend.delete(&env.target(), &[stale]).await.unwrap_err();
    assert!(
        err.to_string().contains("changed since it was read"),
        "{err}"
    );
    assert_eq!(env.dump().await[&key]["port"], 8443);

    // The next pass puts it back as desired.
    env.converge(&plan).await;
    assert_eq!(env.dump().await[&key]["port"], 8080);
}

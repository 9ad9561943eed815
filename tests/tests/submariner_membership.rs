//! Changes to a Submariner network on real control planes with the real operator and agents:
//! a member joins, one leaves (its join, its broker credentials and the gateways' leftovers on
//! the broker go), a paused member makes the network Degraded and Ready again, and broker
//! tokens are renewed before they expire without a gap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use federation_core::api::FederatedNetwork;
use federation_tests::skupper_env::condition;
use federation_tests::submariner_env::{
    BROKER, BROKER_NS, CONVERGE_WITHIN, OPERATOR_NS, SubmarinerEnv, resource,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn broker_names(
    env: &SubmarinerEnv,
    group: &str,
    kind: &str,
    plural: &str,
) -> BTreeSet<String> {
    env.names(BROKER, &resource(group, "v1", kind, plural), BROKER_NS)
        .await
}

fn token_of(secret: &Secret) -> Vec<u8> {
    secret.data.as_ref().unwrap()["token"].0.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_a_paused_member_recovers_and_tokens_renew() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info,kube=warn")
        .try_init();
    let env = SubmarinerEnv::start().await;
    env.create_network("mesh", &["central", "east"], "shop", json!({}))
        .await;
    env.converge("mesh").await;
    assert!(env.submariner("west").await.is_none());

    // west joins.
    let t = Instant::now();
    env.patch_network(
        "mesh",
        json!({"members": {"names": ["central", "east", "west"]}}),
    )
    .await;
    let net = env.converge("mesh").await;
    println!("a third member joined in {:?}", t.elapsed());
    assert_eq!(net.status.unwrap().links_summary.as_deref(), Some("3/3"));
    assert_eq!(
        env.submariner("west").await.unwrap().data["status"]["clusterID"],
        "west"
    );
    let sa = resource("", "v1", "ServiceAccount", "serviceaccounts");
    let accounts = env.names(BROKER, &sa, BROKER_NS).await;
    assert!(
        set(&["cluster-central", "cluster-east", "cluster-west"]).is_subset(&accounts),
        "{accounts:?}"
    );

    // central leaves: the operator cleans up and releases its Submariner; the broker loses
    // central's account, binding and token, and the Cluster and Endpoint its gateway left.
    let t = Instant::now();
    env.patch_network("mesh", json!({"members": {"names": ["east", "west"]}}))
        .await;
    env.drive_until(
        "mesh",
        "central gone from the network and the broker",
        CONVERGE_WITHIN,
        async || {
            let ready = env
                .network("mesh")
                .await
                .filter(federation_tests::skupper_env::is_ready)
                .is_some();
            let cr_gone = env.submariner("central").await.is_none();
            let clusters = broker_names(&env, "submariner.io", "Cluster", "clusters").await;
            let endpoints = broker_names(&env, "submariner.io", "Endpoint", "endpoints").await;
            let leftovers =
                clusters.contains("central") || endpoints.iter().any(|e| e.starts_with("central-"));
            (ready && cr_gone && !leftovers).then_some(())
        },
    )
    .await;
    println!("a member left in {:?}", t.elapsed());
    let accounts = env.names(BROKER, &sa, BROKER_NS).await;
    assert!(!accounts.contains("cluster-central"), "{accounts:?}");
    let bindings = env
        .names(
            BROKER,
            &resource(
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
            ),
            BROKER_NS,
        )
        .await;
    assert!(!bindings.contains("cluster-central"), "{bindings:?}");
    let secrets = env
        .names(BROKER, &resource("", "v1", "Secret", "secrets"), BROKER_NS)
        .await;
    assert!(!secrets.contains("cluster-central-token"), "{secrets:?}");
    assert_eq!(env.labelled("mesh", "central").await, BTreeSet::new());
    assert_eq!(
        broker_names(&env, "submariner.io", "Cluster", "clusters").await,
        set(&["east", "west"]),
        "the remaining members' gateways stay registered"
    );

    // west's API server hangs: Degraded; it comes back: Ready, with nothing re-created.
    env.cluster("west").pause().unwrap();
    let degraded: FederatedNetwork = env
        .drive_until(
            "mesh",
            "Degraded while west hangs",
            Duration::from_secs(90),
            async || {
                env.network("mesh")
                    .await
                    .filter(|n| condition(n, "Degraded").is_some_and(|c| c.0 == "True"))
            },
        )
        .await;
    let links = degraded.status.unwrap().links;
    assert!(
        links
            .iter()
            .all(|l| l.phase != federation_core::api::LinkPhase::Up),
        "never Up from missing data: {links:?}"
    );
    let west_uid = |env: &SubmarinerEnv| {
        let api = env.api(
            "west",
            &federation_tests::submariner_env::submariner_resource(),
            OPERATOR_NS,
        );
        async move { api.get("submariner").await.unwrap().metadata.uid }
    };
    env.cluster("west").resume().unwrap();
    let before = west_uid(&env).await;
    let t = Instant::now();
    env.converge("mesh").await;
    println!("Ready again {:?} after west resumed", t.elapsed());
    assert_eq!(
        west_uid(&env).await,
        before,
        "west's join was kept, not re-created"
    );

    // Tokens: 20 hours on, every broker token is due; each is renewed and reaches its member,
    // and the old one keeps working until then.
    let members = ["east", "west"];
    let old: Vec<Vec<u8>> = futures::future::join_all(members.iter().map(|m| async {
        let secrets: Api<Secret> = Api::namespaced(env.cluster(m).client(), OPERATOR_NS);
        token_of(&secrets.get("fednet-submariner-broker").await.unwrap())
    }))
    .await;
    env.clock_offset.store(20 * 3600, Ordering::Relaxed);
    env.drive_until(
        "mesh",
        "renewed tokens in every member",
        CONVERGE_WITHIN,
        async || {
            let mut renewed = true;
            for (m, old) in members.iter().zip(&old) {
                let secrets: Api<Secret> = Api::namespaced(env.cluster(m).client(), OPERATOR_NS);
                renewed &=
                    token_of(&secrets.get("fednet-submariner-broker").await.unwrap()) != *old;
            }
            renewed.then_some(())
        },
    )
    .await;
    // Back to the present: the renewed tokens are fresh, nothing more is minted.
    env.clock_offset.store(0, Ordering::Relaxed);
    env.converge("mesh").await;
    // The old tokens were not revoked by the renewal: a member still using one keeps working.
    for old in &old {
        let status = broker_list_clusters(&env, old).await;
        assert_eq!(status, 200, "an old token still works until it expires");
    }
    assert_eq!(broker_list_clusters(&env, b"not-a-token").await, 401);
}

/// Lists the broker's Clusters with `token`; the HTTP status.
async fn broker_list_clusters(env: &SubmarinerEnv, token: &[u8]) -> u16 {
    let broker = env.cluster(BROKER);
    let mut config = broker.config();
    config.auth_info = kube::config::AuthInfo {
        token: Some(String::from_utf8(token.to_vec()).unwrap().into()),
        ..Default::default()
    };
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        BROKER_NS,
        &resource("submariner.io", "v1", "Cluster", "clusters"),
    );
    match api.list(&Default::default()).await {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("{e}"),
    }
}

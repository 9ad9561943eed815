//! `fedctl join` and `fedctl unjoin` on real control planes: three members joined with the
//! binary, the real operator converging a Skupper network with nothing but the credentials
//! join minted, the access review table (grants and denials) asserted, a short-lived token
//! reported as expiring, and unjoin leaving nothing in the member or on the hub.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{CREDENTIALS_EXPIRING, FederatedNetwork, MemberCluster};
use federation_tests::operator_env::{
    APP_NAMESPACE, FedEnv, HUB_NAMESPACE, OperatorOptions, OperatorProcess, owned_objects,
};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(120);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn fedctl(hub_kubeconfig: &Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .arg("--kubeconfig")
        .arg(hub_kubeconfig)
        .args(args)
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn join(env: &FedEnv, member: &str, pod_cidr: &str, extra: &[&str]) -> Value {
    let cluster = env.member(member).unwrap();
    let kubeconfig = cluster.kubeconfig_path().to_string_lossy().into_owned();
    let mut args = vec![
        "join",
        member,
        "--member-kubeconfig",
        &kubeconfig,
        "--namespace",
        APP_NAMESPACE,
        "--pod-cidr",
        pod_cidr,
        "--label",
        "env=prod",
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let run = fedctl(env.hub().kubeconfig_path(), &args).await;
    assert_eq!(run.code, 0, "join {member}: {}\n{}", run.stderr, run.stdout);
    assert!(
        run.stderr.contains("proving the identity's permissions"),
        "progress shown: {}",
        run.stderr
    );
    serde_json::from_str(&run.stdout).unwrap()
}

fn ready(net: &FederatedNetwork) -> bool {
    net.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The answer of the report's access review for (namespace, resource, verb).
fn answer(report: &Value, namespace: &str, resource: &str, verb: &str) -> (bool, Value) {
    let row = report["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["namespace"] == namespace && r["resource"] == resource && r["verb"] == verb)
        .unwrap_or_else(|| panic!("no review of {verb} {resource} in {namespace:?}"));
    (
        row["expect_allowed"].as_bool().unwrap(),
        row["allowed"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_joined_by_fedctl_converge_and_unjoin_leaves_nothing() {
    let mut env = FedEnv::start_unregistered(3).await.unwrap();
    let members: Vec<String> = env.members().to_vec();

    // Join: central with a one-hour token, the others with the default lifetime.
    let mut reports = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let cidr = format!("10.{}.0.0/16", 10 + i);
        let extra: &[&str] = if i == 0 { &["--token-ttl", "1h"] } else { &[] };
        reports.push(join(&env, m, &cidr, extra).await);
    }

    // The access table: every needed verb allowed in the app namespace, and least
    // privilege's denials really denied.
    for r in &reports {
        let rows = r["access"].as_array().unwrap();
        assert!(
            rows.iter()
                .all(|row| row["allowed"]["Ok"] == row["expect_allowed"]),
            "{r:#}"
        );
        assert_eq!(
            answer(r, APP_NAMESPACE, "sites", "create"),
            (true, serde_json::json!({"Ok": true}))
        );
        assert_eq!(
            answer(r, APP_NAMESPACE, "secrets", "delete"),
            (true, serde_json::json!({"Ok": true}))
        );
        for (ns, resource, verb) in [
            ("kube-system", "secrets", "get"),
            ("kube-system", "secrets", "list"),
            ("", "secrets", "list"),
            ("", "namespaces", "create"),
            ("", "clusterrolebindings", "create"),
            (APP_NAMESPACE, "rolebindings", "create"),
            ("kube-system", "sites", "create"),
        ] {
            assert_eq!(
                answer(r, ns, resource, verb),
                (false, serde_json::json!({"Ok": false})),
                "{verb} {resource} in {ns:?} must be denied"
            );
        }
        assert!(
            r["cidr_sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.as_str().unwrap().contains("ServiceCIDR")),
            "the service CIDR is read from the cluster: {r:#}"
        );
    }
    // The text output shows the table with its denials.
    let hub = env.hub().client();
    let mc: MemberCluster = Api::<MemberCluster>::all(hub.clone())
        .get(&members[1])
        .await
        .unwrap();
    let net = mc.spec.network.clone().unwrap();
    assert_eq!(net.pod_cidrs, ["10.11.0.0/16"]);
    assert!(!net.service_cidrs.is_empty());
    assert_eq!(mc.labels().get("env").map(String::as_str), Some("prod"));

    // The operator converges the network with the join-minted credentials only.
    env.start_double();
    let logs = tempfile::tempdir().unwrap();
    let mut options = OperatorOptions::fast("joined");
    options.extra_args.push("--credential-warning=2h".into());
    let _op = OperatorProcess::start(&env, options, logs.path())
        .await
        .unwrap();
    env.apply_network().await.unwrap();
    env.wait_network("Ready", CONVERGE, ready).await.unwrap();

    // The short-lived token is reported as expiring; the others are not.
    let started = Instant::now();
    loop {
        let status = |m: &str| {
            let hub = hub.clone();
            let m = m.to_owned();
            async move {
                let mc = Api::<MemberCluster>::all(hub).get(&m).await.unwrap();
                mc.status
                    .and_then(|s| {
                        s.conditions
                            .into_iter()
                            .find(|c| c.type_ == CREDENTIALS_EXPIRING)
                    })
                    .map(|c| c.status)
            }
        };
        let (a, b) = (status(&members[0]).await, status(&members[1]).await);
        if a.as_deref() == Some("True") && b.as_deref() == Some("False") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{a:?} {b:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Join again: idempotent, a new token in the Secret.
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), HUB_NAMESPACE);
    let name = format!("{}-kubeconfig", members[2]);
    let before = secrets.get(&name).await.unwrap().metadata.resource_version;
    let cluster = env.member(&members[2]).unwrap();
    let run = fedctl(
        env.hub().kubeconfig_path(),
        &[
            "join",
            &members[2],
            "--member-kubeconfig",
            &cluster.kubeconfig_path().to_string_lossy(),
            "--namespace",
            APP_NAMESPACE,
            "--pod-cidr",
            "10.12.0.0/16",
            "--label",
            "env=prod",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    println!("{}{}", run.stderr, run.stdout);
    // The text table: grants and denials, every answer as expected, no colour on a pipe.
    assert!(!run.stdout.contains('\x1b'));
    assert!(!run.stdout.contains("WRONG"));
    let row = |needle: &[&str]| {
        run.stdout
            .lines()
            .any(|l| needle.iter().all(|n| l.contains(n)))
    };
    assert!(row(&[
        APP_NAMESPACE,
        "sites.skupper.io",
        "create",
        "allow",
        "allowed"
    ]));
    assert!(row(&[
        "kube-system",
        "secrets",
        "get,list",
        "deny",
        "denied"
    ]));
    assert!(row(&[
        "(cluster-wide)",
        "namespaces",
        "create",
        "deny",
        "denied"
    ]));
    assert!(run.stdout.contains("its token expires"));
    let after = secrets.get(&name).await.unwrap().metadata.resource_version;
    assert_ne!(before, after, "the token was renewed");

    // Unjoin a spoke: the operator removes the network's objects from it first.
    let spoke = &members[2];
    let spoke_cluster = env.member(spoke).unwrap();
    assert!(
        !owned_objects(&spoke_cluster.client())
            .await
            .unwrap()
            .is_empty()
    );
    let run = fedctl(
        env.hub().kubeconfig_path(),
        &[
            "unjoin",
            spoke,
            "--member-kubeconfig",
            &spoke_cluster.kubeconfig_path().to_string_lossy(),
            "--timeout",
            "90s",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let member_client = spoke_cluster.client();
    assert!(
        owned_objects(&member_client).await.unwrap().is_empty(),
        "network objects left"
    );
    assert!(
        Api::<MemberCluster>::all(hub.clone())
            .get_opt(spoke)
            .await
            .unwrap()
            .is_none()
    );
    assert!(secrets.get_opt(&name).await.unwrap().is_none());
    let roles = Api::<Role>::all(member_client.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=fedctl"))
        .await
        .unwrap();
    assert!(roles.items.is_empty());
    let bindings = Api::<RoleBinding>::all(member_client.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=fedctl"))
        .await
        .unwrap();
    assert!(bindings.items.is_empty());
    assert!(
        Api::<ServiceAccount>::namespaced(member_client.clone(), "fednet-system")
            .get_opt("fednet-operator")
            .await
            .unwrap()
            .is_none()
    );
    // Without kube-controller-manager the namespace stays Terminating; it is being deleted.
    let ns = Api::<Namespace>::all(member_client)
        .get_opt("fednet-system")
        .await
        .unwrap();
    assert!(ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()));
    // The rest of the network is still Ready.
    env.wait_network("Ready without the spoke", CONVERGE, |n| {
        ready(n)
            && n.status
                .as_ref()
                .is_some_and(|s| s.members.iter().all(|m| m.name != *spoke))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_refuses_what_it_cannot_do_safely() {
    let env = FedEnv::start_unregistered(2).await.unwrap();
    let member = &env.members()[0];
    let kubeconfig = env
        .member(member)
        .unwrap()
        .kubeconfig_path()
        .to_string_lossy()
        .into_owned();
    let hub = env.hub().kubeconfig_path();
    // A namespace that does not exist: said, nothing written.
    let run = fedctl(
        hub,
        &[
            "join",
            member,
            "--member-kubeconfig",
            &kubeconfig,
            "--namespace",
            "nope",
            "--pod-cidr",
            "10.1.0.0/16",
        ],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("namespaces [\"nope\"] do not exist"),
        "{}",
        run.stderr
    );
    // No pod CIDR stated by the cluster and none given: the flag to pass is named.
    let run = fedctl(
        hub,
        &[
            "join",
            member,
            "--member-kubeconfig",
            &kubeconfig,
            "--namespace",
            APP_NAMESPACE,
        ],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--pod-cidr"), "{}", run.stderr);
    let client = env.member(member).unwrap().client();
    assert!(
        Api::<ServiceAccount>::namespaced(client, "fednet-system")
            .get_opt("fednet-operator")
            .await
            .unwrap()
            .is_none(),
        "nothing written in the member"
    );
    assert!(
        Api::<MemberCluster>::all(env.hub().client())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing written on the hub"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submariner_join_grants_its_cluster_wide_rules_and_still_denies_escalation() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let env = FedEnv::start_unregistered(2).await.unwrap();
    let member = env.members()[0].clone();
    let report = join(&env, &member, "10.20.0.0/16", &["--backend", "Submariner"]).await;
    let ok = |b: bool| serde_json::json!({"Ok": b});
    // Submariner's access is cluster-wide (it makes namespaces, binds the broker Role)...
    assert_eq!(
        answer(&report, "", "serviceexports", "create"),
        (true, ok(true))
    );
    assert_eq!(
        answer(&report, "", "namespaces", "create"),
        (true, ok(true))
    );
    let bind = report["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "roles" && r["verb"] == "bind")
        .unwrap();
    assert_eq!(bind["name"], "submariner-k8s-broker-cluster");
    assert_eq!(bind["allowed"], ok(true));
    // ...and still no way to grant itself more, or to touch nodes.
    for (resource, verb) in [
        ("clusterrolebindings", "create"),
        ("clusterroles", "create"),
        ("nodes", "delete"),
    ] {
        assert_eq!(
            answer(&report, "", resource, verb),
            (false, ok(false)),
            "{verb} {resource}"
        );
    }
    let client = env.member(&member).unwrap().client();
    let fedctl_made = ListParams::default().labels("app.kubernetes.io/managed-by=fedctl");
    assert_eq!(
        Api::<ClusterRole>::all(client.clone())
            .list(&fedctl_made)
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Unjoin (no network holds the member): the ClusterRole and its binding go too.
    let run = fedctl(
        env.hub().kubeconfig_path(),
        &[
            "unjoin",
            &member,
            "--member-kubeconfig",
            &env.member(&member)
                .unwrap()
                .kubeconfig_path()
                .to_string_lossy(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .list(&fedctl_made)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        Api::<ClusterRoleBinding>::all(client)
            .list(&fedctl_made)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

//! `fedctl diff` against a real hub and three real members: a hub-and-spoke Skupper network
//! converged by the controller functions and the Skupper controller double
//! (`federation_tests::skupper_env`), then diffed with manifests that change nothing, change the
//! spoke cost, or add a service; through the library and through the binary's exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use fedctl::diff::{Action, DiffReport, FieldChange, ObjectDiff, diff};
use fedctl::manifests::Manifests;
use federation_core::api::{FederatedNetwork, FederatedService};
use federation_skupper::names;
use federation_tests::skupper_env::{CONVERGE_WITHIN, MEMBERS, SkupperEnv};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

const SPOKES: [&str; 2] = ["east", "west"];

fn network_spec(ns: &str, spoke_cost: u32) -> Value {
    json!({"backend": {"type": "Skupper"}, "members": {"names": MEMBERS},
        "namespaces": [ns],
        "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["central"], "spokeCost": spoke_cost}}})
}

fn network_doc(env: &SkupperEnv, ns: &str, spoke_cost: u32) -> Value {
    json!({"apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": "shop", "namespace": env.hub_ns},
        "spec": network_spec(ns, spoke_cost)})
}

/// Service `shop-carts` (port `http`) exported from `west` to every member.
fn carts_doc(env: &SkupperEnv, ns: &str) -> Value {
    json!({"apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
        "metadata": {"name": "shop-carts", "namespace": env.hub_ns},
        "spec": {"network": "shop", "namespace": ns, "serviceName": "carts",
                 "exporters": [{"member": "west", "selector": {"app": "carts"}}],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

fn manifests(docs: &[Value]) -> Manifests {
    let mut m = Manifests::default();
    for d in docs {
        match d["kind"].as_str() {
            Some("FederatedNetwork") => m
                .networks
                .push(serde_json::from_value::<FederatedNetwork>(d.clone()).unwrap()),
            _ => m
                .services
                .push(serde_json::from_value::<FederatedService>(d.clone()).unwrap()),
        }
    }
    m
}

/// The documents as one multi-document YAML file, for the binary.
fn write_file(name: &str, docs: &[Value]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).unwrap())
        .collect();
    std::fs::write(&path, text.join("---\n")).unwrap();
    path
}

async fn fedctl(env: &SkupperEnv, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .arg("--kubeconfig")
        .arg(env.planes.clusters()[0].kubeconfig_path())
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap()
}

/// Every object that would change, as (target, object).
fn changed(report: &DiffReport) -> Vec<(String, ObjectDiff)> {
    report
        .networks
        .iter()
        .flat_map(|n| &n.targets)
        .flat_map(|t| {
            assert_eq!(t.error, None, "{}", t.target);
            t.objects
                .iter()
                .filter(|o| o.action != Action::Unchanged)
                .map(|o| (t.target.clone(), o.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_dry_runs_against_the_members_and_lists_exactly_what_would_change() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    env.create_network("shop", network_spec(&ns, 2)).await;
    env.share_orders("shop", &ns, "east").await;
    env.converge("shop").await;
    env.drive_until(
        "shop",
        "every member consumes orders",
        CONVERGE_WITHIN,
        async || {
            let status = env.service("shop").await.status?;
            (status.consumers.len() == MEMBERS.len() && status.consumers.iter().all(|c| c.ready))
                .then_some(())
        },
    )
    .await;
    env.settled("shop", &MEMBERS).await;
    let before = env.versions("shop").await;

    // The manifests it was made from: every member is read, and nothing would change.
    let same = diff(&env.hub, &manifests(&[network_doc(&env, &ns, 2)]))
        .await
        .unwrap();
    let net = &same.networks[0];
    assert!(net.exists);
    let targets: Vec<&str> = net.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(targets, ["member/central", "member/east", "member/west"]);
    assert!(net.targets.iter().all(|t| !t.objects.is_empty()));
    assert_eq!(changed(&same), []);
    assert!(!same.has_changes() && !same.has_errors());

    // A new spoke cost: exactly the spokes' Links, spec.cost 2 -> 5, nothing else.
    let cost = diff(&env.hub, &manifests(&[network_doc(&env, &ns, 5)]))
        .await
        .unwrap();
    let changes = changed(&cost);
    let mut linked = BTreeSet::new();
    for (target, o) in &changes {
        assert_eq!(
            (o.kind.as_str(), o.action),
            ("Link", Action::Update),
            "{o:?}"
        );
        assert_eq!(
            o.changes,
            [FieldChange {
                path: "spec.cost".into(),
                old: Some(json!(2)),
                new: Some(json!(5)),
            }],
            "{target}: {o:?}"
        );
        linked.insert(target.clone());
    }
    let spokes: BTreeSet<String> = SPOKES.iter().map(|s| format!("member/{s}")).collect();
    assert_eq!(linked, spokes, "{changes:?}");

    // A new service from west: exactly its Connector in west and a Listener in every other
    // member would be created.
    let added = diff(
        &env.hub,
        &manifests(&[network_doc(&env, &ns, 2), carts_doc(&env, &ns)]),
    )
    .await
    .unwrap();
    let port = names::service_port("shop-carts", "http");
    let got: BTreeSet<(String, String, String, Action)> = changed(&added)
        .into_iter()
        .map(|(t, o)| {
            assert_eq!(o.namespace.as_deref(), Some(ns.as_str()));
            (t, o.kind, o.name, o.action)
        })
        .collect();
    let want: BTreeSet<(String, String, String, Action)> = MEMBERS
        .iter()
        .map(|m| {
            let kind = if *m == "west" {
                "Connector"
            } else {
                "Listener"
            };
            (
                format!("member/{m}"),
                kind.to_owned(),
                port.clone(),
                Action::Create,
            )
        })
        .collect();
    assert_eq!(got, want);

    // The binary: exit 0 for no change, 1 for changes (with the cost in its table and JSON).
    let file = write_file("diff-same.yaml", &[network_doc(&env, &ns, 2)]);
    let out = fedctl(&env, &["diff", "-f", file.to_str().unwrap()]).await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("member/east: 0 to change"), "{text}");
    let file = write_file("diff-cost.yaml", &[network_doc(&env, &ns, 5)]);
    let out = fedctl(&env, &["diff", "-f", file.to_str().unwrap()]).await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        text.matches("spec.cost: 2 -> 5").count(),
        SPOKES.len(),
        "{text}"
    );
    let out = fedctl(&env, &["diff", "-f", file.to_str().unwrap(), "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["networks"][0]["name"], "shop");
    // An error (no such file) is exit 2, not "changes".
    let out = fedctl(&env, &["diff", "-f", "/nonexistent/fednet.yaml"]).await;
    assert_eq!(out.status.code(), Some(2));

    // Proof of dry-run: no object of the network changed in any member, nor on the hub.
    assert_eq!(env.versions("shop").await, before);
}

//! Checks of what `deploy/` ships that need no cluster: the Helm chart's CRDs are the
//! committed ones, the member RBAC grants every kind the Skupper backend manages, and the
//! chart's hub RBAC names every fednet kind the operator touches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_tests::operator_env::member_rbac_documents;
use std::path::Path;

fn repo(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn helm_chart_crds_match_the_committed_crds() {
    assert!(
        repo("deploy/helm/fednet-operator/crds/fednet.io.yaml")
            == repo("deploy/crds/fednet.io.yaml"),
        "the chart's CRDs differ from deploy/crds/fednet.io.yaml: run `make chart-crds`"
    );
}

#[test]
fn member_rbac_grants_every_kind_the_skupper_backend_manages() {
    let docs = member_rbac_documents().unwrap();
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .expect("a ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let needed = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    for kind in federation_skupper::kinds::OWNED {
        let group = kind.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let granted = role["rules"].as_array().unwrap().iter().any(|rule| {
            let has = |field: &str, value: &str| {
                rule[field]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x == value))
            };
            has("apiGroups", group)
                && has("resources", kind.plural)
                && needed.iter().all(|verb| has("verbs", verb))
        });
        assert!(
            granted,
            "{}/{} ({}) not fully granted",
            group, kind.kind, kind.plural
        );
    }
}

#[test]
fn helm_rbac_covers_the_fednet_kinds_and_the_lease() {
    let rbac = repo("deploy/helm/fednet-operator/templates/rbac.yaml");
    let helpers = repo("deploy/helm/fednet-operator/templates/_helpers.tpl");
    for resource in [
        "memberclusters",
        "memberclusters/status",
        "leases",
        "secrets",
    ] {
        assert!(rbac.contains(&format!("\"{resource}\"")), "{resource}");
    }
    for resource in [
        "federatednetworks",
        "federatedservices",
        "federatednetworks/status",
        "federatedservices/status",
        "federatednetworks/finalizers",
        "events",
    ] {
        assert!(helpers.contains(&format!("\"{resource}\"")), "{resource}");
    }
    // Secrets are only read, by name.
    let secrets_rule = rbac
        .split("resources: [\"secrets\"]")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .unwrap();
    assert_eq!(secrets_rule.trim(), "verbs: [\"get\"]");
}

#[test]
fn member_rbac_grants_every_kind_the_submariner_backend_writes_or_reads() {
    let text = repo("deploy/member-rbac/submariner.yaml");
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let rules = role["rules"].as_array().unwrap();
    let granted = |group: &str, resource: &str, verbs: &[&str]| {
        rules.iter().any(|rule| {
            let has = |field: &str, value: &str| {
                rule[field]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x == value))
            };
            rule.get("resourceNames").is_none()
                && has("apiGroups", group)
                && has("resources", resource)
                && verbs.iter().all(|verb| has("verbs", verb))
        })
    };
    let write = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    for kind in federation_submariner::kinds::ALL {
        let group = kind.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        assert!(granted(group, kind.plural, &write), "{}", kind.kind);
    }
    for kind in [
        federation_submariner::kinds::GATEWAY,
        federation_submariner::kinds::SERVICE_IMPORT,
        federation_submariner::kinds::ENDPOINT_SLICE,
    ] {
        let group = kind.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        assert!(
            granted(group, kind.plural, &["get", "list", "watch"]),
            "{}",
            kind.kind
        );
    }
    assert!(granted("", "serviceaccounts/token", &["create"]));
}

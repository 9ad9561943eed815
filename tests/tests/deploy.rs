//! Checks of what `deploy/` ships that need no cluster: the Helm chart's CRDs are the
//! committed ones, the member RBAC is namespaced and grants what `fedctl join` grants, and the
//! chart's hub RBAC names every fednet kind the operator touches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_tests::operator_env::member_rbac_documents;
use std::path::Path;

/// An RBAC rule as compared here: group, resources, verbs, resource names.
type RbacRule = (String, Vec<String>, Vec<String>, Vec<String>);

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
fn member_rbac_is_namespaced_and_equals_what_join_grants() {
    use federation_core::backend::AccessScope;
    let docs = member_rbac_documents("skupper-namespace.yaml").unwrap();
    assert!(
        docs.iter()
            .all(|d| d["kind"] == "Role" || d["kind"] == "RoleBinding"),
        "only namespaced RBAC: {docs:?}"
    );
    assert!(
        docs.iter().all(|d| d["metadata"]["namespace"].is_null()),
        "no namespace set: `kubectl apply -n` chooses it"
    );
    let role = docs.iter().find(|d| d["kind"] == "Role").expect("a Role");
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "RoleBinding")
        .expect("a RoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let identity = member_rbac_documents("identity.yaml").unwrap();
    let sa = identity
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .expect("a ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["namespace"],
        sa["metadata"]["namespace"]
    );

    // The same rules `fedctl join` grants, from the one place they are defined.
    let shipped: Vec<(String, Vec<String>, Vec<String>)> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let strings = |f: &str| -> Vec<String> {
                r[f].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            (
                strings("apiGroups")[0].clone(),
                strings("resources"),
                strings("verbs"),
            )
        })
        .collect();
    let granted: Vec<(String, Vec<String>, Vec<String>)> = federation_skupper::member_access()
        .into_iter()
        .inspect(|r| assert_eq!(r.scope, AccessScope::NetworkNamespaces))
        .map(|r| (r.api_group, r.resources, r.verbs))
        .collect();
    assert_eq!(shipped, granted);
    // And every kind the backend manages is in them.
    for kind in federation_skupper::kinds::OWNED {
        let group = kind.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        assert!(
            granted
                .iter()
                .any(|(g, res, _)| g == group && res.iter().any(|r| r == kind.plural)),
            "{} not granted",
            kind.plural
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
    // Secrets are only read (watched by name), never written.
    let secrets_rule = rbac
        .split("resources: [\"secrets\"]")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .unwrap();
    assert_eq!(secrets_rule.trim(), "verbs: [\"get\", \"list\", \"watch\"]");
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

    // And exactly what `fedctl join --backend Submariner` grants.
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let shipped: Vec<RbacRule> = rules
        .iter()
        .map(|r| {
            (
                strings(&r["apiGroups"])[0].clone(),
                strings(&r["resources"]),
                strings(&r["verbs"]),
                strings(&r["resourceNames"]),
            )
        })
        .collect();
    let declared: Vec<RbacRule> = federation_submariner::member_access()
        .into_iter()
        .map(|r| (r.api_group, r.resources, r.verbs, r.resource_names))
        .collect();
    assert_eq!(shipped, declared);
}

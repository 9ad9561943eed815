//! What a member identity must and must not be allowed to do, proven with
//! `SelfSubjectAccessReview`s made as that identity: shared by `fedctl join` (which prints
//! the table) and `fedctl doctor` (which checks a registered member's credentials).

use crate::table::{Cell, Table, Tone};
use federation_core::backend::{AccessRule, AccessScope};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Serialize;
use std::collections::BTreeSet;

/// One question to the member's authorizer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccessCheck {
    /// Namespace; empty for a cluster-wide request.
    pub namespace: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Verb.
    pub verb: String,
    /// One object's name (empty: any object).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether least privilege wants it allowed.
    pub expect_allowed: bool,
}

impl AccessCheck {
    /// `verb resource.group[/name]` (or `verb resource` for the core group).
    pub fn what(&self) -> String {
        let name = if self.name.is_empty() {
            String::new()
        } else {
            format!("/{}", self.name)
        };
        match self.group.as_str() {
            "" => format!("{} {}{name}", self.verb, self.resource),
            g => format!("{} {}.{g}{name}", self.verb, self.resource),
        }
    }

    /// Where: the namespace, or `(cluster-wide)`.
    pub fn place(&self) -> &str {
        if self.namespace.is_empty() {
            "(cluster-wide)"
        } else {
            &self.namespace
        }
    }
}

/// The namespaces a rule applies in, given the namespaces the member's networks span (none
/// for a cluster-wide rule).
pub fn rule_namespaces(rule: &AccessRule, network_namespaces: &BTreeSet<String>) -> Vec<String> {
    match &rule.scope {
        AccessScope::NetworkNamespaces => network_namespaces.iter().cloned().collect(),
        AccessScope::Namespace(ns) => vec![ns.clone()],
        AccessScope::Cluster => Vec::new(),
    }
}

/// Whether the rules grant `check` (a cluster-wide rule grants in every namespace).
fn granted_by(
    rules: &[AccessRule],
    network_namespaces: &BTreeSet<String>,
    check: &AccessCheck,
) -> bool {
    rules.iter().any(|r| {
        r.api_group == check.group
            && r.resources.contains(&check.resource)
            && r.verbs.contains(&check.verb)
            && (r.scope == AccessScope::Cluster
                || rule_namespaces(r, network_namespaces).contains(&check.namespace))
    })
}

/// Every (namespace, resource, verb) the rules grant: each must be allowed.
pub fn required_checks(
    rules: &[AccessRule],
    network_namespaces: &BTreeSet<String>,
) -> Vec<AccessCheck> {
    let mut out = BTreeSet::new();
    for rule in rules {
        let places = match rule.scope {
            AccessScope::Cluster => vec![String::new()],
            _ => rule_namespaces(rule, network_namespaces),
        };
        let names: Vec<String> = if rule.resource_names.is_empty() {
            vec![String::new()]
        } else {
            rule.resource_names.clone()
        };
        for ns in places {
            for resource in &rule.resources {
                for verb in &rule.verbs {
                    for name in &names {
                        out.insert(AccessCheck {
                            namespace: ns.clone(),
                            group: rule.api_group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            name: name.clone(),
                            expect_allowed: true,
                        });
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// What least privilege forbids: the same resources outside the granted namespaces and
/// cluster-wide, Secrets anywhere else, and the cluster-wide writes that would let the
/// identity escalate (namespaces, RBAC, nodes). `outside` is a namespace none of the rules
/// grant in (`kube-system` unless a rule names it). A check the backend's own rules grant
/// (a cluster-wide rule of a backend that needs one) is not asked to be denied.
pub fn forbidden_checks(
    rules: &[AccessRule],
    network_namespaces: &BTreeSet<String>,
) -> Vec<AccessCheck> {
    let granted: BTreeSet<String> = rules
        .iter()
        .flat_map(|r| rule_namespaces(r, network_namespaces))
        .collect();
    let outside = ["kube-system", "default", "kube-public"]
        .into_iter()
        .find(|ns| !granted.contains(*ns))
        .unwrap_or("kube-node-lease");
    let check = |ns: &str, group: &str, resource: &str, verb: &str| AccessCheck {
        namespace: ns.to_owned(),
        group: group.to_owned(),
        resource: resource.to_owned(),
        verb: verb.to_owned(),
        name: String::new(),
        expect_allowed: false,
    };
    let mut out = BTreeSet::new();
    out.insert(check(outside, "", "secrets", "get"));
    out.insert(check(outside, "", "secrets", "list"));
    out.insert(check("", "", "secrets", "list"));
    out.insert(check("", "", "namespaces", "create"));
    out.insert(check(
        "",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "create",
    ));
    out.insert(check(
        "",
        "rbac.authorization.k8s.io",
        "clusterroles",
        "create",
    ));
    out.insert(check("", "", "nodes", "delete"));
    for ns in &granted {
        // Granting itself more in its own namespaces would undo every other denial.
        out.insert(check(ns, "rbac.authorization.k8s.io", "roles", "create"));
        out.insert(check(
            ns,
            "rbac.authorization.k8s.io",
            "rolebindings",
            "create",
        ));
    }
    for rule in rules {
        if let Some(resource) = rule.resources.first() {
            out.insert(check(outside, &rule.api_group, resource, "create"));
            out.insert(check("", &rule.api_group, resource, "list"));
        }
    }
    out.into_iter()
        .filter(|c| !granted_by(rules, network_namespaces, c))
        .collect()
}

/// One answered check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessResult {
    /// The question.
    #[serde(flatten)]
    pub check: AccessCheck,
    /// The authorizer's answer, or why there is none.
    pub allowed: Result<bool, String>,
}

impl AccessResult {
    /// Whether the answer is the expected one.
    pub fn as_expected(&self) -> bool {
        self.allowed == Ok(self.check.expect_allowed)
    }
}

/// Asks the member's authorizer every check as the client's identity, a few at a time.
pub async fn review(client: &Client, checks: &[AccessCheck]) -> Vec<AccessResult> {
    use futures::StreamExt as _;
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    futures::stream::iter(checks.iter().cloned())
        .map(|check| {
            let api = api.clone();
            async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            namespace: (!check.namespace.is_empty())
                                .then(|| check.namespace.clone()),
                            group: Some(check.group.clone()),
                            resource: Some(check.resource.clone()),
                            verb: Some(check.verb.clone()),
                            name: (!check.name.is_empty()).then(|| check.name.clone()),
                            ..ResourceAttributes::default()
                        }),
                        ..SelfSubjectAccessReviewSpec::default()
                    },
                    ..SelfSubjectAccessReview::default()
                };
                let allowed = api
                    .create(&PostParams::default(), &review)
                    .await
                    .map(|r| r.status.is_some_and(|s| s.allowed))
                    .map_err(|e| federation_core::cluster::describe_client_error(&e));
                AccessResult { check, allowed }
            }
        })
        .buffered(8)
        .collect()
        .await
}

/// The results as a table, one row per (namespace, resource, expectation) with its verbs:
/// `ok` when every answer is the expected one.
pub fn table(results: &[AccessResult]) -> Table {
    let mut table = Table::new(&["NAMESPACE", "RESOURCE", "VERBS", "EXPECTED", "RESULT"]);
    let mut rows: Vec<(String, String, bool, Vec<&AccessResult>)> = Vec::new();
    for r in results {
        let resource = match r.check.group.as_str() {
            "" => r.check.resource.clone(),
            g => format!("{}.{g}", r.check.resource),
        };
        let key = (r.check.place().to_owned(), resource, r.check.expect_allowed);
        match rows
            .iter_mut()
            .find(|(p, res, e, _)| (p, res, e) == (&key.0, &key.1, &key.2))
        {
            Some(row) => row.3.push(r),
            None => rows.push((key.0, key.1, key.2, vec![r])),
        }
    }
    for (place, resource, expect, group) in rows {
        let verbs: Vec<&str> = group.iter().map(|r| r.check.verb.as_str()).collect();
        let wrong: Vec<String> = group
            .iter()
            .filter(|r| !r.as_expected())
            .map(|r| match &r.allowed {
                Ok(true) => format!("{} allowed", r.check.verb),
                Ok(false) => format!("{} denied", r.check.verb),
                Err(e) => format!("{}: {e}", r.check.verb),
            })
            .collect();
        let result = if wrong.is_empty() {
            Cell::toned(if expect { "allowed" } else { "denied" }, Tone::Good)
        } else {
            Cell::toned(format!("WRONG: {}", wrong.join(", ")), Tone::Bad)
        };
        table.row(vec![
            Cell::plain(place),
            Cell::plain(resource),
            Cell::plain(verbs.join(",")),
            Cell::plain(if expect { "allow" } else { "deny" }),
            result,
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<AccessRule> {
        federation_skupper::member_access()
    }

    #[test]
    fn every_granted_verb_is_checked_in_every_namespace() {
        let ns: BTreeSet<String> = ["shop".into(), "pay".into()].into();
        let checks = required_checks(&rules(), &ns);
        // 7 Skupper kinds and Secrets, 7 verbs, 2 namespaces.
        assert_eq!(checks.len(), 8 * 7 * 2);
        assert!(checks.iter().all(|c| c.expect_allowed));
        assert!(checks.iter().all(|c| ns.contains(&c.namespace)));
    }

    #[test]
    fn denials_cover_secrets_elsewhere_and_cluster_wide_writes() {
        let ns: BTreeSet<String> = ["kube-system".into()].into();
        let denied = forbidden_checks(&rules(), &ns);
        assert!(denied.iter().all(|c| !c.expect_allowed));
        let whats: Vec<(String, String)> = denied
            .iter()
            .map(|c| (c.place().to_owned(), c.what()))
            .collect();
        // kube-system is granted here, so the namespace outside is the next candidate.
        assert!(whats.contains(&("default".into(), "get secrets".into())));
        assert!(whats.contains(&("(cluster-wide)".into(), "list secrets".into())));
        assert!(whats.contains(&("(cluster-wide)".into(), "create namespaces".into())));
        assert!(whats.contains(&(
            "kube-system".into(),
            "create rolebindings.rbac.authorization.k8s.io".into()
        )));
        assert!(whats.contains(&("default".into(), "create sites.skupper.io".into())));
    }

    #[test]
    fn a_cluster_wide_rule_is_checked_cluster_wide_and_never_asked_to_be_denied() {
        let rules = vec![AccessRule {
            api_group: String::new(),
            resources: vec!["namespaces".into(), "secrets".into()],
            verbs: vec!["create".into(), "list".into()],
            resource_names: vec![],
            scope: AccessScope::Cluster,
        }];
        let ns: BTreeSet<String> = ["shop".into()].into();
        let required = required_checks(&rules, &ns);
        assert_eq!(required.len(), 4);
        assert!(required.iter().all(|c| c.namespace.is_empty()));
        let denied = forbidden_checks(&rules, &ns);
        assert!(
            !denied
                .iter()
                .any(|c| c.resource == "namespaces" && c.verb == "create")
        );
        assert!(
            !denied
                .iter()
                .any(|c| c.resource == "secrets" && c.verb == "list")
        );
        // What the rule does not grant is still asked to be denied.
        assert!(
            denied
                .iter()
                .any(|c| c.resource == "secrets" && c.verb == "get")
        );
        assert!(denied.iter().any(|c| c.resource == "clusterroles"));
    }

    #[test]
    fn the_table_folds_verbs_and_flags_wrong_answers() {
        let check = |verb: &str, expect: bool| AccessCheck {
            namespace: "shop".into(),
            group: "".into(),
            resource: "secrets".into(),
            verb: verb.into(),
            name: String::new(),
            expect_allowed: expect,
        };
        let results = vec![
            AccessResult {
                check: check("get", true),
                allowed: Ok(true),
            },
            AccessResult {
                check: check("list", true),
                allowed: Ok(false),
            },
        ];
        let text = table(&results).render(false);
        assert!(text.contains("get,list"), "{text}");
        assert!(text.contains("WRONG: list denied"), "{text}");
    }
}

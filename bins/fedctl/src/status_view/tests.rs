#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;
use crate::report::{StatusReport, SummaryRow};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use serde_json::json;

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// A hub-and-spoke network over two namespaces with one link down, a member missing, a
/// member unreachable and a service with one consumer not ready.
fn network() -> FederatedNetwork {
    serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
        "metadata": {"name": "shop", "namespace": "fednet", "generation": 3},
        "spec": {"backend": {"type": "Skupper"}, "members": {"names": ["central", "east", "west", "gone"]},
                 "namespaces": ["apps"],
                 "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["central"]}}},
        "status": {
            "observedGeneration": 3,
            "conditions": [
                condition("Ready", "False", "Degraded", "1 of 2 links down"),
                condition("Degraded", "True", "LinksDown", "west -> central"),
            ],
            "members": [
                {"name": "central", "phase": "Ready"},
                {"name": "east", "phase": "Ready"},
                {"name": "west", "phase": "Unreachable", "message": "no answer in 3s"},
            ],
            "links": [
                {"dialer": "east", "acceptor": "central", "namespace": "apps", "cost": 2, "phase": "Up"},
                {"dialer": "west", "acceptor": "central", "namespace": "apps", "cost": 2, "phase": "Down",
                 "message": "west unreachable"},
            ],
            "linksSummary": "1/2",
            "missingMembers": ["gone"],
        }
    }))
    .unwrap()
}

fn members() -> Vec<MemberCluster> {
    let mc = |name: &str, reachable: serde_json::Value| -> MemberCluster {
        serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
            "spec": {"clusterId": name, "kubeconfigSecretRef": {"namespace": "fednet", "name": name}},
            "status": {"conditions": [reachable], "serverVersion": "v1.37.2",
                       "backendApis": ["skupper.io/v2alpha1"]}
        }))
        .unwrap()
    };
    vec![
        mc("central", condition("Reachable", "True", "Probed", "")),
        mc("east", condition("Reachable", "True", "Probed", "")),
        mc(
            "west",
            condition("Reachable", "False", "Unreachable", "timeout"),
        ),
    ]
}

fn services() -> Vec<FederatedService> {
    let svc = |name: &str, network: &str| -> FederatedService {
        serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
            "metadata": {"name": name, "namespace": "fednet"},
            "spec": {"network": network, "namespace": "apps", "serviceName": "orders",
                     "exporters": [{"member": "east", "host": "orders"}],
                     "ports": [{"name": "http", "port": 80}]},
            "status": {"conditions": [condition("Ready", "False", "ConsumersPending", "")],
                       "consumers": [{"member": "central", "ready": true},
                                     {"member": "west", "ready": false, "message": "Listener pending"}]}
        }))
        .unwrap()
    };
    vec![svc("orders", "shop"), svc("other", "billing")]
}

#[test]
fn a_network_shows_conditions_members_links_and_consumers_aligned() {
    let report = StatusReport::build(&network(), &services(), &members());
    let text = network_text(&report, false);
    let expected = "\
network fednet/shop: backend Skupper, topology HubSpoke (hubs: central)

CONDITIONS
TYPE      STATUS  REASON     MESSAGE
Ready     False   Degraded   1 of 2 links down
Degraded  True    LinksDown  west -> central

MEMBERS
MEMBER   ROLE   PHASE        REACHABLE            VERSION  BACKEND APIS         MESSAGE
central  hub    Ready        True                 v1.37.2  skupper.io/v2alpha1
east     spoke  Ready        True                 v1.37.2  skupper.io/v2alpha1
gone     spoke  Missing      no MemberCluster     -        -
west     spoke  Unreachable  False (Unreachable)  v1.37.2  skupper.io/v2alpha1  no answer in 3s

LINKS (1/2 up)
DIALER      ACCEPTOR  NAMESPACE  COST  PHASE  REASON
east    ->  central   apps       2     Up
west    ->  central   apps       2     Down   west unreachable

SERVICES
SERVICE  TARGET       FROM  CONSUMER  READY  MESSAGE
orders   apps/orders  east  central   True
orders   apps/orders  east  west      False  Listener pending
";
    assert_eq!(text, expected, "got:\n{text}");
}

#[test]
fn colour_marks_phases_only_when_asked() {
    let report = StatusReport::build(&network(), &services(), &members());
    let plain = network_text(&report, false);
    assert!(!plain.contains('\x1b'));
    let coloured = network_text(&report, true);
    assert!(coloured.contains("\x1b[32mUp\x1b[0m"));
    assert!(coloured.contains("\x1b[31mDown\x1b[0m"));
    assert!(coloured.contains("\x1b[31mUnreachable\x1b[0m"));
    // Stripped of its colour codes, the coloured text is the plain one: alignment holds.
    let stripped = coloured
        .replace("\x1b[0m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[31m", "")
        .replace("\x1b[2m", "");
    assert_eq!(stripped, plain);
}

#[test]
fn a_network_without_status_says_the_operator_has_not_seen_it() {
    let mut net = network();
    net.status = None;
    let text = network_text(&StatusReport::build(&net, &[], &[]), false);
    assert!(text.contains("no status yet: the operator has not reconciled this network"));
    assert!(text.contains("LINKS (0/0 up)\n  (none)"));
    assert!(
        text.contains("gone     spoke  -      no MemberCluster"),
        "{text}"
    );
}

#[test]
fn a_stale_status_says_so() {
    let mut net = network();
    net.metadata.generation = Some(4);
    let text = network_text(&StatusReport::build(&net, &[], &[]), false);
    assert!(
        text.contains("status is for generation 3, the spec is at 4: the operator is catching up")
    );
}

#[test]
fn the_summary_is_one_line_per_network() {
    let mut billing = network();
    billing.metadata.name = Some("billing".into());
    billing.metadata.namespace = Some("finance".into());
    billing.status = None;
    let rows = SummaryRow::build_all(&[network(), billing], &services());
    assert_eq!(
        summary_text(&rows, true, false),
        "\
NAMESPACE  NAME     BACKEND  TOPOLOGY  READY  REASON    MEMBERS  LINKS  SERVICES
fednet     shop     Skupper  HubSpoke  False  Degraded  2/4      1/2    0/1
finance    billing  Skupper  HubSpoke  -                0/0      0/0    0/0
"
    );
    assert!(summary_text(&rows, false, false).starts_with("NAME "));
}

#[test]
fn json_parses_back_into_the_api_status() {
    let report = StatusReport::build(&network(), &services(), &members());
    let json = serde_json::to_string(&report).unwrap();
    let back: StatusReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let status: federation_core::api::FederatedNetworkStatus =
        serde_json::from_value(value["status"].clone()).unwrap();
    assert_eq!(Some(status), network().status);
}

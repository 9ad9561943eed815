use super::fixtures::*;
use crate::kinds::{self, BROKER_NAMESPACE, OPERATOR_NAMESPACE};
use crate::names::{API_SERVER_ANNOTATION, GLOBAL_CIDR_ANNOTATION, MINT_TOKEN_ANNOTATION};
use crate::render::{RENEW_BEFORE_SECS, render};
use federation_core::backend::{DesiredObject, DesiredState, Observed, Target};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn get<'a>(d: &'a DesiredState, t: &Target, kind: &str, name: &str) -> Option<&'a DesiredObject> {
    d.targets
        .get(t)?
        .iter()
        .find(|o| o.key.kind == kind && o.key.name == name)
}

fn kinds_of(d: &DesiredState, t: &Target) -> BTreeSet<(String, String)> {
    d.targets
        .get(t)
        .into_iter()
        .flatten()
        .map(|o| (o.key.kind.clone(), o.key.name.clone()))
        .collect()
}

fn pair(k: &str, n: &str) -> (String, String) {
    (k.to_owned(), n.to_owned())
}

#[test]
fn first_pass_asks_for_tokens_and_keeps_joins_until_they_exist() {
    let plan = default_plan();
    let observed = observed_all(Observed::of(vec![hub_psk()]), MEMBERS.map(|m| (m, vec![])));
    let d = render(&plan, &observed, NOW);
    let mut want: BTreeSet<_> = [
        pair("Namespace", BROKER_NAMESPACE),
        pair("Role", "submariner-k8s-broker-cluster"),
        pair("Broker", "submariner-broker"),
    ]
    .into();
    for m in MEMBERS {
        want.insert(pair("ServiceAccount", &format!("cluster-id-{m}")));
        want.insert(pair("RoleBinding", &format!("cluster-id-{m}")));
        want.insert(pair("Secret", &format!("cluster-id-{m}-token")));
    }
    assert_eq!(kinds_of(&d, &broker()), want);
    let token = get(&d, &broker(), "Secret", "cluster-id-east-token").unwrap();
    assert_eq!(
        token.body["metadata"]["annotations"][MINT_TOKEN_ANNOTATION],
        "cluster-id-east"
    );
    assert!(token.body.get("data").is_none());
    // Members: their namespace and the PSK now; the join waits for the token.
    assert_eq!(
        kinds_of(&d, &member_target("west")),
        [
            pair("Namespace", OPERATOR_NAMESPACE),
            pair("Secret", "fednet-submariner-ipsec-psk")
        ]
        .into()
    );
    assert!(d.is_retained(
        &member_target("west"),
        &kinds::key(&kinds::SUBMARINER, OPERATOR_NAMESPACE, "submariner")
    ));
    assert!(get(&d, &member_target("east"), "ServiceExport", "orders").is_some());
    // The broker client role is upstream's.
    let role = get(&d, &broker(), "Role", "submariner-k8s-broker-cluster").unwrap();
    assert_eq!(role.body["rules"].as_array().unwrap().len(), 6);
    let binding = get(&d, &broker(), "RoleBinding", "cluster-id-east").unwrap();
    assert_eq!(binding.body["subjects"][0]["name"], "cluster-id-east");
    assert_eq!(
        binding.body["roleRef"]["name"],
        "submariner-k8s-broker-cluster"
    );
}

/// Every field the v0.21.1 Submariner CRD requires, and those the operator needs to render a
/// valid gateway (the NAT-T port) and Lighthouse.
const REQUIRED: [&str; 10] = [
    "broker",
    "brokerK8sApiServer",
    "brokerK8sRemoteNamespace",
    "ceIPSecDebug",
    "clusterCIDR",
    "clusterID",
    "debug",
    "namespace",
    "natEnabled",
    "serviceCIDR",
];

#[test]
fn a_minted_token_joins_every_member_with_every_required_field_and_no_inline_secret() {
    let plan = default_plan();
    let observed = observed_all(
        broker_observed(NOW + 20 * 3600),
        MEMBERS.map(|m| (m, vec![])),
    );
    let d = render(&plan, &observed, NOW);
    for (i, m) in MEMBERS.iter().enumerate() {
        let t = member_target(m);
        let cr = get(&d, &t, "Submariner", "submariner").expect("a join");
        let spec = &cr.body["spec"];
        for f in REQUIRED {
            assert!(!spec[f].is_null(), "{m}: {f} missing in {spec}");
        }
        assert_eq!(spec["broker"], "k8s");
        assert_eq!(spec["brokerK8sApiServer"], "127.0.0.1:6443");
        assert_eq!(spec["clusterID"], format!("id-{m}"));
        assert_eq!(spec["clusterCIDR"], format!("10.{i}.0.0/16"));
        assert_eq!(spec["serviceCIDR"], format!("10.10{i}.0.0/16"));
        assert_eq!(spec["ceIPSecNATTPort"], 4500);
        assert_eq!(spec["cableDriver"], "libreswan");
        assert_eq!(spec["serviceDiscoveryEnabled"], true);
        assert_eq!(spec["brokerK8sSecret"], kinds::BROKER_SECRET);
        assert_eq!(spec["ceIPSecPSKSecret"], kinds::PSK_SECRET);
        assert!(spec.get("brokerK8sApiServerToken").is_none() && spec.get("ceIPSecPSK").is_none());
        assert!(spec.get("globalCIDR").is_none());
        let secret = get(&d, &t, "Secret", kinds::BROKER_SECRET).unwrap();
        assert_eq!(secret.body["data"]["token"], format!("dG9rZW4tid-{m}"));
        assert_eq!(secret.body["data"]["ca.crt"], "Q0E=");
        let psk = get(&d, &t, "Secret", kinds::PSK_SECRET).unwrap();
        assert_eq!(psk.body["data"]["psk"], "cHNr");
    }
    // The fresh token Secrets are kept as they are (no re-mint).
    let token = get(&d, &broker(), "Secret", "cluster-id-east-token").unwrap();
    assert!(
        token.body["metadata"]["annotations"]
            .get(MINT_TOKEN_ANNOTATION)
            .is_none()
    );
    assert_eq!(token.body["data"]["token"], "dG9rZW4tid-east");
    // Secrets never show their values in Debug output.
    let shown = format!("{d:?}");
    assert!(
        !shown.contains("cHNr") && !shown.contains("dG9rZW4t"),
        "{shown}"
    );
}

#[test]
fn a_token_is_renewed_before_it_expires_and_the_member_keeps_the_old_one_meanwhile() {
    let plan = default_plan();
    let soon = NOW + RENEW_BEFORE_SECS - 60;
    let observed = observed_all(broker_observed(soon), MEMBERS.map(|m| (m, vec![])));
    let d = render(&plan, &observed, NOW);
    let token = get(&d, &broker(), "Secret", "cluster-id-east-token").unwrap();
    assert_eq!(
        token.body["metadata"]["annotations"][MINT_TOKEN_ANNOTATION],
        "cluster-id-east"
    );
    // The member still gets the (still valid) old token until the new one is read.
    let secret = get(&d, &member_target("east"), "Secret", kinds::BROKER_SECRET).unwrap();
    assert_eq!(secret.body["data"]["token"], "dG9rZW4tid-east");
    // An API server the network now names differently is a reason to re-mint too.
    let moved = mesh_plan(json!({"broker": "hub", "brokerApiServer": "broker.example:443"}));
    let d = render(
        &moved,
        &observed_all(broker_observed(NOW + 20 * 3600), []),
        NOW,
    );
    let token = get(&d, &broker(), "Secret", "cluster-id-east-token").unwrap();
    assert_eq!(
        token.body["metadata"]["annotations"][API_SERVER_ANNOTATION],
        "broker.example:443"
    );
    assert!(
        token.body["metadata"]["annotations"]
            .get(MINT_TOKEN_ANNOTATION)
            .is_some()
    );
}

#[test]
fn an_unread_broker_freezes_every_join_and_renders_nothing_there() {
    let plan = default_plan();
    let observed: BTreeMap<Target, Observed> = MEMBERS
        .map(|m| (member_target(m), Observed::default()))
        .into();
    let d = render(&plan, &observed, NOW);
    assert!(!d.targets.contains_key(&broker()));
    for m in MEMBERS {
        let t = member_target(m);
        for (kind, name) in [
            (&kinds::SUBMARINER, "submariner"),
            (&kinds::SECRET, kinds::BROKER_SECRET),
            (&kinds::SECRET, kinds::PSK_SECRET),
        ] {
            assert!(
                d.is_retained(&t, &kinds::key(kind, OPERATOR_NAMESPACE, name)),
                "{m} {name}"
            );
        }
        assert!(get(&d, &t, "Submariner", "submariner").is_none());
    }
}

#[test]
fn the_operator_namespace_someone_else_made_is_used_not_taken_over() {
    let plan = default_plan();
    let foreign = object(
        &kinds::NAMESPACE,
        None,
        OPERATOR_NAMESPACE,
        json!({"metadata": {"name": OPERATOR_NAMESPACE}}),
        false,
    );
    let observed = observed_all(broker_observed(NOW + 20 * 3600), [("east", vec![foreign])]);
    let d = render(&plan, &observed, NOW);
    assert!(get(&d, &member_target("east"), "Namespace", OPERATOR_NAMESPACE).is_none());
    assert!(get(&d, &member_target("west"), "Namespace", OPERATOR_NAMESPACE).is_some());
}

#[test]
fn globalnet_gives_distinct_blocks_recorded_on_the_broker_and_keeps_them() {
    let plan = mesh_plan(
        json!({"broker": "hub", "globalnet": true, "globalnetCidrRange": "242.0.0.0/16", "globalnetClusterSize": 256}),
    );
    let mut on_broker = broker_observed(NOW + 20 * 3600);
    // west had a block already (recorded on its ServiceAccount): it keeps it.
    on_broker
        .objects
        .retain(|o| o.key.name != "cluster-id-west");
    on_broker
        .objects
        .push(account("id-west", Some("242.0.7.0/24")));
    let d = render(&plan, &observed_all(on_broker, []), NOW);
    let mut blocks = BTreeMap::new();
    for m in MEMBERS {
        let cr = get(&d, &member_target(m), "Submariner", "submariner").unwrap();
        let cidr = cr.body["spec"]["globalCIDR"].as_str().unwrap().to_owned();
        let sa = get(&d, &broker(), "ServiceAccount", &format!("cluster-id-{m}")).unwrap();
        assert_eq!(
            sa.body["metadata"]["annotations"][GLOBAL_CIDR_ANNOTATION],
            cidr.as_str()
        );
        blocks.insert(m, cidr);
    }
    assert_eq!(blocks["west"], "242.0.7.0/24");
    assert_eq!(blocks["central"], "242.0.0.0/24");
    assert_eq!(blocks["east"], "242.0.1.0/24");
    let b = get(&d, &broker(), "Broker", "submariner-broker").unwrap();
    assert_eq!(
        b.body["spec"],
        json!({"components": ["service-discovery", "connectivity"], "globalnetEnabled": true,
                                      "globalnetCIDRRange": "242.0.0.0/16", "defaultGlobalnetClusterSize": 256})
    );
}

#[test]
fn every_object_carries_the_network_labels() {
    let plan = default_plan();
    let d = render(
        &plan,
        &observed_all(broker_observed(NOW + 20 * 3600), []),
        NOW,
    );
    for o in d.targets.values().flatten() {
        assert_eq!(o.body["metadata"]["labels"], labels(), "{}", o.key);
        assert_eq!(o.body["kind"], Value::from(o.key.kind.as_str()));
    }
}

use super::fixtures::*;
use crate::kinds::{
    ACCESS_GRANT, ACCESS_TOKEN, CERTIFICATE, CONNECTOR, LINK, LISTENER, SECRET, SITE,
};
use crate::names;
use crate::render::render;
use federation_core::api::{MANAGED_BY_LABEL, NETWORK_LABEL, SkupperLinkFlow, SkupperSettings};
use federation_core::backend::{DesiredObject, DesiredState, ObservedObject, Target};
use serde_json::json;

fn of_kind<'a>(d: &'a DesiredState, member: &str, kind: &str) -> Vec<&'a DesiredObject> {
    d.targets
        .get(&target(member))
        .into_iter()
        .flatten()
        .filter(|o| o.key.kind == kind)
        .collect()
}

#[test]
fn fresh_network_gets_sites_connectors_and_listeners_only() {
    let plan = hub_spoke_plan();
    let d = render(&plan, &Default::default());
    for m in ["central", "east", "west"] {
        let sites = of_kind(&d, m, SITE.kind);
        assert_eq!(sites.len(), 1, "{m}");
        let labels = &sites[0].body["metadata"]["labels"];
        assert_eq!(labels[NETWORK_LABEL], plan.network.label_value());
        assert_eq!(labels[MANAGED_BY_LABEL], "fednet-operator");
        assert!(
            of_kind(&d, m, CERTIFICATE.kind).is_empty() && of_kind(&d, m, LINK.kind).is_empty()
        );
    }
    // Only the hub accepts links, so only it gets link access.
    assert_eq!(
        of_kind(&d, "central", SITE.kind)[0].body["spec"]["linkAccess"],
        "default"
    );
    assert!(
        of_kind(&d, "east", SITE.kind)[0].body["spec"]
            .get("linkAccess")
            .is_none()
    );

    let connector = &of_kind(&d, "east", CONNECTOR.kind)[0].body["spec"];
    assert_eq!(connector["routingKey"], "fednet-system.net.orders.http");
    assert_eq!(connector["port"], 8080);
    assert_eq!(connector["selector"], "app=orders,tier=api");
    for consumer in ["central", "west"] {
        let listener = &of_kind(&d, consumer, LISTENER.kind)[0].body["spec"];
        assert_eq!(listener["host"], "orders");
        assert_eq!(listener["port"], 80);
        assert_eq!(listener["routingKey"], connector["routingKey"]);
    }
    assert!(
        of_kind(&d, "east", LISTENER.kind).is_empty(),
        "the exporter serves the service locally"
    );
}

#[test]
fn direct_flow_issues_a_certificate_then_copies_it_and_links() {
    let plan = hub_spoke_plan();
    let name = names::link(&plan.network, "east", "central");

    // The hub's site is ready: each spoke's client Certificate is requested there.
    let d = render(
        &plan,
        &observed(vec![("central", vec![ready_site(&plan, &["g1"])])]),
    );
    let certs = of_kind(&d, "central", CERTIFICATE.kind);
    assert_eq!(certs.len(), 2);
    let east_cert = certs.iter().find(|c| c.key.name == name).unwrap();
    assert_eq!(
        east_cert.body["spec"],
        json!({"ca": "skupper-site-ca", "subject": "id-east", "client": true})
    );
    assert!(
        of_kind(&d, "east", LINK.kind).is_empty(),
        "no link before the credentials exist"
    );

    // The hub's controller wrote the Secret: east gets a copy and one Link per router group.
    let obs = observed(vec![(
        "central",
        vec![ready_site(&plan, &["g1"]), cert_secret(&name, "1")],
    )]);
    let d = render(&plan, &obs);
    let secret = of_kind(&d, "east", SECRET.kind)[0];
    assert_eq!(secret.key.name, name);
    assert_eq!(secret.body["data"]["tls.crt"], "crt-1");
    assert_eq!(secret.body["type"], "kubernetes.io/tls");
    let links = of_kind(&d, "east", LINK.kind);
    assert_eq!(links.len(), 1);
    let spec = &links[0].body["spec"];
    assert_eq!(spec["tlsCredentials"], name.as_str());
    assert_eq!(spec["cost"], 5);
    assert_eq!(
        links[0].body["metadata"]["annotations"][crate::render::ACCEPTOR_ANNOTATION],
        "central"
    );
    let endpoint_names: Vec<_> = spec["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(
        endpoint_names,
        [json!("inter-router"), json!("edge")],
        "only dialable endpoints"
    );
    assert!(
        of_kind(&d, "west", LINK.kind).is_empty(),
        "west's certificate is not issued yet"
    );

    // The certificate rotates: the copy follows.
    let obs = observed(vec![(
        "central",
        vec![ready_site(&plan, &["g1"]), cert_secret(&name, "2")],
    )]);
    assert_eq!(
        of_kind(&render(&plan, &obs), "east", SECRET.kind)[0].body["data"]["tls.crt"],
        "crt-2"
    );
}

#[test]
fn ha_acceptors_get_one_link_per_router_group() {
    let plan = plan_with(
        hub_spoke(),
        SkupperSettings {
            ha: true,
            ..Default::default()
        },
    );
    let name = names::link(&plan.network, "east", "central");
    let obs = observed(vec![(
        "central",
        vec![ready_site(&plan, &["g1", "g2"]), cert_secret(&name, "1")],
    )]);
    let d = render(&plan, &obs);
    let mut links: Vec<_> = of_kind(&d, "east", LINK.kind)
        .iter()
        .map(|l| l.key.name.clone())
        .collect();
    links.sort();
    assert_eq!(links, [format!("{name}-1"), format!("{name}-2")]);
    assert_eq!(
        of_kind(&d, "central", SITE.kind)[0].body["spec"]["ha"],
        true
    );
}

#[test]
fn edge_spokes_are_edge_and_not_ha() {
    let plan = plan_with(
        hub_spoke(),
        SkupperSettings {
            edge_spokes: true,
            ..Default::default()
        },
    );
    let d = render(&plan, &Default::default());
    assert_eq!(of_kind(&d, "east", SITE.kind)[0].body["spec"]["edge"], true);
    assert_eq!(of_kind(&d, "east", SITE.kind)[0].body["spec"]["ha"], false);
    assert_eq!(
        of_kind(&d, "central", SITE.kind)[0].body["spec"]["edge"],
        false
    );
}

#[test]
fn grant_flow_redeems_only_ready_grants_and_keeps_redeemed_tokens() {
    let settings = SkupperSettings {
        link_flow: SkupperLinkFlow::Grant,
        ..Default::default()
    };
    let plan = plan_with(hub_spoke(), settings);
    let name = names::link(&plan.network, "east", "central");
    let d = render(&plan, &Default::default());
    let grants = of_kind(&d, "central", ACCESS_GRANT.kind);
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].body["spec"]["redemptionsAllowed"], 1);
    assert!(of_kind(&d, "east", ACCESS_TOKEN.kind).is_empty());

    let grant = |ready: bool| ObservedObject {
        key: crate::kinds::key(&ACCESS_GRANT, NS, &name),
        body: json!({"status": {"url": "https://central:9090/x", "code": "c0de", "ca": "PEM",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}),
        owned: true,
    };
    let obs = observed(vec![(
        "central",
        vec![ready_site(&plan, &["g1"]), grant(false)],
    )]);
    assert!(
        of_kind(&render(&plan, &obs), "east", ACCESS_TOKEN.kind).is_empty(),
        "grant not ready"
    );
    let obs = observed(vec![(
        "central",
        vec![ready_site(&plan, &["g1"]), grant(true)],
    )]);
    let token = of_kind(&render(&plan, &obs), "east", ACCESS_TOKEN.kind)[0].body["spec"].clone();
    assert_eq!(
        token,
        json!({"url": "https://central:9090/x", "code": "c0de", "ca": "PEM", "linkCost": 5})
    );

    // Redeemed: the token stays as it was (even when the grant is gone) and what the
    // controller made from it is adopted.
    let redeemed = ObservedObject {
        key: crate::kinds::key(&ACCESS_TOKEN, NS, &name),
        body: json!({"spec": token, "status": {"redeemed": true}}),
        owned: true,
    };
    let made_link = link_object(&name, json!([]), "Pending");
    let obs = observed(vec![(
        "east",
        vec![redeemed, made_link, cert_secret(&name, "1")],
    )]);
    let d = render(&plan, &obs);
    assert_eq!(
        of_kind(&d, "east", ACCESS_TOKEN.kind)[0].body["spec"],
        token
    );
    let adopted_link = of_kind(&d, "east", LINK.kind)[0];
    assert_eq!(adopted_link.key.name, name);
    assert_eq!(
        adopted_link.body["spec"],
        json!({"cost": 5}),
        "adoption sets labels and the planned cost only"
    );
    assert!(adopted_link.body["metadata"]["labels"][NETWORK_LABEL].is_string());
    assert_eq!(of_kind(&d, "east", SECRET.kind).len(), 1);
}

#[test]
fn full_mesh_gives_every_site_link_access_where_it_accepts() {
    let plan = plan_with(json!({"type": "FullMesh"}), SkupperSettings::default());
    let d = render(&plan, &Default::default());
    let accepting: Vec<_> = ["central", "east", "west"]
        .into_iter()
        .filter(|m| {
            of_kind(&d, m, SITE.kind)[0].body["spec"]
                .get("linkAccess")
                .is_some()
        })
        .collect();
    let acceptors: std::collections::BTreeSet<_> = plan
        .topology
        .links
        .iter()
        .map(|l| l.acceptor.as_str())
        .collect();
    assert_eq!(accepting, acceptors.into_iter().collect::<Vec<_>>());
    assert_eq!(
        d.targets.keys().cloned().collect::<Vec<_>>(),
        ["central", "east", "west"].map(|m| Target::Member(m.into()))
    );
}

#[test]
fn a_former_acceptor_keeps_accepting_while_old_links_still_dial_it() {
    // The hub moved from central to east; west's Link to central is not removed yet.
    let moved = json!({"type": "HubSpoke", "hubSpoke": {"hubs": ["east"]}});
    let plan = plan_with(moved.clone(), SkupperSettings::default());
    let old = names::link(&plan.network, "west", "central");
    let spec = |d: &DesiredState, m: &str| of_kind(d, m, SITE.kind)[0].body["spec"].clone();
    let all = |west: Vec<ObservedObject>| {
        observed(vec![("central", vec![]), ("east", vec![]), ("west", west)])
    };
    let d = render(&plan, &all(vec![link_dialing(&old, "central")]));
    assert_eq!(spec(&d, "central")["linkAccess"], "default");
    assert_eq!(spec(&d, "east")["linkAccess"], "default");
    assert!(spec(&d, "west").get("linkAccess").is_none());

    // The old Link is gone: so is central's link access.
    let d = render(&plan, &all(vec![]));
    assert!(spec(&d, "central").get("linkAccess").is_none());

    // West cannot be read, so its Links are unknown: central keeps the access it has.
    let mut site = ready_site(&plan, &["g1"]);
    site.body["spec"]["linkAccess"] = "default".into();
    let d = render(
        &plan,
        &observed(vec![("central", vec![site]), ("east", vec![])]),
    );
    assert_eq!(spec(&d, "central")["linkAccess"], "default");

    // With edge spokes, the former hub becomes an edge site only once nothing dials it.
    let edge = SkupperSettings {
        edge_spokes: true,
        ..Default::default()
    };
    let plan = plan_with(moved, edge);
    let old = names::link(&plan.network, "west", "central");
    let d = render(&plan, &all(vec![link_dialing(&old, "central")]));
    assert_eq!(spec(&d, "central")["edge"], false);
    assert_eq!(spec(&render(&plan, &all(vec![])), "central")["edge"], true);
}

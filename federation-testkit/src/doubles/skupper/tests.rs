//! Pure tests of the double's rules: status computed from spec and from what the clusters show.

use super::model::*;
use super::rules::*;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) const NS: &str = "shop";

pub(super) fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

pub(super) fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "skupper.io/v2alpha1", "kind": kind,
           "metadata": {"name": name, "namespace": NS, "generation": 2, "uid": format!("uid-{name}"),
                        "resourceVersion": "7"},
           "spec": spec})
}

pub(super) fn with_status(mut o: Value, status: Value) -> Value {
    o["status"] = status;
    o
}

pub(super) fn cond<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} in {status}"))
}

pub(super) fn ready_site(cluster: &str, spec: Value) -> Value {
    let site = object("Site", "net", spec);
    let status = site_status(&site, cluster);
    with_status(site, status)
}

pub(super) fn snapshot(objects: Vec<(Kind, Value)>, secrets: Vec<SecretInfo>) -> Snapshot {
    let mut s = Snapshot {
        secrets,
        ..Snapshot::default()
    };
    for (kind, o) in objects {
        s.objects.entry(kind).or_default().push(o);
    }
    s
}

pub(super) fn world(clusters: Vec<(&str, Option<Snapshot>)>) -> World {
    World {
        unresolved: Default::default(),
        cas: clusters
            .iter()
            .map(|(c, _)| ((*c).to_owned(), format!("CA of {c}")))
            .collect(),
        clusters: clusters
            .into_iter()
            .map(|(c, s)| (c.to_owned(), s.map(Arc::new)))
            .collect(),
    }
}

pub(super) fn credentials(name: &str, ca_of: &str) -> SecretInfo {
    SecretInfo {
        namespace: NS.into(),
        name: name.into(),
        ca_crt: Some(format!("CA of {ca_of}")),
        ..SecretInfo::default()
    }
}

#[test]
fn site_without_link_access_is_ready_without_endpoints() {
    let site = object("Site", "net", json!({"edge": false, "ha": false}));
    let status = site_status(&site, "east");
    assert_eq!(status["defaultIssuer"], "skupper-site-ca");
    assert_eq!(status["status"], "Ready");
    assert_eq!(status["message"], "OK");
    for c in ["Configured", "Running", "Ready"] {
        let c = cond(&status, c);
        assert_eq!(
            (&c["status"], &c["reason"]),
            (&json!("True"), &json!("Ready"))
        );
        assert_eq!(c["observedGeneration"], 2);
    }
    assert!(status.get("endpoints").is_none());
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "Resolved")
    );
    let none = object("Site", "net", json!({"linkAccess": "none"}));
    assert!(site_status(&none, "east").get("endpoints").is_none());
}

#[test]
fn site_with_link_access_resolves_one_endpoint_pair_per_router_group() {
    let site = object(
        "Site",
        "net",
        json!({"linkAccess": "default", "ha": true, "defaultIssuer": "mine"}),
    );
    let status = site_status(&site, "central");
    assert_eq!(status["defaultIssuer"], "mine");
    assert_eq!(cond(&status, "Resolved")["status"], "True");
    let endpoints = status["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 4);
    assert_eq!(
        endpoints[0],
        json!({"name": "inter-router", "host": "skupper-router.shop.central.sim", "port": "55671", "group": "skupper-router"})
    );
    assert_eq!(
        endpoints[3],
        json!({"name": "edge", "host": "skupper-router-2.shop.central.sim", "port": "45671", "group": "skupper-router-2"})
    );
    let single = site_status(
        &object("Site", "net", json!({"linkAccess": "default"})),
        "central",
    );
    assert_eq!(single["endpoints"].as_array().unwrap().len(), 2);
}

#[test]
fn hosts_and_grant_urls_round_trip() {
    let host = endpoint_host("skupper-router-2", "shop", "east.eu");
    assert_eq!(
        parse_endpoint_host(&host),
        Some(("skupper-router-2", "shop", "east.eu"))
    );
    assert_eq!(parse_endpoint_host("skupper-router.shop.example.com"), None);
    assert_eq!(parse_endpoint_host("x..east.sim"), None);
    let url = grant_url("central", "shop", "g");
    assert_eq!(url, "https://grants.central.sim/shop/g");
    assert_eq!(parse_grant_url(&url), Some(("central", "shop", "g")));
    assert_eq!(parse_grant_url("https://grants.central.sim/shop/g/x"), None);
    assert_eq!(parse_grant_url("https://example.com/shop/g"), None);
}

#[test]
fn status_patch_keeps_transition_times_and_writes_only_changes() {
    let site = object("Site", "net", json!({"linkAccess": "default"}));
    let first = status_patch(&Value::Null, site_status(&site, "east"), now()).unwrap();
    assert_eq!(
        cond(&first, "Ready")["lastTransitionTime"],
        timestamp(now())
    );
    assert_eq!(timestamp(now()), "2027-01-15T08:00:00Z");
    let later = Timestamp::from_second(1_800_000_100).unwrap();
    assert_eq!(
        status_patch(&first, site_status(&site, "east"), later),
        None,
        "no change, no write"
    );

    // Link access switched off: endpoints are removed, Resolved goes, Ready keeps its time.
    let off = object("Site", "net", json!({}));
    let patch = status_patch(&first, site_status(&off, "east"), later).unwrap();
    assert_eq!(patch["endpoints"], Value::Null);
    assert!(
        patch.get("defaultIssuer").is_none(),
        "unchanged keys are not sent"
    );
    assert_eq!(
        cond(&patch, "Ready")["lastTransitionTime"],
        timestamp(now())
    );
}

#[test]
fn link_is_operational_only_against_a_ready_answering_acceptor_that_issued_its_credentials() {
    let central = snapshot(
        vec![(
            Kind::Site,
            ready_site("central", json!({"linkAccess": "default"})),
        )],
        vec![],
    );
    let endpoints = central.site(NS).unwrap()["status"]["endpoints"].clone();
    let link = object(
        "Link",
        "l",
        json!({"endpoints": endpoints, "tlsCredentials": "l", "cost": 1}),
    );
    let east = |secrets| {
        snapshot(
            vec![
                (Kind::Site, ready_site("east", json!({}))),
                (Kind::Link, link.clone()),
            ],
            secrets,
        )
    };

    let own = east(vec![credentials("l", "central")]);
    let status = link_status(
        &link,
        &own,
        &world(vec![("central", Some(central.clone())), ("east", None)]),
    );
    assert_eq!(status["status"], "Ready");
    assert_eq!(cond(&status, "Operational")["status"], "True");
    assert_eq!(status["remoteSiteName"], "net");
    assert_eq!(status["remoteSiteId"], "uid-net");

    // The acceptor does not answer (paused): configured, not operational.
    let status = link_status(&link, &own, &world(vec![("central", None)]));
    assert_eq!(cond(&status, "Configured")["status"], "True");
    let op = cond(&status, "Operational");
    assert_eq!(
        (&op["status"], &op["reason"]),
        (&json!("False"), &json!("Pending"))
    );
    assert!(
        op["message"]
            .as_str()
            .unwrap()
            .contains("central does not answer"),
        "{op}"
    );
    assert_eq!(status["status"], "Pending");
    assert!(status.get("remoteSiteName").is_none());

    // Credentials from another CA would fail the TLS handshake.
    let wrong = east(vec![credentials("l", "west")]);
    let w = world(vec![("central", Some(central.clone())), ("west", None)]);
    assert!(
        cond(&link_status(&link, &wrong, &w), "Operational")["message"]
            .as_str()
            .unwrap()
            .contains("TLS handshake")
    );

    // No Secret yet: an error, as upstream's missingTlsCredentialsErr.
    let status = link_status(&link, &east(vec![]), &w);
    assert_eq!(status["status"], "Error");
    assert_eq!(
        cond(&status, "Configured")["message"],
        "TLS credentials secret \"l\" not found"
    );

    // The acceptor's Site lost link access: its endpoints are gone, so is the link.
    let closed = snapshot(vec![(Kind::Site, ready_site("central", json!({})))], vec![]);
    let status = link_status(&link, &own, &world(vec![("central", Some(closed))]));
    assert!(
        cond(&status, "Operational")["message"]
            .as_str()
            .unwrap()
            .contains("does not accept links")
    );

    // A host outside the simulation.
    let foreign = object(
        "Link",
        "l",
        json!({"endpoints": [{"name": "inter-router", "host": "a.example.com", "port": "55671"}], "tlsCredentials": "l"}),
    );
    assert_eq!(
        cond(&link_status(&foreign, &own, &w), "Operational")["status"],
        "False"
    );
}

#[test]
fn connectors_and_listeners_match_across_answering_clusters() {
    let connector = object(
        "Connector",
        "orders-http",
        json!({"routingKey": "k", "port": 8080, "selector": "app=orders"}),
    );
    let listener = object(
        "Listener",
        "orders-http",
        json!({"routingKey": "k", "host": "orders", "port": 80}),
    );
    let east = snapshot(
        vec![
            (Kind::Site, ready_site("east", json!({}))),
            (Kind::Connector, connector.clone()),
        ],
        vec![],
    );
    let west = snapshot(
        vec![
            (Kind::Site, ready_site("west", json!({}))),
            (Kind::Listener, listener.clone()),
        ],
        vec![],
    );
    let w = world(vec![
        ("east", Some(east.clone())),
        ("west", Some(west.clone())),
    ]);

    let c = binding_status(Kind::Connector, &connector, &east, &w);
    assert_eq!(c["hasMatchingListener"], true);
    assert_eq!(c["status"], "Ready");
    let l = binding_status(Kind::Listener, &listener, &west, &w);
    assert_eq!(l["hasMatchingConnector"], true);
    assert_eq!(cond(&l, "Matched")["status"], "True");

    // The exporter does not answer: the listener loses its match.
    let w = world(vec![("east", None), ("west", Some(west.clone()))]);
    let l = binding_status(Kind::Listener, &listener, &west, &w);
    assert!(l.get("hasMatchingConnector").is_none());
    assert_eq!(cond(&l, "Matched")["message"], "No matching connectors");
    assert_eq!(l["status"], "Pending");

    // Without a Site nothing is configured.
    let bare = snapshot(vec![(Kind::Listener, listener.clone())], vec![]);
    let l = binding_status(Kind::Listener, &listener, &bare, &w);
    assert_eq!(cond(&l, "Configured")["message"], "No active site");
}

#[test]
fn certificates_get_a_secret_then_ready_and_their_secret_goes_with_them() {
    let cert = object(
        "Certificate",
        "link-east",
        json!({"ca": "skupper-site-ca", "subject": "east", "client": true}),
    );
    let site = ready_site("central", json!({"linkAccess": "default"}));
    let own = snapshot(
        vec![
            (Kind::Site, site.clone()),
            (Kind::Certificate, cert.clone()),
        ],
        vec![],
    );
    let (status, action) = certificate_step(&cert, &own);
    assert_eq!(status, None, "ready only once the Secret exists");
    assert_eq!(
        action,
        Some(Action::IssueCertificateSecret {
            namespace: NS.into(),
            name: "link-east".into(),
            subject: "east".into(),
            certificate_uid: "uid-link-east".into()
        })
    );
    let issued = SecretInfo {
        controlled: true,
        certificate_owner: Some("link-east".into()),
        ..credentials("link-east", "central")
    };
    let own = snapshot(
        vec![
            (Kind::Site, site.clone()),
            (Kind::Certificate, cert.clone()),
        ],
        vec![issued.clone()],
    );
    let (status, action) = certificate_step(&cert, &own);
    assert_eq!(cond(&status.unwrap(), "Ready")["status"], "True");
    assert_eq!(action, None);

    let other_ca = object(
        "Certificate",
        "c",
        json!({"ca": "other", "subject": "east"}),
    );
    let (status, _) = certificate_step(&other_ca, &own);
    assert_eq!(
        cond(&status.unwrap(), "Ready")["message"],
        "CA \"shop/other\" not found"
    );

    // The Certificate is gone: its Secret is deleted; other Secrets are left alone.
    let gone = snapshot(
        vec![(Kind::Site, site)],
        vec![issued, credentials("copy", "central")],
    );
    let w = world(vec![("central", Some(gone))]);
    let deletes: Vec<_> = plan("central", &w, now(), &mut || "code".into())
        .into_iter()
        .filter(|a| matches!(a, Action::DeleteSecret { .. }))
        .collect();
    assert_eq!(
        deletes,
        vec![Action::DeleteSecret {
            namespace: NS.into(),
            name: "link-east".into()
        }]
    );
}

#[test]
fn plan_writes_nothing_for_a_settled_cluster() {
    let site = ready_site("east", json!({"linkAccess": "default"}));
    let settled = with_status(
        site.clone(),
        status_patch(&Value::Null, site_status(&site, "east"), now()).unwrap(),
    );
    let w = world(vec![(
        "east",
        Some(snapshot(vec![(Kind::Site, settled)], vec![])),
    )]);
    assert_eq!(plan("east", &w, now(), &mut || "c".into()), Vec::new());
    let fresh = object("Site", "net", json!({}));
    let w = world(vec![(
        "east",
        Some(snapshot(vec![(Kind::Site, fresh)], vec![])),
    )]);
    let actions = plan("east", &w, now(), &mut || "c".into());
    assert!(
        matches!(
            &actions[..],
            [Action::PatchStatus {
                kind: Kind::Site,
                ..
            }]
        ),
        "{actions:?}"
    );
    assert_eq!(
        plan("west", &w, now(), &mut || "c".into()),
        Vec::new(),
        "unknown cluster"
    );
}

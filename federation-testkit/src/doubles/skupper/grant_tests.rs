//! Pure tests of the grant flow's rules: grant status, and the grant server's answer to tokens.

use super::grants::*;
use super::model::*;
use super::tests::{cond, now, object, ready_site, snapshot, with_status, world};
use serde_json::{Value, json};

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("30m").unwrap().as_secs(), 1800);
    assert_eq!(parse_go_duration("1h30m10s").unwrap().as_secs(), 5410);
    assert_eq!(parse_go_duration("1.5h").unwrap().as_secs(), 5400);
    assert_eq!(parse_go_duration("250ms").unwrap().as_millis(), 250);
    for bad in ["", "10", "10d", "m"] {
        assert!(parse_go_duration(bad).is_none(), "{bad}");
    }
}

#[test]
fn grants_get_url_code_ca_and_expiry_once() {
    let grant = object(
        "AccessGrant",
        "g",
        json!({"redemptionsAllowed": 1, "expirationWindow": "30m"}),
    );
    let status = grant_status(&grant, "central", "CA", now(), &mut || "fresh".into());
    assert_eq!(status["url"], "https://grants.central.sim/shop/g");
    assert_eq!(status["code"], "fresh");
    assert_eq!(status["ca"], "CA");
    assert_eq!(
        status["expirationTime"],
        timestamp(now() + k8s_openapi::jiff::SignedDuration::from_mins(30))
    );
    assert_eq!(status["status"], "Ready");
    for c in ["Processed", "Resolved", "Ready"] {
        assert_eq!(cond(&status, c)["status"], "True", "{c}");
    }
    // Kept once set, the redemption count included.
    let mut written = status_patch(&Value::Null, status.clone(), now()).unwrap();
    written["redemptions"] = 1.into();
    let grant = with_status(grant, written.clone());
    let again = grant_status(&grant, "central", "CA", now(), &mut || {
        panic!("code is kept")
    });
    assert_eq!(status_patch(&grant["status"], again, now()), None);

    let bad = object("AccessGrant", "b", json!({"expirationWindow": "soon"}));
    let status = grant_status(&bad, "central", "CA", now(), &mut || "c".into());
    assert_eq!(status["status"], "Error");
    assert_eq!(
        cond(&status, "Processed")["message"],
        "Invalid duration \"soon\""
    );
    let default = grant_status(
        &object("AccessGrant", "d", json!({})),
        "central",
        "CA",
        now(),
        &mut || "c".into(),
    );
    assert_eq!(
        default["expirationTime"],
        timestamp(now() + k8s_openapi::jiff::SignedDuration::from_mins(10))
    );
}

fn granting_cluster(grant_status_override: Option<Value>) -> Snapshot {
    let grant = object("AccessGrant", "g", json!({"redemptionsAllowed": 1}));
    let status = grant_status_override.unwrap_or_else(|| {
        grant_status(&grant, "central", "CA of central", now(), &mut || {
            "secret-code".into()
        })
    });
    snapshot(
        vec![
            (
                Kind::Site,
                ready_site("central", json!({"linkAccess": "default", "ha": true})),
            ),
            (Kind::AccessGrant, with_status(grant, status)),
        ],
        vec![],
    )
}

fn token(code: &str) -> Value {
    object(
        "AccessToken",
        "link-east",
        json!({"url": "https://grants.central.sim/shop/g", "code": code, "ca": "CA", "linkCost": 4}),
    )
}

#[test]
fn tokens_are_redeemed_into_one_link_per_router_group() {
    let t = token("secret-code");
    let own = snapshot(
        vec![
            (Kind::Site, ready_site("east", json!({}))),
            (Kind::AccessToken, t.clone()),
        ],
        vec![],
    );
    let w = world(vec![
        ("central", Some(granting_cluster(None))),
        ("east", Some(own.clone())),
    ]);
    let TokenStep::Redeem(r) = token_step(&t, &own, &w, now()) else {
        panic!("not redeemed");
    };
    assert_eq!(
        (
            r.granting_cluster.as_str(),
            r.grant_name.as_str(),
            r.redemptions
        ),
        ("central", "g", 1)
    );
    assert_eq!(
        (r.site_name.as_str(), r.site_uid.as_str(), r.cost),
        ("net", "uid-net", Some(4))
    );
    assert_eq!(r.grant_resource_version, "7");
    let names: Vec<&str> = r.links.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["link-east-1", "link-east-2"]);
    assert_eq!(r.links[1].1[0]["host"], "skupper-router-2.shop.central.sim");

    let done = token_status(&t, Ok(()));
    assert_eq!(
        (&done["redeemed"], &done["status"]),
        (&json!(true), &json!("Ready"))
    );
    assert_eq!(cond(&done, "Redeemed")["status"], "True");
    let redeemed = with_status(t.clone(), done);
    assert_eq!(token_step(&redeemed, &own, &w, now()), TokenStep::Skip);

    let failed = token_status(&t, Err("nope"));
    assert!(failed.get("redeemed").is_none());
    assert_eq!(
        (&failed["status"], &failed["message"]),
        (&json!("Error"), &json!("nope"))
    );
}

#[test]
fn the_grant_server_refuses_like_upstream() {
    let own = snapshot(vec![(Kind::Site, ready_site("east", json!({})))], vec![]);
    let fail = |t: &Value, central: Option<Snapshot>| match token_step(
        t,
        &own,
        &world(vec![("central", central)]),
        now(),
    ) {
        TokenStep::Fail(why) => why,
        other => panic!("{other:?}"),
    };
    assert!(fail(&token("wrong"), Some(granting_cluster(None))).contains("403 (Forbidden)"));
    assert!(fail(&token("secret-code"), None).contains("does not answer"));
    let mut used = grant_status(
        &object("AccessGrant", "g", json!({})),
        "central",
        "CA",
        now(),
        &mut || "secret-code".into(),
    );
    used["redemptions"] = 1.into();
    assert!(
        fail(
            &token("secret-code"),
            Some(granting_cluster(Some(used.clone())))
        )
        .ends_with("No such access granted")
    );
    used["redemptions"] = 0.into();
    used["expirationTime"] = "2020-01-01T00:00:00Z".into();
    assert!(
        fail(&token("secret-code"), Some(granting_cluster(Some(used))))
            .ends_with("404 (Not Found) No such claim")
    );
    let no_site = snapshot(vec![], vec![]);
    assert_eq!(
        token_step(&token("x"), &no_site, &world(vec![]), now()),
        TokenStep::Skip,
        "no local Site yet"
    );
}

//! The Skupper backend end to end on real control planes: a hub with the fednet CRDs, three
//! members (central, east, west) with the upstream Skupper v2 CRDs (so the real schema
//! validates everything written), the Skupper controller double in the members, and
//! `reconcile_network`/`reconcile_member` driven pass by pass (see `federation_tests::skupper_env`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{FederatedNetwork, LinkPhase, MemberPhase, NETWORK_FINALIZER};
use federation_core::plan::NetworkRef;
use federation_skupper::names;
use federation_tests::skupper_env::{
    CONVERGE_WITHIN, MEMBERS, SkupperEnv, condition, key, operational,
};
use kube::ResourceExt;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

fn hub_spoke(ns: &str, members: &[&str], hubs: &[&str], spoke_cost: u32) -> Value {
    json!({"backend": {"type": "Skupper"}, "members": {"names": members}, "namespaces": [ns],
           "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": hubs, "spokeCost": spoke_cost}}})
}

/// (dialer, acceptor) of every link in the network's status.
fn status_links(net: &FederatedNetwork) -> BTreeSet<(String, String)> {
    let links = &net.status.as_ref().unwrap().links;
    links
        .iter()
        .map(|l| (l.dialer.clone(), l.acceptor.clone()))
        .collect()
}

/// A converged network: Ready with exactly `links`, all Up; its members Ready; in every member
/// exactly the labelled objects the plan needs (nothing in non-members); the shared service
/// ready in every member.
async fn assert_converged(
    env: &SkupperEnv,
    name: &str,
    ns: &str,
    members: &[&str],
    links: &[(&str, &str)],
    exporter: &str,
) {
    let net = env.network(name).await.unwrap();
    let status = net.status.clone().unwrap();
    assert_eq!(condition(&net, "Ready").unwrap().0, "True", "{status:#?}");
    assert_eq!(condition(&net, "Degraded").unwrap().0, "False");
    let want: BTreeSet<(String, String)> = links
        .iter()
        .map(|(d, a)| ((*d).to_owned(), (*a).to_owned()))
        .collect();
    assert_eq!(status_links(&net), want);
    assert!(
        status
            .links
            .iter()
            .all(|l| l.phase == LinkPhase::Up && l.namespace == ns)
    );
    let ready: BTreeSet<&str> = status
        .members
        .iter()
        .filter(|m| m.phase == MemberPhase::Ready)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(ready, members.iter().copied().collect(), "{status:#?}");

    let mut expected = env.expected(name, ns, members, links, exporter);
    for m in MEMBERS {
        expected.entry(m.to_owned()).or_default();
    }
    assert_eq!(env.labelled_keys(name, &MEMBERS).await, expected);

    let svc = env.service(name).await.status.unwrap();
    let consumers: BTreeSet<&str> = svc
        .consumers
        .iter()
        .filter(|c| c.ready)
        .map(|c| c.member.as_str())
        .collect();
    assert_eq!(consumers, members.iter().copied().collect(), "{svc:#?}");
}

/// At rest one more pass writes nothing: no labelled object in any member, nor the network or
/// its service, gets a new resourceVersion.
async fn assert_no_writes_at_rest(env: &SkupperEnv, name: &str) {
    env.settled(name, &MEMBERS).await;
    let before = env.versions(name).await;
    env.pass(name).await.unwrap();
    assert_eq!(
        env.versions(name).await,
        before,
        "a pass at rest wrote something"
    );
}

async fn tear_down(env: &SkupperEnv, name: &str) {
    env.delete_network(name).await;
    env.drive_until(name, "network gone", CONVERGE_WITHIN, async || {
        env.network(name).await.is_none().then_some(())
    })
    .await;
    let left = env.labelled_keys(name, &MEMBERS).await;
    assert!(left.values().all(BTreeSet::is_empty), "{left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_and_link_flow_converges_rests_takes_cost_changes_and_tears_down() {
    let env = SkupperEnv::start().await;

    let hs_ns = env.workload_namespace().await;
    env.create_network("hs", hub_spoke(&hs_ns, &MEMBERS, &["central"], 2))
        .await;
    env.share_orders("hs", &hs_ns, "east").await;
    let net = env.converge("hs").await;
    assert!(net.finalizers().iter().any(|f| f == NETWORK_FINALIZER));
    for m in MEMBERS {
        assert_eq!(env.reachable(m).await.as_deref(), Some("True"), "{m}");
    }
    let spokes = [("east", "central"), ("west", "central")];
    assert_converged(&env, "hs", &hs_ns, &MEMBERS, &spokes, "east").await;
    // The objects the backend wrote carry what the upstream schema and controller need.
    let objects = env.labelled("hs", &MEMBERS).await;
    let net_ref = NetworkRef::new(&env.hub_ns, "hs");
    let hub_site = &objects["central"][&key("Site", &hs_ns, &names::site(&net_ref))];
    assert_eq!(hub_site["spec"]["linkAccess"], "default");
    assert_eq!(hub_site["status"]["endpoints"].as_array().unwrap().len(), 2);
    let link_name = names::link(&net_ref, "east", "central");
    let link = &objects["east"][&key("Link", &hs_ns, &link_name)];
    assert_eq!(link["spec"]["cost"], 2);
    assert_eq!(link["spec"]["tlsCredentials"], link_name.as_str());
    assert!(operational(link), "{link:#}");
    assert_eq!(
        link["status"]["remoteSiteName"],
        names::site(&net_ref).as_str()
    );
    let cert = &objects["central"][&key("Certificate", &hs_ns, &link_name)];
    assert_eq!(cert["spec"]["subject"], "east");
    assert_no_writes_at_rest(&env, "hs").await;

    let mesh_ns = env.workload_namespace().await;
    let mesh = json!({"backend": {"type": "Skupper"}, "members": {"names": MEMBERS},
                      "namespaces": [mesh_ns], "topology": {"type": "FullMesh"}});
    env.create_network("mesh", mesh).await;
    env.share_orders("mesh", &mesh_ns, "west").await;
    let net = env.converge("mesh").await;
    let links = status_links(&net);
    let pairs: BTreeSet<BTreeSet<&str>> = links
        .iter()
        .map(|(d, a)| [d.as_str(), a.as_str()].into())
        .collect();
    assert_eq!(
        (links.len(), pairs.len()),
        (3, 3),
        "each pair linked once: {links:?}"
    );
    let links: Vec<(&str, &str)> = links
        .iter()
        .map(|(d, a)| (d.as_str(), a.as_str()))
        .collect();
    assert_converged(&env, "mesh", &mesh_ns, &MEMBERS, &links, "west").await;
    assert_no_writes_at_rest(&env, "mesh").await;

    // A cost change reaches every Link.
    env.patch_network("mesh", json!({"topology": {"defaultCost": 7}}))
        .await;
    let net = env.converge("mesh").await;
    assert!(net.status.unwrap().links.iter().all(|l| l.cost == 7));
    let objects = env.labelled("mesh", &MEMBERS).await;
    let costs: Vec<&Value> = objects
        .values()
        .flat_map(|o| o.iter())
        .filter(|(k, _)| k.0 == "Link")
        .map(|(_, o)| &o["spec"]["cost"])
        .collect();
    assert_eq!(costs, vec![&json!(7); 3]);
    assert_no_writes_at_rest(&env, "mesh").await;

    // The grant flow: AccessGrants in the acceptor, AccessTokens in the dialers, redeemed by
    // the dialers' controller into a Secret and a Link that the backend adopts.
    let grant_ns = env.workload_namespace().await;
    let mut grant = hub_spoke(&grant_ns, &MEMBERS, &["central"], 3);
    grant["backend"]["skupper"] = json!({"linkFlow": "Grant"});
    env.create_network("grant", grant).await;
    env.share_orders("grant", &grant_ns, "west").await;
    env.converge("grant").await;
    let mut expected = env.expected("grant", &grant_ns, &MEMBERS, &spokes, "west");
    for (dialer, _) in spokes {
        let name = names::link(&NetworkRef::new(&env.hub_ns, "grant"), dialer, "central");
        let central = expected.get_mut("central").unwrap();
        central.remove(&key("Certificate", &grant_ns, &name));
        central.insert(key("AccessGrant", &grant_ns, &name));
        expected
            .get_mut(dialer)
            .unwrap()
            .insert(key("AccessToken", &grant_ns, &name));
    }
    assert_eq!(env.labelled_keys("grant", &MEMBERS).await, expected);
    let objects = env.labelled("grant", &["east"]).await;
    let link = objects["east"]
        .iter()
        .find(|(k, _)| k.0 == "Link")
        .map(|(_, l)| l)
        .unwrap();
    assert_eq!(link["spec"]["cost"], 3);
    assert!(operational(link), "{link:#}");
    assert_no_writes_at_rest(&env, "grant").await;
    // The token stays as redeemed; the cost still reaches the Links made from it.
    env.patch_network("grant", json!({"topology": {"hubSpoke": {"spokeCost": 6}}}))
        .await;
    env.converge("grant").await;
    let objects = env.labelled("grant", &MEMBERS).await;
    for (dialer, _) in spokes {
        let link = objects[dialer]
            .iter()
            .find(|(k, _)| k.0 == "Link")
            .unwrap()
            .1;
        assert_eq!(link["spec"]["cost"], 6, "{dialer}");
    }

    // HA sites have two router groups: every dialer gets one Link per group.
    let ha_ns = env.workload_namespace().await;
    let mut ha = hub_spoke(&ha_ns, &MEMBERS, &["central"], 1);
    ha["backend"]["skupper"] = json!({"ha": true});
    env.create_network("ha", ha).await;
    env.share_orders("ha", &ha_ns, "central").await;
    env.converge("ha").await;
    let objects = env.labelled("ha", &MEMBERS).await;
    for (dialer, _) in spokes {
        let name = names::link(&NetworkRef::new(&env.hub_ns, "ha"), dialer, "central");
        let links: Vec<(&String, bool)> = objects[dialer]
            .iter()
            .filter(|(k, _)| k.0 == "Link")
            .map(|(k, o)| (&k.2, operational(o)))
            .collect();
        let (one, two) = (format!("{name}-1"), format!("{name}-2"));
        assert_eq!(links, [(&one, true), (&two, true)], "{dialer}");
    }
    assert_no_writes_at_rest(&env, "ha").await;

    // The other network is untouched by all this.
    assert_converged(&env, "hs", &hs_ns, &MEMBERS, &spokes, "east").await;
    for name in ["hs", "mesh", "grant", "ha"] {
        tear_down(&env, name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_and_the_hub_moves_make_before_break() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    let net_ref = NetworkRef::new(&env.hub_ns, "shop");
    env.create_network(
        "shop",
        hub_spoke(&ns, &["central", "east"], &["central"], 1),
    )
    .await;
    env.share_orders("shop", &ns, "central").await;
    env.converge("shop").await;
    assert_converged(
        &env,
        "shop",
        &ns,
        &["central", "east"],
        &[("east", "central")],
        "central",
    )
    .await;
    let east_link = key("Link", &ns, &names::link(&net_ref, "east", "central"));
    let uid = |objects: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<_, Value>,
    >| { objects["east"][&east_link]["metadata"]["uid"].clone() };
    let before = uid(&env.labelled("shop", &MEMBERS).await);

    // A member joins: it gets its objects; the existing link is not touched.
    env.patch_network("shop", json!({"members": {"names": MEMBERS}}))
        .await;
    env.converge("shop").await;
    let spokes = [("east", "central"), ("west", "central")];
    assert_converged(&env, "shop", &ns, &MEMBERS, &spokes, "central").await;
    assert_eq!(uid(&env.labelled("shop", &MEMBERS).await), before);

    // A member leaves: everything of the network goes from it, nothing else changes.
    env.patch_network("shop", json!({"members": {"names": ["central", "west"]}}))
        .await;
    env.converge("shop").await;
    assert_converged(
        &env,
        "shop",
        &ns,
        &["central", "west"],
        &[("west", "central")],
        "central",
    )
    .await;

    // The hub moves: west stops dialing central and accepts central instead. The old Link
    // stays (and stays operational) until the new one is operational.
    env.patch_network(
        "shop",
        json!({"topology": {"hubSpoke": {"hubs": ["west"]}}}),
    )
    .await;
    let old = key("Link", &ns, &names::link(&net_ref, "west", "central"));
    let new = key("Link", &ns, &names::link(&net_ref, "central", "west"));
    let (mut passes, mut both_seen) = (0, false);
    env.drive_until("shop", "hub moved", CONVERGE_WITHIN, async || {
        passes += 1;
        let objects = env.labelled("shop", &["central", "west"]).await;
        let (old_link, new_link) = (objects["west"].get(&old), objects["central"].get(&new));
        if passes == 1 {
            assert!(old_link.is_some(), "the old link went in the first pass");
        }
        if !new_link.is_some_and(operational) {
            assert!(
                old_link.is_some(),
                "old link removed before the new one is up (pass {passes})"
            );
        }
        if let Some(o) = old_link {
            assert!(
                operational(o),
                "old link broken before its removal (pass {passes}): {o:#}"
            );
        }
        both_seen |= old_link.is_some() && new_link.is_some();
        env.network("shop")
            .await
            .filter(federation_tests::skupper_env::is_ready)
    })
    .await;
    assert!(both_seen, "the old and the new link never coexisted");
    // Only the new hub accepts links now: the old one's link access is gone too.
    let objects = env.labelled("shop", &["central", "west"]).await;
    let site = key("Site", &ns, &names::site(&net_ref));
    assert_eq!(objects["central"][&site]["spec"].get("linkAccess"), None);
    assert_eq!(objects["west"][&site]["spec"]["linkAccess"], "default");
    assert_converged(
        &env,
        "shop",
        &ns,
        &["central", "west"],
        &[("central", "west")],
        "central",
    )
    .await;
    assert_no_writes_at_rest(&env, "shop").await;

    // A network Skupper cannot serve is refused before anything is written.
    let bad_ns = env.workload_namespace().await;
    let mut bad = hub_spoke(&bad_ns, &MEMBERS, &["central"], 1);
    bad["backend"]["skupper"] = json!({"edgeSpokes": true, "ha": true});
    env.create_network("edge-ha", bad).await;
    let net = env
        .drive_until("edge-ha", "refused", Duration::from_secs(30), async || {
            let net = env.network("edge-ha").await?;
            (condition(&net, "Ready")?.1 == "Unsupported").then_some(net)
        })
        .await;
    let (status, _, message) = condition(&net, "Ready").unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("spec.backend.skupper.ha"), "{message}");
    // Nor does it record targets or claim the namespace's Site from a network that can run.
    assert_eq!(net.status.as_ref().unwrap().inventory, None);
    let written = env.labelled_keys("edge-ha", &MEMBERS).await;
    assert!(written.values().all(BTreeSet::is_empty), "{written:#?}");
    for m in MEMBERS {
        assert_eq!(
            env.all_in_namespace(m, &bad_ns).await,
            BTreeSet::new(),
            "{m}"
        );
    }
    tear_down(&env, "edge-ha").await;
    tear_down(&env, "shop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_degrades_the_network_and_holds_teardown_until_resumed() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    env.create_network("shop", hub_spoke(&ns, &MEMBERS, &["central"], 1))
        .await;
    env.share_orders("shop", &ns, "east").await;
    let spokes = [("east", "central"), ("west", "central")];
    let expected = env.expected("shop", &ns, &MEMBERS, &spokes, "east");
    env.pass("shop").await.unwrap();
    env.pass("shop").await.unwrap();

    // West hangs mid-way: central and east converge, the network is Degraded naming west,
    // and once its probes have failed past the threshold it is reported Unreachable.
    let west = env.member("west");
    west.pause().unwrap();
    let net = env
        .drive_until(
            "shop",
            "degraded, others converged, west unreachable",
            CONVERGE_WITHIN,
            async || {
                let net = env.network("shop").await?;
                let (degraded, _, message) = condition(&net, "Degraded")?;
                let status = net.status.as_ref()?;
                let east_up = status
                    .links
                    .iter()
                    .any(|l| l.dialer == "east" && l.phase == LinkPhase::Up);
                let objects = env.labelled_keys("shop", &["central", "east"]).await;
                let others = objects["central"] == expected["central"]
                    && objects["east"] == expected["east"];
                let west_down = env.reachable("west").await.as_deref() == Some("False");
                (degraded == "True"
                    && message.contains("member/west")
                    && east_up
                    && others
                    && west_down)
                    .then_some(net)
            },
        )
        .await;
    assert_eq!(condition(&net, "Ready").unwrap().0, "False");
    assert_eq!(env.reachable("west").await.as_deref(), Some("False"));
    let phases: Vec<(String, MemberPhase)> = net
        .status
        .unwrap()
        .members
        .into_iter()
        .map(|m| (m.name, m.phase))
        .collect();
    assert_eq!(
        phases,
        [
            ("central".to_owned(), MemberPhase::Ready),
            ("east".to_owned(), MemberPhase::Ready),
            ("west".to_owned(), MemberPhase::Unreachable)
        ]
    );

    // Resumed, further passes alone bring it back.
    west.resume().unwrap();
    env.converge("shop").await;
    assert_converged(&env, "shop", &ns, &MEMBERS, &spokes, "east").await;

    // Deleted while east hangs: the others are cleaned, the finalizer holds, the status says why.
    let east = env.member("east");
    east.pause().unwrap();
    env.delete_network("shop").await;
    let net = env
        .drive_until(
            "shop",
            "teardown pending on east",
            CONVERGE_WITHIN,
            async || {
                let net = env.network("shop").await?;
                let (_, reason, message) = condition(&net, "Ready")?;
                let rest = env.labelled_keys("shop", &["central", "west"]).await;
                (reason == "TeardownPending"
                    && message.contains("member/east")
                    && rest.values().all(BTreeSet::is_empty))
                .then_some(net)
            },
        )
        .await;
    assert!(net.finalizers().iter().any(|f| f == NETWORK_FINALIZER));
    assert!(net.metadata.deletion_timestamp.is_some());
    east.resume().unwrap();
    env.drive_until("shop", "network gone", CONVERGE_WITHIN, async || {
        env.network("shop").await.is_none().then_some(())
    })
    .await;
    let left = env.labelled_keys("shop", &MEMBERS).await;
    assert!(left.values().all(BTreeSet::is_empty), "{left:#?}");
}

//! The engine's "never break what works" guarantees on real control planes: a hub and three
//! members (central, east, west) with the upstream Skupper CRDs, the Skupper controller double,
//! and the controller functions driven pass by pass (see `federation_tests::skupper_env`).
//! Each test injects one fault and checks that only the part it concerns fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::api::{ABANDON_ANNOTATION, FederatedService, MemberPhase, TargetKind};
use federation_core::backend::{Deletion, ObjectKey, Target};
use federation_core::kubernetes::{ManagedKind, delete_objects};
use federation_skupper::names;
use federation_tests::skupper_env::{CONVERGE_WITHIN, Key, MEMBERS, SkupperEnv, condition};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn hub_spoke(ns: &str, members: &[&str], hubs: &[&str]) -> Value {
    json!({"backend": {"type": "Skupper"}, "members": {"names": members}, "namespaces": [ns],
           "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": hubs}}})
}

/// The uids of the objects the spokes hold for their links (Secrets and Links).
fn link_objects(uids: &BTreeMap<(String, Key), String>) -> BTreeMap<(String, Key), String> {
    uids.iter()
        .filter(|((m, k), _)| m != "central" && (k.0 == "Link" || k.0 == "Secret"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn member_phase(env_net: &federation_core::api::FederatedNetwork, m: &str) -> Option<MemberPhase> {
    env_net
        .status
        .as_ref()?
        .members
        .iter()
        .find(|s| s.name == m)
        .map(|s| s.phase)
}

/// Runs passes for `period`, checking after each that `check` holds.
async fn hold_for(env: &SkupperEnv, name: &str, period: Duration, mut check: impl AsyncFnMut()) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        let _ = env.pass(name).await;
        check().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_hub_freezes_every_spoke_link_and_ready_returns_without_recreation() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    env.create_network("one-hub", hub_spoke(&ns, &MEMBERS, &["central"]))
        .await;
    env.share_orders("one-hub", &ns, "east").await;
    env.converge("one-hub").await;
    env.settled("one-hub", &MEMBERS).await;
    let before = env.uids("one-hub", &MEMBERS).await;
    let spoke_links = link_objects(&before);
    assert_eq!(spoke_links.len(), 4, "a Secret and a Link in each spoke");

    // The only hub's API server hangs for 30 s: every spoke keeps its Link and Secret.
    let central = env.member("central");
    central.pause().unwrap();
    hold_for(&env, "one-hub", Duration::from_secs(30), async || {
        let now = link_objects(&env.uids("one-hub", &["east", "west"]).await);
        assert_eq!(now, spoke_links, "a spoke lost or re-created a link object");
    })
    .await;
    let net = env.network("one-hub").await.unwrap();
    let (degraded, _, message) = condition(&net, "Degraded").unwrap();
    assert_eq!(degraded, "True");
    assert!(message.contains("member/central"), "{message}");
    assert_eq!(
        member_phase(&net, "central"),
        Some(MemberPhase::Unreachable)
    );
    assert_eq!(condition(&net, "Ready").unwrap().0, "False");

    // Resumed: Ready again, and nothing anywhere was re-created.
    central.resume().unwrap();
    env.converge("one-hub").await;
    let after = env.uids("one-hub", &MEMBERS).await;
    assert_eq!(after, before, "objects were re-created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_site_that_loses_its_endpoints_keeps_the_spokes_links() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    env.create_network("addr", hub_spoke(&ns, &MEMBERS, &["central"]))
        .await;
    env.share_orders("addr", &ns, "east").await;
    env.converge("addr").await;
    env.settled("addr", &MEMBERS).await;
    let before = env.uids("addr", &MEMBERS).await;
    let spoke_links = link_objects(&before);

    env.double().set_resolved("central", false);
    let site = names::site(&federation_core::plan::NetworkRef::new(&env.hub_ns, "addr"));
    let sites = Api::<DynamicObject>::namespaced_with(
        env.member("central").client(),
        &ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("skupper.io", "v2alpha1", "Site"),
            "sites",
        ),
    );
    let mut saw_empty = false;
    hold_for(&env, "addr", Duration::from_secs(15), async || {
        let s = sites.get(&site).await.unwrap();
        let empty = s.data["status"]["endpoints"]
            .as_array()
            .is_none_or(Vec::is_empty);
        saw_empty |= empty;
        let now = link_objects(&env.uids("addr", &["east", "west"]).await);
        assert_eq!(now, spoke_links, "a spoke lost or re-created a link object");
    })
    .await;
    assert!(saw_empty, "the hub's Site never lost its endpoints");
    let net = env.network("addr").await.unwrap();
    assert_eq!(
        condition(&net, "Ready").unwrap().0,
        "False",
        "{:#?}",
        net.status
    );

    env.double().set_resolved("central", true);
    env.converge("addr").await;
    assert_eq!(
        env.uids("addr", &MEMBERS).await,
        before,
        "objects were re-created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_status_is_rebuilt_by_a_sweep_and_a_new_network_sweeps_nothing() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    // A Listener in west that carries the labels of network "inv" but that "inv" never
    // made (west is not one of its members): a new network leaves it alone.
    let listeners = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("skupper.io", "v2alpha1", "Listener"),
        "listeners",
    );
    let west_listeners =
        Api::<DynamicObject>::namespaced_with(env.member("west").client(), &ns, &listeners);
    let labels = federation_core::plan::NetworkRef::new(&env.hub_ns, "inv").ownership_labels();
    let stray: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "skupper.io/v2alpha1", "kind": "Listener",
        "metadata": {"name": "copied-labels", "labels": labels},
        "spec": {"routingKey": "x", "host": "x", "port": 80}}))
    .unwrap();
    west_listeners
        .create(&PostParams::default(), &stray)
        .await
        .unwrap();

    let spec = hub_spoke(&ns, &["central", "east"], &["central"]);
    env.create_network("inv", spec).await;
    env.share_orders("inv", &ns, "east").await;
    let net = env.converge("inv").await;
    let inventory = net.status.unwrap().inventory.unwrap();
    let recorded: Vec<(TargetKind, &str)> = inventory
        .targets
        .iter()
        .map(|t| (t.kind, t.name.as_str()))
        .collect();
    assert_eq!(
        recorded,
        [
            (TargetKind::Member, "central"),
            (TargetKind::Member, "east")
        ]
    );
    assert!(
        west_listeners
            .get_opt("copied-labels")
            .await
            .unwrap()
            .is_some(),
        "an object outside the inventory was deleted"
    );
    west_listeners
        .delete("copied-labels", &DeleteParams::default())
        .await
        .unwrap();

    // Grow to west, then lose the status and shrink back in the same instant: the sweep of
    // every registered member finds west's objects.
    env.patch_network("inv", json!({"members": {"names": MEMBERS}}))
        .await;
    env.converge("inv").await;
    assert!(!env.labelled_keys("inv", &["west"]).await["west"].is_empty());
    env.networks()
        .patch_status(
            "inv",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": null})),
        )
        .await
        .unwrap();
    env.patch_network("inv", json!({"members": {"names": ["central", "east"]}}))
        .await;
    assert!(env.network("inv").await.unwrap().status.is_none());
    env.drive_until(
        "inv",
        "west cleaned after the status loss",
        CONVERGE_WITHIN,
        async || {
            let west = env.labelled_keys("inv", &["west"]).await;
            let net = env.network("inv").await?;
            let inv = net.status.as_ref()?.inventory.as_ref()?;
            (west["west"].is_empty() && inv.targets.iter().all(|t| t.name != "west")).then_some(())
        },
    )
    .await;
    env.converge("inv").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_go_away_never_wedge_a_network() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    let full_mesh = json!({"backend": {"type": "Skupper"}, "members": {"names": MEMBERS},
                           "namespaces": [ns], "topology": {"type": "FullMesh"}});
    env.create_network("mesh", full_mesh).await;
    env.converge("mesh").await;
    let members: Api<federation_core::api::MemberCluster> = Api::all(env.hub.clone());

    // West is deleted while reachable: its objects go first, then its MemberCluster.
    members
        .delete("west", &DeleteParams::default())
        .await
        .unwrap();
    env.drive_until(
        "mesh",
        "west cleaned and released",
        CONVERGE_WITHIN,
        async || {
            let gone = env.member_cluster("west").await.is_none();
            let clean = env.labelled_keys("mesh", &["west"]).await["west"].is_empty();
            (gone && clean).then_some(())
        },
    )
    .await;
    let net = env.converge("mesh").await;
    let status = net.status.clone().unwrap();
    assert_eq!(status.missing_members, ["west"]);
    let (degraded, _, message) = condition(&net, "Degraded").unwrap();
    assert_eq!(degraded, "True");
    assert!(message.contains("member/west"), "{message}");
    assert!(status.members.iter().all(|m| m.name != "west"));

    // East hangs and is deleted: its MemberCluster waits for the network ...
    let east = env.member("east");
    east.pause().unwrap();
    members
        .delete("east", &DeleteParams::default())
        .await
        .unwrap();
    hold_for(&env, "mesh", Duration::from_secs(8), async || {
        assert!(
            env.member_cluster("east").await.is_some(),
            "released before cleanup"
        );
    })
    .await;
    // ... until it is abandoned: then it goes, and the network forgets it with an Event.
    members
        .patch(
            "east",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {ABANDON_ANNOTATION: "true"}}})),
        )
        .await
        .unwrap();
    env.drive_until("mesh", "east released", CONVERGE_WITHIN, async || {
        let net = env.network("mesh").await?;
        let inv = net.status.as_ref()?.inventory.as_ref()?;
        let forgotten = inv.targets.iter().all(|t| t.name != "east");
        (env.member_cluster("east").await.is_none() && forgotten).then_some(())
    })
    .await;
    assert!(
        env.event_reasons("mesh")
            .await
            .iter()
            .any(|r| r == "TargetAbandoned")
    );

    // Deleting the network does not hang on the members that are gone.
    env.delete_network("mesh").await;
    env.drive_until("mesh", "network gone", CONVERGE_WITHIN, async || {
        env.network("mesh").await.is_none().then_some(())
    })
    .await;
    assert!(env.labelled_keys("mesh", &["central"]).await["central"].is_empty());
    east.resume().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_fednet_did_not_make_is_refused_and_only_that_part_fails() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    // The user's own Listener in west, named as fednet's would be.
    let listener_name = names::service_port("shop-orders", "http");
    let listeners = Api::<DynamicObject>::namespaced_with(
        env.member("west").client(),
        &ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("skupper.io", "v2alpha1", "Listener"),
            "listeners",
        ),
    );
    let mine: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "skupper.io/v2alpha1", "kind": "Listener",
        "metadata": {"name": listener_name},
        "spec": {"routingKey": "users-own", "host": "orders", "port": 9999}}))
    .unwrap();
    let mine = listeners
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();

    env.create_network("shop", hub_spoke(&ns, &MEMBERS, &["central"]))
        .await;
    env.share_orders("shop", &ns, "east").await;
    let net = env
        .drive_until(
            "shop",
            "links up, west refused",
            CONVERGE_WITHIN,
            async || {
                let net = env.network("shop").await?;
                let status = net.status.as_ref()?;
                let links_up = status.links_summary.as_deref() == Some("2/2");
                let west = status.members.iter().find(|m| m.name == "west")?;
                (links_up && west.phase == MemberPhase::Failed).then_some(net)
            },
        )
        .await;
    let west = net
        .status
        .as_ref()
        .unwrap()
        .members
        .iter()
        .find(|m| m.name == "west")
        .unwrap();
    let message = west.message.clone().unwrap();
    assert!(message.contains(&listener_name), "{message}");
    assert!(message.contains("not made by this network"), "{message}");
    assert_eq!(condition(&net, "Degraded").unwrap().0, "True");
    // The user's Listener is untouched: same uid, same spec, no fednet label.
    let now = listeners.get(&listener_name).await.unwrap();
    assert_eq!(now.uid(), mine.uid());
    assert_eq!(now.data["spec"], mine.data["spec"]);
    assert!(now.labels().is_empty());
    // West's other objects are there: its Site and its link to the hub.
    let west_objects = env.labelled_keys("shop", &["west"]).await["west"].clone();
    let kinds: BTreeSet<&str> = west_objects.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["Site", "Secret", "Link"]));

    // Once the user removes theirs, fednet makes its own.
    listeners
        .delete(&listener_name, &DeleteParams::default())
        .await
        .unwrap();
    env.converge("shop").await;
    let ours = listeners.get(&listener_name).await.unwrap();
    assert!(!ours.labels().is_empty());

    // A service with one consumer that is not a member is served to the valid ones.
    let svc: FederatedService = serde_json::from_value(json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
        "metadata": {"name": "billing"},
        "spec": {"network": "shop", "namespace": ns, "serviceName": "billing",
                 "exporters": [{"member": "east", "selector": {"app": "billing"}}],
                 "consumers": {"names": ["central", "ghost"]},
                 "ports": [{"name": "http", "port": 80}]}}))
    .unwrap();
    let services = Api::<FederatedService>::namespaced(env.hub.clone(), &env.hub_ns);
    services.create(&PostParams::default(), &svc).await.unwrap();
    let billing = env
        .drive_until(
            "shop",
            "billing served to central",
            CONVERGE_WITHIN,
            async || {
                let s = services.get("billing").await.ok()?;
                let st = s.status.as_ref()?;
                (st.consumers.len() == 1 && st.consumers[0].ready).then_some(s)
            },
        )
        .await;
    let st = billing.status.unwrap();
    assert_eq!(st.consumers[0].member, "central");
    let degraded = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(degraded.status, "True");
    assert!(
        degraded.message.contains("consumer ghost"),
        "{}",
        degraded.message
    );

    // A newer service claiming a Service name in use never takes over its Listener, even
    // when its name sorts first.
    let central_listeners = Api::<DynamicObject>::namespaced_with(
        env.member("central").client(),
        &ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("skupper.io", "v2alpha1", "Listener"),
            "listeners",
        ),
    );
    let billing_listener = names::service_port("billing", "http");
    let before = central_listeners.get(&billing_listener).await.unwrap();
    let mut copy = svc.clone();
    copy.metadata.name = Some("a-billing".into());
    copy.spec.exporters[0].member = "west".into();
    services
        .create(&PostParams::default(), &copy)
        .await
        .unwrap();
    let newer = env
        .drive_until(
            "shop",
            "newer service refused",
            CONVERGE_WITHIN,
            async || {
                let s = services.get("a-billing").await.ok()?;
                let ready = s
                    .status
                    .as_ref()?
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")?
                    .clone();
                (ready.reason == "ServiceNameConflict").then_some(s)
            },
        )
        .await;
    assert!(newer.status.is_some());
    let after = central_listeners.get(&billing_listener).await.unwrap();
    assert_eq!(after.uid(), before.uid());
    assert_eq!(after.data["spec"], before.data["spec"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_network_on_the_same_skupper_namespace_writes_nothing() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    env.create_network("first", hub_spoke(&ns, &MEMBERS, &["central"]))
        .await;
    env.converge("first").await;
    let first = env.uids("first", &MEMBERS).await;

    env.create_network("second", hub_spoke(&ns, &["east", "west"], &["east"]))
        .await;
    let net = env
        .drive_until("second", "second refused", CONVERGE_WITHIN, async || {
            let net = env.network("second").await?;
            let (_, reason, message) = condition(&net, "Ready")?;
            (reason == "SingletonConflict").then_some(message)
        })
        .await;
    assert!(net.contains("first"), "{net}");
    assert!(net.contains(&format!("namespace {ns}")), "{net}");
    assert!(
        env.labelled_keys("second", &MEMBERS)
            .await
            .values()
            .all(BTreeSet::is_empty),
        "the later network wrote something"
    );
    env.pass("first").await.unwrap();
    assert_eq!(env.uids("first", &MEMBERS).await, first);

    // Once the first network is gone, the second may take the namespace.
    env.delete_network("first").await;
    env.drive_until("first", "first gone", CONVERGE_WITHIN, async || {
        env.network("first").await.is_none().then_some(())
    })
    .await;
    env.converge("second").await;
}

#[tokio::test]
async fn a_delete_carries_the_observed_uid_and_spares_a_replacement() {
    let planes = federation_testkit::ControlPlanes::builder()
        .clusters(1)
        .start()
        .await
        .unwrap();
    let cluster = &planes.clusters()[0];
    let ns = cluster.test_namespace().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "site"}})).unwrap();
    let observed = api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("site", &DeleteParams::default()).await.unwrap();
    let replacement = api.create(&PostParams::default(), &cm).await.unwrap();
    let kinds = [ManagedKind::namespaced("v1", "ConfigMap", "configmaps")];
    let stale = Deletion {
        key: ObjectKey::namespaced("v1", "ConfigMap", &ns, "site"),
        uid: observed.uid(),
    };
    delete_objects(
        &cluster.client(),
        &Target::Member("m".into()),
        &kinds,
        &[stale],
    )
    .await
    .unwrap();
    let still = api.get("site").await.unwrap();
    assert_eq!(
        still.uid(),
        replacement.uid(),
        "the replacement was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_dropped_from_the_spec_is_cleaned_then_forgotten() {
    let env = SkupperEnv::start().await;
    let (kept, dropped) = (
        env.workload_namespace().await,
        env.workload_namespace().await,
    );
    assert_ne!(kept, dropped);
    env.create_network(
        "spread",
        json!({"backend": {"type": "Skupper"}, "members": {"names": MEMBERS},
               "namespaces": [kept, dropped], "topology": {"type": "FullMesh"}}),
    )
    .await;
    let net = env.converge("spread").await;
    let recorded = |net: &federation_core::api::FederatedNetwork| {
        net.status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map(|i| i.namespaces.clone())
            .unwrap_or_default()
    };
    let mut both = vec![kept.clone(), dropped.clone()];
    both.sort();
    assert_eq!(recorded(&net), both);
    for m in MEMBERS {
        assert!(!env.all_in_namespace(m, &dropped).await.is_empty());
    }

    // The namespace leaves the spec: members are read only namespace by namespace, so the
    // inventory is what keeps it read until its Sites and links are gone.
    env.patch_network("spread", json!({"namespaces": [kept]}))
        .await;
    env.drive_until(
        "spread",
        "the dropped namespace cleaned and forgotten",
        CONVERGE_WITHIN,
        async || {
            let net = env.network("spread").await?;
            for m in MEMBERS {
                if !env.all_in_namespace(m, &dropped).await.is_empty() {
                    return None;
                }
            }
            (recorded(&net) == [kept.clone()]).then_some(())
        },
    )
    .await;
    for m in MEMBERS {
        assert!(!env.all_in_namespace(m, &kept).await.is_empty());
    }
    env.converge("spread").await;
}

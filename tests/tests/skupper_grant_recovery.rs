//! The grant flow recovers on its own, on real control planes with the Skupper controller
//! double: a grant that expired before its token was redeemed is replaced and the token
//! re-issued; a rotated CA and a switch to HA heal redeemed links; and what Skupper redeemed
//! a token into is removed with the link even if fednet never adopted (labelled) it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_core::plan::NetworkRef;
use federation_skupper::names;
use federation_tests::skupper_env::{CONVERGE_WITHIN, MEMBERS, SkupperEnv};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::collections::BTreeSet;

fn skupper(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("skupper.io", "v2alpha1", kind),
        plural,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grant_flow_recovers_from_expiry_ca_rotation_and_ha_and_leaves_nothing_behind() {
    let env = SkupperEnv::start().await;
    let ns = env.workload_namespace().await;
    let net = NetworkRef::new(&env.hub_ns, "grants");
    let west_link = names::link(&net, "west", "central");
    let grants = Api::<DynamicObject>::namespaced_with(
        env.member("central").client(),
        &ns,
        &skupper("AccessGrant", "accessgrants"),
    );
    let spec = json!({"backend": {"type": "Skupper", "skupper": {"linkFlow": "Grant"}},
                      "members": {"names": MEMBERS}, "namespaces": [ns],
                      "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["central"]}}});

    // West cannot redeem while its API server hangs; meanwhile its grant expires.
    let west = env.member("west");
    west.pause().unwrap();
    env.create_network("grants", spec).await;
    let expired = env
        .drive_until(
            "grants",
            "west's grant ready",
            CONVERGE_WITHIN,
            async || {
                let g = grants.get_opt(&west_link).await.unwrap()?;
                g.data["status"]["code"].is_string().then_some(g)
            },
        )
        .await;
    grants
        .patch_status(
            &west_link,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"expirationTime": "2020-01-01T00:00:00Z"}})),
        )
        .await
        .unwrap();
    west.resume().unwrap();
    env.converge("grants").await;
    let renewed = grants.get(&west_link).await.unwrap();
    assert_ne!(
        renewed.uid(),
        expired.uid(),
        "the expired grant was replaced"
    );
    assert_ne!(
        renewed.data["status"]["code"],
        expired.data["status"]["code"]
    );

    // The hub's CA rotates: the redeemed credentials no longer pass TLS; links heal.
    let links_of = async |member: &str| -> BTreeSet<(String, String)> {
        env.labelled("grants", &[member]).await[member]
            .iter()
            .filter(|(k, _)| k.0 == "Link")
            .map(|(k, o)| {
                (
                    k.2.clone(),
                    o["metadata"]["uid"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let before = links_of("east").await;
    env.double().rotate_ca("central").unwrap();
    env.drive_until(
        "grants",
        "links re-redeemed after the CA rotation",
        CONVERGE_WITHIN,
        async || {
            let net = env.network("grants").await?;
            let ready = federation_tests::skupper_env::is_ready(&net);
            let now = links_of("east").await;
            (ready && !now.is_empty() && now.is_disjoint(&before)).then_some(())
        },
    )
    .await;

    // The hub turns HA: two router groups, so every spoke needs two Links.
    env.patch_network("grants", json!({"backend": {"skupper": {"ha": true}}}))
        .await;
    env.drive_until(
        "grants",
        "two Links per spoke",
        CONVERGE_WITHIN,
        async || {
            let net = env.network("grants").await?;
            let ready = federation_tests::skupper_env::is_ready(&net);
            let east = links_of("east").await.len();
            let west = links_of("west").await.len();
            (ready && east == 2 && west == 2).then_some(())
        },
    )
    .await;

    // West's redeemed Secret and Links lose fednet's labels (as if never adopted), and west
    // leaves the network: they are removed all the same.
    let strip = json!({"metadata": {"labels": null}});
    let west_client = env.member("west").client();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(west_client.clone(), &ns);
    secrets
        .patch(&west_link, &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .unwrap();
    let links = Api::<DynamicObject>::namespaced_with(west_client, &ns, &skupper("Link", "links"));
    let redeemed: Vec<String> = links
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .filter(|n| n.starts_with(&west_link))
        .collect();
    assert_eq!(redeemed.len(), 2, "{redeemed:?}");
    for l in &redeemed {
        links
            .patch(l, &PatchParams::default(), &Patch::Merge(&strip))
            .await
            .unwrap();
    }
    env.patch_network("grants", json!({"members": {"names": ["central", "east"]}}))
        .await;
    env.drive_until(
        "grants",
        "west's redemption removed",
        CONVERGE_WITHIN,
        async || {
            let secret = secrets.get_opt(&west_link).await.unwrap();
            let left = links
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|l| l.name_any().starts_with(&west_link));
            (secret.is_none() && !left).then_some(())
        },
    )
    .await;
    env.converge("grants").await;
}

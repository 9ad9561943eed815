//! No secret value of a Submariner network in fednet's logs, at any level: a network joins
//! three members to the hub's broker (minting broker tokens, making the IPsec PSK, copying both
//! to every member) and shares a service, with every target of this process logging at TRACE
//! into memory; then neither the PSK nor any broker token, in any form, may appear in what was
//! logged. The clusters are reached with ServiceAccount tokens (`deploy/member-rbac/`), which
//! must not appear either.
//!
//! A binary of its own because it installs the process-wide subscriber.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use federation_tests::submariner_env::{BROKER, BROKER_NS, MEMBERS, OPERATOR_NS, SubmarinerEnv};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every value of every data key of `secrets`, as (what, value).
fn values(prefix: &str, secrets: &[Secret], out: &mut BTreeMap<String, Vec<u8>>) {
    for s in secrets {
        for (k, v) in s.data.iter().flatten() {
            if k == "kubeconfig" {
                // The bearer tokens fednet reaches the clusters with.
                let doc: serde_yaml::Value = serde_yaml::from_slice(&v.0).unwrap();
                for user in doc["users"].as_sequence().into_iter().flatten() {
                    if let Some(token) = user["user"]["token"].as_str() {
                        let name = s.metadata.name.as_deref().unwrap_or("?");
                        out.insert(
                            format!("{prefix} {name} kubeconfig token"),
                            token.as_bytes().to_vec(),
                        );
                    }
                }
            } else if k != "ca.crt" {
                out.insert(
                    format!("{prefix} {}/{k}", s.metadata.name.as_deref().unwrap_or("?")),
                    v.0.clone(),
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submariner_network_logs_no_psk_or_token_even_at_trace() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();
    let env = SubmarinerEnv::start().await;
    let ns = "shop";
    env.run_orders("east", ns).await;
    env.create_network("mesh", &MEMBERS, ns, json!({})).await;
    env.share_orders("mesh", ns, "east", None).await;
    env.converge("mesh").await;

    let mut secrets = BTreeMap::new();
    let hub: Vec<Secret> = Api::<Secret>::namespaced(env.hub.clone(), &env.hub_ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    values("hub", &hub, &mut secrets);
    let broker: Vec<Secret> = Api::<Secret>::namespaced(env.cluster(BROKER).client(), BROKER_NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    values("broker", &broker, &mut secrets);
    for m in MEMBERS {
        let member: Vec<Secret> = Api::<Secret>::namespaced(env.cluster(m).client(), OPERATOR_NS)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        values(m, &member, &mut secrets);
    }
    assert!(
        secrets.keys().any(|k| k.contains("submariner-psk/psk")),
        "{:?}",
        secrets.keys()
    );
    assert!(
        secrets
            .keys()
            .any(|k| k.contains("cluster-east-token/token")),
        "{:?}",
        secrets.keys()
    );

    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("minted a broker token"),
        "the log was captured"
    );
    for (what, raw) in &secrets {
        let mut forms = vec![BASE64.encode(raw)];
        if let Ok(s) = std::str::from_utf8(raw) {
            forms.push(s.to_owned());
            // A token's signature alone would be enough to notice.
            forms.extend(
                s.rsplit('.')
                    .next()
                    .filter(|p| p.len() >= 16)
                    .map(str::to_owned),
            );
        }
        for form in forms.iter().filter(|f| f.len() >= 12) {
            assert!(!text.contains(form.as_str()), "{what} appears in the log");
        }
    }
    println!(
        "checked {} secret values against {} bytes of TRACE log",
        secrets.len(),
        text.len()
    );
}

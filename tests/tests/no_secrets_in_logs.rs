//! No secret value in the logs, at any level: a Skupper network with the direct link flow
//! (whose `tls.key` is copied from acceptor to dialer) converges on a hub and three members with
//! every target logging at TRACE into memory, and then no value of any Secret the double or the
//! backend wrote, nor any key or token of the members' kubeconfig Secrets on the hub, may
//! appear in what was logged.
//!
//! The members are reached with ServiceAccount tokens, as in production (the test kit's own
//! kubeconfigs use client certificates), so a bearer token in a logged request would be seen.
//!
//! This is a binary of its own because it installs the process-wide subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use federation_tests::operator_env::service_account_kubeconfig;
use federation_tests::skupper_env::{MEMBERS, SkupperEnv};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything logged, shared with the subscriber's writer.
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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The forms a secret value could take in a log line: as the API carries it (base64), decoded,
/// each long line of the decoded text (a PEM body is logged with escaped newlines, so the whole
/// would not match), and a run of its bytes as `Debug` prints a byte string.
fn needles(name: &str, raw: &[u8], lines: bool, out: &mut BTreeSet<(String, String)>) {
    let mut add = |form: &str, needle: String| {
        if needle.len() >= 12 {
            out.insert((format!("{name} ({form})"), needle));
        }
    };
    add("base64", BASE64.encode(raw));
    if raw.len() >= 24 {
        let middle = raw.len() / 2 - 12;
        let bytes = format!("{:?}", &raw[middle..middle + 24]);
        add("bytes", bytes.trim_matches(['[', ']']).to_owned());
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        add("text", text.to_owned());
        let lines = text.lines().filter(|l| lines && !l.starts_with("-----"));
        for line in lines {
            add("line", line.trim().to_owned());
        }
    }
}

/// Key material in a kubeconfig: client keys and tokens (not certificates, which are public).
fn kubeconfig_needles(name: &str, kubeconfig: &[u8], out: &mut BTreeSet<(String, String)>) {
    // Its lines (server URL, names) are not secret; its key material is looked at below.
    needles(name, kubeconfig, false, out);
    let doc: serde_yaml::Value = serde_yaml::from_slice(kubeconfig).unwrap();
    for user in doc["users"].as_sequence().into_iter().flatten() {
        let user = &user["user"];
        if let Some(key) = user["client-key-data"].as_str() {
            needles(
                &format!("{name} client-key-data"),
                &BASE64.decode(key).unwrap(),
                true,
                out,
            );
        }
        if let Some(token) = user["token"].as_str() {
            needles(&format!("{name} token"), token.as_bytes(), true, out);
        }
    }
}

/// Switches every member's kubeconfig Secret on the hub to a ServiceAccount token (bound to
/// cluster-admin: what it may do is not the point here, how it travels is).
async fn use_token_kubeconfigs(env: &SkupperEnv) {
    const SA: &str = "fednet-operator";
    for member in MEMBERS {
        let cluster = env.member(member);
        let client = cluster.client();
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        };
        Api::<ServiceAccount>::namespaced(client.clone(), "default")
            .create(
                &PostParams::default(),
                &ServiceAccount {
                    metadata: meta(SA),
                    ..ServiceAccount::default()
                },
            )
            .await
            .unwrap();
        Api::<ClusterRoleBinding>::all(client)
            .create(
                &PostParams::default(),
                &ClusterRoleBinding {
                    metadata: meta(SA),
                    role_ref: RoleRef {
                        api_group: Some("rbac.authorization.k8s.io".into()),
                        kind: "ClusterRole".into(),
                        name: "cluster-admin".into(),
                    },
                    subjects: Some(vec![Subject {
                        kind: "ServiceAccount".into(),
                        name: SA.into(),
                        namespace: Some("default".into()),
                        ..Subject::default()
                    }]),
                },
            )
            .await
            .unwrap();
        let kubeconfig = service_account_kubeconfig(cluster, member, "default", SA)
            .await
            .unwrap();
        let secret = Secret {
            data: Some([("kubeconfig".to_owned(), ByteString(kubeconfig.into_bytes()))].into()),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(env.hub.clone(), &env.hub_ns)
            .patch(
                &format!("{member}-kubeconfig"),
                &PatchParams::default(),
                &Patch::Merge(&secret),
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converging_network_logs_no_secret_value_even_at_trace() {
    let log = Captured::default();
    let writer = log.clone();
    // Every target at TRACE, ours and third-party crates (kube, hyper, rustls through `log`).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    let env = SkupperEnv::start().await;
    use_token_kubeconfigs(&env).await;
    let ns = env.workload_namespace().await;
    env.create_network(
        "shop",
        json!({"backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct"}},
               "members": {"names": MEMBERS}, "namespaces": [ns],
               "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["central"]}}}),
    )
    .await;
    env.share_orders("shop", &ns, "east").await;
    env.converge("shop").await;
    env.settled("shop", &MEMBERS).await;
    // A pass over the converged network: reads every copied Secret again.
    env.pass("shop").await.unwrap();

    let mut secrets = BTreeSet::new();
    let mut tls_keys = 0;
    for member in MEMBERS {
        let api: Api<Secret> = Api::namespaced(env.member(member).client(), &ns);
        for s in api.list(&ListParams::default()).await.unwrap() {
            let name = format!("{member} Secret {}", s.metadata.name.unwrap_or_default());
            for (key, value) in s.data.unwrap_or_default() {
                tls_keys += usize::from(key == "tls.key");
                needles(&format!("{name} {key}"), &value.0, true, &mut secrets);
            }
        }
    }
    // Two spokes dial the hub: each acceptor's issued key, and each dialer's copy of it.
    assert!(tls_keys >= 4, "the direct flow copied tls.key: {tls_keys}");
    let hub_secrets: Api<Secret> = Api::namespaced(env.hub.clone(), &env.hub_ns);
    for member in MEMBERS {
        let s = hub_secrets
            .get(&format!("{member}-kubeconfig"))
            .await
            .unwrap();
        let kubeconfig = &s.data.unwrap()["kubeconfig"].0;
        kubeconfig_needles(&format!("{member} kubeconfig"), kubeconfig, &mut secrets);
    }

    assert!(
        secrets.iter().any(|(what, _)| what.contains("token")),
        "the members were reached with tokens"
    );

    let text = log.text();
    // The capture saw trace-level output of our code and of the client stack.
    assert!(text.contains("built client from kubeconfig Secret"));
    assert!(text.lines().filter(|l| l.contains(" TRACE ")).count() > 100);
    let leaks: Vec<&String> = secrets
        .iter()
        .filter(|(_, needle)| text.contains(needle.as_str()))
        .map(|(what, _)| what)
        .collect();
    assert!(
        leaks.is_empty(),
        "secret values in the log ({} lines, {} values checked): {leaks:#?}",
        text.lines().count(),
        secrets.len()
    );
    eprintln!(
        "checked {} secret forms against {} log lines ({} bytes)",
        secrets.len(),
        text.lines().count(),
        text.len()
    );
}

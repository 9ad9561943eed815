//! `fedctl doctor` against real control planes: a hub and three members with Skupper's CRDs
//! (`federation_tests::skupper_env`), healthy first, then broken one way at a time. The binary
//! itself runs against the hub's kubeconfig file, and its JSON findings and exit code are
//! checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use base64::Engine as _;
use fedctl::doctor::{CRD_FIX, Finding, Verdict};
use federation_tests::skupper_env::{MEMBERS, SkupperEnv};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Runs `fedctl doctor -o json` against the hub: (exit code, findings).
async fn doctor(env: &SkupperEnv, extra: &[&str]) -> (i32, Vec<Finding>) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .arg("--kubeconfig")
        .arg(env.planes.clusters()[0].kubeconfig_path())
        .args(["doctor", "-o", "json", "--lease-namespace", &env.hub_ns])
        .args(extra)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    let findings = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no findings ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), findings)
}

/// (check, subject) of every failed finding.
fn failures(findings: &[Finding]) -> BTreeSet<(String, String)> {
    findings
        .iter()
        .filter(|f| f.result == Verdict::Fail)
        .map(|f| (f.check.clone(), f.subject.clone()))
        .collect()
}

fn pair(check: &str, subject: &str) -> (String, String) {
    (check.to_owned(), subject.to_owned())
}

fn finding<'a>(findings: &'a [Finding], check: &str, subject: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check && f.subject == subject)
        .unwrap_or_else(|| panic!("no {check} finding for {subject}: {findings:#?}"))
}

/// Runs doctor until `done` holds (discovery and CRD deletion take effect asynchronously).
async fn doctor_until(
    env: &SkupperEnv,
    what: &str,
    done: impl Fn(&[Finding]) -> bool,
) -> (i32, Vec<Finding>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, findings) = doctor(env, &[]).await;
        if done(&findings) {
            return (code, findings);
        }
        assert!(Instant::now() < deadline, "{what}: {findings:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes the operator's Lease as renewed `age` ago.
async fn lease(env: &SkupperEnv, age: Duration) {
    let renewed = k8s_openapi::jiff::Timestamp::now() - age;
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "fednet-operator"},
        "spec": {"holderIdentity": "operator-0", "leaseDurationSeconds": 15,
                 "renewTime": renewed.to_string()}}))
    .unwrap();
    Api::<Lease>::namespaced(env.hub.clone(), &env.hub_ns)
        .patch(
            "fednet-operator",
            &PatchParams::apply("doctor-test").force(),
            &Patch::Apply(&lease),
        )
        .await
        .unwrap();
}

/// Gives `member` a kubeconfig Secret on the hub for a ServiceAccount allowed everything the
/// backend needs except `delete` on links, with a token from the TokenRequest API.
async fn limited_identity(env: &SkupperEnv, member: &str) {
    let cluster = env.member(member);
    let client = cluster.client();
    cluster.create_namespace("doctor-sa").await.unwrap();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "fednet-operator"}})).unwrap();
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "doctor-sa");
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let all = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "doctor-limited"},
        "rules": [
            {"apiGroups": ["skupper.io"], "verbs": all,
             "resources": ["sites", "certificates", "accessgrants", "accesstokens",
                           "connectors", "listeners"]},
            {"apiGroups": ["skupper.io"], "resources": ["links"],
             "verbs": ["get", "list", "watch", "create", "patch", "update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": all}]}))
    .unwrap();
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "doctor-limited"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "doctor-limited"},
        "subjects": [{"kind": "ServiceAccount", "name": "fednet-operator",
                      "namespace": "doctor-sa"}]}))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let request = serde_json::from_value(json!({"spec": {"audiences": [],
        "expirationSeconds": 3600}}))
    .unwrap();
    let token = sas
        .create_token_request("fednet-operator", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let ca = base64::engine::general_purpose::STANDARD.encode(cluster.ca_certificate_pem());
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "m",
        "clusters": [{"name": "m", "cluster": {"server": cluster.server_url(),
                                               "certificate-authority-data": ca}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "m", "context": {"cluster": "m", "user": "sa"}}]});
    Api::<Secret>::namespaced(env.hub.clone(), &env.hub_ns)
        .patch(
            &format!("{member}-kubeconfig"),
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {
                "kubeconfig": serde_yaml::to_string(&kubeconfig).unwrap()}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_healthy_federation_and_names_each_fault() {
    let env = SkupperEnv::start().await;
    // A network declared (never reconciled here) so each member has a namespace its
    // identity needs access in.
    let ns = env.workload_namespace().await;
    env.create_network(
        "doctored",
        json!({"backend": {"type": "Skupper"}, "members": {"names": MEMBERS},
               "namespaces": [ns], "topology": {"type": "FullMesh"}}),
    )
    .await;
    // One member pass writes each member's Reachable condition, as the operator would.
    env.pass("no-network").await.unwrap();
    lease(&env, Duration::ZERO).await;

    // Healthy: exit 0, every check OK except the Skupper controller, which is not checkable
    // without pods and says so.
    let (code, findings) = doctor(&env, &[]).await;
    assert_eq!(code, 0, "{findings:#?}");
    for f in &findings {
        match f.check.as_str() {
            "skupper-controller" => {
                assert_eq!(f.result, Verdict::Skip);
                assert!(f.detail.starts_with("not checked"), "{f:?}");
            }
            _ => assert_eq!(f.result, Verdict::Ok, "{f:?}"),
        }
    }
    for crd in ["memberclusters", "federatednetworks", "federatedservices"] {
        finding(&findings, "hub-crd", &format!("crd/{crd}.fednet.io"));
    }
    finding(
        &findings,
        "operator-lease",
        &format!("lease/{}/fednet-operator", env.hub_ns),
    );
    for m in MEMBERS {
        let subject = format!("member/{m}");
        for check in [
            "member-condition",
            "member-kubeconfig",
            "member-reachable",
            "member-credentials-expiry",
            "member-permissions",
            "member-backend-crds",
        ] {
            finding(&findings, check, &subject);
        }
        assert!(
            finding(&findings, "member-permissions", &subject)
                .detail
                .contains("all 56 verb/resource pairs")
        );
    }

    // Text on a pipe: the table, without colour codes.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .arg("--kubeconfig")
        .arg(env.planes.clusters()[0].kubeconfig_path())
        .args(["doctor", "--lease-namespace", &env.hub_ns])
        .env_remove("NO_COLOR")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("CHECK") && text.contains("RESULT") && text.contains("FIX"));
    assert!(!text.contains('\x1b'), "{text}");

    // A Lease not renewed for longer than it lasts: the operator is not running.
    lease(&env, Duration::from_secs(120)).await;
    let (code, findings) = doctor(&env, &[]).await;
    assert_eq!(code, 1);
    let subject = format!("lease/{}/fednet-operator", env.hub_ns);
    assert_eq!(
        failures(&findings),
        [pair("operator-lease", &subject)].into()
    );
    let f = finding(&findings, "operator-lease", &subject);
    assert!(
        f.fix
            .contains("the operator is not running or cannot renew")
    );
    lease(&env, Duration::ZERO).await;

    // (a) A Skupper CRD deleted from east: a failure naming the CRD and the member.
    Api::<CustomResourceDefinition>::all(env.member("east").client())
        .delete("links.skupper.io", &DeleteParams::default())
        .await
        .unwrap();
    let (code, findings) = doctor_until(&env, "links.skupper.io missing in east", |f| {
        !failures(f).is_empty()
    })
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        failures(&findings),
        [pair("member-backend-crds", "member/east")].into()
    );
    let f = finding(&findings, "member-backend-crds", "member/east");
    assert_eq!(f.detail, "CRD missing in east: links.skupper.io");

    // (b) west's API server paused: west alone is unreachable, within the timeout.
    env.member("west").pause().unwrap();
    let started = Instant::now();
    let (code, findings) = doctor(&env, &["--timeout", "2"]).await;
    env.member("west").resume().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(code, 1);
    assert_eq!(
        failures(&findings),
        [
            pair("member-backend-crds", "member/east"),
            pair("member-reachable", "member/west")
        ]
        .into()
    );
    let f = finding(&findings, "member-reachable", "member/west");
    assert!(f.detail.contains("no answer within 2s"), "{f:?}");
    let (_, findings) = doctor(&env, &[]).await;
    assert_eq!(
        finding(&findings, "member-reachable", "member/west").result,
        Verdict::Ok
    );

    // (c) central's kubeconfig for an identity without `delete` on links: named exactly.
    limited_identity(&env, "central").await;
    let (code, findings) = doctor(&env, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(
        failures(&findings),
        [
            pair("member-backend-crds", "member/east"),
            pair("member-permissions", "member/central")
        ]
        .into()
    );
    let f = finding(&findings, "member-permissions", "member/central");
    assert_eq!(f.detail, format!("denied: delete links.skupper.io in {ns}"));
    assert!(f.fix.contains("fedctl join MEMBER --namespace"), "{f:?}");

    // A fednet CRD missing on the hub.
    Api::<CustomResourceDefinition>::all(env.hub.clone())
        .delete("federatedservices.fednet.io", &DeleteParams::default())
        .await
        .unwrap();
    let (code, findings) = doctor_until(&env, "federatedservices CRD gone", |f| {
        failures(f).contains(&pair("hub-crd", "crd/federatedservices.fednet.io"))
    })
    .await;
    assert_eq!(code, 1);
    let f = finding(&findings, "hub-crd", "crd/federatedservices.fednet.io");
    assert_eq!(f.detail, "not installed on the hub");
    assert_eq!(f.fix, CRD_FIX);
}

#[tokio::test]
async fn doctor_exits_2_when_it_cannot_read_the_hub() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .args(["--kubeconfig", "/nonexistent/kubeconfig", "doctor"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("doctor could not run"), "{err}");
}

//! What the demo prints.

use federation_core::api::{FederatedNetwork, FederatedService};
use federation_tests::operator_env::metrics::Sample;
use federation_tests::operator_env::{FedEnv, HUB_NAMESPACE, SERVICE};
use kube::Api;
use std::time::Duration;

/// What runs and what is simulated, before anything starts.
pub fn banner(members: usize) {
    println!("fednet demo: a hub and {members} member clusters on this machine\n");
    println!("What is real: every cluster is a real kube-apiserver (v1.37) with etcd, so every");
    println!("object below passed real validation (OpenAPI schemas, CEL rules, RBAC: the operator");
    println!(
        "reaches members as a ServiceAccount with the namespaced Roles of deploy/member-rbac/)."
    );
    println!("The operator is the real binary (target/debug/federation-operator).");
    println!(
        "What is simulated: no nodes, so no pods run and no traffic flows. Skupper's controller"
    );
    println!("cannot run without pods; a test double (federation-testkit doubles::skupper) stands");
    println!("in for it and writes only what Skupper's controller would: object status (sites");
    println!("Ready, links Operational, listeners Matched) and the Secrets it issues for");
    println!("Certificates.\n");
}

/// The banner of `--sdwan headscale`.
pub fn banner_sdwan(members: usize) {
    println!(
        "fednet demo: a hub and {members} member clusters, connected by a Headscale overlay\n"
    );
    println!(
        "What is real: every cluster is a real kube-apiserver (v1.37) with etcd; the operator is"
    );
    println!(
        "the real binary; the SD-WAN controller is a real Headscale v0.29.2 on loopback and each"
    );
    println!(
        "member's edge is a real Tailscale client (tailscaled, userspace networking) announcing"
    );
    println!(
        "the member's pod and service CIDRs. fednet approves those routes and writes the overlay"
    );
    println!("and the shared service as ACL rules in its own block of the administrators' policy.");
    println!("What is not here: no pods and no traffic through the overlay (no DERP relay runs);");
    println!("'Up' is what Headscale reports (edge online, routes approved and served).\n");
}

/// What `--sdwan headscale` simulates, and how to run it for real.
pub fn simulated_and_real_sdwan() {
    println!("\n== Simulated here, and how to run on a real tailnet ==");
    println!(
        "  Simulated: nothing on the controller side; the clusters have no nodes and no traffic"
    );
    println!("  crosses the overlay. On a real setup:");
    println!("   1. run Headscale with `policy.mode: database` and an ACL policy of your own;");
    println!("   2. in each member, run a Tailscale subnet router announcing the member's CIDRs");
    println!("      (`tailscale up --advertise-routes=...`) and name it in the MemberCluster's");
    println!("      spec.network.sdwanEdge, with spec.network.podCidrs/serviceCidrs;");
    println!("   3. put a Headscale API key in a Secret the operator can read (its kubeconfig");
    println!("      namespace) and apply a FederatedNetwork with backend.type SdWan (see README).");
}

/// Objects per cluster, network status, service status.
pub async fn converged_state(env: &FedEnv, net: &FederatedNetwork) -> anyhow::Result<()> {
    println!(
        "== Objects the operator created (label fednet.io/network={HUB_NAMESPACE}.{}) ==",
        net.metadata.name.as_deref().unwrap_or_default()
    );
    for member in env.members() {
        println!("{member}:");
        for (kind, ns, name) in env.owned_objects(member).await? {
            println!("  {kind:<12} {ns}/{name}");
        }
    }

    println!(
        "\n== FederatedNetwork {HUB_NAMESPACE}/{} ==",
        net.metadata.name.as_deref().unwrap_or_default()
    );
    let status = net.status.clone().unwrap_or_default();
    for c in &status.conditions {
        println!(
            "  {:<12} {:<6} {:<18} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    println!("  members:");
    for m in &status.members {
        println!(
            "    {:<10} {:?}{}",
            m.name,
            m.phase,
            m.message
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        );
    }
    println!(
        "  links ({}):",
        status.links_summary.as_deref().unwrap_or("-")
    );
    for l in &status.links {
        println!(
            "    {} -> {}  namespace {}  cost {}  {:?}{}",
            l.dialer,
            l.acceptor,
            l.namespace,
            l.cost,
            l.phase,
            l.message
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        );
    }

    let svc = Api::<FederatedService>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .get(SERVICE)
        .await?;
    println!("\n== FederatedService {HUB_NAMESPACE}/{SERVICE} ==");
    let status = svc.status.unwrap_or_default();
    for c in &status.conditions {
        println!(
            "  {:<12} {:<6} {:<18} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    println!(
        "  consumers ({}):",
        status.consumers_summary.as_deref().unwrap_or("-")
    );
    for c in &status.consumers {
        println!(
            "    {:<10} ready={}{}",
            c.member,
            c.ready,
            c.message
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn hub_requests(samples: &[Sample], lease: bool) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == "fednet_hub_requests_total")
        .filter(|s| (s.label("resource") == Some("leases")) == lease)
        .map(|s| s.value)
        .sum()
}

fn hub_writes(samples: &[Sample]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == "fednet_hub_requests_total")
        .filter(|s| s.label("resource") != Some("leases"))
        .filter(|s| s.label("method").is_some_and(|m| m != "GET"))
        .map(|s| s.value)
        .sum()
}

fn member_objects(samples: &[Sample]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == "fednet_backend_objects_total")
        .map(|s| s.value)
        .sum()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// Time to Ready and what converging cost.
pub fn convergence_figures(
    members: usize,
    to_ready: Duration,
    hub_before: &[Sample],
    hub_after: &[Sample],
    member_requests: f64,
    rss_kib: Option<u64>,
) {
    println!("\n== Figures ==");
    println!(
        "  time from applying the network to Ready ({members} members): {:.1} s",
        to_ready.as_secs_f64()
    );
    println!(
        "  API requests to converge: hub {} (of which writes {}; Lease renewals {} more), members {} (objects written {})",
        hub_requests(hub_after, false) - hub_requests(hub_before, false),
        hub_writes(hub_after) - hub_writes(hub_before),
        hub_requests(hub_after, true) - hub_requests(hub_before, true),
        member_requests,
        member_objects(hub_after) - member_objects(hub_before),
    );
    println!("  operator resident memory (VmRSS): {}", mib(rss_kib));
}

/// Requests per minute at rest.
pub fn rest_figures(
    window: Duration,
    hub_before: &[Sample],
    hub_after: &[Sample],
    member_requests: f64,
    rss_kib: Option<u64>,
) {
    let per_minute = |n: f64| n * 60.0 / window.as_secs_f64();
    println!(
        "  at rest over {} s: hub {:.1} requests/min (writes {:.1}/min; Lease {:.1}/min more), members {:.1} requests/min, objects written {}",
        window.as_secs(),
        per_minute(hub_requests(hub_after, false) - hub_requests(hub_before, false)),
        per_minute(hub_writes(hub_after) - hub_writes(hub_before)),
        per_minute(hub_requests(hub_after, true) - hub_requests(hub_before, true)),
        per_minute(member_requests),
        member_objects(hub_after) - member_objects(hub_before),
    );
    println!(
        "  operator resident memory at rest (VmRSS): {}",
        mib(rss_kib)
    );
}

/// How to do this with real clusters.
pub fn simulated_and_real() {
    println!("\n== Simulated here, and how to run on real clusters ==");
    println!(
        "  Simulated: the Skupper controller (a double writing status and Secrets only); no pods,"
    );
    println!(
        "  no routers, no traffic. The fednet objects, their validation and the operator are real."
    );
    println!("  On real clusters:");
    println!("   1. install Skupper v2 in each member and create the network's namespaces there;");
    println!(
        "   2. on the hub: helm install fednet deploy/helm/fednet-operator -n fednet-system --create-namespace"
    );
    println!("      (installs the CRDs, RBAC and the operator; image from deploy/Dockerfile);");
    println!(
        "   3. per member: fedctl --context HUB join NAME --member-context CTX --namespace NS --label env=prod"
    );
    println!(
        "      (a least-privilege ServiceAccount, its token, the hub Secret and MemberCluster);"
    );
    println!(
        "   4. apply a FederatedNetwork and FederatedServices (examples/three-clusters/network.yaml)"
    );
    println!("      and watch: fedctl status NETWORK -n fednet-system --watch\n");
}

//! `--backend submariner`: a hub that is also the broker and three members, the real
//! Submariner operator (v0.21.1) in every cluster and the real Lighthouse agent (v0.20.0) in
//! every member, the fednet operator binary, a full-mesh Submariner network and a service
//! exported from one member. Gateways, DaemonSet status and the workload are stood in for (no
//! nodes, so no tunnel carries packets). The environment is the Submariner tests' one
//! (`federation_tests::submariner_env`). Needs root (each upstream process runs in its own
//! mount namespace) and the Submariner binaries (`hack/submariner/assets.sh`, built on first
//! use, about six minutes).

use federation_tests::skupper_env::is_ready;
use federation_tests::submariner_env::{MEMBERS, SubmarinerEnv, resource};
use serde_json::json;
use std::time::{Duration, Instant};

/// Runs the Submariner demo; returns when the network and its service are Ready.
pub async fn demo(timeout: Duration) -> anyhow::Result<()> {
    println!("fednet demo, Submariner: a hub that is also the broker, and 3 members\n");
    let started = Instant::now();
    let env = SubmarinerEnv::start().await;
    println!(
        "started 4 control planes, a Submariner operator in each and the node stand-ins in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let operator = env.start_fednet_operator().await?;
    let ns = "shop";
    env.run_orders("east", ns).await;
    for m in ["central", "west"] {
        env.cluster(m).create_namespace(ns).await?;
    }
    let applied = Instant::now();
    env.create_network("mesh", &MEMBERS, ns, json!({})).await;
    env.share_orders("mesh", ns, "east", None).await;
    let imports = resource(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceImport",
        "serviceimports",
    );
    let waited = env
        .wait_for("Ready with every consumer", timeout, async || {
            let net = env.network("mesh").await.filter(is_ready)?;
            let svc = env.services().get("mesh-orders").await.ok()?;
            (svc.status.as_ref()?.consumers_summary.as_deref() == Some("3/3")).then_some((net, svc))
        })
        .await;
    let (net, svc) = match waited {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "fednet operator log (last lines):\n{}",
                operator.log_tail(30)
            );
            return Err(e.context(format!("logs of every process in {}", env.dir.display())));
        }
    };
    println!(
        "network mesh Ready and orders imported by 3 consumers in {:.1} s\n",
        applied.elapsed().as_secs_f64()
    );
    let status = net.status.unwrap_or_default();
    for m in &status.members {
        let cr = env.submariner(&m.name).await;
        let id = cr
            .as_ref()
            .map(|c| c.data["status"]["clusterID"].to_string())
            .unwrap_or_default();
        let found = env.names(&m.name, &imports, ns).await;
        println!(
            "  {:<8} {:?}; operator reconciled clusterID {id}; ServiceImports in {ns}: {found:?}",
            m.name, m.phase
        );
    }
    for l in &status.links {
        println!("  link {} <-> {}: {:?}", l.dialer, l.acceptor, l.phase);
    }
    if let Some(s) = svc.status {
        println!(
            "  service orders: consumers {}",
            s.consumers_summary.unwrap_or_default()
        );
    }
    println!(
        "\nreal: kube-apiservers, etcd, the Submariner operators, the Lighthouse agents (they carried\n\
         the export through the broker), the fednet operator. Stood in for: Gateway objects and the\n\
         gateways' Cluster/Endpoint on the broker, DaemonSet/Deployment status, the workload's\n\
         Service and EndpointSlice. No dataplane: nothing here proves packets would flow."
    );
    drop(operator);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

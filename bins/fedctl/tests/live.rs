//! `fedctl status` and `fedctl topology` against a real hub: a hub-and-spoke Skupper network
//! converged on four real API servers (hub, central, east, west) by the controller functions
//! and the Skupper controller double (`federation_tests::skupper_env`), then read by the
//! library's code paths and by the `fedctl` binary itself through the hub's kubeconfig file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use fedctl::graph::{EdgePhase, Graph};
use fedctl::hub;
use fedctl::render::{Format, render};
use fedctl::report::StatusReport;
use fedctl::status_view::network_text;
use fedctl::watch::{Scope, Update, View, watch};
use federation_core::api::{FederatedNetworkStatus, LinkPhase};
use federation_tests::skupper_env::{CONVERGE_WITHIN, MEMBERS, SkupperEnv};
use serde_json::json;
use std::process::Output;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};

const SPOKES: [&str; 2] = ["east", "west"];

/// Runs the `fedctl` binary against the hub's kubeconfig file.
async fn fedctl(env: &SkupperEnv, args: &[&str]) -> Output {
    let kubeconfig = env.planes.clusters()[0].kubeconfig_path();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .output()
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "fedctl failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Converges `shop` (hub `central`, spokes `east` and `west`, spoke cost 2) with service
/// `orders` exported from `east`, until every member consumes it.
async fn converged_shop(env: &SkupperEnv) {
    let ns = env.workload_namespace().await;
    let spec = json!({"backend": {"type": "Skupper"}, "members": {"names": MEMBERS},
        "namespaces": [ns],
        "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": ["central"], "spokeCost": 2}}});
    env.create_network("shop", spec).await;
    env.share_orders("shop", &ns, "east").await;
    env.converge("shop").await;
    env.drive_until(
        "shop",
        "every member consumes orders",
        CONVERGE_WITHIN,
        async || {
            let status = env.service("shop").await.status?;
            (status.consumers.len() == MEMBERS.len() && status.consumers.iter().all(|c| c.ready))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_topology_show_a_converged_network_from_the_hub() {
    let env = SkupperEnv::start().await;
    converged_shop(&env).await;
    let net = env.network("shop").await.unwrap();

    // The library's read of the hub, rendered as the binary renders it.
    let report = hub::network_report(&env.hub, &env.hub_ns, "shop")
        .await
        .unwrap();
    assert_eq!(Some(&report.status), net.status.as_ref());
    let text = network_text(&report, false);
    for m in MEMBERS {
        let role = if m == "central" { "hub" } else { "spoke" };
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{m} ")) && l.contains(role))
            .unwrap_or_else(|| panic!("no member row for {m}:\n{text}"));
        // Phase, reachability, the server version and Skupper's API, from the MemberCluster.
        for cell in ["Ready", "True", "v1.37.2", "skupper.io/v2alpha1"] {
            assert!(row.contains(cell), "{m}: {row}");
        }
    }
    assert!(text.contains("LINKS (2/2 up)"), "{text}");
    for spoke in SPOKES {
        let link = text
            .lines()
            .find(|l| l.starts_with(spoke) && l.contains("->"))
            .unwrap_or_else(|| panic!("no link row for {spoke}:\n{text}"));
        let cells: Vec<&str> = link.split_whitespace().collect();
        assert_eq!(&cells[..3], [spoke, "->", "central"], "{link}");
        assert_eq!(&cells[4..], ["2", "Up"], "{link}");
    }
    let target = format!("{}/orders", report.services[0].namespace);
    for m in MEMBERS {
        let want = ["shop-orders", target.as_str(), "east", m, "True"];
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == want),
            "no consumer row for {m}:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["Ready", "True", "Converged"])),
        "{text}"
    );

    // The picture names every member, and every link dialer -> acceptor in green with its cost.
    let graph = Graph::from_report(&report);
    assert_eq!(graph.nodes.len(), 3);
    assert!(
        graph
            .edges
            .iter()
            .all(|e| e.phase == EdgePhase::Up && e.cost == 2)
    );
    let dot = render(&graph, Format::Dot);
    for spoke in SPOKES {
        assert!(
            dot.contains(&format!(
                "\"{spoke}\" -> \"central\" [label=\"cost 2 (Up)\", color=\"#2e7d32\""
            )),
            "{dot}"
        );
    }
    assert!(dot.contains("\"central\" [shape=doubleoctagon"));

    // The binary, through the hub's kubeconfig file: -o json parses back into the status.
    let out = fedctl(&env, &["status", "shop", "-n", &env.hub_ns, "-o", "json"]).await;
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let status: FederatedNetworkStatus = serde_json::from_value(value["status"].clone()).unwrap();
    assert_eq!(Some(status), env.network("shop").await.unwrap().status);
    let parsed: StatusReport = serde_json::from_value(value).unwrap();
    assert_eq!(parsed.services[0].status.consumers.len(), MEMBERS.len());

    // Text from the binary: the same tables, no colour codes on a pipe.
    let text = stdout(&fedctl(&env, &["status", "shop", "-n", &env.hub_ns]).await);
    assert!(!text.contains('\x1b'));
    assert!(
        text.contains("LINKS (2/2 up)") && text.contains("SERVICES"),
        "{text}"
    );

    // The summary: one line for the one network.
    let summary = stdout(&fedctl(&env, &["status", "-n", &env.hub_ns]).await);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 2, "{summary}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "shop", "Skupper", "HubSpoke", "True", cells[4], "3/3", "2/2", "1/1"
        ],
        "{summary}"
    );
    let all = stdout(&fedctl(&env, &["status", "-A"]).await);
    assert!(
        all.lines()
            .any(|l| l.starts_with(&env.hub_ns) && l.contains("shop")),
        "{all}"
    );

    // A wrong name fails, and the error lists the networks that exist.
    let out = fedctl(&env, &["status", "shp", "-n", &env.hub_ns]).await;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("network \"shp\" not found") && err.contains("networks there: shop"),
        "{err}"
    );
    let out = fedctl(&env, &["topology", "shop", "-n", "elsewhere"]).await;
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("in other namespaces: {}/shop", env.hub_ns)),
        "{err}"
    );

    // The SVG from the binary: every member and both links, green.
    let svg = stdout(&fedctl(&env, &["topology", "shop", "-n", &env.hub_ns, "-F", "svg"]).await);
    for m in MEMBERS {
        assert!(svg.contains(&format!("<title>{m} (")), "{m}");
    }
    for spoke in SPOKES {
        assert!(svg.contains(&format!(
            "<title>{spoke} -&gt; central: cost 2 (Up)</title>"
        )));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_shows_each_change_of_the_network_and_its_services() {
    let env = SkupperEnv::start().await;
    converged_shop(&env).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let scope = Scope::Network {
        namespace: env.hub_ns.clone(),
        name: "shop".into(),
    };
    let watcher = tokio::spawn(watch(env.hub.clone(), scope, tx));
    let next = async |rx: &mut tokio::sync::mpsc::Receiver<Update>| -> StatusReport {
        loop {
            let update = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("a view within 30 s")
                .expect("the watch runs");
            match update {
                Update::View(View::Network(r)) => return *r,
                // A watch that drops is retried; the next view will come.
                Update::Trouble(message) => eprintln!("watch trouble: {message}"),
                Update::View(other) => panic!("unexpected {other:?}"),
            }
        }
    };
    let first = next(&mut rx).await;
    assert_eq!(
        Some(&first.status),
        env.network("shop").await.unwrap().status.as_ref()
    );
    assert_eq!(first.services.len(), 1);

    // A cost change: the operator's passes rewrite the links' status; the watch shows them.
    env.patch_network("shop", json!({"topology": {"hubSpoke": {"spokeCost": 7}}}))
        .await;
    env.converge("shop").await;
    let mut seen = first;
    while !(seen
        .status
        .links
        .iter()
        .all(|l| l.cost == 7 && l.phase == LinkPhase::Up)
        && seen.is_current())
    {
        seen = next(&mut rx).await;
    }

    // The service goes: the next view has none.
    kube::Api::<federation_core::api::FederatedService>::namespaced(env.hub.clone(), &env.hub_ns)
        .delete("shop-orders", &Default::default())
        .await
        .unwrap();
    while !seen.services.is_empty() {
        seen = next(&mut rx).await;
    }
    watcher.abort();

    // The binary, on a pipe: one JSON document per line, a new one for each change.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .arg("--kubeconfig")
        .arg(env.planes.clusters()[0].kubeconfig_path())
        .args(["status", "shop", "-n", &env.hub_ns, "-w", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || -> StatusReport {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a line within 30 s")
            .unwrap()
            .expect("fedctl keeps watching");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next_line().await.status, seen.status);
    env.patch_network("shop", json!({"topology": {"hubSpoke": {"spokeCost": 9}}}))
        .await;
    env.converge("shop").await;
    while !next_line().await.status.links.iter().all(|l| l.cost == 9) {}
    child.kill().await.unwrap();
}

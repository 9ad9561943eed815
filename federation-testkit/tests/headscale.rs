//! The kit's Headscale: starts with TLS from its own CA, runs real Tailscale clients that come
//! online, survives a restart on the same data, and leaves no process behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use federation_testkit::{Headscale, process_exists};
use serde_json::Value;

async fn nodes(h: &Headscale) -> Vec<Value> {
    serde_json::from_str(&h.cli(&["nodes", "list", "-o", "json"]).await.unwrap()).unwrap()
}

#[tokio::test]
async fn clients_come_online_survive_a_restart_and_nothing_is_left_behind() {
    let h = Headscale::start().await.unwrap();
    assert!(h.url().starts_with("https://127.0.0.1:"));
    assert!(h.ca_pem().contains("BEGIN CERTIFICATE"));
    h.create_user("edges").await.unwrap();
    h.join("edges", "edge-a", &["10.1.0.0/16".to_owned()])
        .await
        .unwrap();
    h.create_node("edges", "edge-b").await.unwrap();
    let listed = nodes(&h).await;
    let online = |name: &str, list: &[Value]| {
        list.iter()
            .find(|n| n["given_name"] == name)
            .map(|n| n["online"] == true)
            .unwrap()
    };
    assert!(online("edge-a", &listed), "{listed:#?}");
    assert!(!online("edge-b", &listed), "a client-less node is offline");

    // A crash and a restart on the same port and data: the nodes are still there.
    h.kill().await.unwrap();
    h.restart().await.unwrap();
    let listed = nodes(&h).await;
    assert_eq!(listed.len(), 2);

    let pids: Vec<u32> = h.processes().iter().filter_map(|p| p.pid).collect();
    assert_eq!(pids.len(), 2, "the server and one client");
    drop(h);
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} reaped on drop");
    }
}

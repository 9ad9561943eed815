//! `fedctl plan` on the SD-WAN example shows what the backend writes to the controller.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn plan_of_the_headscale_example_lists_the_controller_objects() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/sdwan-headscale"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fedctl"))
        .args(["plan", "-f", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("backend SdWan, topology HubSpoke"), "{text}");
    assert!(
        text.contains("controller/https://headscale.example.com:"),
        "{text}"
    );
    assert!(
        text.contains("AclPolicy    fednet-system/shop:policy"),
        "{text}"
    );
    for edge in ["edge-central", "edge-east", "edge-west"] {
        assert!(
            text.contains(&format!("RouteApproval fednet-system/shop:{edge}")),
            "{text}"
        );
    }
}

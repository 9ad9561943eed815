//! The CRDs committed under `deploy/crds/` must be exactly what the types generate.

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds/fednet.io.yaml");
    let on_disk =
        std::fs::read_to_string(&committed).expect("deploy/crds/fednet.io.yaml is committed");
    let generated = federation_core::api::crds_yaml().expect("CRDs serialize");
    assert!(
        on_disk == generated,
        "deploy/crds/fednet.io.yaml is stale: run `make crds` (cargo run -p fedctl -- crd > deploy/crds/fednet.io.yaml)"
    );
}

#[test]
fn every_kind_has_status_and_cel_rules() {
    for crd in federation_core::api::crds() {
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{}",
            crd.spec.names.kind
        );
        let schema = serde_json::to_string(&version.schema).unwrap();
        assert!(
            schema.contains("x-kubernetes-validations"),
            "{} has CEL rules",
            crd.spec.names.kind
        );
    }
}

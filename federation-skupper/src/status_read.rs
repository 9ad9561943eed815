//! Reading Skupper objects' status fields out of observed JSON.

use federation_core::backend::{Observed, ObservedObject};
use serde_json::Value;

/// Whether the object has condition `type_` with status `True`.
pub fn condition_true(object: &Value, type_: &str) -> bool {
    conditions(object).any(|c| c["type"] == type_ && c["status"] == "True")
}

/// The message of the first condition that is not `True`, or the object's status message.
pub fn problem(object: &Value) -> Option<String> {
    conditions(object)
        .find(|c| c["status"] != "True")
        .map(|c| {
            format!(
                "{}: {}",
                c["type"].as_str().unwrap_or("?"),
                c["message"].as_str().unwrap_or("")
            )
        })
        .or_else(|| {
            object["status"]["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
        })
}

fn conditions(object: &Value) -> impl Iterator<Item = &Value> {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
}

/// Whether Skupper reports the object failed (`status.status` is `Error`).
pub fn is_error(object: &Value) -> bool {
    object["status"]["status"] == "Error"
}

/// An object by kind, namespace and name.
pub fn find<'a>(
    observed: &'a Observed,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<&'a ObservedObject> {
    observed.objects.iter().find(|o| {
        o.key.kind == kind && o.key.namespace.as_deref() == Some(namespace) && o.key.name == name
    })
}

/// A site's router endpoints that peers may dial (`inter-router` and `edge`), grouped by
/// router group in a stable order. Skupper's own token generator uses the same selection.
pub fn dialable_endpoint_groups(site: &Value) -> Vec<Vec<Value>> {
    let mut groups: std::collections::BTreeMap<String, Vec<Value>> =
        std::collections::BTreeMap::new();
    for e in site["status"]["endpoints"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default();
        if name == "inter-router" || name == "edge" {
            let group = e["group"].as_str().unwrap_or_default().to_owned();
            groups.entry(group).or_default().push(e.clone());
        }
    }
    groups.into_values().collect()
}

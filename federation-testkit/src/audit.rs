//! API server audit logs: what each request was, who sent it and when the server received it.
//!
//! Enabled per kit with [`ControlPlanesBuilder::audit_writes`](crate::ControlPlanesBuilder::audit_writes):
//! every API server then records each *write* request (`create`, `update`, `patch`, `delete`,
//! `deletecollection`) at the `Metadata` level (no bodies) as JSON lines, in every stage,
//! including `RequestReceived`, so a request the server received but never answered is there
//! too. Reads are not recorded: they are many and tests about who wrote what do not need them.
//! [`ControlPlanesBuilder::audit_all_requests`](crate::ControlPlanesBuilder::audit_all_requests)
//! records every request instead, reads and watches included, without the `RequestReceived`
//! stage (for counting requests by verb and client, as `make bench-e2e` does).
//! [`Cluster::audit_events`](crate::Cluster::audit_events) reads the log back.

use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The audit policy the kit installs: write verbs at `Metadata`, nothing else.
pub(crate) const WRITES_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
"#;

/// The audit policy of [`audit_all_requests`](crate::ControlPlanesBuilder::audit_all_requests):
/// every request at `Metadata`, without the `RequestReceived` stage.
pub(crate) const ALL_REQUESTS_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
"#;

/// One audit event (`audit.k8s.io/v1` `Event`), the fields tests use.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditEvent {
    /// Unique per request; the stages of one request share it.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`.
    pub stage: String,
    /// The Kubernetes verb: `create`, `update`, `patch`, `delete`, ...
    pub verb: String,
    /// The request path and query.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// Who sent it, as authenticated.
    pub user: AuditUser,
    /// The request's `User-Agent` header, empty when it had none.
    #[serde(default)]
    pub user_agent: String,
    /// The object addressed, if any.
    #[serde(default)]
    pub object_ref: Option<AuditObjectRef>,
    /// The answer's status (absent in the `RequestReceived` stage).
    #[serde(default)]
    pub response_status: Option<AuditStatus>,
    /// When the server received the request (server clock, microseconds).
    pub request_received_timestamp: MicroTime,
    /// When this stage was reached.
    pub stage_timestamp: MicroTime,
}

/// The authenticated user of an [`AuditEvent`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct AuditUser {
    /// e.g. `admin` or `system:serviceaccount:<namespace>:<name>`.
    #[serde(default)]
    pub username: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The object an [`AuditEvent`] is about.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditObjectRef {
    /// Plural resource, e.g. `listeners`.
    #[serde(default)]
    pub resource: Option<String>,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name (absent for a create by POST to the collection).
    #[serde(default)]
    pub name: Option<String>,
    /// API group (empty for the core group).
    #[serde(default)]
    pub api_group: Option<String>,
    /// Subresource, e.g. `status`.
    #[serde(default)]
    pub subresource: Option<String>,
}

/// The response status of an [`AuditEvent`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct AuditStatus {
    /// HTTP status code.
    #[serde(default)]
    pub code: Option<i32>,
}

/// Parses an audit log. A last line without its newline is being written: it is left out.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<AuditEvent>> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|source| Error::AuditLog {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_leaves_out_a_torn_last_line() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/apis/skupper.io/v2alpha1/namespaces/shop/listeners/orders-http?fieldManager=fednet","verb":"patch","user":{"username":"system:serviceaccount:fednet-system:fednet-operator","groups":["system:serviceaccounts"]},"sourceIPs":["127.0.0.1"],"userAgent":"fednet-operator/0.1.0 (replica-a)","objectRef":{"resource":"listeners","namespace":"shop","name":"orders-http","apiGroup":"skupper.io","apiVersion":"v2alpha1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z","stageTimestamp":"2026-01-02T03:04:05.130000Z"}"#;
        let text = format!("{line}\n{}", &line[..40]);
        let events = parse(Path::new("audit.log"), &text).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.verb, "patch");
        assert_eq!(e.user_agent, "fednet-operator/0.1.0 (replica-a)");
        assert_eq!(
            e.object_ref.as_ref().and_then(|o| o.name.as_deref()),
            Some("orders-http")
        );
        assert_eq!(e.response_status.as_ref().and_then(|s| s.code), Some(200));
        assert_eq!(
            e.request_received_timestamp.0.to_string(),
            "2026-01-02T03:04:05.123456Z"
        );
    }
}

//! Counting the operator's requests in an API server's audit log (every request recorded,
//! see `ControlPlanesBuilder::audit_all_requests`), by kind of request.

use federation_testkit::AuditEvent;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeSet;
use std::path::Path;

/// The operator's clients all send `fednet-operator/<version> (<identity>)`.
pub const OPERATOR_USER_AGENT: &str = "fednet-operator/";

/// Requests of one client to one API server within a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// `get` and `list` of resources (Lease reads excluded).
    pub reads: u64,
    /// `watch` requests started (each re-established watch counts once).
    pub watches: u64,
    /// Requests outside the resource API (`GET /version`: the member probe).
    pub non_resource: u64,
    /// `create`, `update`, `patch`, `delete`, `deletecollection` (Lease writes excluded).
    pub writes: u64,
    /// Reads and writes of `leases` (leader election).
    pub lease: u64,
}

impl Requests {
    /// Every request counted.
    pub fn total(&self) -> u64 {
        self.reads + self.watches + self.non_resource + self.writes + self.lease
    }

    /// Adds another count.
    pub fn add(&mut self, other: &Requests) {
        self.reads += other.reads;
        self.watches += other.watches;
        self.non_resource += other.non_resource;
        self.writes += other.writes;
        self.lease += other.lease;
    }
}

/// Counts the requests whose user agent starts with `user_agent` and that the server
/// received in `[from, to)`, each request once (its stages share an audit id).
pub fn count(events: &[AuditEvent], user_agent: &str, from: Timestamp, to: Timestamp) -> Requests {
    let mut seen = BTreeSet::new();
    let mut out = Requests::default();
    for e in events {
        let received = e.request_received_timestamp.0;
        if !e.user_agent.starts_with(user_agent) || received < from || received >= to {
            continue;
        }
        if !seen.insert(e.audit_id.as_str()) {
            continue;
        }
        let resource = e.object_ref.as_ref().and_then(|o| o.resource.as_deref());
        match (resource, e.verb.as_str()) {
            (Some("leases"), _) => out.lease += 1,
            (None, _) => out.non_resource += 1,
            (Some(_), "watch") => out.watches += 1,
            (Some(_), "get" | "list") => out.reads += 1,
            (Some(_), _) => out.writes += 1,
        }
    }
    out
}

/// Reads an audit log written with every request recorded. A torn last line is left out.
pub fn read_log(path: &Path) -> anyhow::Result<Vec<AuditEvent>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{}: not an audit event: {e}", path.display()))
        })
        .collect()
}

/// Requests per minute over a window of `secs` seconds.
pub fn per_minute(n: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    n as f64 * 60.0 / secs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, verb: &str, resource: Option<&str>, agent: &str, at: &str) -> AuditEvent {
        let object_ref = resource.map_or(
            serde_json::Value::Null,
            |r| serde_json::json!({"resource": r, "namespace": "shop"}),
        );
        serde_json::from_value(serde_json::json!({
            "auditID": id, "stage": "ResponseComplete", "verb": verb,
            "requestURI": "/x", "user": {"username": "u"}, "userAgent": agent,
            "objectRef": object_ref,
            "requestReceivedTimestamp": at, "stageTimestamp": at
        }))
        .unwrap()
    }

    #[test]
    fn counts_each_request_of_the_operator_once_by_kind_within_the_window() {
        let op = "fednet-operator/0.1.0 (bench)";
        let events = vec![
            event("1", "list", Some("sites"), op, "2026-01-01T00:00:10Z"),
            // A watch's start and end share the id: one request.
            event("2", "watch", Some("sites"), op, "2026-01-01T00:00:11Z"),
            event("2", "watch", Some("sites"), op, "2026-01-01T00:00:11Z"),
            event("3", "patch", Some("listeners"), op, "2026-01-01T00:00:12Z"),
            event("4", "update", Some("leases"), op, "2026-01-01T00:00:13Z"),
            event("5", "get", None, op, "2026-01-01T00:00:14Z"),
            event("6", "get", Some("secrets"), op, "2026-01-01T00:00:15Z"),
            // Someone else, and the operator outside the window.
            event(
                "7",
                "list",
                Some("sites"),
                "kube-rs/1",
                "2026-01-01T00:00:16Z",
            ),
            event("8", "list", Some("sites"), op, "2026-01-01T00:01:00Z"),
            event("9", "list", Some("sites"), op, "2026-01-01T00:00:09Z"),
        ];
        let from: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let to: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let got = count(&events, OPERATOR_USER_AGENT, from, to);
        assert_eq!(
            got,
            Requests {
                reads: 2,
                watches: 1,
                non_resource: 1,
                writes: 1,
                lease: 1
            }
        );
        assert_eq!(got.total(), 6);
        assert!((per_minute(6, 30.0) - 12.0).abs() < 1e-9);
        assert!(per_minute(6, 0.0).abs() < 1e-9);
    }

    #[test]
    fn a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let line = serde_json::json!({
            "auditID": "1", "stage": "ResponseComplete", "verb": "get", "requestURI": "/version",
            "user": {"username": "u"}, "userAgent": "x",
            "requestReceivedTimestamp": "2026-01-01T00:00:10Z", "stageTimestamp": "2026-01-01T00:00:10Z"
        })
        .to_string();
        std::fs::write(&path, format!("{line}\n{}", &line[..20])).unwrap();
        assert_eq!(read_log(&path).unwrap().len(), 1);
        assert!(read_log(&dir.path().join("none")).unwrap().is_empty());
    }
}

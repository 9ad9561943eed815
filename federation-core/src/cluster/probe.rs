//! Reachability probes of member clusters.

use super::ClusterError;
use crate::api::{MemberClusterStatus, REACHABLE, condition_status, merge_condition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use std::time::Duration;

/// API groups whose presence tells which backends a member can host.
pub const BACKEND_API_GROUPS: &[&str] = &[
    "skupper.io",
    "submariner.io",
    "multicluster.x-k8s.io",
    "about.k8s.io",
];

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `gitVersion` of the member's API server.
    pub server_version: String,
    /// `group/version` of each backend API present, sorted.
    pub backend_apis: Vec<String>,
}

/// Asks the member for its version and API groups, within `timeout`.
pub async fn probe(
    member: &str,
    client: &Client,
    timeout: Duration,
) -> Result<Probe, ClusterError> {
    let unreachable = |reason: String| ClusterError::Unreachable {
        member: member.to_owned(),
        reason,
    };
    let work = async {
        let version = client
            .apiserver_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let groups = client
            .list_api_groups()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut backend_apis: Vec<String> = groups
            .groups
            .iter()
            .filter(|g| BACKEND_API_GROUPS.contains(&g.name.as_str()))
            .flat_map(|g| g.versions.iter().map(|v| v.group_version.clone()))
            .collect();
        backend_apis.sort();
        Ok(Probe {
            server_version: version.git_version,
            backend_apis,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| unreachable(format!("no answer within {timeout:?}")))?
}

/// The `MemberCluster` status after a probe. A failed probe keeps the last known version
/// and APIs (they are facts about the cluster, not about this probe) and turns Reachable
/// False with the reason.
pub fn member_status(
    previous: Option<&MemberClusterStatus>,
    generation: Option<i64>,
    result: &Result<Probe, ClusterError>,
    now: Timestamp,
) -> MemberClusterStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let (ok, reason, message) = match result {
        Ok(p) => {
            status.server_version = Some(p.server_version.clone());
            status.backend_apis = p.backend_apis.clone();
            (
                true,
                "Probed",
                format!("API server {} answered", p.server_version),
            )
        }
        Err(e @ ClusterError::Unreachable { .. }) => (false, "Unreachable", e.to_string()),
        Err(e @ ClusterError::Hub { .. }) => (false, "HubError", e.to_string()),
        Err(e) => (false, "InvalidCredentials", e.to_string()),
    };
    let condition = Condition {
        type_: REACHABLE.into(),
        status: condition_status(ok),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    };
    merge_condition(&mut status.conditions, condition, now);
    status
}

//! Reachability probes of member clusters.

use super::ClusterError;
use super::health::{
    REASON_CREDENTIALS_UNAVAILABLE, REASON_INVALID_CREDENTIALS, REASON_PROBE_FAILING,
    REASON_PROBED, REASON_UNREACHABLE,
};
use crate::api::{ConditionExt, MemberClusterStatus, REACHABLE, RESPONDING, merge_condition};
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
            .map_err(|e| unreachable(describe_client_error(&e)))?;
        let groups = client
            .list_api_groups()
            .await
            .map_err(|e| unreachable(describe_client_error(&e)))?;
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

/// What a failed probe says about the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The member's API server did not answer properly: counts toward the failure streak.
    Member,
    /// The kubeconfig could not be had (Secret or key missing, hub refused to give it) or is
    /// unusable: reported as such, says nothing about the member.
    Credentials,
    /// Reading the Secret from the hub failed for a reason that says nothing about it either
    /// (a hub timeout, a 5xx): nothing is learnt and nothing is recorded.
    Hub,
}

/// Sorts a probe error into [`FailureKind`]s.
pub fn failure_kind(error: &ClusterError) -> FailureKind {
    match error {
        ClusterError::Unreachable { .. } => FailureKind::Member,
        ClusterError::Hub { source, .. } => match source {
            // The operator may not read the Secret: a lasting credentials problem.
            kube::Error::Api(s) if matches!(s.code, 401 | 403 | 404) => FailureKind::Credentials,
            _ => FailureKind::Hub,
        },
        // The hub's watch has not listed the Secret: nothing is learnt about it.
        ClusterError::SecretNotSynced { .. } => FailureKind::Hub,
        ClusterError::MemberNotFound(_)
        | ClusterError::SecretNotFound { .. }
        | ClusterError::SecretKeyMissing { .. }
        | ClusterError::Kubeconfig { .. } => FailureKind::Credentials,
    }
}

/// A description of a client error that is the same every time the same failure happens, so
/// that a repeated failure produces byte-identical status: API errors by code and reason only
/// (their messages can carry request-specific text), other errors by their root cause (an
/// I/O or TLS error kind, without the addresses, ports and retry counts of the layers above).
pub fn describe_client_error(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        return if status.reason.is_empty() {
            format!("the API server answered {}", status.code)
        } else {
            format!("the API server answered {} {}", status.code, status.reason)
        };
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A stable status message for a probe error: names the member and the Secret, never their
/// content, and nothing that changes between two occurrences of the same failure.
fn stable_message(error: &ClusterError) -> String {
    match error {
        ClusterError::Hub { what, source } => {
            format!(
                "reading {what} from the hub: {}",
                describe_client_error(source)
            )
        }
        // The other variants carry only names, keys and fixed texts.
        other => other.to_string(),
    }
}

/// The `MemberCluster` status after a probe, or `None` when the status must stay exactly as
/// it is (the rules are those of [`member_unhealthy`](super::member_unhealthy)'s module).
///
/// `confirmed` says whether the member's failure streak crossed the threshold. An answer
/// records the version and backend APIs and turns `Reachable` True; a confirmed failure turns
/// it False (`Unreachable`); an unconfirmed one keeps an earlier `True` or `Unreachable`
/// verdict, and otherwise says `Unknown` (`ProbeFailing`); credential problems say `Unknown`
/// with their own reason. A failed probe keeps the last known version and APIs (facts about
/// the cluster, not about this probe). `Responding` follows each probe of the member itself
/// at once (`True` on an answer, `False` on a failure, threshold or not), so the status is
/// written once when a member falls silent and once when it answers again.
pub fn member_status(
    previous: Option<&MemberClusterStatus>,
    generation: Option<i64>,
    result: &Result<Probe, ClusterError>,
    confirmed: bool,
    now: Timestamp,
) -> Option<MemberClusterStatus> {
    let mut status = previous.cloned().unwrap_or_default();
    let responding = match result {
        Ok(_) => Some((
            "True",
            REASON_PROBED,
            "the member answered its last probe".to_owned(),
        )),
        Err(e) if failure_kind(e) == FailureKind::Member => {
            Some(("False", REASON_PROBE_FAILING, stable_message(e)))
        }
        Err(_) => None,
    };
    if let Some((value, reason, message)) = responding {
        set_condition(
            &mut status,
            RESPONDING,
            (value, reason, message),
            generation,
            now,
        );
    }
    let (value, reason, message) = match result {
        Ok(p) => {
            status.server_version = Some(p.server_version.clone());
            status.backend_apis = p.backend_apis.clone();
            (
                "True",
                REASON_PROBED,
                format!("API server {} answered", p.server_version),
            )
        }
        Err(e) => match failure_kind(e) {
            FailureKind::Hub => return None,
            FailureKind::Credentials => {
                let reason = if matches!(e, ClusterError::Kubeconfig { .. }) {
                    REASON_INVALID_CREDENTIALS
                } else {
                    REASON_CREDENTIALS_UNAVAILABLE
                };
                ("Unknown", reason, stable_message(e))
            }
            FailureKind::Member if confirmed => ("False", REASON_UNREACHABLE, stable_message(e)),
            FailureKind::Member => {
                let earlier = previous.and_then(|s| s.conditions.condition(REACHABLE));
                if earlier.is_some_and(|c| {
                    c.status == "True" || (c.status == "False" && c.reason == REASON_UNREACHABLE)
                }) {
                    // The verdict stands; only `Responding` may have changed.
                    return (previous != Some(&status)).then_some(status);
                }
                ("Unknown", REASON_PROBE_FAILING, stable_message(e))
            }
        },
    };
    status.observed_generation = generation;
    set_condition(
        &mut status,
        REACHABLE,
        (value, reason, message),
        generation,
        now,
    );
    Some(status)
}

/// Sets condition `type_` to (status, reason, message); its transition time moves only when
/// its status does.
fn set_condition(
    status: &mut MemberClusterStatus,
    type_: &str,
    (value, reason, message): (&str, &str, String),
    generation: Option<i64>,
    now: Timestamp,
) {
    let condition = Condition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    };
    merge_condition(&mut status.conditions, condition, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConditionExt;
    use crate::cluster::KubeconfigProblem;
    use kube::core::Status;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn answered() -> Result<Probe, ClusterError> {
        Ok(Probe {
            server_version: "v1.37.2".into(),
            backend_apis: vec!["skupper.io/v2alpha1".into()],
        })
    }

    fn timed_out() -> Result<Probe, ClusterError> {
        Err(ClusterError::Unreachable {
            member: "east".into(),
            reason: "no answer within 2s".into(),
        })
    }

    fn hub_error(code: u16, message: &str) -> Result<Probe, ClusterError> {
        Err(ClusterError::Hub {
            what: "Secret ns/east-kubeconfig".into(),
            source: kube::Error::Api(
                Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            ),
        })
    }

    fn reachable(status: &MemberClusterStatus) -> (String, String, String) {
        let c = status.conditions.condition(REACHABLE);
        c.map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            .unwrap_or_default()
    }

    /// Applies one probe the way the controller does: the new status when it differs.
    fn step(
        status: &mut Option<MemberClusterStatus>,
        result: &Result<Probe, ClusterError>,
        confirmed: bool,
        now: Timestamp,
    ) -> bool {
        let new = member_status(status.as_ref(), Some(1), result, confirmed, now);
        match new.filter(|n| Some(n) != status.as_ref()) {
            Some(n) => {
                *status = Some(n);
                true
            }
            None => false,
        }
    }

    #[test]
    fn failures_below_the_threshold_keep_the_status_then_it_turns_unreachable_once() {
        let mut status = None;
        assert!(step(&mut status, &answered(), false, at(0)));
        let healthy = status.clone().unwrap_or_default();
        assert_eq!(reachable(&healthy).0, "True");

        // The first failure says only that the member stopped responding; the verdict stands.
        assert!(step(&mut status, &timed_out(), false, at(1)));
        let silent = status.clone().unwrap_or_default();
        assert_eq!(reachable(&silent), reachable(&healthy));
        let responding = silent.conditions.condition(RESPONDING).cloned().unwrap();
        assert_eq!(
            (responding.status.as_str(), responding.reason.as_str()),
            ("False", REASON_PROBE_FAILING)
        );
        for t in 2..5 {
            assert!(!step(&mut status, &timed_out(), false, at(t)), "no write");
        }
        assert_eq!(status.as_ref(), Some(&silent));

        assert!(step(&mut status, &timed_out(), true, at(10)));
        let down = status.clone().unwrap_or_default();
        assert_eq!(
            reachable(&down),
            (
                "False".into(),
                REASON_UNREACHABLE.into(),
                "member east did not answer: no answer within 2s".into()
            )
        );
        assert_eq!(
            down.server_version.as_deref(),
            Some("v1.37.2"),
            "facts kept"
        );
        for t in 11..15 {
            assert!(!step(&mut status, &timed_out(), true, at(t)), "stable");
            // An operator restarted with an empty streak keeps the verdict too.
            assert!(!step(&mut status, &timed_out(), false, at(t)));
        }

        assert!(step(&mut status, &answered(), false, at(20)));
        assert_eq!(reachable(status.as_ref().unwrap_or(&healthy)).0, "True");
    }

    #[test]
    fn a_member_never_answered_says_probe_failing_once() {
        let mut status = None;
        assert!(step(&mut status, &timed_out(), false, at(0)));
        let failing = status.clone().unwrap_or_default();
        assert_eq!(
            (reachable(&failing).0, reachable(&failing).1),
            ("Unknown".into(), REASON_PROBE_FAILING.into())
        );
        assert!(!step(&mut status, &timed_out(), false, at(1)));
    }

    #[test]
    fn credential_problems_are_reported_as_such_and_stably() {
        let missing = Err(ClusterError::SecretNotFound {
            member: "east".into(),
            namespace: "ns".into(),
            name: "east-kubeconfig".into(),
        });
        let refused = Err(ClusterError::Kubeconfig {
            member: "east".into(),
            namespace: "ns".into(),
            name: "east-kubeconfig".into(),
            problem: KubeconfigProblem::ProxyUrl,
        });
        let forbidden = hub_error(403, "secrets is forbidden (request 8f1c2a)");
        for (result, reason, names) in [
            (
                &missing,
                REASON_CREDENTIALS_UNAVAILABLE,
                "ns/east-kubeconfig",
            ),
            (&refused, REASON_INVALID_CREDENTIALS, "proxy-url"),
            (&forbidden, REASON_CREDENTIALS_UNAVAILABLE, "403 Forbidden"),
        ] {
            let mut status = None;
            assert!(step(&mut status, &answered(), false, at(0)));
            assert!(step(&mut status, result, false, at(1)));
            let (value, got_reason, message) =
                reachable(status.as_ref().unwrap_or(&Default::default()));
            assert_eq!((value.as_str(), got_reason.as_str()), ("Unknown", reason));
            assert!(message.contains(names), "{message}");
            assert!(!message.contains("8f1c2a"), "{message}");
            assert!(!step(&mut status, result, false, at(2)), "stable");
        }
    }

    #[test]
    fn a_transient_hub_error_changes_nothing() {
        let previous = member_status(None, Some(1), &answered(), false, at(0));
        for result in [
            hub_error(500, "etcd leader changed"),
            hub_error(429, "slow down"),
        ] {
            assert_eq!(
                member_status(previous.as_ref(), Some(1), &result, false, at(1)),
                None
            );
        }
    }

    #[test]
    fn client_errors_are_described_without_request_specific_text() {
        let api = kube::Error::Api(
            Status::failure("etcdserver: request timed out, id 77812", "InternalError")
                .with_code(500)
                .boxed(),
        );
        assert_eq!(
            describe_client_error(&api),
            "the API server answered 500 InternalError"
        );
        let io = kube::Error::ReadEvents(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(describe_client_error(&io), "connection refused");
    }
}

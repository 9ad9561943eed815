//! `FederatedNetwork` status.

use crate::api::{
    DEGRADED, FederatedNetworkStatus, LinkPhase, LinkState, MemberPhase, MemberState, PROGRESSING,
    READY, condition_status, merge_condition,
};
use crate::backend::{Target, ValidationIssue};
use crate::engine::{ReconcileReport, RejectedObject, TargetOutcome};
use crate::plan::NetworkPlan;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// A network that could not be planned or was refused, for its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanFailure {
    /// Stable CamelCase reason.
    pub reason: String,
    /// What is wrong.
    pub message: String,
}

impl PlanFailure {
    /// A failure from validation issues.
    pub fn from_issues(issues: &[ValidationIssue]) -> Self {
        let message = issues
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            reason: "Unsupported".into(),
            message,
        }
    }
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: condition_status(status),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// The status of a network after a pass.
///
/// `outcome` is the engine report, or why no pass could run (the plan failed or was
/// refused: then members and links keep their last known state, and Ready is False).
pub fn network_status(
    previous: Option<&FederatedNetworkStatus>,
    generation: Option<i64>,
    plan: Option<&NetworkPlan>,
    outcome: Result<&ReconcileReport, &PlanFailure>,
    now: Timestamp,
) -> FederatedNetworkStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let report = match outcome {
        Err(failure) => {
            for c in [
                condition(
                    READY,
                    false,
                    &failure.reason,
                    failure.message.clone(),
                    generation,
                ),
                condition(
                    PROGRESSING,
                    false,
                    &failure.reason,
                    "nothing is applied until the spec is fixed".into(),
                    generation,
                ),
                condition(DEGRADED, false, &failure.reason, String::new(), generation),
            ] {
                merge_condition(&mut status.conditions, c, now);
            }
            return status;
        }
        Ok(report) if !report.invalid.is_empty() => {
            return network_status(
                previous,
                generation,
                plan,
                Err(&PlanFailure::from_issues(&report.invalid)),
                now,
            );
        }
        Ok(report) => report,
    };

    let by_member: BTreeMap<&str, (&Target, &crate::engine::TargetReport)> = report
        .targets
        .iter()
        .filter_map(|(t, r)| t.member().map(|m| (m, (t, r))))
        .collect();
    let mut members: Vec<MemberState> = Vec::new();
    if let Some(plan) = plan {
        for m in &plan.members {
            let (phase, message) = match by_member.get(m.name.as_str()) {
                Some((_, r)) if !r.rejected.is_empty() => {
                    (MemberPhase::Failed, Some(rejected_message(&r.rejected)))
                }
                Some((_, r)) => match &r.outcome {
                    TargetOutcome::TimedOut => (
                        MemberPhase::Unreachable,
                        Some("did not answer in time".to_owned()),
                    ),
                    TargetOutcome::Unreachable { reason } => {
                        (MemberPhase::Unreachable, Some(reason.clone()))
                    }
                    TargetOutcome::Gone { reason } => {
                        (MemberPhase::Unreachable, Some(format!("gone: {reason}")))
                    }
                    TargetOutcome::Failed { error } => (MemberPhase::Failed, Some(error.clone())),
                    TargetOutcome::InFlight { operations } => (
                        MemberPhase::Pending,
                        Some(format!("operations in flight: {}", operations.join(", "))),
                    ),
                    _ if !m.healthy => (
                        MemberPhase::Unreachable,
                        Some("unreachable at the last probe".to_owned()),
                    ),
                    TargetOutcome::Changed { .. } => {
                        (MemberPhase::Pending, Some("applying".to_owned()))
                    }
                    TargetOutcome::Converged if r.retained > 0 => (
                        MemberPhase::Pending,
                        Some(format!(
                            "{} objects kept as they are until what they depend on can be read",
                            r.retained
                        )),
                    ),
                    TargetOutcome::Converged => {
                        match report.health.members_not_ready.get(&m.name) {
                            Some(why) => (MemberPhase::Pending, Some(why.clone())),
                            None => (MemberPhase::Ready, None),
                        }
                    }
                },
                // No target of its own (an SD-WAN member lives in its controller): what the
                // backend read about it says, once every target converged.
                None => match report.health.members_not_ready.get(&m.name) {
                    Some(why) => (MemberPhase::Pending, Some(why.clone())),
                    None if report.is_converged() => (MemberPhase::Ready, None),
                    None => (MemberPhase::Pending, None),
                },
            };
            members.push(MemberState {
                name: m.name.clone(),
                phase,
                message,
            });
        }
    }
    // A leaving member stays listed until a pass finds nothing of the network left on it.
    let still_leaving = report
        .targets
        .iter()
        .filter(|(_, r)| r.leaving && r.outcome != TargetOutcome::Converged);
    for (target, r) in still_leaving {
        if let Some(m) = target.member() {
            let message = match &r.outcome {
                TargetOutcome::Failed { error } => Some(format!("teardown pending: {error}")),
                TargetOutcome::TimedOut => {
                    Some("teardown pending: did not answer in time".to_owned())
                }
                TargetOutcome::Unreachable { reason } => {
                    Some(format!("teardown pending: {reason}"))
                }
                TargetOutcome::Gone { reason } => Some(format!("gone: {reason}")),
                _ if !r.rejected.is_empty() => Some(format!(
                    "teardown pending: {}",
                    rejected_message(&r.rejected)
                )),
                _ => None,
            };
            members.push(MemberState {
                name: m.to_owned(),
                phase: MemberPhase::TearingDown,
                message,
            });
        }
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members.dedup_by(|a, b| a.name == b.name);
    status.members = members;
    status.missing_members = plan
        .map(|p| p.missing_members.keys().cloned().collect())
        .unwrap_or_default();

    status.links = plan
        .map(|plan| {
            plan.topology
                .links
                .iter()
                .flat_map(|l| plan.namespaces.iter().map(move |ns| (l, ns)))
                .map(|(l, ns)| {
                    let health = report.health.links.iter().find(|h| {
                        h.dialer == l.dialer && h.acceptor == l.acceptor && &h.namespace == ns
                    });
                    LinkState {
                        dialer: l.dialer.clone(),
                        acceptor: l.acceptor.clone(),
                        namespace: ns.clone(),
                        cost: l.cost,
                        phase: health.map_or(LinkPhase::Pending, |h| h.phase),
                        message: health.and_then(|h| h.message.clone()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let up = status
        .links
        .iter()
        .filter(|l| l.phase == LinkPhase::Up)
        .count();
    status.links_summary = Some(format!("{up}/{}", status.links.len()));

    // A member target's error is in its member's state; a target that is no member (an
    // SD-WAN controller) has no such place, so its error goes with its name.
    let mut failing: Vec<String> = report
        .failing_targets()
        .map(|(t, r)| match (&r.outcome, t.member()) {
            (TargetOutcome::Failed { error }, None) => {
                let name = t.to_string();
                let why = error
                    .strip_prefix(&name)
                    .map_or(error.as_str(), |e| e.trim_start_matches(": "));
                format!("{name} ({why})")
            }
            _ => t.to_string(),
        })
        .collect();
    if let Some(plan) = plan {
        failing.extend(
            plan.missing_members
                .iter()
                .map(|(m, why)| format!("member/{m} ({why})")),
        );
    }
    let retained: usize = report.targets.values().map(|t| t.retained).sum();
    let waiting: usize = report.targets.values().map(|t| t.orphans_waiting).sum();
    let members_ready = status.members.iter().all(|m| m.phase == MemberPhase::Ready);
    let links_up = up == status.links.len();
    let ready = report.is_converged() && members_ready && links_up;
    let progressing =
        !ready && failing.is_empty() || report.writes() > 0 || waiting > 0 || retained > 0;

    let (ready_reason, ready_message) = if let Some(e) = &report.render_error {
        ("RenderFailed", e.clone())
    } else if ready {
        ("Converged", format!("{up} links up"))
    } else if !failing.is_empty() {
        ("MembersFailing", format!("failing: {}", failing.join(", ")))
    } else if !links_up {
        (
            "LinksPending",
            format!("{up}/{} links up", status.links.len()),
        )
    } else {
        ("Progressing", "applying changes".to_owned())
    };
    let degraded_message = if failing.is_empty() {
        String::new()
    } else {
        format!("failing: {}", failing.join(", "))
    };
    let progressing_message = if retained > 0 {
        format!("{retained} objects kept as they are until what they depend on can be read")
    } else if waiting > 0 {
        format!("{waiting} old objects kept until the new links are up")
    } else if report.writes() > 0 {
        format!("{} objects written this pass", report.writes())
    } else {
        String::new()
    };
    for c in [
        condition(READY, ready, ready_reason, ready_message, generation),
        condition(
            PROGRESSING,
            progressing,
            if progressing { "Applying" } else { "Idle" },
            progressing_message,
            generation,
        ),
        condition(
            DEGRADED,
            !failing.is_empty(),
            if failing.is_empty() {
                "AllMembersHealthy"
            } else {
                "MembersFailing"
            },
            degraded_message,
            generation,
        ),
    ] {
        merge_condition(&mut status.conditions, c, now);
    }
    status
}

/// A stable summary of refused objects: which, and the target's answer.
fn rejected_message(rejected: &[RejectedObject]) -> String {
    let parts: Vec<String> = rejected
        .iter()
        .map(|r| format!("{} refused: {}", r.key, r.error))
        .collect();
    parts.join("; ")
}

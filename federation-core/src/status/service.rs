//! `FederatedService` status.

use crate::api::{
    ConsumerState, DEGRADED, FederatedServiceStatus, PROGRESSING, READY, condition_status,
    merge_condition,
};
use crate::backend::Health;
use crate::plan::NetworkPlan;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The status of the shared service `name` after a pass over its network. A service the
/// plan rejected gets Ready False with the reason; one absent from the plan (its network
/// missing or unplannable) gets `NetworkNotReady`.
pub fn service_status(
    previous: Option<&FederatedServiceStatus>,
    generation: Option<i64>,
    name: &str,
    plan: Option<&NetworkPlan>,
    health: &Health,
    now: Timestamp,
) -> FederatedServiceStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let cond = |type_: &str, ok: bool, reason: &str, message: String| Condition {
        type_: type_.into(),
        status: condition_status(ok),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    };
    let planned = plan.and_then(|p| p.services.iter().find(|s| s.name == name));
    let rejected = plan.and_then(|p| p.rejected_services.iter().find(|s| s.name == name));
    let Some(svc) = planned else {
        let (reason, message) = match rejected {
            Some(r) => (r.reason.clone(), r.message.clone()),
            None => (
                "NetworkNotReady".to_owned(),
                "the network is missing or cannot be planned".to_owned(),
            ),
        };
        status.consumers.clear();
        status.consumers_summary = None;
        for c in [
            cond(READY, false, &reason, message),
            cond(PROGRESSING, false, &reason, String::new()),
            cond(DEGRADED, false, &reason, String::new()),
        ] {
            merge_condition(&mut status.conditions, c, now);
        }
        return status;
    };
    status.consumers = svc
        .consumers
        .iter()
        .map(|consumer| {
            let h = health
                .services
                .iter()
                .find(|h| h.service == name && &h.consumer == consumer);
            ConsumerState {
                member: consumer.clone(),
                ready: h.is_some_and(|h| h.ready),
                message: match h {
                    Some(h) => h.message.clone(),
                    None => Some("not observed yet".to_owned()),
                },
            }
        })
        .collect();
    let ready_count = status.consumers.iter().filter(|c| c.ready).count();
    let total = status.consumers.len();
    status.consumers_summary = Some(format!("{ready_count}/{total}"));
    let all = ready_count == total;
    let not_ready: Vec<&str> = status
        .consumers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.member.as_str())
        .collect();
    for c in [
        cond(
            READY,
            all,
            if all {
                "AllConsumersReady"
            } else {
                "ConsumersPending"
            },
            if all {
                format!("{total} consumers ready")
            } else {
                format!("not ready in: {}", not_ready.join(", "))
            },
        ),
        cond(
            PROGRESSING,
            !all,
            if all { "Idle" } else { "WaitingForBackend" },
            String::new(),
        ),
        if svc.problems.is_empty() {
            cond(DEGRADED, false, "AsExpected", String::new())
        } else {
            cond(DEGRADED, true, "InvalidReferences", svc.problems.join("; "))
        },
    ] {
        merge_condition(&mut status.conditions, c, now);
    }
    status
}

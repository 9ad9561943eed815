//! `MemberCluster` reconciliation: probe and status.

use super::{Context, ControllerError, apply_status};
use crate::api::MemberCluster;
use crate::cluster::{FailureKind, failure_kind, member_status, probe};
use crate::status::changed;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use std::sync::Arc;

/// Probes a member and records the result in its status (written only when it changed).
///
/// A failed probe extends the member's failure streak (kept in the context, in memory); the
/// member is reported `Unreachable`, which makes it unhealthy for planning, only once the
/// streak crosses the thresholds of [`Timing`](super::Timing). Below them the status is left
/// as it was, so a repeated failure writes nothing.
pub async fn reconcile_member(
    member: Arc<MemberCluster>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let name = member.name_any();
    let result = match ctx.registry.client(&member).await {
        Ok(client) => probe(&name, &client, ctx.timing.probe_timeout).await,
        Err(e) => Err(e),
    };
    let now = (ctx.clock)();
    let confirmed = match &result {
        Ok(_) => {
            ctx.probe_streaks.reset(&name);
            false
        }
        Err(e) => match failure_kind(e) {
            FailureKind::Member => {
                let streak = ctx
                    .probe_streaks
                    .failed(&name, member.metadata.uid.as_deref(), now);
                let confirmed = streak.crossed(&ctx.timing.failure_policy(), now);
                tracing::info!(
                    member = %name,
                    error = %e,
                    failures = streak.failures,
                    threshold = ctx.timing.probe_failure_threshold,
                    unreachable = confirmed,
                    "member probe failed"
                );
                confirmed
            }
            // No evidence about the member itself: the streak neither grows nor ends.
            FailureKind::Credentials => {
                tracing::info!(member = %name, error = %e, "member credentials not usable");
                false
            }
            FailureKind::Hub => {
                tracing::info!(member = %name, error = %e, "member credentials not read; status kept");
                false
            }
        },
    };
    let new = member_status(
        member.status.as_ref(),
        member.metadata.generation,
        &result,
        confirmed,
        now,
    );
    if let Some(status) = new.and_then(|new| changed(member.status.as_ref(), new)) {
        apply_status(&Api::<MemberCluster>::all(ctx.hub.clone()), &name, &status).await?;
    }
    Ok(Action::requeue(ctx.timing.probe_interval))
}

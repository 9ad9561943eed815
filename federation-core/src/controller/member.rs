//! `MemberCluster` reconciliation: probe and status.

use super::{Context, ControllerError, apply_status};
use crate::api::MemberCluster;
use crate::cluster::{member_status, probe};
use crate::status::changed;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use std::sync::Arc;

/// Probes a member and records the result in its status (written only when it changed).
pub async fn reconcile_member(
    member: Arc<MemberCluster>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let name = member.name_any();
    let result = match ctx.registry.client(&member).await {
        Ok(client) => probe(&name, &client, ctx.timing.probe_timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        tracing::info!(member = %name, error = %e, "member probe failed");
    }
    let new = member_status(
        member.status.as_ref(),
        member.metadata.generation,
        &result,
        (ctx.clock)(),
    );
    if let Some(status) = changed(member.status.as_ref(), new) {
        apply_status(&Api::<MemberCluster>::all(ctx.hub.clone()), &name, &status).await?;
    }
    Ok(Action::requeue(ctx.timing.probe_interval))
}

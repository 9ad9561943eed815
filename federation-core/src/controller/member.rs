//! `MemberCluster` reconciliation: probe and status.

use super::{Context, ControllerError, hub_error};
use crate::api::{FIELD_MANAGER, MemberCluster};
use crate::cluster::{member_status, probe};
use crate::status::changed;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;
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
        let api: Api<MemberCluster> = Api::all(ctx.hub.clone());
        let patch =
            json!({"apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster", "status": status});
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(hub_error(
            "patch status of",
            format!("MemberCluster {name}"),
        ))?;
    }
    Ok(Action::requeue(ctx.timing.probe_interval))
}

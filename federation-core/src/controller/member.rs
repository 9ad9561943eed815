//! `MemberCluster` reconciliation: probe and status, and a finalizer that keeps a member
//! (and so the credentials to reach it) until no network holds objects in it.

use super::inventory::inventory_uses_member;
use super::network::list_networks;
use super::{Context, ControllerError, apply_status, hub_error, record_event};
use crate::api::{MEMBER_FINALIZER, MemberCluster};
use crate::cluster::{FailureKind, failure_kind, member_status, probe, record_expiry};
use crate::plan::is_abandoned;
use crate::status::changed;
use k8s_openapi::jiff::SignedDuration;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::sync::Arc;

/// Probes a member and records the result in its status (written only when it changed).
///
/// A failed probe extends the member's failure streak (kept in the context, in memory); the
/// member is reported `Unreachable`, which makes it unhealthy for planning, only once the
/// streak crosses the thresholds of [`Timing`](super::Timing). Below them the status is left
/// as it was, so a repeated failure writes nothing.
///
/// When the member is deleted, its finalizer stays until every network has removed its
/// objects there (networks leave out members being deleted), or the member carries the
/// abandon annotation.
///
/// The finalizer is added in the same pass as the first probe (not in a pass of its own, as
/// kube-runtime's finalizer helper does), so registering a member costs one pass.
pub async fn reconcile_member(
    member: Arc<MemberCluster>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let holds = member.finalizers().iter().any(|f| f == MEMBER_FINALIZER);
    if member.metadata.deletion_timestamp.is_some() {
        if holds {
            release_member(&member, &ctx).await?;
            set_finalizer(&ctx, &member, false).await?;
        }
        return Ok(Action::await_change());
    }
    if !holds {
        set_finalizer(&ctx, &member, true).await?;
    }
    probe_member(&member, &ctx).await
}

/// Adds or removes the member finalizer, with the resourceVersion read as a precondition so
/// a concurrent change of the list is never overwritten.
async fn set_finalizer(
    ctx: &Context,
    member: &MemberCluster,
    present: bool,
) -> Result<(), ControllerError> {
    let mut finalizers: Vec<String> = member
        .finalizers()
        .iter()
        .filter(|f| *f != MEMBER_FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(MEMBER_FINALIZER.to_owned());
    }
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": member.resource_version(),
    }});
    Api::<MemberCluster>::all(ctx.hub.clone())
        .patch(
            &member.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(hub_error(
            "patch finalizers of",
            format!("MemberCluster {}", member.name_any()),
        ))?;
    Ok(())
}

async fn probe_member(member: &MemberCluster, ctx: &Context) -> Result<Action, ControllerError> {
    let name = member.name_any();
    let result = match ctx.registry.client(member).await {
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
    let mut new = member_status(
        member.status.as_ref(),
        member.metadata.generation,
        &result,
        confirmed,
        now,
    );
    if result.is_ok()
        && let Some(status) = new.as_mut()
    {
        let window =
            SignedDuration::try_from(ctx.timing.credential_warning).unwrap_or(SignedDuration::MAX);
        let expiry = ctx.registry.credential_expiry(&name).await;
        record_expiry(status, &name, expiry, now, window);
    }
    if let Some(status) = new.and_then(|new| changed(member.status.as_ref(), new)) {
        apply_status(&Api::<MemberCluster>::all(ctx.hub.clone()), &name, &status).await?;
    }
    Ok(Action::requeue(ctx.timing.probe_interval))
}

/// Lets the member go once no network's inventory names it; an abandoned member goes at once.
async fn release_member(member: &MemberCluster, ctx: &Context) -> Result<(), ControllerError> {
    let name = member.name_any();
    if is_abandoned(member) {
        publish(
            ctx,
            member,
            EventType::Warning,
            "Abandoned",
            "released without cleanup: networks forget what they had on this member",
        )
        .await;
        ctx.registry.forget(&name).await;
        return Ok(());
    }
    let users: Vec<String> = list_networks(ctx, "")
        .await?
        .iter()
        .filter(|n| {
            inventory_uses_member(n.status.as_ref().and_then(|s| s.inventory.as_ref()), &name)
        })
        .map(|n| format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any()))
        .collect();
    if users.is_empty() {
        ctx.registry.forget(&name).await;
        return Ok(());
    }
    let networks = users.join(", ");
    publish(
        ctx,
        member,
        EventType::Normal,
        "WaitingForNetworks",
        &format!("waiting for these networks to remove their objects: {networks} (annotate fednet.io/abandon=true to give the member up)"),
    )
    .await;
    Err(ControllerError::MemberInUse {
        member: name,
        networks,
    })
}

async fn publish(
    ctx: &Context,
    member: &MemberCluster,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    record_event(ctx, member, type_, "Release", reason, note).await;
}

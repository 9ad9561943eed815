//! `FederatedNetwork` reconciliation.

use super::{Context, ControllerError, apply_status, hub_error};
use crate::api::{
    ConditionExt, FederatedNetwork, FederatedNetworkStatus, FederatedService, MemberCluster,
    MemberPhase, NETWORK_FINALIZER, REACHABLE,
};
use crate::backend::Target;
use crate::engine::ReconcileReport;
use crate::plan::{NetworkPlan, NetworkRef, PlanInput, plan};
use crate::status::{PlanFailure, changed, network_status, service_status};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Reconciles one network: plan, engine pass, statuses; teardown when it is deleted.
pub async fn reconcile_network(
    net: Arc<FederatedNetwork>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let ns = net
        .namespace()
        .ok_or(ControllerError::MissingField("metadata.namespace"))?;
    let api: Api<FederatedNetwork> = Api::namespaced(ctx.hub.clone(), &ns);
    finalizer(&api, NETWORK_FINALIZER, net, |event| async {
        match event {
            Event::Apply(net) => apply(&net, &ctx).await,
            Event::Cleanup(net) => cleanup(&net, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => ControllerError::Finalizer(other.to_string()),
    })
}

/// Requeue after an error: soon, but not in a hot loop.
pub fn error_policy(
    _net: Arc<FederatedNetwork>,
    error: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "network reconcile failed");
    Action::requeue(ctx.timing.progressing * 5)
}

struct HubView {
    members: Vec<MemberCluster>,
    services: Vec<FederatedService>,
}

async fn read_hub(ctx: &Context, ns: &str) -> Result<HubView, ControllerError> {
    let members = Api::<MemberCluster>::all(ctx.hub.clone())
        .list(&ListParams::default())
        .await
        .map_err(hub_error("list", "MemberClusters"))?
        .items;
    let services = Api::<FederatedService>::namespaced(ctx.hub.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(hub_error("list", "FederatedServices"))?
        .items;
    Ok(HubView { members, services })
}

fn plan_network(net: &FederatedNetwork, hub: &HubView) -> Result<NetworkPlan, PlanFailure> {
    // A member whose last probe failed is planned as unhealthy; one never probed is not.
    let unhealthy: BTreeSet<String> = hub
        .members
        .iter()
        .filter(|m| {
            m.status
                .as_ref()
                .and_then(|s| s.conditions.condition(REACHABLE))
                .is_some_and(|c| c.status == "False")
        })
        .map(ResourceExt::name_any)
        .collect();
    plan(PlanInput {
        network: net,
        member_clusters: &hub.members,
        services: &hub.services,
        unhealthy: &unhealthy,
    })
    .map_err(|e| PlanFailure {
        reason: e.reason().to_owned(),
        message: e.to_string(),
    })
}

/// Targets the network may still own objects on, from its last status.
fn known_targets(status: Option<&FederatedNetworkStatus>) -> BTreeSet<Target> {
    status
        .map(|s| {
            s.members
                .iter()
                .map(|m| Target::Member(m.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn apply(net: &FederatedNetwork, ctx: &Context) -> Result<Action, ControllerError> {
    let ns = net.namespace().unwrap_or_default();
    let hub = read_hub(ctx, &ns).await?;
    let now = (ctx.clock)();
    let planned =
        plan_network(net, &hub).and_then(|plan| match ctx.engines.get(&plan.backend.kind) {
            Some(engine) => Ok((plan, engine)),
            None => Err(PlanFailure {
                reason: "BackendUnavailable".into(),
                message: format!(
                    "this operator does not serve the {} backend",
                    plan.backend.kind
                ),
            }),
        });
    let (plan, engine) = match planned {
        Ok(p) => p,
        Err(failure) => {
            publish(
                ctx,
                net,
                EventType::Warning,
                &failure.reason,
                &failure.message,
            )
            .await;
            let status = network_status(
                net.status.as_ref(),
                net.metadata.generation,
                None,
                Err(&failure),
                now,
            );
            write_network_status(ctx, net, status).await?;
            write_service_statuses(ctx, net, &hub.services, None, &ReconcileReport::default())
                .await?;
            return Ok(Action::await_change());
        }
    };

    let report = engine
        .reconcile(&plan, &known_targets(net.status.as_ref()))
        .await;
    let status = network_status(
        net.status.as_ref(),
        net.metadata.generation,
        Some(&plan),
        Ok(&report),
        now,
    );
    let converged =
        report.is_converged() && status.members.iter().all(|m| m.phase == MemberPhase::Ready);
    write_network_status(ctx, net, status).await?;
    write_service_statuses(ctx, net, &hub.services, Some(&plan), &report).await?;
    if !report.invalid.is_empty() {
        // Nothing will change until the spec does: no periodic retry.
        let failure = PlanFailure::from_issues(&report.invalid);
        publish(
            ctx,
            net,
            EventType::Warning,
            &failure.reason,
            &failure.message,
        )
        .await;
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(if converged {
        ctx.timing.converged
    } else {
        ctx.timing.progressing
    }))
}

async fn cleanup(net: &FederatedNetwork, ctx: &Context) -> Result<Action, ControllerError> {
    let network = NetworkRef::of(net);
    let mut targets = known_targets(net.status.as_ref());
    let ns = net.namespace().unwrap_or_default();
    let hub = read_hub(ctx, &ns).await?;
    let engine = ctx.engines.get(&net.spec.backend.kind);
    if let (Ok(plan), Some(engine)) = (plan_network(net, &hub), engine) {
        targets.extend(engine.backend().targets(&plan));
    }
    let Some(engine) = engine else {
        // Nothing of a backend this operator does not serve can have been created by it.
        return Ok(Action::await_change());
    };
    let report = engine.teardown(&network, &targets).await;
    if report.is_complete() {
        publish(
            ctx,
            net,
            EventType::Normal,
            "TornDown",
            &format!("removed from {} targets", targets.len()),
        )
        .await;
        return Ok(Action::await_change());
    }
    let pending: Vec<String> = report
        .pending()
        .map(|(t, why)| format!("{t} ({why})"))
        .collect();
    let pending = pending.join(", ");
    publish(ctx, net, EventType::Warning, "TeardownPending", &pending).await;
    let failure = PlanFailure {
        reason: "TeardownPending".into(),
        message: format!("still to remove from: {pending}"),
    };
    let status = network_status(
        net.status.as_ref(),
        net.metadata.generation,
        None,
        Err(&failure),
        (ctx.clock)(),
    );
    write_network_status(ctx, net, status).await?;
    Err(ControllerError::TeardownPending {
        network: network.to_string(),
        pending,
    })
}

async fn write_network_status(
    ctx: &Context,
    net: &FederatedNetwork,
    status: FederatedNetworkStatus,
) -> Result<(), ControllerError> {
    let Some(status) = changed(net.status.as_ref(), status) else {
        return Ok(());
    };
    let api: Api<FederatedNetwork> =
        Api::namespaced(ctx.hub.clone(), &net.namespace().unwrap_or_default());
    apply_status(&api, &net.name_any(), &status).await
}

async fn write_service_statuses(
    ctx: &Context,
    net: &FederatedNetwork,
    services: &[FederatedService],
    plan: Option<&NetworkPlan>,
    report: &ReconcileReport,
) -> Result<(), ControllerError> {
    let ns = net.namespace().unwrap_or_default();
    let api: Api<FederatedService> = Api::namespaced(ctx.hub.clone(), &ns);
    for svc in services.iter().filter(|s| s.spec.network == net.name_any()) {
        let name = svc.name_any();
        let new = service_status(
            svc.status.as_ref(),
            svc.metadata.generation,
            &name,
            plan,
            &report.health,
            (ctx.clock)(),
        );
        if let Some(status) = changed(svc.status.as_ref(), new) {
            apply_status(&api, &name, &status).await?;
        }
    }
    Ok(())
}

/// Events are best effort: failing to record one must not fail the reconcile.
async fn publish(
    ctx: &Context,
    net: &FederatedNetwork,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let Some(recorder) = &ctx.recorder else {
        return;
    };
    let event = KubeEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1024).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &net.object_ref(&())).await {
        tracing::debug!(error = %e, "could not record event");
    }
}

//! `FederatedNetwork` reconciliation.
//!
//! One pass: read the hub, plan, settle a backend change, check per-cluster claims, record
//! the inventory, run the engine, write statuses. Every write to a member is preceded by the
//! status write that records it in the inventory.

use super::claims::conflicting_claim;
use super::inventory::{
    Recorded, inventory_of, recorded_namespaces, recorded_targets, sweep_targets,
    unreachable_forever,
};
use super::{Context, ControllerError, apply_status, hub_error, record_event};
use crate::api::{
    FederatedNetwork, FederatedNetworkStatus, FederatedService, INVENTORY_ANNOTATION, Inventory,
    MemberCluster, MemberPhase, NETWORK_FINALIZER,
};
use crate::backend::{ObserveScope, Target, check_capabilities, refuse_unservable_services};
use crate::cluster::{member_silent, member_unhealthy};
use crate::engine::ReconcileReport;
use crate::plan::{NetworkPlan, NetworkRef, PlanInput, plan_with_silent};
use crate::status::{PlanFailure, changed, network_status, service_status};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::json;
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

/// Requeue after an error: soon, but not in a hot loop. A teardown that is making its way
/// through is looked at again at the progressing pace.
pub fn error_policy(
    _net: Arc<FederatedNetwork>,
    error: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "network reconcile failed");
    match error {
        ControllerError::TeardownPending { .. } => Action::requeue(ctx.timing.progressing),
        _ => Action::requeue(ctx.timing.progressing * 5),
    }
}

struct HubView {
    members: Vec<MemberCluster>,
    services: Vec<FederatedService>,
}

/// How long a pass waits for a hub cache that has not listed yet (only right after start).
const CACHE_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The objects of a watch-fed store, once it has listed.
async fn from_store<K>(store: &Store<K>, what: &'static str) -> Result<Vec<Arc<K>>, ControllerError>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    tokio::time::timeout(CACHE_SYNC_WAIT, store.wait_until_ready())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ControllerError::CacheNotSynced(what))?;
    Ok(store.state())
}

async fn read_hub(ctx: &Context, ns: &str) -> Result<HubView, ControllerError> {
    if let Some(stores) = &ctx.hub_stores {
        let members = from_store(&stores.members, "MemberCluster").await?;
        let services = from_store(&stores.services, "FederatedService").await?;
        return Ok(HubView {
            members: members.iter().map(|m| m.as_ref().clone()).collect(),
            services: services
                .iter()
                .filter(|s| s.namespace().as_deref() == Some(ns))
                .map(|s| s.as_ref().clone())
                .collect(),
        });
    }
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

/// Every network the hub cache holds, for per-cluster claims; listed when there is no such
/// cache. (Releasing a member lists afresh: see `member.rs`.)
async fn known_networks(ctx: &Context, ns: &str) -> Result<Vec<FederatedNetwork>, ControllerError> {
    use futures::FutureExt;
    if let Some(stores) = &ctx.hub_stores
        && matches!(
            stores.networks.wait_until_ready().now_or_never(),
            Some(Ok(()))
        )
    {
        return Ok(stores
            .networks
            .state()
            .iter()
            .map(|n| n.as_ref().clone())
            .collect());
    }
    list_networks(ctx, ns).await
}

/// Every network on the hub, to see who holds which per-cluster singleton. Falls back to
/// the network's own namespace when the operator may not list networks cluster-wide.
pub(super) async fn list_networks(
    ctx: &Context,
    ns: &str,
) -> Result<Vec<FederatedNetwork>, ControllerError> {
    match Api::<FederatedNetwork>::all(ctx.hub.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(s)) if s.code == 403 => {
            Api::<FederatedNetwork>::namespaced(ctx.hub.clone(), ns)
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .map_err(hub_error("list", "FederatedNetworks"))
        }
        Err(e) => Err(hub_error("list", "FederatedNetworks")(e)),
    }
}

fn plan_network(net: &FederatedNetwork, hub: &HubView) -> Result<NetworkPlan, PlanFailure> {
    let silent: BTreeSet<String> = hub
        .members
        .iter()
        .filter(|m| member_silent(m))
        .map(ResourceExt::name_any)
        .collect();
    // A member is planned as unhealthy only once its probes failed past the threshold; one
    // never probed, or whose credentials cannot be read, is not.
    let unhealthy: BTreeSet<String> = hub
        .members
        .iter()
        .filter(|m| member_unhealthy(m))
        .map(ResourceExt::name_any)
        .collect();
    plan_with_silent(
        PlanInput {
            network: net,
            member_clusters: &hub.members,
            services: &hub.services,
            unhealthy: &unhealthy,
        },
        &silent,
    )
    .map_err(|e| PlanFailure {
        reason: e.reason().to_owned(),
        message: e.to_string(),
    })
}

/// A network that cannot go on this pass: its status says why and nothing is written.
async fn refuse(
    ctx: &Context,
    net: &FederatedNetwork,
    previous: Option<&FederatedNetworkStatus>,
    services: &[FederatedService],
    failure: &PlanFailure,
) -> Result<(), ControllerError> {
    publish(
        ctx,
        net,
        EventType::Warning,
        &failure.reason,
        &failure.message,
    )
    .await;
    let status = network_status(
        previous,
        net.metadata.generation,
        None,
        Err(failure),
        (ctx.clock)(),
    );
    write_network_status(ctx, net, previous, status).await?;
    write_service_statuses(ctx, net, services, None, &ReconcileReport::default()).await
}

async fn apply(net: &FederatedNetwork, ctx: &Context) -> Result<Action, ControllerError> {
    let ns = net.namespace().unwrap_or_default();
    let hub = read_hub(ctx, &ns).await?;
    let mut previous = net.status.clone();

    // A backend change (only possible where the API server does not enforce the CEL rule
    // that makes the type immutable) first removes everything of the old backend.
    if let Some(inv) = previous.as_ref().and_then(|s| s.inventory.clone())
        && inv.backend != net.spec.backend.kind
    {
        let Some(done) = retire_backend(ctx, net, &inv, &hub).await? else {
            return Ok(Action::requeue(ctx.timing.progressing));
        };
        let mut status = previous.clone().unwrap_or_default();
        status.inventory = Some(done);
        write_network_status(ctx, net, previous.as_ref(), status.clone()).await?;
        previous = Some(status);
    }

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
    let (mut plan, engine) = match planned {
        Ok(p) => p,
        Err(failure) => {
            refuse(ctx, net, previous.as_ref(), &hub.services, &failure).await?;
            return Ok(Action::await_change());
        }
    };
    // Services the backend cannot serve (restricted consumers over MCS, say) are refused
    // one by one, in their own status; the rest of the network goes on.
    refuse_unservable_services(&engine.backend().capabilities(), &mut plan);

    // A network the backend cannot serve records nothing (no targets, no claims that would
    // keep a singleton from a network that can be served) and writes nothing.
    let mut invalid = check_capabilities(&engine.backend().capabilities(), &plan);
    invalid.extend(engine.backend().validate(&plan));
    if !invalid.is_empty() {
        let failure = PlanFailure::from_issues(&invalid);
        refuse(ctx, net, previous.as_ref(), &hub.services, &failure).await?;
        return Ok(Action::await_change());
    }

    let old_inventory = previous.as_ref().and_then(|s| s.inventory.as_ref());
    let recorded_claims: BTreeSet<String> = old_inventory
        .map(|i| i.claims.iter().cloned().collect())
        .unwrap_or_default();
    let wanted_claims: BTreeSet<String> = engine
        .backend()
        .singletons(&plan)
        .iter()
        .map(ToString::to_string)
        .collect();
    if !wanted_claims.is_empty() {
        let others = known_networks(ctx, &ns).await?;
        if let Some((claim, holder)) =
            conflicting_claim(net, &wanted_claims, &recorded_claims, &others)
        {
            let failure = PlanFailure {
                reason: "SingletonConflict".into(),
                message: format!(
                    "{claim} is held by network {holder}; only one network may hold it, so this one writes nothing"
                ),
            };
            refuse(ctx, net, previous.as_ref(), &hub.services, &failure).await?;
            return Ok(Action::requeue(ctx.timing.progressing * 10));
        }
    }

    // Record every target, claim and namespace before the first write there.
    let mut recorded = Recorded {
        claims: recorded_claims,
        ..Recorded::default()
    };
    match old_inventory {
        Some(inv) => {
            recorded.targets = recorded_targets(inv);
            recorded.namespaces = recorded_namespaces(inv);
        }
        None if inventory_was_recorded(net) => {
            tracing::warn!(network = %NetworkRef::of(net), "inventory lost; sweeping every registered member");
            recorded.targets = sweep_targets(engine.backend().as_ref(), &hub.members);
        }
        None => mark_inventory_recorded(ctx, net).await?,
    }
    for (target, why) in unreachable_forever(&recorded.targets, &hub.members) {
        forget(ctx, net, &target, why).await;
        recorded.targets.remove(&target);
    }
    recorded.targets.extend(engine.backend().targets(&plan));
    recorded.claims.extend(wanted_claims.iter().cloned());
    recorded.namespaces.extend(plan.namespaces.iter().cloned());
    let inventory = inventory_of(plan.backend.kind, &recorded);
    if old_inventory != Some(&inventory) {
        let mut status = previous.clone().unwrap_or_default();
        status.inventory = Some(inventory);
        write_network_status(ctx, net, previous.as_ref(), status.clone()).await?;
        previous = Some(status);
    }

    plan.retired_namespaces = recorded
        .namespaces
        .iter()
        .filter(|ns| !plan.namespaces.contains(ns))
        .cloned()
        .collect();
    let report = engine.reconcile(&plan, &recorded.targets).await;

    // Forget what was released: targets found empty, members gone, and once converged (every
    // target read, nothing left to delete) claims and namespaces no longer needed.
    for (target, r) in report.targets.iter().filter(|(_, r)| r.leaving) {
        if let crate::engine::TargetOutcome::Gone { reason } = &r.outcome {
            forget(ctx, net, target, reason).await;
        }
    }
    let released: BTreeSet<Target> = report.released_targets().cloned().collect();
    let mut remaining = Recorded {
        targets: recorded.targets.difference(&released).cloned().collect(),
        ..recorded.clone()
    };
    if report.is_converged() {
        remaining.claims = wanted_claims.clone();
        remaining.namespaces = plan.namespaces.iter().cloned().collect();
    }
    let mut status = network_status(
        previous.as_ref(),
        net.metadata.generation,
        Some(&plan),
        Ok(&report),
        (ctx.clock)(),
    );
    status.inventory = Some(inventory_of(plan.backend.kind, &remaining));
    // A consumer still waiting for its import (Lighthouse brings it in its own time, and
    // nothing fednet owns changes when it does) is still progressing: look again soon.
    let converged = report.is_converged()
        && status.members.iter().all(|m| m.phase == MemberPhase::Ready)
        && report.health.services.iter().all(|s| s.ready);
    write_network_status(ctx, net, previous.as_ref(), status).await?;
    write_service_statuses(ctx, net, &hub.services, Some(&plan), &report).await?;
    for (target, r) in report
        .targets
        .iter()
        .filter(|(_, r)| !r.rejected.is_empty())
    {
        let names: Vec<String> = r.rejected.iter().map(|o| o.key.to_string()).collect();
        let note = format!("{target} refused {}", names.join(", "));
        publish(ctx, net, EventType::Warning, "ObjectsRejected", &note).await;
    }
    Ok(Action::requeue(if converged {
        ctx.timing.converged
    } else {
        ctx.timing.progressing
    }))
}

/// Whether an inventory was ever recorded for this network (see [`INVENTORY_ANNOTATION`]).
fn inventory_was_recorded(net: &FederatedNetwork) -> bool {
    net.annotations().contains_key(INVENTORY_ANNOTATION)
}

/// Marks the network as having an inventory, before the inventory is first written: if the
/// status is lost later, the mark says a sweep is needed.
async fn mark_inventory_recorded(
    ctx: &Context,
    net: &FederatedNetwork,
) -> Result<(), ControllerError> {
    let patch = json!({"metadata": {"annotations": {INVENTORY_ANNOTATION: "recorded"}}});
    Api::<FederatedNetwork>::namespaced(ctx.hub.clone(), &net.namespace().unwrap_or_default())
        .patch(
            &net.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(hub_error(
            "annotate",
            format!("FederatedNetwork {}", net.name_any()),
        ))?;
    Ok(())
}

/// Tears down what the inventory's old backend wrote. `Some(inventory)` of the new backend
/// once nothing is left; `None` while teardown is still under way (status says where).
async fn retire_backend(
    ctx: &Context,
    net: &FederatedNetwork,
    old: &Inventory,
    hub: &HubView,
) -> Result<Option<Inventory>, ControllerError> {
    let Some(engine) = ctx.engines.get(&old.backend) else {
        let failure = PlanFailure {
            reason: "BackendUnavailable".into(),
            message: format!(
                "the network still holds objects of the {} backend, which this operator does not serve; nothing is written until they are removed",
                old.backend
            ),
        };
        refuse(ctx, net, net.status.as_ref(), &hub.services, &failure).await?;
        return Ok(None);
    };
    let targets = usable_targets(ctx, net, recorded_targets(old), &hub.members).await;
    let scope = teardown_scope(net, Some(old));
    let report = engine.teardown(&scope, &targets).await;
    if report.is_complete() {
        let note = format!(
            "removed the {} objects from {} targets before switching to {}",
            old.backend,
            targets.len(),
            net.spec.backend.kind
        );
        publish(ctx, net, EventType::Normal, "BackendRetired", &note).await;
        return Ok(Some(inventory_of(
            net.spec.backend.kind,
            &Recorded::default(),
        )));
    }
    let pending: Vec<String> = report
        .pending()
        .map(|(t, why)| format!("{t} ({why})"))
        .collect();
    let failure = PlanFailure {
        reason: "BackendChangePending".into(),
        message: format!(
            "removing the {} objects first; still on: {}",
            old.backend,
            pending.join(", ")
        ),
    };
    refuse(ctx, net, net.status.as_ref(), &hub.services, &failure).await?;
    Ok(None)
}

/// Where a teardown reads: the namespaces the spec names and those the inventory recorded.
/// After a lost inventory only the spec's namespaces are known; objects in namespaces the
/// network had left before are then out of reach of a namespaced identity.
fn teardown_scope(net: &FederatedNetwork, inventory: Option<&Inventory>) -> ObserveScope {
    let recorded = inventory.map(recorded_namespaces).unwrap_or_default();
    ObserveScope::new(
        NetworkRef::of(net),
        net.spec.namespaces.iter().cloned().chain(recorded),
    )
}

/// The targets that can still be reached; the others are forgotten with an Event.
async fn usable_targets(
    ctx: &Context,
    net: &FederatedNetwork,
    mut targets: BTreeSet<Target>,
    members: &[MemberCluster],
) -> BTreeSet<Target> {
    for (target, why) in unreachable_forever(&targets, members) {
        forget(ctx, net, &target, why).await;
        targets.remove(&target);
    }
    targets
}

async fn forget(ctx: &Context, net: &FederatedNetwork, target: &Target, why: &str) {
    tracing::warn!(network = %NetworkRef::of(net), %target, why, "forgetting a target that cannot be reached again");
    let note = format!(
        "{target}: {why}; whatever the network left there is no longer tracked and must be removed by hand if the cluster comes back"
    );
    publish(ctx, net, EventType::Warning, "TargetAbandoned", &note).await;
}

async fn cleanup(net: &FederatedNetwork, ctx: &Context) -> Result<Action, ControllerError> {
    let network = NetworkRef::of(net);
    let ns = net.namespace().unwrap_or_default();
    let hub = read_hub(ctx, &ns).await?;
    let inventory = net.status.as_ref().and_then(|s| s.inventory.as_ref());
    let kind = inventory.map_or(net.spec.backend.kind, |i| i.backend);
    let Some(engine) = ctx.engines.get(&kind) else {
        // Nothing of a backend this operator does not serve can have been created by it.
        return Ok(Action::await_change());
    };
    let mut targets = match inventory {
        Some(inv) => recorded_targets(inv),
        None if inventory_was_recorded(net) => {
            sweep_targets(engine.backend().as_ref(), &hub.members)
        }
        None => BTreeSet::new(),
    };
    if kind == net.spec.backend.kind
        && let Ok(plan) = plan_network(net, &hub)
    {
        targets.extend(engine.backend().targets(&plan));
    }
    let targets = usable_targets(ctx, net, targets, &hub.members).await;
    let report = engine
        .teardown(&teardown_scope(net, inventory), &targets)
        .await;
    for (target, why) in report.gone() {
        forget(ctx, net, target, why).await;
    }
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
    write_network_status(ctx, net, net.status.as_ref(), status).await?;
    Err(ControllerError::TeardownPending {
        network: network.to_string(),
        pending,
    })
}

/// Writes the status when it differs from `previous` (what this pass last wrote or read).
async fn write_network_status(
    ctx: &Context,
    net: &FederatedNetwork,
    previous: Option<&FederatedNetworkStatus>,
    status: FederatedNetworkStatus,
) -> Result<(), ControllerError> {
    let Some(status) = changed(previous, status) else {
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

async fn publish(
    ctx: &Context,
    net: &FederatedNetwork,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    record_event(ctx, net, type_, "Reconcile", reason, note).await;
}

//! The kube-runtime controllers on the hub, and the member watches that feed them.
//!
//! - `FederatedNetwork`: [`reconcile_network`] + [`error_policy`]. Triggered by its own spec,
//!   finalizer and deletion changes (status writes are filtered out, so writing a status does
//!   not cause another pass), by its `FederatedService`s, by changes of the `MemberCluster`s
//!   it uses (names, selects or recorded: a reachability flip re-plans only those networks),
//!   and by member watches.
//! - `MemberCluster`: [`reconcile_member`] (probe and status).
//!
//! # Reads come from caches
//! A pass reads the hub's kinds from the controllers' watch-fed stores ([`HubStores`]),
//! member kubeconfig Secrets through per-member watches, and members' owned objects from the
//! [`MemberCache`] the member watches feed: at rest the operator sends no LIST or GET beyond
//! the member probes (and the Lease), only watches.
//!
//! Everything here writes, so it runs only while this replica leads, and every write is
//! fenced on leadership ([`crate::fence`]): member writes through [`FencedBackend`], hub
//! writes through the fenced hub client the caller passes.
//!
//! Sharded replicas ([`crate::shard`]) run the controllers all the time instead: the
//! reconcile wrappers pass a network or member on only while its shard is held, with a
//! context whose hub client and backends are fenced on that shard ([`ShardContexts`]), and
//! acquiring a shard triggers its networks and members at once.

use crate::config::Tuning;
use crate::fence::Fence;
use crate::fenced_backend::FencedBackend;
use crate::hub_client::user_agent;
use crate::measured_backend::MeasuredBackend;
use crate::member_watch::{BackendWatch, MemberWatches, network_uses};
use crate::metrics::Metrics;
use crate::shard::ShardRouting;
use crate::shard::hashing::{member_shard, network_shard};
use crate::shard::routing::{Route, ShardContexts, on_acquired, routed, shard_contexts};
use federation_core::api::{BackendKind, FederatedNetwork, FederatedService, MemberCluster};
use federation_core::backend::NetworkBackend;
use federation_core::cluster::{MemberCache, MemberRegistry};
use federation_core::controller::{
    Context, ControllerError, HubStores, Timing, error_policy, reconcile_member, reconcile_network,
};
use federation_core::engine::{Engine, EngineConfig};
use federation_sdwan::SdwanBackend;
use federation_sdwan::access::HubAccessResolver;
use federation_skupper::SkupperBackend;
use federation_submariner::SubmarinerBackend;
use futures::StreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The controller name in Events and the default field manager.
pub const CONTROLLER_NAME: &str = "fednet-operator";

/// What the controllers need besides the hub client.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Namespace of networks and services to serve; all when `None`.
    pub namespace: Option<String>,
    /// This replica's identity (reported in Events).
    pub identity: String,
    /// Timings and limits.
    pub tuning: Tuning,
}

/// The context the reconcile wrappers get: the core context plus metrics.
pub struct OperatorContext {
    /// The core context handed to the reconcile functions.
    pub core: Arc<Context>,
    /// Metrics.
    pub metrics: Metrics,
    /// Per-shard contexts, when replicas are sharded.
    pub shards: Option<ShardContexts>,
}

/// The watch-fed caches a pass reads instead of the API servers.
#[derive(Clone)]
pub struct Caches {
    /// The hub's kinds.
    pub hub: HubStores,
    /// What the backends own in members, fed by the member watches.
    pub members: Arc<MemberCache>,
}

/// Builds the core context: member registry on `registry_hub` (sharded replicas: see
/// [`ShardRouting::registry_hub`]; its clients name this replica in their User-Agent; it reads
/// `MemberCluster`s and their Secrets from `caches`), one engine per served backend (writes
/// fenced on `fence`, then measured), an Event recorder and the timings.
fn core_context(
    hub: &Client,
    registry_hub: &Client,
    settings: &ControllerSettings,
    metrics: &Metrics,
    fence: &Fence,
    caches: &Caches,
) -> Context {
    let registry = Arc::new(
        MemberRegistry::new(registry_hub.clone())
            .with_user_agent(user_agent(&settings.identity))
            .watched(caches.hub.members.clone(), caches.members.clone()),
    );
    let backends = measured_backends(hub, &registry, metrics);
    let mut ctx = Context::new(
        hub.clone(),
        registry,
        fenced_engines(&backends, fence, &settings.tuning),
    );
    ctx.hub_stores = Some(caches.hub.clone());
    ctx.recorder = Some(recorder(hub, settings));
    let t = &settings.tuning;
    ctx.timing = Timing {
        progressing: t.requeue_progressing,
        converged: t.requeue_converged,
        probe_interval: t.probe_interval,
        probe_timeout: t.probe_timeout,
        probe_failure_threshold: t.probe_failure_threshold,
        probe_failure_min_duration: t.probe_failure_min_duration,
        credential_warning: t.credential_warning,
    };
    ctx
}

/// One backend per served kind, measured (not fenced yet: [`fenced_engines`] does that, per
/// fence).
pub(crate) fn measured_backends(
    hub: &Client,
    registry: &Arc<MemberRegistry>,
    metrics: &Metrics,
) -> BTreeMap<BackendKind, Arc<dyn NetworkBackend>> {
    let measured = |backend: Arc<dyn NetworkBackend>| -> Arc<dyn NetworkBackend> {
        Arc::new(MeasuredBackend::new(backend, metrics.clone()))
    };
    BTreeMap::from([
        (
            BackendKind::Skupper,
            measured(Arc::new(SkupperBackend::new(registry.clone()))),
        ),
        (
            BackendKind::Submariner,
            measured(Arc::new(SubmarinerBackend::new(registry.clone()))),
        ),
        // SD-WAN networks reach their controller with the token in their Secret on the hub.
        (
            BackendKind::SdWan,
            measured(Arc::new(SdwanBackend::new(Arc::new(
                HubAccessResolver::new(hub.clone()),
            )))),
        ),
    ])
}

/// One engine per backend, its writes fenced on `fence`.
pub(crate) fn fenced_engines(
    backends: &BTreeMap<BackendKind, Arc<dyn NetworkBackend>>,
    fence: &Fence,
    t: &Tuning,
) -> BTreeMap<BackendKind, Engine> {
    backends
        .iter()
        .map(|(kind, backend)| {
            // The fence is outermost: a refused write is not counted as sent.
            let fenced = FencedBackend::new(backend.clone(), fence.clone());
            let engine = Engine::new(
                Arc::new(fenced),
                EngineConfig {
                    concurrency: t.member_concurrency.max(1),
                    target_timeout: t.target_timeout,
                    ..EngineConfig::default()
                },
            );
            (*kind, engine)
        })
        .collect()
}

pub(crate) fn recorder(hub: &Client, settings: &ControllerSettings) -> Recorder {
    Recorder::new(
        hub.clone(),
        Reporter {
            controller: CONTROLLER_NAME.to_owned(),
            instance: Some(settings.identity.clone()),
        },
    )
}

/// What each served backend owns in members (its kinds) and the fixed namespaces it writes
/// in (from its member access): the member watches follow exactly that.
fn backend_watches(engines: &BTreeMap<BackendKind, Engine>) -> BTreeMap<BackendKind, BackendWatch> {
    engines
        .iter()
        .map(|(kind, engine)| {
            let backend = engine.backend();
            let namespaces = backend
                .member_access()
                .into_iter()
                .filter_map(|rule| match rule.scope {
                    federation_core::backend::AccessScope::Namespace(ns) => Some(ns),
                    _ => None,
                })
                .chain(backend.own_namespaces())
                .collect();
            let kinds = backend.member_kinds();
            (*kind, BackendWatch { kinds, namespaces })
        })
        .collect()
}

/// What a network pass depends on in the network object itself: its spec (generation), its
/// finalizers and whether it is being deleted. Status writes change none of these.
pub fn network_trigger_hash(net: &FederatedNetwork) -> Option<u64> {
    let mut h = DefaultHasher::new();
    net.metadata.generation.hash(&mut h);
    net.metadata.deletion_timestamp.is_some().hash(&mut h);
    net.metadata.finalizers.hash(&mut h);
    Some(h.finish())
}

async fn reconcile_network_measured(
    net: Arc<FederatedNetwork>,
    ctx: Arc<OperatorContext>,
) -> Result<Action, ControllerError> {
    let route = ctx
        .route(|count| network_shard(&net.namespace().unwrap_or_default(), &net.name_any(), count));
    if matches!(route, Route::Elsewhere) {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let network = format!("{}/{}", net.namespace().unwrap_or_default(), net.name_any());
    let result = routed(route, |core| reconcile_network(net, core)).await;
    let elapsed = started.elapsed();
    ctx.metrics.observe_reconcile(
        "FederatedNetwork",
        elapsed,
        result.as_ref().err().map(ControllerError::metric_label),
    );
    // One line per pass with its duration and what comes next: `make bench-e2e` reads the
    // critical path of a convergence off these lines.
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    match &result {
        Ok(action) => debug!(%network, elapsed_ms, next = ?action, "network pass"),
        Err(error) => debug!(%network, elapsed_ms, %error, "network pass failed"),
    }
    result
}

fn network_error_policy(
    net: Arc<FederatedNetwork>,
    error: &ControllerError,
    ctx: Arc<OperatorContext>,
) -> Action {
    error_policy(net, error, ctx.core.clone())
}

async fn reconcile_member_measured(
    member: Arc<MemberCluster>,
    ctx: Arc<OperatorContext>,
) -> Result<Action, ControllerError> {
    let route = ctx.route(|count| member_shard(&member.name_any(), count));
    if matches!(route, Route::Elsewhere) {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = routed(route, |core| reconcile_member(member, core)).await;
    ctx.metrics.observe_reconcile(
        "MemberCluster",
        started.elapsed(),
        result.as_ref().err().map(ControllerError::metric_label),
    );
    result
}

fn member_error_policy(
    member: Arc<MemberCluster>,
    error: &ControllerError,
    ctx: Arc<OperatorContext>,
) -> Action {
    warn!(member = %member.name_any(), %error, "member reconcile failed");
    Action::requeue(ctx.core.timing.progressing * 5)
}

/// What one run of the controllers gets.
pub struct ControllerRun {
    /// The hub client; its writes are fenced on `fence`.
    pub hub: Client,
    /// Namespace, identity and timings.
    pub settings: ControllerSettings,
    /// Metrics.
    pub metrics: Metrics,
    /// This replica's leadership, which fences member writes.
    pub fence: Fence,
    /// Receives `true` once both caches hold a full list.
    pub synced: watch::Sender<bool>,
    /// Cancelled to stop.
    pub shutdown: CancellationToken,
    /// Set when replicas are sharded: then `hub` and `fence` never write (the fence stays
    /// shut), and each shard's work goes through its own fenced client.
    pub shards: Option<ShardRouting>,
}

/// Runs both controllers and the member watches until `shutdown` is cancelled; then lets
/// running reconciles finish (the caller bounds how long). Sends `true` on `synced` once
/// both caches hold a full list.
pub async fn run(run: ControllerRun) {
    let ControllerRun {
        hub,
        settings,
        metrics,
        fence,
        synced,
        shutdown,
        shards,
    } = run;
    let t = &settings.tuning;
    let controller_config = ControllerConfig::default()
        .debounce(t.debounce)
        .concurrency(t.network_concurrency.max(1));

    let (networks_api, services_api): (Api<FederatedNetwork>, Api<FederatedService>) =
        match &settings.namespace {
            Some(ns) => (
                Api::namespaced(hub.clone(), ns),
                Api::namespaced(hub.clone(), ns),
            ),
            None => (Api::all(hub.clone()), Api::all(hub.clone())),
        };
    let members_api: Api<MemberCluster> = Api::all(hub.clone());

    let (networks, networks_writer) = reflector::store();
    let network_stream = reflector::reflector(
        networks_writer,
        watcher(networks_api, watcher::Config::default()),
    )
    .default_backoff()
    .applied_objects()
    .predicate_filter(network_trigger_hash, PredicateConfig::default());
    let (services, services_writer) = reflector::store();
    let service_stream = reflector::reflector(
        services_writer,
        watcher(services_api, watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();

    let member_controller = Controller::new(members_api.clone(), watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(8));
    let members = member_controller.store();
    let shutdown_claims = shutdown.clone();
    // Claims are checked against every namespace's networks: serving one namespace, the
    // controller's store lacks the others, so they get a watch of their own where RBAC lets
    // this operator watch them (else only its own namespace's are known, as a list would be).
    // Sharded, the controllers' hub client writes only within a shard: ask with the
    // registry's (unfenced) one; the review writes nothing.
    let registry_hub = shards.as_ref().map_or(&hub, |s| &s.registry_hub).clone();
    let watch_all = match &settings.namespace {
        None => false,
        Some(_) => may_watch_all_networks(&registry_hub).await,
    };
    let (claims, claims_watch) = match watch_all {
        false => (networks.clone(), None),
        true => {
            let (store, writer) = reflector::store();
            let all: Api<FederatedNetwork> = Api::all(hub.clone());
            let stream = reflector::reflector(writer, watcher(all, watcher::Config::default()))
                .default_backoff()
                .for_each(|_| futures::future::ready(()));
            (store, Some(stream))
        }
    };
    let claims_watch = async move {
        if let Some(stream) = claims_watch {
            tokio::select! {
                () = stream => {}
                () = shutdown_claims.cancelled() => {}
            }
        }
    };
    let caches = Caches {
        hub: HubStores {
            members: members.clone(),
            services,
            networks: claims,
        },
        members: Arc::new(MemberCache::new()),
    };
    let base = core_context(&hub, &registry_hub, &settings, &metrics, &fence, &caches);
    let shards = shards.map(|routing| shard_contexts(&base, routing, &settings, &metrics));
    let acquired = shards
        .as_ref()
        .map(|s| (s.routing.owned.clone(), s.routing.count));
    let core = Arc::new(base);
    let registry = core.registry.clone();
    let ctx = Arc::new(OperatorContext {
        core,
        metrics: metrics.clone(),
        shards,
    });

    let (trigger_tx, trigger_rx) = tokio::sync::mpsc::unbounded_channel();
    let member_triggers = futures::stream::unfold(trigger_rx, |mut rx| async move {
        rx.recv().await.map(|r| (r, rx))
    });
    // Sharded: a shard's networks are reconciled as soon as it is acquired.
    let member_triggers = match acquired.clone() {
        Some((owned, count)) => futures::stream::select(
            member_triggers,
            on_acquired(owned, networks.clone(), move |n: &FederatedNetwork| {
                network_shard(&n.namespace().unwrap_or_default(), &n.name_any(), count)
            })
            .boxed(),
        )
        .boxed(),
        None => member_triggers.boxed(),
    };
    let users_of = networks.clone();
    let network_controller = Controller::for_stream(network_stream, networks.clone())
        .with_config(controller_config.clone())
        .watches_stream(service_stream, |svc| {
            let ns = svc.namespace()?;
            Some(ObjectRef::<FederatedNetwork>::new(&svc.spec.network).within(&ns))
        })
        // Only the networks that use the member (its status flips re-plan them); one that just
        // stopped selecting it still records it in its inventory.
        .watches(members_api, watcher::Config::default(), move |member| {
            users_of
                .state()
                .iter()
                .filter(|n| network_uses(n, &member))
                .map(|n| ObjectRef::from_obj(n.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_on(member_triggers)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(
            reconcile_network_measured,
            network_error_policy,
            ctx.clone(),
        )
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => debug!(network = %obj, "reconciled"),
                Err(e) => debug!(error = %e, "network controller"),
            }
        });

    // Sharded: a shard's members are probed as soon as it is acquired.
    let member_acquired = match acquired {
        Some((owned, count)) => on_acquired(owned, members.clone(), move |m: &MemberCluster| {
            member_shard(&m.name_any(), count)
        })
        .boxed(),
        None => futures::stream::empty().boxed(),
    };
    let member_controller = member_controller
        .reconcile_on(member_acquired)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile_member_measured, member_error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => debug!(member = %obj, "probed"),
                Err(e) => debug!(error = %e, "member controller"),
            }
        });

    let watches = MemberWatches {
        registry,
        cache: caches.members.clone(),
        members: members.clone(),
        networks: networks.clone(),
        backends: backend_watches(&ctx.core.engines),
        trigger: trigger_tx,
        metrics: metrics.clone(),
    };

    metrics.set_caches(Some(networks.clone()), Some(members.clone()));
    let readiness = wait_synced(networks, members, synced, shutdown.clone());
    info!(namespace = ?settings.namespace, "controllers started");
    tokio::join!(
        network_controller,
        member_controller,
        watches.run(shutdown.clone()),
        readiness,
        claims_watch
    );
    metrics.set_caches(None, None);
    info!("controllers stopped");
}

/// Whether this operator may watch `FederatedNetwork`s in every namespace (asked once, with a
/// SelfSubjectAccessReview, which every authenticated identity may create).
async fn may_watch_all_networks(hub: &Client) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("fednet.io".into()),
                resource: Some("federatednetworks".into()),
                verb: Some("watch".into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    match Api::<SelfSubjectAccessReview>::all(hub.clone())
        .create(&kube::api::PostParams::default(), &review)
        .await
    {
        Ok(answer) => answer.status.is_some_and(|s| s.allowed),
        Err(e) => {
            warn!(error = %e, "cannot tell whether networks may be watched in every namespace; claims use this namespace's");
            false
        }
    }
}

async fn wait_synced(
    networks: Store<FederatedNetwork>,
    members: Store<MemberCluster>,
    synced: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let both = async {
        let (a, b) = tokio::join!(networks.wait_until_ready(), members.wait_until_ready());
        a.is_ok() && b.is_ok()
    };
    tokio::select! {
        () = shutdown.cancelled() => {}
        ok = both => if ok {
            info!("caches synced");
            synced.send_replace(true);
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_writes_do_not_retrigger_a_network() {
        let mut net: FederatedNetwork = serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
            "metadata": {"name": "n", "namespace": "ns", "generation": 1},
            "spec": {"backend": {"type": "Skupper"}, "members": {"names": ["a"]},
                     "namespaces": ["x"], "topology": {"type": "FullMesh"}}
        }))
        .unwrap();
        let before = network_trigger_hash(&net);
        net.status = Some(Default::default());
        assert_eq!(network_trigger_hash(&net), before);
        net.metadata.finalizers = Some(vec!["fednet.io/teardown".into()]);
        let with_finalizer = network_trigger_hash(&net);
        assert_ne!(with_finalizer, before);
        net.metadata.generation = Some(2);
        assert_ne!(network_trigger_hash(&net), with_finalizer);
    }
}

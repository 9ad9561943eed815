//! The kube-runtime controllers on the hub, and the member watches that feed them.
//!
//! - `FederatedNetwork`: [`reconcile_network`] + [`error_policy`]. Triggered by its own spec,
//!   finalizer and deletion changes (status writes are filtered out, so writing a status does
//!   not cause another pass), by its `FederatedService`s, by any `MemberCluster` change
//!   (reachability flips re-plan every network), and by member watches.
//! - `MemberCluster`: [`reconcile_member`] (probe and status).
//!
//! Everything here writes, so it runs only while this replica leads, and every write is
//! fenced on leadership ([`crate::fence`]): member writes through [`FencedBackend`], hub
//! writes through the fenced hub client the caller passes.

use crate::config::Tuning;
use crate::fence::Fence;
use crate::fenced_backend::FencedBackend;
use crate::hub_client::user_agent;
use crate::measured_backend::MeasuredBackend;
use crate::member_watch::{BackendWatch, MemberWatches};
use crate::metrics::Metrics;
use federation_core::api::{BackendKind, FederatedNetwork, FederatedService, MemberCluster};
use federation_core::backend::NetworkBackend;
use federation_core::cluster::MemberRegistry;
use federation_core::controller::{
    Context, ControllerError, Timing, error_policy, reconcile_member, reconcile_network,
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
}

/// Builds the core context: member registry (its clients name this replica in their
/// User-Agent), one engine per served backend (writes fenced on `fence`, then measured), an
/// Event recorder and the timings.
pub fn core_context(
    hub: &Client,
    settings: &ControllerSettings,
    metrics: &Metrics,
    fence: &Fence,
) -> Context {
    let registry =
        Arc::new(MemberRegistry::new(hub.clone()).with_user_agent(user_agent(&settings.identity)));
    let t = &settings.tuning;
    let engine = |backend: Arc<dyn NetworkBackend>| {
        let measured = MeasuredBackend::new(backend, metrics.clone());
        // The fence is outermost: a refused write is not counted as sent.
        let fenced = FencedBackend::new(Arc::new(measured), fence.clone());
        Engine::new(
            Arc::new(fenced),
            EngineConfig {
                concurrency: t.member_concurrency.max(1),
                target_timeout: t.target_timeout,
                ..EngineConfig::default()
            },
        )
    };
    let engines = BTreeMap::from([
        (
            BackendKind::Skupper,
            engine(Arc::new(SkupperBackend::new(registry.clone()))),
        ),
        (
            BackendKind::Submariner,
            engine(Arc::new(SubmarinerBackend::new(registry.clone()))),
        ),
        // SD-WAN networks reach their controller with the token in their Secret on the hub.
        (
            BackendKind::SdWan,
            engine(Arc::new(SdwanBackend::new(Arc::new(
                HubAccessResolver::new(hub.clone()),
            )))),
        ),
    ]);
    let mut ctx = Context::new(hub.clone(), registry, engines);
    ctx.recorder = Some(Recorder::new(
        hub.clone(),
        Reporter {
            controller: CONTROLLER_NAME.to_owned(),
            instance: Some(settings.identity.clone()),
        },
    ));
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
    let started = Instant::now();
    let network = format!("{}/{}", net.namespace().unwrap_or_default(), net.name_any());
    let result = reconcile_network(net, ctx.core.clone()).await;
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
    let started = Instant::now();
    let result = reconcile_member(member, ctx.core.clone()).await;
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
    } = run;
    let core = Arc::new(core_context(&hub, &settings, &metrics, &fence));
    let registry = core.registry.clone();
    let ctx = Arc::new(OperatorContext {
        core,
        metrics: metrics.clone(),
    });
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

    let (trigger_tx, trigger_rx) = tokio::sync::mpsc::unbounded_channel();
    let member_triggers = futures::stream::unfold(trigger_rx, |mut rx| async move {
        rx.recv().await.map(|r| (r, rx))
    });
    let all_networks = networks.clone();
    let network_controller = Controller::for_stream(network_stream, networks.clone())
        .with_config(controller_config.clone())
        .watches(services_api, watcher::Config::default(), |svc| {
            let ns = svc.namespace()?;
            Some(ObjectRef::<FederatedNetwork>::new(&svc.spec.network).within(&ns))
        })
        .watches(members_api.clone(), watcher::Config::default(), move |_| {
            all_networks
                .state()
                .iter()
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

    let member_controller = Controller::new(members_api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(8));
    let members = member_controller.store();
    let member_controller = member_controller
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
        readiness
    );
    metrics.set_caches(None, None);
    info!("controllers stopped");
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

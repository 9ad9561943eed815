//! Watches on member clusters for the objects the backends own, so that drift and status
//! changes (a Site turning Ready, a Link going down, someone editing a Listener) trigger a
//! reconcile of the owning network at once instead of at the next periodic requeue.
//!
//! # Expected flow
//! [`MemberWatches::run`] follows the `MemberCluster` cache of the member controller: for
//! every member it starts one task that gets the member's client from the registry and
//! watches each owned kind with the ownership label selector, in each namespace a network
//! spans or recorded in its inventory (never cluster-wide: namespaced Roles suffice). An event's
//! `fednet.io/network` label names the network to reconcile. Members that appear get a
//! task; members that disappear, or whose kubeconfig reference changes, have theirs stopped
//! (and restarted).
//!
//! # Guarantees
//! - A member that does not answer blocks nothing: each member's watches run in their own
//!   task, and nothing waits for them (not the controllers, not readiness).
//! - A member whose watches keep failing (credentials rotated, server restarted) gets a new
//!   client from its Secret, with exponential backoff between attempts.
//!
//! # Caveats
//! Watches only speed things up: a missed event is still caught by the periodic requeue.

use crate::metrics::{MemberLabels, Metrics};
use federation_core::api::{
    BackendKind, FederatedNetwork, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MemberCluster, NETWORK_LABEL,
};
use federation_core::cluster::MemberRegistry;
use federation_core::controller::inventory_uses_member;
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::NetworkRef;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// Consecutive errors of every watched kind after which a member's client is rebuilt from
/// its Secret.
const ERRORS_BEFORE_RECONNECT: u32 = 5;
/// How often the member cache is compared with the running watches.
const RESYNC: Duration = Duration::from_secs(1);

/// The networks an object labelled `fednet.io/network=<value>` belongs to.
///
/// The value is matched against each known network's label value, which covers both the
/// plain `<namespace>.<name>` form and the hashed form of long names. When no known network
/// matches, a value in the hashed form (more than 52 characters ending in `-` and ten hex
/// digits) cannot be decoded, so every network is reconciled as a safe fallback; any other
/// value names a network that does not exist (any more): nothing to do.
pub fn networks_for_label(
    value: &str,
    networks: &[Arc<FederatedNetwork>],
) -> Vec<ObjectRef<FederatedNetwork>> {
    let exact: Vec<ObjectRef<FederatedNetwork>> = networks
        .iter()
        .filter(|n| NetworkRef::of(n).label_value() == value)
        .map(|n| ObjectRef::from_obj(n.as_ref()))
        .collect();
    if !exact.is_empty() || !looks_hashed(value) {
        return exact;
    }
    networks
        .iter()
        .map(|n| ObjectRef::from_obj(n.as_ref()))
        .collect()
}

/// Whether a label value has the shape `NetworkRef::label_value` gives long names.
fn looks_hashed(value: &str) -> bool {
    value.len() > 52
        && value.rsplit_once('-').is_some_and(|(_, hash)| {
            hash.len() == 10
                && hash
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

/// What identifies a member's watch: a change restarts it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WatchKey {
    uid: Option<String>,
    secret: String,
    plan: WatchPlan,
}

impl WatchKey {
    fn of(member: &MemberCluster, plan: &WatchPlan) -> Self {
        let r = &member.spec.kubeconfig_secret_ref;
        Self {
            uid: member.uid(),
            secret: format!("{}/{}/{}", r.namespace, r.name, r.key_or_default()),
            plan: plan.clone(),
        }
    }
}

/// What to watch in one member: the kinds of the backends of the networks that use it, in
/// the namespaces those networks span or recorded (and the backends' own namespaces).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchPlan {
    /// Kinds, each once.
    pub kinds: Vec<ManagedKind>,
    /// Namespaces for the namespaced kinds.
    pub namespaces: BTreeSet<String>,
}

/// Per backend: the kinds it owns in members, and the fixed namespaces it writes in.
#[derive(Clone, Debug, Default)]
pub struct BackendWatch {
    /// Kinds.
    pub kinds: Vec<ManagedKind>,
    /// Fixed namespaces (from its member access).
    pub namespaces: BTreeSet<String>,
}

/// What to watch in `member`: only what the networks that use it (named in their spec or
/// recorded in their inventory, as a member or a broker) can own there. A member no network
/// uses is not watched; a Skupper member is never asked for Submariner's kinds, which its
/// identity may not read.
pub fn watch_plan(
    member: &str,
    networks: &[Arc<FederatedNetwork>],
    backends: &BTreeMap<BackendKind, BackendWatch>,
) -> WatchPlan {
    let mut plan = WatchPlan::default();
    for n in networks {
        let inventory = n.status.as_ref().and_then(|s| s.inventory.as_ref());
        let named = n.spec.members.names.iter().any(|m| m == member);
        if !named && !inventory_uses_member(inventory, member) {
            continue;
        }
        let kind = inventory.map_or(n.spec.backend.kind, |i| i.backend);
        let Some(backend) = backends.get(&kind) else {
            continue;
        };
        for k in &backend.kinds {
            if !plan.kinds.contains(k) {
                plan.kinds.push(k.clone());
            }
        }
        plan.namespaces.extend(backend.namespaces.iter().cloned());
        plan.namespaces.extend(n.spec.namespaces.iter().cloned());
        plan.namespaces
            .extend(inventory.iter().flat_map(|i| i.namespaces.iter().cloned()));
    }
    plan
}

/// Aborts the task when dropped.
struct Running {
    key: WatchKey,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts and stops the member watches.
pub struct MemberWatches {
    /// Member clients.
    pub registry: Arc<MemberRegistry>,
    /// The member controller's cache.
    pub members: Store<MemberCluster>,
    /// The network controller's cache.
    pub networks: Store<FederatedNetwork>,
    /// What each backend owns in members.
    pub backends: BTreeMap<BackendKind, BackendWatch>,
    /// Where network reconcile requests go.
    pub trigger: UnboundedSender<ObjectRef<FederatedNetwork>>,
    /// Metrics.
    pub metrics: Metrics,
}

impl MemberWatches {
    /// Runs until `shutdown` is cancelled; stops every member watch on the way out.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut running: HashMap<String, Running> = HashMap::new();
        loop {
            let networks = this.networks.state();
            let wanted: HashMap<String, Arc<MemberCluster>> = this
                .members
                .state()
                .into_iter()
                .filter(|m| m.metadata.deletion_timestamp.is_none())
                .map(|m| (m.name_any(), m))
                .collect();
            let plans: HashMap<String, WatchPlan> = wanted
                .keys()
                .map(|name| (name.clone(), watch_plan(name, &networks, &this.backends)))
                .filter(|(_, plan)| !plan.kinds.is_empty())
                .collect();
            running.retain(|name, r| {
                let keep = wanted
                    .get(name)
                    .zip(plans.get(name))
                    .is_some_and(|(m, plan)| WatchKey::of(m, plan) == r.key);
                if !keep {
                    info!(member = %name, "stopping member watch");
                }
                keep
            });
            for (name, member) in wanted {
                let Some(plan) = plans.get(&name) else {
                    continue;
                };
                if running.contains_key(&name) {
                    continue;
                }
                info!(member = %name, "starting member watch");
                let key = WatchKey::of(&member, plan);
                let task = tokio::spawn(this.clone().watch_member(member, plan.clone()));
                running.insert(name, Running { key, task });
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
        drop(running);
    }

    /// Watches one member until aborted, reconnecting with backoff.
    async fn watch_member(self: Arc<Self>, member: Arc<MemberCluster>, plan: WatchPlan) {
        let name = member.name_any();
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.registry.client(&member).await {
                Ok(client) => {
                    if self.watch_with(&name, client, &plan).await {
                        backoff = Duration::from_secs(1);
                    }
                }
                Err(e) => debug!(member = %name, error = %e, "no client for member watch"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    /// Runs the watches on one client until they keep failing; returns whether any event
    /// arrived (the connection worked at some point).
    async fn watch_with(&self, member: &str, client: Client, plan: &WatchPlan) -> bool {
        let namespaces = &plan.namespaces;
        let selector = format!("{NETWORK_LABEL},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
        let config = watcher::Config::default().labels(&selector);
        // Namespaced kinds in each namespace, cluster-scoped ones once.
        let pairs: Vec<(Option<&String>, &ManagedKind)> = plan
            .kinds
            .iter()
            .flat_map(|k| {
                let places: Vec<Option<&String>> = if k.namespaced {
                    namespaces.iter().map(Some).collect()
                } else {
                    vec![None]
                };
                places.into_iter().map(move |ns| (ns, k))
            })
            .collect();
        let streams = pairs.iter().enumerate().map(|(i, (ns, kind))| {
            let api: Api<DynamicObject> = match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource()),
                None => Api::all_with(client.clone(), &kind.resource()),
            };
            watcher(api, config.clone())
                .default_backoff()
                .map(move |event| (i, event))
                .boxed()
        });
        let mut events = futures::stream::select_all(streams);
        // A handle, not the family's guard: it is held across awaits.
        let counter = self
            .metrics
            .member_watch_events
            .get_or_create(&MemberLabels {
                member: member.to_owned(),
            })
            .clone();
        let mut worked = false;
        // Consecutive errors per kind: one kind failing (its CRD is missing, say) must not
        // tear down the others; all of them failing means the connection is bad.
        let mut errors = vec![0u32; pairs.len()];
        while let Some((i, event)) = events.next().await {
            match event {
                Ok(event) => {
                    worked = true;
                    if let Some(e) = errors.get_mut(i) {
                        *e = 0;
                    }
                    if let Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) = event {
                        counter.inc();
                        self.trigger_owner(member, &o);
                    }
                }
                Err(e) => {
                    if let Some(count) = errors.get_mut(i) {
                        *count += 1;
                    }
                    debug!(%member, error = %e, "member watch error");
                    if errors.iter().all(|&n| n >= ERRORS_BEFORE_RECONNECT) {
                        info!(%member, "member watches keep failing; reconnecting");
                        break;
                    }
                }
            }
        }
        worked
    }

    fn trigger_owner(&self, member: &str, object: &DynamicObject) {
        let Some(value) = object.labels().get(NETWORK_LABEL) else {
            return;
        };
        for network in networks_for_label(value, &self.networks.state()) {
            debug!(%member, %network, object = %object.name_any(), "member change");
            // The receiver is gone only when the controllers stop.
            let _ = self.trigger.send(network);
        }
    }
}

fn watcher(
    api: Api<DynamicObject>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send {
    watcher::watcher(api, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn network(ns: &str, name: &str) -> Arc<FederatedNetwork> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"backend": {"type": "Skupper"}, "members": {"names": ["a"]},
                         "namespaces": ["x"], "topology": {"type": "FullMesh"}}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn labels_map_back_to_their_network() {
        let long_name = "n".repeat(60);
        let nets = vec![
            network("shop", "prod"),
            network("shop", "dev"),
            network("team", &long_name),
        ];
        let names = |refs: Vec<ObjectRef<FederatedNetwork>>| {
            refs.into_iter()
                .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(networks_for_label("shop.prod", &nets)), ["shop/prod"]);
        // The hashed value of a long name still finds its network.
        let hashed = NetworkRef::new("team", long_name.clone()).label_value();
        assert_ne!(hashed, format!("team.{long_name}"));
        assert_eq!(
            names(networks_for_label(&hashed, &nets)),
            [format!("team/{long_name}")]
        );
        // A plain value of a network that does not exist: nothing to reconcile.
        assert!(networks_for_label("shop.gone", &nets).is_empty());
        // A hashed value nobody matches: every network, to be safe.
        let unknown = NetworkRef::new("other", "x".repeat(70)).label_value();
        assert_eq!(networks_for_label(&unknown, &nets).len(), 3);
    }

    #[test]
    fn a_member_is_watched_only_for_the_networks_that_use_it() {
        let skupper_net = network("shop", "prod");
        let mut submariner_net: FederatedNetwork = serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
            "metadata": {"name": "l3", "namespace": "shop"},
            "spec": {"backend": {"type": "Submariner", "submariner": {"broker": "b"}},
                     "members": {"selector": {}}, "namespaces": ["apps"],
                     "topology": {"type": "FullMesh"}},
            "status": {"inventory": {"backend": "Submariner",
                       "targets": [{"type": "Broker", "name": "b"}], "namespaces": ["old"]}}
        }))
        .unwrap();
        submariner_net.metadata.uid = Some("u".into());
        let networks = vec![skupper_net, Arc::new(submariner_net)];
        let backends = BTreeMap::from([
            (
                BackendKind::Skupper,
                BackendWatch {
                    kinds: federation_skupper::kinds::OWNED.to_vec(),
                    namespaces: BTreeSet::new(),
                },
            ),
            (
                BackendKind::Submariner,
                BackendWatch {
                    kinds: federation_submariner::kinds::BROKER_OWNED.to_vec(),
                    namespaces: ["submariner-k8s-broker".to_owned()].into(),
                },
            ),
        ]);
        // a is named by the Skupper network: its kinds, in its namespace, nothing else.
        let a = watch_plan("a", &networks, &backends);
        assert_eq!(a.kinds, federation_skupper::kinds::OWNED.to_vec());
        assert_eq!(a.namespaces, BTreeSet::from(["x".to_owned()]));
        // b is the Submariner network's broker (its inventory says so).
        let b = watch_plan("b", &networks, &backends);
        assert_eq!(b.kinds, federation_submariner::kinds::BROKER_OWNED.to_vec());
        assert_eq!(
            b.namespaces,
            BTreeSet::from(["apps".into(), "old".into(), "submariner-k8s-broker".into()])
        );
        // c is used by nobody: not watched at all.
        assert_eq!(watch_plan("c", &networks, &backends), WatchPlan::default());
    }

    #[test]
    fn api_resources_of_managed_kinds() {
        let site = federation_skupper::kinds::SITE.resource();
        assert_eq!(
            (
                site.group.as_str(),
                site.version.as_str(),
                site.plural.as_str()
            ),
            ("skupper.io", "v2alpha1", "sites")
        );
        let secret = federation_skupper::kinds::SECRET.resource();
        assert_eq!((secret.group.as_str(), secret.version.as_str()), ("", "v1"));
    }
}

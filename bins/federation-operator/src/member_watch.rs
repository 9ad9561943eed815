//! Watches on member clusters for the objects the backends own. They feed the
//! [`MemberCache`] a pass reads instead of listing, and trigger a reconcile of the owning
//! network when something changes (a Site turning Ready, a Link going down, someone editing
//! a Listener), instead of waiting for the periodic requeue.
//!
//! # Expected flow
//! [`MemberWatches::run`] follows the hub caches: for every member some network uses (named,
//! selected, or recorded in its inventory) it keeps one watch per owned kind and namespace
//! (the namespaces those networks span or recorded, never cluster-wide: namespaced Roles
//! suffice), each with the ownership label selector and each feeding its slot of the cache.
//! A network that starts or stops using a namespace starts or stops only those watches. An
//! event's `fednet.io/network` label names the network to reconcile; a watch that completes a
//! list triggers every network using the member (its slot just became readable).
//!
//! # Guarantees
//! - A member that does not answer blocks nothing: every watch runs in its own task, and
//!   nothing waits for them (not the controllers, not readiness). Its slots stay unreadable,
//!   so passes freeze it rather than act on nothing.
//! - A watch that keeps failing (credentials rotated, server restarted) gets a new client from
//!   the registry, with exponential backoff between attempts.
//!
//! # Caveats
//! Changes of the hub caches are noticed within a second ([`RESYNC`]).

use crate::metrics::{MemberLabels, Metrics};
use federation_core::api::{
    BackendKind, FederatedNetwork, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MemberCluster, NETWORK_LABEL,
};
use federation_core::cluster::{CacheFeed, MemberCache, MemberRegistry, NamedObject};
use federation_core::controller::inventory_uses_member;
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::{NetworkRef, matches_selector};
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

/// Consecutive errors of one watch after which it gets a new client from the registry.
const ERRORS_BEFORE_RECONNECT: u32 = 5;
/// How often the hub caches are compared with the running watches.
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

/// Whether `network` uses `member`: names it, selects it by its labels, or records it in its
/// inventory (as a member or a broker). A selector that cannot be evaluated selects nothing
/// (the network's status says why).
pub fn network_uses(network: &FederatedNetwork, member: &MemberCluster) -> bool {
    let name = member.name_any();
    let members = &network.spec.members;
    members.names.contains(&name)
        || members
            .selector
            .as_ref()
            .is_some_and(|s| matches_selector(s, member.metadata.labels.as_ref()).unwrap_or(false))
        || inventory_uses_member(
            network.status.as_ref().and_then(|s| s.inventory.as_ref()),
            &name,
        )
}

/// What identifies a member's client: a change restarts all its watches.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClientKey {
    uid: Option<String>,
    secret: String,
}

impl ClientKey {
    fn of(member: &MemberCluster) -> Self {
        let r = &member.spec.kubeconfig_secret_ref;
        Self {
            uid: member.uid(),
            secret: format!("{}/{}/{}", r.namespace, r.name, r.key_or_default()),
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

impl WatchPlan {
    /// One slot per namespaced kind and namespace, one per cluster-scoped kind.
    fn slots(&self) -> BTreeSet<Slot> {
        self.kinds
            .iter()
            .flat_map(|k| {
                let places: Vec<Option<String>> = if k.namespaced {
                    self.namespaces.iter().cloned().map(Some).collect()
                } else {
                    vec![None]
                };
                places.into_iter().map(move |namespace| Slot {
                    kind: k.clone(),
                    namespace,
                    name: None,
                })
            })
            .collect()
    }
}

/// One watch: what fednet owns of a kind in a namespace (`None` for cluster-scoped kinds),
/// or, with a `name`, the one object a backend reads by that name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    kind: ManagedKind,
    namespace: Option<String>,
    name: Option<String>,
}

impl Slot {
    fn named(object: NamedObject) -> Self {
        Self {
            kind: object.kind,
            namespace: object.namespace,
            name: Some(object.name),
        }
    }

    fn feed(&self, cache: &MemberCache, member: &str) -> CacheFeed {
        match &self.name {
            None => cache.feed(member, &self.kind, self.namespace.as_deref()),
            Some(name) => cache.feed_named(
                member,
                &NamedObject {
                    kind: self.kind.clone(),
                    namespace: self.namespace.clone(),
                    name: name.clone(),
                },
            ),
        }
    }

    /// Owned objects are selected by fednet's labels; a named object by its name.
    fn watch_config(&self) -> watcher::Config {
        match &self.name {
            None => watcher::Config::default().labels(&format!(
                "{NETWORK_LABEL},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
            )),
            Some(name) => watcher::Config::default().fields(&format!("metadata.name={name}")),
        }
    }
}

/// Per backend: the kinds it owns in members, and the fixed namespaces it writes in.
#[derive(Clone, Debug, Default)]
pub struct BackendWatch {
    /// Kinds.
    pub kinds: Vec<ManagedKind>,
    /// Fixed namespaces (from its member access).
    pub namespaces: BTreeSet<String>,
}

/// What to watch in `member`: only what the networks that use it can own there. A member no
/// network uses is not watched; a Skupper member is never asked for Submariner's kinds, which
/// its identity may not read.
pub fn watch_plan(
    member: &MemberCluster,
    networks: &[Arc<FederatedNetwork>],
    backends: &BTreeMap<BackendKind, BackendWatch>,
) -> WatchPlan {
    let mut plan = WatchPlan::default();
    for n in networks.iter().filter(|n| network_uses(n, member)) {
        let inventory = n.status.as_ref().and_then(|s| s.inventory.as_ref());
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
struct Running(JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The watches of one member.
struct MemberRun {
    key: ClientKey,
    slots: BTreeMap<Slot, Running>,
}

/// Starts and stops the member watches.
pub struct MemberWatches {
    /// Member clients.
    pub registry: Arc<MemberRegistry>,
    /// Where the watches put what they see.
    pub cache: Arc<MemberCache>,
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
        let mut running: HashMap<String, MemberRun> = HashMap::new();
        loop {
            this.resync(&mut running);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
        for name in running.keys() {
            this.cache.forget_member(name);
        }
        drop(running);
    }

    /// Makes the running watches match what the hub caches say should be watched.
    fn resync(self: &Arc<Self>, running: &mut HashMap<String, MemberRun>) {
        let networks = self.networks.state();
        let wanted: HashMap<String, (Arc<MemberCluster>, BTreeSet<Slot>)> = self
            .members
            .state()
            .into_iter()
            .filter(|m| m.metadata.deletion_timestamp.is_none())
            .map(|m| {
                let slots = watch_plan(&m, &networks, &self.backends).slots();
                (m.name_any(), (m, slots))
            })
            .filter(|(_, (_, slots))| !slots.is_empty())
            // And what the backends read by name there.
            .map(|(name, (m, mut slots))| {
                slots.extend(self.cache.demanded(&name).into_iter().map(Slot::named));
                (name, (m, slots))
            })
            .collect();
        running.retain(|name, run| {
            let keep = wanted
                .get(name)
                .is_some_and(|(m, _)| ClientKey::of(m) == run.key);
            if !keep {
                info!(member = %name, "stopping member watches");
                self.cache.forget_member(name);
            }
            keep
        });
        for (name, (member, slots)) in wanted {
            let run = running.entry(name.clone()).or_insert_with(|| {
                info!(member = %name, "starting member watches");
                MemberRun {
                    key: ClientKey::of(&member),
                    slots: BTreeMap::new(),
                }
            });
            run.slots.retain(|slot, _| {
                let keep = slots.contains(slot);
                if !keep {
                    debug!(member = %name, kind = slot.kind.kind, namespace = ?slot.namespace, "stopping watch");
                    self.cache.forget_slot(
                        &name,
                        &slot.kind,
                        slot.namespace.as_deref(),
                        slot.name.as_deref(),
                    );
                }
                keep
            });
            for slot in slots {
                if run.slots.contains_key(&slot) {
                    continue;
                }
                let task = tokio::spawn(self.clone().watch_slot(member.clone(), slot.clone()));
                run.slots.insert(slot, Running(task));
            }
        }
    }

    /// Watches one kind in one namespace of a member until aborted, reconnecting with
    /// backoff.
    async fn watch_slot(self: Arc<Self>, member: Arc<MemberCluster>, slot: Slot) {
        let name = member.name_any();
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut feed = slot.feed(&self.cache, &name);
            match self.registry.client(&member).await {
                Ok(client) => {
                    if self.watch_with(&name, client, &slot, &mut feed).await {
                        backoff = Duration::from_secs(1);
                    }
                }
                Err(e) => {
                    feed.error(&e.to_string());
                    debug!(member = %name, error = %e, "no client for member watch");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    /// Feeds one slot from a watch on `client` until it keeps failing; returns whether any
    /// event arrived (the connection worked at some point).
    async fn watch_with(
        &self,
        member: &str,
        client: Client,
        slot: &Slot,
        feed: &mut CacheFeed,
    ) -> bool {
        let config = slot.watch_config();
        let resource = slot.kind.resource();
        let api: Api<DynamicObject> = match &slot.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        };
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        // A handle, not the family's guard: it is held across awaits.
        let counter = self
            .metrics
            .member_watch_events
            .get_or_create(&MemberLabels {
                member: member.to_owned(),
            })
            .clone();
        let mut worked = false;
        let mut errors = 0u32;
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    worked = true;
                    errors = 0;
                    let listed = feed.event(&event);
                    match &event {
                        Event::Apply(o) | Event::Delete(o) => {
                            counter.inc();
                            self.trigger_owner(member, o);
                        }
                        Event::InitDone if listed => self.trigger_users(member),
                        _ => {}
                    }
                }
                Err(e) => {
                    errors += 1;
                    feed.error(&e.to_string());
                    debug!(%member, kind = slot.kind.kind, error = %e, "member watch error");
                    if errors >= ERRORS_BEFORE_RECONNECT {
                        info!(%member, kind = slot.kind.kind, "member watch keeps failing; reconnecting");
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

    /// Reconciles every network using `member`: one of its slots just became readable.
    fn trigger_users(&self, member: &str) {
        let Some(m) = self.members.get(&ObjectRef::new(member)) else {
            return;
        };
        for n in self.networks.state() {
            if network_uses(&n, &m) {
                let _ = self.trigger.send(ObjectRef::from_obj(n.as_ref()));
            }
        }
    }
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

    fn member(name: &str, labels: &[(&str, &str)]) -> MemberCluster {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
            "metadata": {"name": name, "labels": labels},
            "spec": {"clusterId": name, "kubeconfigSecretRef": {"namespace": "fednet-system", "name": name}}
        }))
        .unwrap()
    }

    #[test]
    fn a_network_uses_the_members_it_names_selects_or_recorded() {
        let mut net = (*network("shop", "prod")).clone();
        assert!(network_uses(&net, &member("a", &[])));
        assert!(!network_uses(&net, &member("east", &[("region", "eu")])));
        net.spec.members.selector =
            Some(serde_json::from_value(json!({"matchLabels": {"region": "eu"}})).unwrap());
        assert!(network_uses(&net, &member("east", &[("region", "eu")])));
        assert!(!network_uses(&net, &member("west", &[("region", "us")])));
        net.status = Some(
            serde_json::from_value(json!({"inventory": {"backend": "Skupper",
            "targets": [{"type": "Member", "name": "west"}]}}))
            .unwrap(),
        );
        assert!(network_uses(&net, &member("west", &[("region", "us")])));
    }

    #[test]
    fn one_watch_per_namespaced_kind_and_namespace_and_per_cluster_kind() {
        let plan = WatchPlan {
            kinds: vec![
                ManagedKind::namespaced("skupper.io/v2alpha1", "Site", "sites"),
                ManagedKind::cluster_scoped("v1", "Namespace", "namespaces"),
            ],
            namespaces: ["x".to_owned(), "y".to_owned()].into(),
        };
        let slots: Vec<(&str, Option<String>)> = plan
            .slots()
            .into_iter()
            .map(|s| (s.kind.kind, s.namespace))
            .collect();
        assert_eq!(slots.len(), 3);
        assert!(slots.contains(&("Site", Some("x".into()))));
        assert!(slots.contains(&("Site", Some("y".into()))));
        assert!(slots.contains(&("Namespace", None)));
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
                     "members": {"selector": {"matchLabels": {"l3": "yes"}}}, "namespaces": ["apps"],
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
        let a = watch_plan(&member("a", &[]), &networks, &backends);
        assert_eq!(a.kinds, federation_skupper::kinds::OWNED.to_vec());
        assert_eq!(a.namespaces, BTreeSet::from(["x".to_owned()]));
        // b is the Submariner network's broker (its inventory says so).
        let b = watch_plan(&member("b", &[]), &networks, &backends);
        assert_eq!(b.kinds, federation_submariner::kinds::BROKER_OWNED.to_vec());
        assert_eq!(
            b.namespaces,
            BTreeSet::from(["apps".into(), "old".into(), "submariner-k8s-broker".into()])
        );
        // c is used by nobody: not watched at all.
        assert_eq!(
            watch_plan(&member("c", &[]), &networks, &backends),
            WatchPlan::default()
        );
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

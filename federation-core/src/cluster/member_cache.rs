//! In-memory copies of what fednet owns in member clusters, fed by watches, so that a pass
//! reads members without a single request.
//!
//! # Expected flow
//! The operator's member watches call [`MemberCache::feed`] once per member, kind and
//! namespace they watch, and hand every watch event to the returned [`CacheFeed`]. Backends
//! read through [`crate::kubernetes::list_owned_via`], which asks the registry's cache (when
//! the registry has one) instead of listing.
//!
//! Objects fednet does not own but reads by name (the Secret Skupper's controller writes for a
//! Certificate, say) are read through [`MemberCache::get_named`]: the first read of a name is
//! not cached and records the demand ([`MemberCache::demanded`]); the member watches then
//! watch that one object (a field selector on its name), and later reads are answered from
//! there.
//!
//! # Guarantees
//! - A slot answers only once its watch has delivered a complete list (`InitDone`) and until
//!   the watch reports an error: a member just registered, a kind not watched (yet) or a
//!   broken watch is [`NotCached`], which backends turn into "could not be read", so the
//!   engine freezes the target instead of acting on a partial picture.
//! - A feed replaced by a newer one (the watch restarted) writes into a store nobody reads
//!   any more: a late event of an old watch cannot overwrite the new one's picture.
//!
//! # Caveats
//! A watch whose server stopped answering without closing the connection (a paused API
//! server) reports nothing: its slot keeps the last picture. The member probe is what notices
//! such a member, and the engine skips members whose probe failed.

use crate::kubernetes::ManagedKind;
use kube::api::DynamicObject;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::watcher::Event;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

/// Which slot: a kind in a namespace (`None` for cluster-scoped kinds), either what fednet
/// owns there (`name` is `None`) or the one object of that name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
struct SlotKey {
    api_version: &'static str,
    kind: &'static str,
    namespace: Option<String>,
    name: Option<String>,
}

impl SlotKey {
    fn new(kind: &ManagedKind, namespace: Option<&str>, name: Option<&str>) -> Self {
        Self {
            api_version: kind.api_version,
            kind: kind.kind,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }
}

/// An object a backend reads by name: a kind, a namespace (`None` when cluster-scoped) and
/// a name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct NamedObject {
    /// Kind.
    pub kind: ManagedKind,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// Whether a slot can be read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SlotState {
    /// The watch has not delivered a complete list yet.
    Syncing,
    /// The store holds the watch's picture.
    Synced,
    /// The watch reported this error and has not recovered.
    Broken(String),
}

#[derive(Clone)]
struct Slot {
    store: Store<DynamicObject>,
    state: Arc<RwLock<SlotState>>,
}

/// Why the cache cannot answer for a member, kind and namespace.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotCached {
    /// Nothing watches that kind there (yet).
    #[error("{kind}{} is not watched in member {member} yet", in_namespace(.namespace))]
    NotWatched {
        /// Member.
        member: String,
        /// `apiVersion/kind`.
        kind: String,
        /// Namespace, for namespaced kinds.
        namespace: Option<String>,
    },
    /// The watch has not delivered a complete list yet.
    #[error("the watch of {kind}{} in member {member} has not synced yet", in_namespace(.namespace))]
    Syncing {
        /// Member.
        member: String,
        /// `apiVersion/kind`.
        kind: String,
        /// Namespace, for namespaced kinds.
        namespace: Option<String>,
    },
    /// The watch is failing.
    #[error("the watch of {kind}{} in member {member} is failing: {reason}", in_namespace(.namespace))]
    Broken {
        /// Member.
        member: String,
        /// `apiVersion/kind`.
        kind: String,
        /// Namespace, for namespaced kinds.
        namespace: Option<String>,
        /// The watch's last error.
        reason: String,
    },
}

fn in_namespace(namespace: &Option<String>) -> String {
    namespace
        .as_ref()
        .map(|ns| format!(" in namespace {ns}"))
        .unwrap_or_default()
}

/// Owned objects of every watched member, kind and namespace.
#[derive(Default)]
pub struct MemberCache {
    members: RwLock<HashMap<String, HashMap<SlotKey, Slot>>>,
    demands: RwLock<HashMap<String, BTreeSet<NamedObject>>>,
}

impl std::fmt::Debug for MemberCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemberCache")
            .field("members", &members.len())
            .finish()
    }
}

impl MemberCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a fresh slot for what fednet owns of `kind` in `namespace` of `member`
    /// (replacing any older one) and returns what feeds it. The slot answers once the feed
    /// saw a complete list.
    pub fn feed(&self, member: &str, kind: &ManagedKind, namespace: Option<&str>) -> CacheFeed {
        self.feed_slot(member, SlotKey::new(kind, namespace, None), kind)
    }

    /// As [`MemberCache::feed`], for the one object `named`.
    pub fn feed_named(&self, member: &str, named: &NamedObject) -> CacheFeed {
        let key = SlotKey::new(
            &named.kind,
            named.namespace.as_deref(),
            Some(named.name.as_str()),
        );
        self.feed_slot(member, key, &named.kind)
    }

    fn feed_slot(&self, member: &str, key: SlotKey, kind: &ManagedKind) -> CacheFeed {
        let writer = Writer::new(kind.resource());
        let state = Arc::new(RwLock::new(SlotState::Syncing));
        let slot = Slot {
            store: writer.as_reader(),
            state: state.clone(),
        };
        self.members
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(member.to_owned())
            .or_default()
            .insert(key, slot);
        CacheFeed { writer, state }
    }

    /// Forgets one slot (its watch stopped on purpose): the owned objects of `kind` in
    /// `namespace`, or the one object `name`.
    pub fn forget_slot(
        &self,
        member: &str,
        kind: &ManagedKind,
        namespace: Option<&str>,
        name: Option<&str>,
    ) {
        let mut members = self.members.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slots) = members.get_mut(member) {
            slots.remove(&SlotKey::new(kind, namespace, name));
            if slots.is_empty() {
                members.remove(member);
            }
        }
    }

    /// Forgets everything about a member (it is no longer watched), its demands included.
    pub fn forget_member(&self, member: &str) {
        self.members
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(member);
        self.demands
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(member);
    }

    /// The object `named` in `member` (`None`: it does not exist), from its watch.
    ///
    /// # Errors
    /// [`NotCached`] when that object is not watched (the demand is then recorded, for the
    /// member watches to start one), not synced, or its watch is failing: the caller reads it
    /// from the API server instead.
    pub fn get_named(
        &self,
        member: &str,
        named: &NamedObject,
    ) -> Result<Option<Arc<DynamicObject>>, NotCached> {
        let key = SlotKey::new(
            &named.kind,
            named.namespace.as_deref(),
            Some(named.name.as_str()),
        );
        let slot = self
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(member)
            .and_then(|slots| slots.get(&key))
            .cloned();
        let Some(slot) = slot else {
            self.demands
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(member.to_owned())
                .or_default()
                .insert(named.clone());
            return Err(NotCached::NotWatched {
                member: member.to_owned(),
                kind: format!("{}/{}", named.kind.api_version, named.kind.kind),
                namespace: named.namespace.clone(),
            });
        };
        Self::readable(&slot, member, &named.kind, named.namespace.as_deref())?;
        Ok(slot.store.state().into_iter().next())
    }

    /// The objects read by name in `member` so far, for the member watches to watch.
    pub fn demanded(&self, member: &str) -> BTreeSet<NamedObject> {
        self.demands
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(member)
            .cloned()
            .unwrap_or_default()
    }

    /// The objects of `kind` in `namespace` of `member` whose `label` is `value`.
    ///
    /// # Errors
    /// [`NotCached`] when that slot is not watched, not synced, or its watch is failing.
    pub fn list(
        &self,
        member: &str,
        kind: &ManagedKind,
        namespace: Option<&str>,
        label: (&str, &str),
    ) -> Result<Vec<Arc<DynamicObject>>, NotCached> {
        let slot = self
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(member)
            .and_then(|slots| slots.get(&SlotKey::new(kind, namespace, None)))
            .cloned()
            .ok_or_else(|| NotCached::NotWatched {
                member: member.to_owned(),
                kind: format!("{}/{}", kind.api_version, kind.kind),
                namespace: namespace.map(str::to_owned),
            })?;
        Self::readable(&slot, member, kind, namespace)?;
        let (key, value) = label;
        Ok(slot.store.state_filter(|o| {
            o.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .is_some_and(|v| v == value)
        }))
    }

    fn readable(
        slot: &Slot,
        member: &str,
        kind: &ManagedKind,
        namespace: Option<&str>,
    ) -> Result<(), NotCached> {
        let kind_name = || format!("{}/{}", kind.api_version, kind.kind);
        let state = slot
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match state {
            SlotState::Synced => {}
            SlotState::Syncing => {
                return Err(NotCached::Syncing {
                    member: member.to_owned(),
                    kind: kind_name(),
                    namespace: namespace.map(str::to_owned),
                });
            }
            SlotState::Broken(reason) => {
                return Err(NotCached::Broken {
                    member: member.to_owned(),
                    kind: kind_name(),
                    namespace: namespace.map(str::to_owned),
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// Feeds one slot of a [`MemberCache`] from a watch.
pub struct CacheFeed {
    writer: Writer<DynamicObject>,
    state: Arc<RwLock<SlotState>>,
}

impl CacheFeed {
    /// Applies a watch event. Returns `true` when it completed a list: the slot just became
    /// readable (again).
    pub fn event(&mut self, event: &Event<DynamicObject>) -> bool {
        self.writer.apply_watcher_event(event);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::InitDone => {
                *state = SlotState::Synced;
                true
            }
            // A watch that restarts lists again: until that list is complete, the store still
            // holds the previous picture, which is whole, so it stays readable. A broken slot
            // recovers only through a complete list.
            Event::Init | Event::InitApply(_) | Event::Apply(_) | Event::Delete(_) => false,
        }
    }

    /// Records that the watch failed: the slot is unreadable until the watch lists again.
    pub fn error(&self, reason: &str) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) =
            SlotState::Broken(reason.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SITE: ManagedKind = ManagedKind::namespaced("skupper.io/v2alpha1", "Site", "sites");

    fn site(name: &str, network: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "skupper.io/v2alpha1", "kind": "Site",
            "metadata": {"name": name, "namespace": "apps",
                         "labels": {"fednet.io/network": network}}
        }))
        .unwrap()
    }

    fn names(objects: &[Arc<DynamicObject>]) -> Vec<String> {
        let mut n: Vec<String> = objects
            .iter()
            .map(|o| o.metadata.name.clone().unwrap_or_default())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_slot_answers_only_between_a_complete_list_and_an_error() {
        let cache = MemberCache::new();
        let label = ("fednet.io/network", "shop.prod");
        assert!(matches!(
            cache.list("a", &SITE, Some("apps"), label),
            Err(NotCached::NotWatched { .. })
        ));
        let mut feed = cache.feed("a", &SITE, Some("apps"));
        feed.event(&Event::Init);
        feed.event(&Event::InitApply(site("one", "shop.prod")));
        assert!(matches!(
            cache.list("a", &SITE, Some("apps"), label),
            Err(NotCached::Syncing { .. })
        ));
        assert!(feed.event(&Event::InitDone));
        feed.event(&Event::Apply(site("other", "shop.dev")));
        let listed = cache.list("a", &SITE, Some("apps"), label).unwrap();
        assert_eq!(names(&listed), ["one"]);
        // Another namespace of the same member is another slot.
        assert!(cache.list("a", &SITE, Some("web"), label).is_err());

        feed.error("connection refused");
        let err = cache.list("a", &SITE, Some("apps"), label).unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
        // Only a new complete list makes it readable again.
        feed.event(&Event::Apply(site("two", "shop.prod")));
        assert!(cache.list("a", &SITE, Some("apps"), label).is_err());
        feed.event(&Event::Init);
        feed.event(&Event::InitApply(site("two", "shop.prod")));
        feed.event(&Event::InitDone);
        let listed = cache.list("a", &SITE, Some("apps"), label).unwrap();
        assert_eq!(names(&listed), ["two"]);
    }

    #[test]
    fn a_named_read_records_its_demand_and_is_answered_once_watched() {
        const SECRET: ManagedKind = ManagedKind::namespaced("v1", "Secret", "secrets");
        let cache = MemberCache::new();
        let named = NamedObject {
            kind: SECRET,
            namespace: Some("apps".into()),
            name: "link-a-b".into(),
        };
        assert!(cache.get_named("a", &named).is_err());
        assert_eq!(cache.demanded("a"), BTreeSet::from([named.clone()]));
        assert!(cache.demanded("b").is_empty());
        let mut feed = cache.feed_named("a", &named);
        feed.event(&Event::Init);
        feed.event(&Event::InitDone);
        assert_eq!(cache.get_named("a", &named).unwrap(), None);
        let secret: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "link-a-b", "namespace": "apps"}
        }))
        .unwrap();
        feed.event(&Event::Apply(secret));
        assert!(cache.get_named("a", &named).unwrap().is_some());
        // Owned-object slots of the same kind are separate.
        assert!(cache.list("a", &SECRET, Some("apps"), ("x", "y")).is_err());
        cache.forget_member("a");
        assert!(cache.demanded("a").is_empty());
    }

    #[test]
    fn a_replaced_feed_cannot_change_the_new_picture() {
        let cache = MemberCache::new();
        let label = ("fednet.io/network", "shop.prod");
        let mut old = cache.feed("a", &SITE, Some("apps"));
        let mut new = cache.feed("a", &SITE, Some("apps"));
        new.event(&Event::Init);
        new.event(&Event::InitDone);
        old.event(&Event::Init);
        old.event(&Event::InitApply(site("stale", "shop.prod")));
        old.event(&Event::InitDone);
        old.error("late failure");
        assert!(
            cache
                .list("a", &SITE, Some("apps"), label)
                .unwrap()
                .is_empty()
        );
        cache.forget_member("a");
        assert!(matches!(
            cache.list("a", &SITE, Some("apps"), label),
            Err(NotCached::NotWatched { .. })
        ));
    }
}

//! The engine's guarantees under partial failure, against an in-memory backend whose faults
//! are set per test: unreadable targets, retained objects, refused objects, operations in
//! flight, teardown phases and members gone for good.

use super::*;
use crate::api::{BackendKind, TopologyKind};
use crate::backend::{Capabilities, Layer, LinkHealth, ObservedObject, Operation, ValidationIssue};
use crate::fixtures::{full_mesh, hub_spoke, network, plan_of};
use serde_json::json;
use std::sync::Mutex;

type Objects = BTreeMap<Target, BTreeMap<ObjectKey, serde_json::Value>>;

/// Sites in every member and a Link per planned link in the dialer, whose content comes
/// from the acceptor's Site: when the acceptor cannot be read, the Link is retained.
#[derive(Default)]
struct FakeBackend {
    objects: Mutex<Objects>,
    unreadable: Mutex<BTreeSet<Target>>,
    gone: BTreeSet<Target>,
    refused: BTreeSet<ObjectKey>,
    operations: Mutex<BTreeMap<Target, Vec<Operation>>>,
    /// Targets whose teardown phase is 1 (the others are 0).
    late: BTreeSet<Target>,
    /// Whether render follows the contract (retains what depends on unread targets).
    no_retain: bool,
    writes: Mutex<Vec<(Target, String)>>,
}

fn site(member: &str) -> ObjectKey {
    ObjectKey::namespaced("test/v1", "Site", "apps", member)
}

fn link(dialer: &str, acceptor: &str) -> ObjectKey {
    ObjectKey::namespaced(
        "test/v1",
        "Link",
        "apps",
        &format!("{dialer}-to-{acceptor}"),
    )
}

fn member(name: &str) -> Target {
    Target::Member(name.into())
}

fn config() -> EngineConfig {
    EngineConfig {
        concurrency: 4,
        target_timeout: Duration::from_secs(5),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    }
}

impl FakeBackend {
    fn keys(&self, target: &Target) -> BTreeSet<ObjectKey> {
        self.objects
            .lock()
            .unwrap()
            .get(target)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn writes(&self) -> Vec<(Target, String)> {
        self.writes.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl NetworkBackend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Skupper
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            layer: Layer::L7,
            overlapping_cidrs: true,
            link_costs: true,
            encryption: true,
            needs_broker: false,
            topologies: vec![TopologyKind::FullMesh, TopologyKind::HubSpoke],
            restricted_consumers: true,
        }
    }
    fn validate(&self, _plan: &NetworkPlan) -> Vec<ValidationIssue> {
        Vec::new()
    }
    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target> {
        plan.members.iter().map(|m| member(&m.name)).collect()
    }
    fn render(
        &self,
        plan: &NetworkPlan,
        observed: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError> {
        let mut desired = DesiredState::default();
        for m in &plan.members {
            desired.push(
                member(&m.name),
                DesiredObject::new(site(&m.name), json!({"spec": {"site": m.name}})),
            );
        }
        for l in &plan.topology.links {
            let key = link(&l.dialer, &l.acceptor);
            if observed.contains_key(&member(&l.acceptor)) {
                let body = json!({"spec": {"endpoint": l.acceptor, "cost": l.cost}});
                desired.push(member(&l.dialer), DesiredObject::new(key, body));
            } else if !self.no_retain {
                desired.retain(member(&l.dialer), key);
            }
        }
        Ok(desired)
    }
    fn assess(&self, plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
        // Read off the dialer only, as a backend would: its own Link says it works.
        let links = plan
            .topology
            .links
            .iter()
            .map(|l| {
                let up = observed
                    .get(&member(&l.dialer))
                    .is_some_and(|o| o.get(&link(&l.dialer, &l.acceptor)).is_some());
                LinkHealth {
                    dialer: l.dialer.clone(),
                    acceptor: l.acceptor.clone(),
                    namespace: "apps".into(),
                    phase: if up {
                        LinkPhase::Up
                    } else {
                        LinkPhase::Pending
                    },
                    message: None,
                }
            })
            .collect();
        Health {
            links,
            ..Health::default()
        }
    }
    async fn observe(&self, target: &Target, _: &ObserveScope) -> Result<Observed, BackendError> {
        if self.gone.contains(target) {
            return Err(BackendError::Gone {
                target: target.to_string(),
                reason: "no MemberCluster".into(),
            });
        }
        if self.unreadable.lock().unwrap().contains(target) {
            return Err(BackendError::Unreachable {
                target: target.to_string(),
                reason: "paused".into(),
            });
        }
        let objects = self
            .objects
            .lock()
            .unwrap()
            .get(target)
            .into_iter()
            .flatten()
            .map(|(key, body)| ObservedObject {
                key: key.clone(),
                body: body.clone(),
                owned: true,
            })
            .collect();
        let operations = self
            .operations
            .lock()
            .unwrap()
            .get(target)
            .cloned()
            .unwrap_or_default();
        Ok(Observed {
            objects,
            operations,
        })
    }
    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        for o in objects {
            if self.refused.contains(&o.key) {
                return Err(BackendError::NotOwned {
                    target: target.to_string(),
                    what: o.key.to_string(),
                    why: "it has no fednet.io/network label".into(),
                });
            }
            self.writes
                .lock()
                .unwrap()
                .push((target.clone(), format!("apply {}", o.key.name)));
            self.objects
                .lock()
                .unwrap()
                .entry(target.clone())
                .or_default()
                .insert(o.key.clone(), o.body.clone());
        }
        Ok(())
    }
    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        for d in objects {
            self.writes
                .lock()
                .unwrap()
                .push((target.clone(), format!("delete {}", d.key.name)));
            if let Some(m) = self.objects.lock().unwrap().get_mut(target) {
                m.remove(&d.key);
            }
        }
        Ok(())
    }
    fn waits_for_links(&self, key: &ObjectKey) -> bool {
        key.kind != "Listener"
    }
    fn teardown_phase(&self, target: &Target) -> u8 {
        u8::from(self.late.contains(target))
    }
}

fn targets(names: &[&str]) -> BTreeSet<Target> {
    names.iter().map(|m| member(m)).collect()
}

#[tokio::test]
async fn an_unreadable_hub_freezes_the_spokes_links() {
    let members = ["hub", "s1", "s2"];
    let plan = plan_of(
        &network("net", &members, hub_spoke(&["hub"])),
        &members,
        &[],
    );
    let backend = Arc::new(FakeBackend::default());
    let engine = Engine::new(backend.clone(), config());
    engine.reconcile(&plan, &targets(&members)).await;
    assert!(
        engine
            .reconcile(&plan, &targets(&members))
            .await
            .is_converged()
    );
    let before = backend.keys(&member("s1"));
    assert!(before.contains(&link("s1", "hub")));

    backend.unreadable.lock().unwrap().insert(member("hub"));
    let writes = backend.writes().len();
    let report = engine.reconcile(&plan, &targets(&members)).await;
    assert_eq!(
        backend.keys(&member("s1")),
        before,
        "nothing of s1's link goes"
    );
    assert_eq!(backend.writes().len(), writes, "nothing is written at all");
    assert_eq!(report.targets[&member("s1")].retained, 1);
    assert!(!report.is_converged());
    assert!(report.targets[&member("hub")].is_failing());
}

#[tokio::test]
async fn a_backend_that_forgets_to_retain_still_loses_no_link_while_a_peer_is_unread() {
    let members = ["hub", "s1"];
    let plan = plan_of(
        &network("net", &members, hub_spoke(&["hub"])),
        &members,
        &[],
    );
    let backend = Arc::new(FakeBackend {
        no_retain: true,
        ..FakeBackend::default()
    });
    let engine = Engine::new(backend.clone(), config());
    engine.reconcile(&plan, &targets(&members)).await;
    backend.unreadable.lock().unwrap().insert(member("hub"));
    let report = engine.reconcile(&plan, &targets(&members)).await;
    assert!(
        backend.keys(&member("s1")).contains(&link("s1", "hub")),
        "make-before-break does not trust a link whose acceptor was not read"
    );
    assert_eq!(report.targets[&member("s1")].orphans_waiting, 1);
}

#[tokio::test]
async fn a_refused_object_fails_alone_and_cleanup_goes_on() {
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let backend = Arc::new(FakeBackend {
        refused: [site("a")].into(),
        ..FakeBackend::default()
    });
    let stale = ObjectKey::namespaced("test/v1", "Listener", "apps", "old");
    backend
        .objects
        .lock()
        .unwrap()
        .entry(member("a"))
        .or_default()
        .insert(stale.clone(), json!({}));
    let engine = Engine::new(backend.clone(), config());
    let report = engine.reconcile(&plan, &targets(&["a", "b"])).await;
    let a = &report.targets[&member("a")];
    assert_eq!(a.rejected.len(), 1);
    assert_eq!(a.rejected[0].key, site("a"));
    assert!(a.rejected[0].error.contains("no fednet.io/network label"));
    let keys = backend.keys(&member("a"));
    assert!(!keys.contains(&stale), "orphan cleanup went on");
    assert!(
        keys.contains(&link("a", "b")) || backend.keys(&member("b")).contains(&link("b", "a")),
        "the link was written"
    );
    assert!(report.failing_targets().any(|(t, _)| t == &member("a")));
    assert!(!report.failing_targets().any(|(t, _)| t == &member("b")));
}

#[tokio::test]
async fn a_target_with_operations_in_flight_gets_no_write() {
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let backend = Arc::new(FakeBackend::default());
    backend.operations.lock().unwrap().insert(
        member("a"),
        vec![Operation {
            id: "job-7".into(),
            description: "apply tunnels".into(),
        }],
    );
    let engine = Engine::new(backend.clone(), config());
    let report = engine.reconcile(&plan, &targets(&["a", "b"])).await;
    assert!(backend.writes().iter().all(|(t, _)| t != &member("a")));
    assert!(matches!(
        &report.targets[&member("a")].outcome,
        TargetOutcome::InFlight { operations } if operations[0].contains("job-7")
    ));
    assert!(!report.is_converged());
    backend.operations.lock().unwrap().clear();
    let report = engine.reconcile(&plan, &targets(&["a", "b"])).await;
    assert!(matches!(
        report.targets[&member("a")].outcome,
        TargetOutcome::Changed { .. }
    ));
}

#[tokio::test]
async fn teardown_goes_phase_by_phase() {
    let backend = Arc::new(FakeBackend {
        late: [Target::Broker("hub".into())].into(),
        ..FakeBackend::default()
    });
    for t in [member("a"), Target::Broker("hub".into())] {
        backend
            .objects
            .lock()
            .unwrap()
            .entry(t)
            .or_default()
            .insert(site("x"), json!({}));
    }
    backend.unreadable.lock().unwrap().insert(member("a"));
    let engine = Engine::new(backend.clone(), config());
    let all: BTreeSet<Target> = [member("a"), Target::Broker("hub".into())].into();
    let network = ObserveScope::new(crate::plan::NetworkRef::new("ns", "net"), ["x"]);
    let report = engine.teardown(&network, &all).await;
    assert!(!report.is_complete());
    assert!(
        !backend.keys(&Target::Broker("hub".into())).is_empty(),
        "the broker waits for the members"
    );
    assert!(
        report.targets[&Target::Broker("hub".into())]
            .as_ref()
            .is_err_and(|e| e.contains("phase 0"))
    );
    backend.unreadable.lock().unwrap().clear();
    let report = engine.teardown(&network, &all).await;
    assert!(report.is_complete(), "{report:?}");
    assert!(all.iter().all(|t| backend.keys(t).is_empty()));
}

#[tokio::test]
async fn deletions_of_a_later_phase_wait_for_the_earlier_one() {
    let plan = plan_of(&network("net", &["a"], full_mesh()), &["a"], &[]);
    let broker = Target::Broker("hub".into());
    let backend = Arc::new(FakeBackend {
        late: [broker.clone()].into(),
        ..FakeBackend::default()
    });
    // b left the plan and still holds a Site; the broker holds a leftover of b's.
    for t in [member("b"), broker.clone()] {
        backend
            .objects
            .lock()
            .unwrap()
            .entry(t)
            .or_default()
            .insert(site("b"), json!({}));
    }
    let engine = Engine::new(backend.clone(), config());
    let recorded: BTreeSet<Target> = [member("a"), member("b"), broker.clone()].into();
    let first = engine.reconcile(&plan, &recorded).await;
    assert!(backend.keys(&member("b")).is_empty());
    assert_eq!(backend.keys(&broker).len(), 1, "the broker waits a pass");
    assert_eq!(first.targets[&broker].orphans_waiting, 1);
    engine.reconcile(&plan, &recorded).await;
    assert!(backend.keys(&broker).is_empty());
}

#[tokio::test]
async fn a_gone_member_is_released_and_an_unrecorded_target_is_not_written() {
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let backend = Arc::new(FakeBackend {
        gone: [member("ghost")].into(),
        ..FakeBackend::default()
    });
    let engine = Engine::new(backend.clone(), config());
    let report = engine
        .reconcile(&plan, &[member("a"), member("ghost")].into())
        .await;
    assert!(backend.writes().iter().all(|(t, _)| t != &member("b")));
    assert!(report.targets[&member("b")].is_failing());
    let released: Vec<&Target> = report.released_targets().collect();
    assert_eq!(released, [&member("ghost")]);
}

//! Engine behaviour against a mocked backend (mockall) whose effects land in an in-memory
//! store, so each pass sees what the previous one wrote.

use super::*;
use crate::api::BackendKind;
use crate::api::TopologyKind;
use crate::backend::{
    Capabilities, DesiredState, Layer, LinkHealth, MockNetworkBackend, ObservedObject,
    ValidationIssue,
};
use crate::fixtures::{full_mesh, hub_spoke, network, plan_of};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use std::sync::Mutex;

type Store = Arc<Mutex<BTreeMap<Target, BTreeMap<ObjectKey, serde_json::Value>>>>;

fn site_key(member: &str) -> ObjectKey {
    ObjectKey::namespaced("test/v1", "Site", "apps", member)
}

fn link_key(dialer: &str, acceptor: &str) -> ObjectKey {
    ObjectKey::namespaced(
        "test/v1",
        "Link",
        "apps",
        &format!("{dialer}-to-{acceptor}"),
    )
}

/// Renders a Site per member and a Link per planned link in the dialer: the shape of a
/// real backend without its details.
fn render(plan: &NetworkPlan) -> DesiredState {
    let mut desired = DesiredState::default();
    for m in &plan.members {
        let key = site_key(&m.name);
        desired.push(
            Target::Member(m.name.clone()),
            DesiredObject::new(key.clone(), json!({"spec": {"name": key.name}})),
        );
    }
    for l in &plan.topology.links {
        let key = link_key(&l.dialer, &l.acceptor);
        desired.push(
            Target::Member(l.dialer.clone()),
            DesiredObject::new(key, json!({"spec": {"cost": l.cost}})),
        );
    }
    desired
}

/// A link is up once its object exists in the dialer.
fn assess(plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
    let links = plan
        .topology
        .links
        .iter()
        .map(|l| {
            let exists = observed
                .get(&Target::Member(l.dialer.clone()))
                .is_some_and(|o| o.get(&link_key(&l.dialer, &l.acceptor)).is_some());
            LinkHealth {
                dialer: l.dialer.clone(),
                acceptor: l.acceptor.clone(),
                namespace: "apps".into(),
                phase: if exists {
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
        ..Default::default()
    }
}

/// A mock whose pure methods behave like a backend and whose effects go to `store`.
fn backend(store: &Store) -> MockNetworkBackend {
    let mut b = MockNetworkBackend::new();
    b.expect_kind().return_const(BackendKind::Skupper);
    b.expect_capabilities().returning(|| Capabilities {
        layer: Layer::L7,
        overlapping_cidrs: true,
        link_costs: true,
        encryption: true,
        needs_broker: false,
        topologies: vec![
            TopologyKind::FullMesh,
            TopologyKind::HubSpoke,
            TopologyKind::Explicit,
        ],
        restricted_consumers: true,
    });
    b.expect_validate().returning(|_| Vec::new());
    b.expect_targets().returning(|plan| {
        plan.members
            .iter()
            .map(|m| Target::Member(m.name.clone()))
            .collect()
    });
    b.expect_render().returning(|plan, _| Ok(render(plan)));
    b.expect_assess().returning(assess);
    b.expect_waits_for_links()
        .returning(|key| key.kind == "Link");
    b.expect_teardown_phase().returning(|_| 0);
    b.expect_deletion_order().returning(|_| 0);
    let s = store.clone();
    b.expect_observe().returning(move |target, _| {
        let store = s.lock().unwrap();
        let objects = store
            .get(target)
            .into_iter()
            .flatten()
            .map(|(key, body)| ObservedObject {
                key: key.clone(),
                body: body.clone(),
                owned: true,
            })
            .collect();
        Ok(Observed {
            objects,
            operations: Vec::new(),
        })
    });
    b
}

fn expect_store_writes(b: &mut MockNetworkBackend, store: &Store) {
    let s = store.clone();
    b.expect_apply().returning(move |target, objects| {
        let mut store = s.lock().unwrap();
        let entry = store.entry(target.clone()).or_default();
        for o in objects {
            entry.insert(o.key.clone(), o.body.clone());
        }
        Ok(())
    });
    let s = store.clone();
    b.expect_delete().returning(move |target, deletions| {
        let mut store = s.lock().unwrap();
        if let Some(entry) = store.get_mut(target) {
            for d in deletions {
                entry.remove(&d.key);
            }
        }
        Ok(())
    });
}

/// An engine over the mocked backend whose writes land in the returned store.
fn engine_over_store() -> (Store, Engine) {
    let store = Store::default();
    let mut b = backend(&store);
    expect_store_writes(&mut b, &store);
    (store.clone(), Engine::new(Arc::new(b), config()))
}

fn config() -> EngineConfig {
    EngineConfig {
        concurrency: 4,
        target_timeout: Duration::from_secs(5),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

/// The targets of a plan: what the controller records before the engine writes.
fn targets_of(plan: &NetworkPlan) -> BTreeSet<Target> {
    plan.members
        .iter()
        .map(|m| Target::Member(m.name.clone()))
        .collect()
}

fn member(name: &str) -> Target {
    Target::Member(name.into())
}

fn keys_in(store: &Store, target: &Target) -> BTreeSet<ObjectKey> {
    store
        .lock()
        .unwrap()
        .get(target)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn happy_path_converges_and_second_pass_writes_nothing() {
    let (store, engine) = engine_over_store();
    let plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );

    let first = engine.reconcile(&plan, &targets_of(&plan)).await;
    assert!(first.invalid.is_empty());
    assert_eq!(first.writes(), 3 + 3, "three sites and three links");
    assert!(!first.is_converged());
    // Every link has its dialer's object, and every member its site.
    for l in &plan.topology.links {
        assert!(keys_in(&store, &member(&l.dialer)).contains(&link_key(&l.dialer, &l.acceptor)));
    }

    // The second pass over a converged network: no apply and no delete at all.
    let mut b = backend(&store);
    b.expect_apply().times(0);
    b.expect_delete().times(0);
    let engine = Engine::new(Arc::new(b), config());
    let second = engine.reconcile(&plan, &targets_of(&plan)).await;
    assert_eq!(second.writes(), 0);
    assert!(second.is_converged(), "{second:?}");
    assert!(second.health.links.iter().all(|l| l.phase == LinkPhase::Up));
}

#[tokio::test]
async fn one_failing_target_does_not_stop_the_others() {
    let store = Store::default();
    let mut b = backend(&store);
    let s = store.clone();
    b.expect_apply().returning(move |target, objects| {
        if target == &member("b") {
            return Err(BackendError::Other(
                "admission webhook denied the request".into(),
            ));
        }
        let mut store = s.lock().unwrap();
        let entry = store.entry(target.clone()).or_default();
        for o in objects {
            entry.insert(o.key.clone(), o.body.clone());
        }
        Ok(())
    });
    let engine = Engine::new(Arc::new(b), config());
    let plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );
    let report = engine.reconcile(&plan, &targets_of(&plan)).await;

    assert!(matches!(
        report.targets[&member("b")].outcome,
        TargetOutcome::Failed { .. }
    ));
    assert!(matches!(
        report.targets[&member("a")].outcome,
        TargetOutcome::Changed { .. }
    ));
    assert!(matches!(
        report.targets[&member("c")].outcome,
        TargetOutcome::Changed { .. }
    ));
    assert!(keys_in(&store, &member("a")).contains(&site_key("a")));
    assert!(keys_in(&store, &member("c")).contains(&site_key("c")));

    let status = crate::status::network_status(
        None,
        Some(1),
        Some(&plan),
        Ok(&report),
        Timestamp::UNIX_EPOCH,
    );
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == crate::api::DEGRADED)
        .unwrap();
    assert_eq!(degraded.status, "True");
    assert!(
        degraded.message.contains("member/b"),
        "{}",
        degraded.message
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == crate::api::READY)
        .unwrap();
    assert_eq!(ready.status, "False");
    let b_state = status.members.iter().find(|m| m.name == "b").unwrap();
    assert_eq!(b_state.phase, crate::api::MemberPhase::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_hung_target_times_out_while_the_others_converge() {
    let store = Store::default();
    let mut b = backend(&store);
    expect_store_writes(&mut b, &store);
    let hung = Arc::new(HangingBackend {
        inner: b,
        hang: member("b"),
    });
    let engine = Engine::new(
        hung,
        EngineConfig {
            target_timeout: Duration::from_secs(3),
            ..config()
        },
    );
    let plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );

    let started = tokio::time::Instant::now();
    let report = engine.reconcile(&plan, &targets_of(&plan)).await;
    assert_eq!(
        report.targets[&member("b")].outcome,
        TargetOutcome::TimedOut
    );
    assert!(matches!(
        report.targets[&member("a")].outcome,
        TargetOutcome::Changed { .. }
    ));
    assert!(matches!(
        report.targets[&member("c")].outcome,
        TargetOutcome::Changed { .. }
    ));
    // The pass is bounded by one timeout (virtual time), not by the hung target.
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn a_member_whose_last_probe_failed_is_not_waited_for() {
    let store = Store::default();
    let mut b = backend(&store);
    expect_store_writes(&mut b, &store);
    let engine = Engine::new(
        Arc::new(HangingBackend {
            inner: b,
            hang: member("b"),
        }),
        EngineConfig {
            target_timeout: Duration::from_secs(20),
            ..config()
        },
    );
    let mut plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );
    plan.silent_members.insert("b".into());

    let started = tokio::time::Instant::now();
    let report = engine.reconcile(&plan, &targets_of(&plan)).await;
    // b is never read (its observe would hang) and counts as unreadable at once...
    assert!(matches!(
        &report.targets[&member("b")].outcome,
        TargetOutcome::Unreachable { reason } if reason.contains("last probe failed")
    ));
    // ...while the others are written without waiting out any timeout.
    for m in ["a", "c"] {
        assert!(matches!(
            report.targets[&member(m)].outcome,
            TargetOutcome::Changed { .. }
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(store.lock().unwrap().get(&member("b")).is_none());
}

/// Wraps a mock so that `observe` never completes for one target: mockall returns values
/// synchronously, so a hang needs a real pending future.
struct HangingBackend {
    inner: MockNetworkBackend,
    hang: Target,
}

#[async_trait::async_trait]
impl NetworkBackend for HangingBackend {
    crate::delegate_pure_backend_methods!(inner);
    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        if target == &self.hang {
            futures::future::pending::<()>().await;
        }
        self.inner.observe(target, scope).await
    }
    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        self.inner.apply(target, objects).await
    }
    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        self.inner.delete(target, objects).await
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_until_success() {
    let store = Store::default();
    let mut b = backend(&store);
    let calls = Arc::new(Mutex::new(BTreeMap::<Target, usize>::new()));
    let (s, c) = (store.clone(), calls.clone());
    b.expect_apply().returning(move |target, objects| {
        let mut calls = c.lock().unwrap();
        let n = calls.entry(target.clone()).or_default();
        *n += 1;
        if *n == 1 {
            return Err(BackendError::Unreachable {
                target: target.to_string(),
                reason: "connection reset".into(),
            });
        }
        let mut store = s.lock().unwrap();
        let entry = store.entry(target.clone()).or_default();
        for o in objects {
            entry.insert(o.key.clone(), o.body.clone());
        }
        Ok(())
    });
    let engine = Engine::new(Arc::new(b), config());
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let report = engine.reconcile(&plan, &targets_of(&plan)).await;
    for t in [member("a"), member("b")] {
        let TargetOutcome::Changed { applied, .. } = report.targets[&t].outcome else {
            panic!("{report:?}");
        };
        assert_eq!(
            calls.lock().unwrap()[&t],
            applied + 1,
            "one failure, retried, then one call per object"
        );
    }
}

#[tokio::test]
async fn non_retryable_errors_are_not_retried() {
    let store = Store::default();
    let mut b = backend(&store);
    // Two sites and one link: three objects, each tried once.
    b.expect_apply()
        .times(3)
        .returning(|_, _| Err(BackendError::Render("bad object".into())));
    let engine = Engine::new(Arc::new(b), config());
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let report = engine.reconcile(&plan, &targets_of(&plan)).await;
    assert_eq!(report.failing_targets().count(), 2);
    let rejected: usize = report.targets.values().map(|t| t.rejected.len()).sum();
    assert_eq!(rejected, 3, "every refused object is named: {report:?}");
}

#[tokio::test]
async fn a_removed_member_is_cleaned_up_everywhere() {
    let (store, engine) = engine_over_store();
    let three = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );
    engine.reconcile(&three, &targets_of(&three)).await;
    assert!(!keys_in(&store, &member("c")).is_empty());

    let two = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let known: BTreeSet<Target> = [member("a"), member("b"), member("c")].into();
    let report = engine.reconcile(&two, &known).await;
    assert!(report.targets[&member("c")].leaving);
    assert!(
        keys_in(&store, &member("c")).is_empty(),
        "the leaving member keeps nothing"
    );
    for t in [member("a"), member("b")] {
        assert!(
            keys_in(&store, &t)
                .iter()
                .all(|k| !k.name.contains('c') || k.kind == "Site"),
            "no link to c is left in {t}: {:?}",
            keys_in(&store, &t)
        );
    }
    // And then it is quiet.
    let report = engine
        .reconcile(&two, &[member("a"), member("b")].into())
        .await;
    assert!(report.is_converged(), "{report:?}");
}

#[tokio::test]
async fn new_links_are_made_before_old_ones_are_broken() {
    let (store, engine) = engine_over_store();
    let members = ["a", "b", "c"];
    let via_a = plan_of(&network("net", &members, hub_spoke(&["a"])), &members, &[]);
    engine.reconcile(&via_a, &targets_of(&via_a)).await;
    let old: BTreeSet<ObjectKey> = keys_in(&store, &member("c"));
    assert!(old.iter().any(|k| k.kind == "Link"));

    // Move the hub to b: c's new link to b is created while its old link to a stays.
    let via_b = plan_of(&network("net", &members, hub_spoke(&["b"])), &members, &[]);
    let known: BTreeSet<Target> = members.iter().map(|m| member(m)).collect();
    let first = engine.reconcile(&via_b, &known).await;
    let during = keys_in(&store, &member("c"));
    assert!(
        old.is_subset(&during),
        "old links are kept while the new ones are not up"
    );
    assert!(first.targets[&member("c")].orphans_waiting > 0);

    // Next pass: the new links are up, so the old ones go.
    engine.reconcile(&via_b, &known).await;
    let after = keys_in(&store, &member("c"));
    let new_links: Vec<_> = via_b.topology.links_of("c").collect();
    assert!(
        after.iter().filter(|k| k.kind == "Link").count() == new_links.len(),
        "{after:?}"
    );
    let last = engine.reconcile(&via_b, &known).await;
    assert!(last.is_converged(), "{last:?}");
}

#[tokio::test]
async fn a_field_fednet_applied_and_no_longer_sets_is_applied_away() {
    let (store, engine) = engine_over_store();
    let members = ["a", "b"];
    let plan = plan_of(&network("net", &members, full_mesh()), &members, &[]);
    engine.reconcile(&plan, &targets_of(&plan)).await;
    // As the API server shows it: fednet once applied `spec.old` too (no longer rendered);
    // another writer owns `spec.extra`.
    {
        let mut store = store.lock().unwrap();
        let site = store
            .get_mut(&member("a"))
            .and_then(|m| m.get_mut(&site_key("a")))
            .unwrap();
        site["spec"]["old"] = true.into();
        site["spec"]["extra"] = 1.into();
        site["metadata"]["managedFields"] = json!([
            {"manager": FIELD_MANAGER, "operation": "Apply",
             "fieldsV1": {"f:spec": {"f:name": {}, "f:old": {}}}},
            {"manager": "another", "operation": "Update", "fieldsV1": {"f:spec": {"f:extra": {}}}}
        ]);
    }
    let pass = engine.reconcile(&plan, &targets_of(&plan)).await;
    assert_eq!(
        pass.targets[&member("a")].outcome,
        TargetOutcome::Changed {
            applied: 1,
            deleted: 0
        }
    );
    assert_eq!(pass.targets[&member("b")].outcome, TargetOutcome::Converged);
    assert!(
        engine
            .reconcile(&plan, &targets_of(&plan))
            .await
            .is_converged()
    );
}

#[tokio::test]
async fn an_invalid_plan_touches_nothing() {
    let mut b = MockNetworkBackend::new();
    b.expect_capabilities().returning(|| Capabilities {
        layer: Layer::L7,
        overlapping_cidrs: true,
        link_costs: true,
        encryption: true,
        needs_broker: false,
        topologies: vec![TopologyKind::FullMesh],
        restricted_consumers: true,
    });
    b.expect_validate().returning(|_| {
        vec![ValidationIssue {
            field: "spec.backend.skupper.ha".into(),
            message: "edge sites cannot be HA".into(),
        }]
    });
    b.expect_observe().times(0);
    b.expect_apply().times(0);
    b.expect_delete().times(0);
    let engine = Engine::new(Arc::new(b), config());
    let plan = plan_of(
        &network("net", &["a", "b"], hub_spoke(&["a"])),
        &["a", "b"],
        &[],
    );
    let report = engine.reconcile(&plan, &targets_of(&plan)).await;
    // Both the capability check (no HubSpoke) and the backend's own issue are reported.
    assert_eq!(report.invalid.len(), 2, "{:?}", report.invalid);
    assert!(report.targets.is_empty());
}

#[tokio::test]
async fn teardown_removes_everything_owned() {
    let (store, engine) = engine_over_store();
    let plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );
    engine.reconcile(&plan, &targets_of(&plan)).await;
    let targets: BTreeSet<Target> = ["a", "b", "c"].iter().map(|m| member(m)).collect();
    let report = engine.teardown(&plan.observe_scope(), &targets).await;
    assert!(report.is_complete());
    assert!(targets.iter().all(|t| keys_in(&store, t).is_empty()));
}

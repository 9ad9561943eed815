use super::*;
use crate::api::{ConditionExt, DEGRADED, LinkPhase, MemberPhase, PROGRESSING, READY};
use crate::backend::{Health, LinkHealth, ServiceHealth, Target};
use crate::engine::{ReconcileReport, TargetOutcome, TargetReport};
use crate::fixtures::{full_mesh, network, plan_of, service};
use k8s_openapi::jiff::Timestamp;

fn converged_report(plan: &crate::plan::NetworkPlan) -> ReconcileReport {
    ReconcileReport {
        targets: plan
            .members
            .iter()
            .map(|m| {
                let r = TargetReport::new(TargetOutcome::Converged, false);
                (Target::Member(m.name.clone()), r)
            })
            .collect(),
        health: Health {
            links: plan
                .topology
                .links
                .iter()
                .map(|l| LinkHealth {
                    dialer: l.dialer.clone(),
                    acceptor: l.acceptor.clone(),
                    namespace: "apps".into(),
                    phase: LinkPhase::Up,
                    message: None,
                })
                .collect(),
            services: vec![
                ServiceHealth {
                    service: "db".into(),
                    consumer: "a".into(),
                    ready: true,
                    message: None,
                },
                ServiceHealth {
                    service: "db".into(),
                    consumer: "b".into(),
                    ready: false,
                    message: Some("no matching connector".into()),
                },
            ],
            ..Default::default()
        },
        ..Default::default()
    }
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

#[test]
fn converged_network_is_ready_and_stays_unchanged() {
    let plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );
    let report = converged_report(&plan);
    let first = network_status(None, Some(1), Some(&plan), Ok(&report), at(100));
    assert!(first.conditions.is_true(READY));
    assert!(!first.conditions.is_true(DEGRADED));
    assert!(!first.conditions.is_true(PROGRESSING));
    assert_eq!(first.links_summary.as_deref(), Some("3/3"));
    assert!(first.members.iter().all(|m| m.phase == MemberPhase::Ready));

    // The same pass later computes the same status: no write, and the time did not move.
    let second = network_status(Some(&first), Some(1), Some(&plan), Ok(&report), at(200));
    assert_eq!(
        second
            .conditions
            .condition(READY)
            .unwrap()
            .last_transition_time
            .0,
        at(100)
    );
    assert!(changed(Some(&first), second).is_none());
}

#[test]
fn pending_links_and_failures_show() {
    let plan = plan_of(
        &network("net", &["a", "b", "c"], full_mesh()),
        &["a", "b", "c"],
        &[],
    );
    let mut report = converged_report(&plan);
    report.health.links[0].phase = LinkPhase::Pending;
    report.targets.insert(
        Target::Member("c".into()),
        TargetReport::new(TargetOutcome::TimedOut, false),
    );
    let status = network_status(None, Some(1), Some(&plan), Ok(&report), at(100));
    assert!(!status.conditions.is_true(READY));
    assert!(status.conditions.is_true(DEGRADED));
    assert!(
        status
            .conditions
            .condition(DEGRADED)
            .unwrap()
            .message
            .contains("member/c")
    );
    assert_eq!(status.links_summary.as_deref(), Some("2/3"));
    assert_eq!(
        status.members.iter().find(|m| m.name == "c").unwrap().phase,
        MemberPhase::Unreachable
    );
}

#[test]
fn a_plan_failure_keeps_last_known_state_and_says_why() {
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    let good = network_status(
        None,
        Some(1),
        Some(&plan),
        Ok(&converged_report(&plan)),
        at(100),
    );
    let failure = PlanFailure {
        reason: "MemberNotFound".into(),
        message: "member z has no MemberCluster".into(),
    };
    let bad = network_status(Some(&good), Some(2), None, Err(&failure), at(200));
    let ready = bad.conditions.condition(READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "MemberNotFound")
    );
    assert_eq!(ready.last_transition_time.0, at(200));
    assert_eq!(bad.observed_generation, Some(2));
    assert_eq!(bad.links, good.links, "last known links are kept");
}

#[test]
fn service_status_per_consumer() {
    let svcs = [service("db", "net", "a")];
    let plan = plan_of(
        &network("net", &["a", "b"], full_mesh()),
        &["a", "b"],
        &svcs,
    );
    let report = converged_report(&plan);
    let status = service_status(None, Some(1), "db", Some(&plan), &report.health, at(100));
    assert_eq!(status.consumers_summary.as_deref(), Some("1/2"));
    assert!(!status.conditions.is_true(READY));
    let b = status.consumers.iter().find(|c| c.member == "b").unwrap();
    assert_eq!(b.message.as_deref(), Some("no matching connector"));

    let missing = service_status(None, Some(1), "db", None, &Health::default(), at(100));
    assert_eq!(
        missing.conditions.condition(READY).unwrap().reason,
        "NetworkNotReady"
    );
}

#[test]
fn members_without_a_target_of_their_own_take_what_the_backend_read() {
    let plan = plan_of(&network("net", &["a", "b"], full_mesh()), &["a", "b"], &[]);
    // One controller target, as an SD-WAN backend has.
    let mut report = converged_report(&plan);
    report.targets = [(
        Target::Controller("https://controller".into()),
        TargetReport::new(TargetOutcome::Converged, false),
    )]
    .into();
    report
        .health
        .members_not_ready
        .insert("b".into(), "edge node edge-b is offline".into());
    let status = network_status(None, Some(1), Some(&plan), Ok(&report), at(100));
    let phase = |name: &str| status.members.iter().find(|m| m.name == name).unwrap();
    assert_eq!(phase("a").phase, MemberPhase::Ready);
    assert_eq!(phase("b").phase, MemberPhase::Pending);
    assert_eq!(
        phase("b").message.as_deref(),
        Some("edge node edge-b is offline")
    );

    report.targets = [(
        Target::Controller("https://controller".into()),
        TargetReport::new(
            TargetOutcome::Changed {
                applied: 1,
                deleted: 0,
            },
            false,
        ),
    )]
    .into();
    report.health.members_not_ready.clear();
    let status = network_status(None, Some(1), Some(&plan), Ok(&report), at(100));
    assert!(
        status
            .members
            .iter()
            .all(|m| m.phase == MemberPhase::Pending)
    );
}

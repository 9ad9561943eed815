//! What happens *around* the controllers, on a real hub API server (the Lease is real): the
//! controllers are replaced through `run_until_with`'s seam by stand-ins that die or refuse
//! to stop, so these tests say what `run_until` does about it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use federation_operator::controllers::ControllerRun;
use federation_operator::{Config, ControllersFn, Metrics, RunError, run_until_with};
use federation_testkit::{Cluster, ControlPlanes};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const NAMESPACE: &str = "fednet-system";
const LEASE: &str = "fednet-operator";

fn config(identity: &str, leader_election: bool, grace: &str) -> Config {
    Config::try_parse_from([
        "federation-operator".to_owned(),
        format!("--identity={identity}"),
        format!("--leader-election={leader_election}"),
        format!("--lease-namespace={NAMESPACE}"),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        "--health-addr=127.0.0.1:0".to_owned(),
        "--lease-duration=4s".to_owned(),
        "--lease-renew-deadline=3s".to_owned(),
        "--lease-retry-period=500ms".to_owned(),
        format!("--shutdown-grace={grace}"),
    ])
    .unwrap()
}

async fn lease(hub: &Cluster) -> Option<Lease> {
    Api::<Lease>::namespaced(hub.client(), NAMESPACE)
        .get_opt(LEASE)
        .await
        .unwrap()
}

async fn holder(hub: &Cluster) -> Option<String> {
    lease(hub)
        .await
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn hub() -> ControlPlanes {
    let planes = ControlPlanes::start(1).await.unwrap();
    planes.clusters()[0]
        .create_namespace(NAMESPACE)
        .await
        .unwrap();
    planes
}

/// Controllers that end on their own after a moment: by returning, or by panicking.
fn dying(panics: bool, started: watch::Sender<bool>) -> ControllersFn {
    Arc::new(move |_run: ControllerRun| {
        let started = started.clone();
        Box::pin(async move {
            started.send_replace(true);
            tokio::time::sleep(Duration::from_millis(500)).await;
            if panics {
                panic!("a bug in a controller");
            }
        })
    })
}

#[tokio::test]
async fn when_the_controllers_die_the_operator_fails_and_hands_the_lease_over() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    for (identity, leader_election, panics) in [
        ("panics-while-leading", true, true),
        ("returns-while-leading", true, false),
        ("returns-without-election", false, false),
    ] {
        let (started_tx, mut started) = watch::channel(false);
        let run = run_until_with(
            config(identity, leader_election, "10s"),
            hub.config(),
            Metrics::new(),
            // Never cancelled: nothing asks the operator to stop.
            CancellationToken::new(),
            dying(panics, started_tx),
        );
        let result = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("{identity}: run_until kept running without controllers"));
        started.wait_for(|s| *s).await.unwrap();
        let error = result.expect_err(identity);
        let typed = error.downcast_ref::<RunError>();
        if panics {
            assert!(
                matches!(typed, Some(RunError::ControllersPanicked(_))),
                "{identity}: {error:#}"
            );
        } else {
            assert!(
                matches!(typed, Some(RunError::ControllersReturned)),
                "{identity}: {error:#}"
            );
        }
        // The Lease is free for a standby at once, not after it expires.
        assert_eq!(holder(hub).await, None, "{identity}");
    }
}

/// Controllers that ignore the stop request and keep writing to the hub (a ConfigMap every
/// 50 ms) through the fenced client; `aborted` turns true when their task is dropped.
fn stubborn(
    writes: watch::Sender<Vec<(Instant, bool)>>,
    aborted: watch::Sender<bool>,
) -> ControllersFn {
    Arc::new(move |run: ControllerRun| {
        let writes = writes.clone();
        let aborted = aborted.clone();
        Box::pin(async move {
            struct OnDrop(watch::Sender<bool>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.send_replace(true);
                }
            }
            let _guard = OnDrop(aborted);
            let api = Api::<ConfigMap>::namespaced(run.hub.clone(), NAMESPACE);
            for i in 0.. {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("write-{i}")),
                        ..ObjectMeta::default()
                    },
                    ..ConfigMap::default()
                };
                let ok = api.create(&PostParams::default(), &cm).await.is_ok();
                writes.send_modify(|w| w.push((Instant::now(), ok)));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    })
}

#[tokio::test]
async fn a_graceful_shutdown_stops_writing_as_soon_as_the_lease_is_lost() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    let (writes_tx, mut writes) = watch::channel(Vec::new());
    let (aborted_tx, mut aborted) = watch::channel(false);
    let shutdown = CancellationToken::new();
    // A grace period far longer than the test waits: only losing the Lease may end it.
    let run = tokio::spawn(run_until_with(
        config("graceful", true, "120s"),
        hub.config(),
        Metrics::new(),
        shutdown.clone(),
        stubborn(writes_tx, aborted_tx),
    ));
    writes
        .wait_for(|w| w.iter().any(|(_, ok)| *ok))
        .await
        .unwrap();
    shutdown.cancel();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !*aborted.borrow(),
        "cut before the grace period or a lost lease"
    );

    // Another replica takes the Lease (as after this one was cut off and it expired).
    // The replica may renew between the read and the write (a 409): read again and retry.
    let api = Api::<Lease>::namespaced(hub.client(), NAMESPACE);
    loop {
        let mut taken = lease(hub).await.unwrap();
        let spec = taken.spec.as_mut().unwrap();
        spec.holder_identity = Some("thief".into());
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        spec.lease_duration_seconds = Some(3600);
        match api.replace(LEASE, &PostParams::default(), &taken).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("stealing the lease: {e}"),
        }
    }
    let stolen = Instant::now();

    tokio::time::timeout(Duration::from_secs(10), aborted.wait_for(|a| *a))
        .await
        .expect("reconciles kept running after the lease was lost")
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run_until did not return after the lease was lost")
        .unwrap();
    result.unwrap();
    // The elector notices at its next attempt (every 500 ms); a write refused by the fence
    // or cut by the abort is not "ok". Allow one attempt's round trip on a busy machine.
    let late: Vec<_> = writes
        .borrow()
        .iter()
        .filter(|(at, ok)| *ok && *at > stolen + Duration::from_secs(2))
        .map(|(at, _)| at.duration_since(stolen))
        .collect();
    assert!(late.is_empty(), "writes succeeded after the loss: {late:?}");
    assert_eq!(holder(hub).await.as_deref(), Some("thief"));
}

/// Controllers that leave a writer behind in a task of its own (which aborting the
/// controllers does not reach), writing to the hub through the controllers' client.
fn leaking(writes: watch::Sender<Vec<(Instant, bool)>>, stop: CancellationToken) -> ControllersFn {
    Arc::new(move |run: ControllerRun| {
        let writes = writes.clone();
        let stop = stop.clone();
        let api = Api::<ConfigMap>::namespaced(run.hub.clone(), NAMESPACE);
        tokio::spawn(async move {
            for i in 0.. {
                if stop.is_cancelled() {
                    break;
                }
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("leaked-{i}")),
                        ..ObjectMeta::default()
                    },
                    ..ConfigMap::default()
                };
                let ok = api.create(&PostParams::default(), &cm).await.is_ok();
                writes.send_modify(|w| w.push((Instant::now(), ok)));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Box::pin(async move { run.shutdown.cancelled().await })
    })
}

/// The fence, not the abort, is what stops this writer: without the fenced hub client it
/// keeps writing after the Lease is lost.
#[tokio::test]
async fn hub_writes_are_fenced_once_the_lease_is_lost_even_outside_the_controllers_task() {
    let planes = hub().await;
    let hub = &planes.clusters()[0];
    let (writes_tx, mut writes) = watch::channel(Vec::new());
    let stop_writer = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run_until_with(
        config("fenced", true, "10s"),
        hub.config(),
        Metrics::new(),
        shutdown.clone(),
        leaking(writes_tx, stop_writer.clone()),
    ));
    writes
        .wait_for(|w| w.iter().any(|(_, ok)| *ok))
        .await
        .unwrap();

    // The replica may renew between the read and the write (a 409): read again and retry.
    let api = Api::<Lease>::namespaced(hub.client(), NAMESPACE);
    loop {
        let mut taken = lease(hub).await.unwrap();
        let spec = taken.spec.as_mut().unwrap();
        spec.holder_identity = Some("thief".into());
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        spec.lease_duration_seconds = Some(3600);
        match api.replace(LEASE, &PostParams::default(), &taken).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("stealing the lease: {e}"),
        }
    }
    let stolen = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_writer.cancel();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // The elector sees the theft at its next attempt (500 ms retry period, plus a round trip
    // on a busy machine): from then on every write of the writer is refused.
    let noticed = stolen + Duration::from_millis(1500);
    let after: Vec<bool> = writes
        .borrow()
        .iter()
        .filter(|(at, _)| *at > noticed)
        .map(|(_, ok)| *ok)
        .collect();
    assert!(after.len() > 10, "the writer stopped trying: {after:?}");
    assert!(
        after.iter().all(|ok| !ok),
        "{} writes succeeded after the lease was lost",
        after.iter().filter(|ok| **ok).count()
    );
}

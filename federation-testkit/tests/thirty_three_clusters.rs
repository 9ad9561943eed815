#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! 33 clusters from one kit (issue 12, point 5): every one starts, answers and is isolated from
//! the others, and dropping the kit leaves no process behind.
//!
//! Its own test binary so that nothing else competes with 33 API servers for the machine.
//! Needs the envtest binaries (`hack/envtest/assets.sh`). It prints the start time and the
//! summed resident memory of the kit's processes; `make test-scale` runs only this test.

use std::collections::BTreeSet;

use federation_testkit::{ControlPlanes, ProcessInfo, process_exists, resident_memory_kib};
use futures::future::try_join_all;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};

const CLUSTERS: usize = 33;
/// Put on the namespace each cluster gets, so that listing finds exactly those.
const OWNER_LABEL: &str = "testkit.fednet.io/owner";

fn total_rss_mib(processes: &[ProcessInfo]) -> u64 {
    let kib: u64 = processes
        .iter()
        .filter_map(|p| p.pid.and_then(resident_memory_kib))
        .sum();
    kib / 1024
}

#[tokio::test]
async fn thirty_three_clusters_start_answer_stay_isolated_and_leave_nothing_behind() {
    // The defaults, what a test gets: shared etcd, four-minute startup timeout per process.
    let planes = ControlPlanes::start(CLUSTERS).await.unwrap();
    let startup = planes.startup_duration();
    let processes = planes.processes();
    assert_eq!(processes.len(), CLUSTERS + 1, "{processes:?}");
    let rss_after_start = total_rss_mib(&processes);

    let urls: BTreeSet<&str> = planes.clusters().iter().map(|c| c.server_url()).collect();
    assert_eq!(urls.len(), CLUSTERS, "every cluster has its own port");

    // Each cluster answers, and gets a namespace named after it.
    try_join_all(planes.clusters().iter().map(|cluster| async move {
        let version = cluster.client().apiserver_version().await?;
        assert_eq!(version.git_version, "v1.37.2", "{}", cluster.name());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(format!("owned-by-{}", cluster.name())),
                labels: Some([(OWNER_LABEL.to_owned(), cluster.name().to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(cluster.client())
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok::<_, kube::Error>(())
    }))
    .await
    .unwrap();

    // ... and sees only its own: the 32 others are in the same etcd under other prefixes.
    try_join_all(planes.clusters().iter().map(|cluster| async move {
        let owned = Api::<Namespace>::all(cluster.client())
            .list(&ListParams::default().labels(OWNER_LABEL))
            .await?;
        let names: Vec<String> = owned
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert_eq!(
            names,
            vec![format!("owned-by-{}", cluster.name())],
            "{} sees other clusters' namespaces",
            cluster.name()
        );
        Ok::<_, kube::Error>(())
    }))
    .await
    .unwrap();

    let rss_after_use = total_rss_mib(&planes.processes());
    eprintln!(
        "{CLUSTERS} clusters (one shared etcd): started in {:.1} s; resident memory of the kit's \
         processes {rss_after_start} MiB after start, {rss_after_use} MiB after the checks",
        startup.as_secs_f64()
    );

    let pids: Vec<u32> = processes.iter().filter_map(|p| p.pid).collect();
    assert_eq!(pids.len(), CLUSTERS + 1);
    let dir = planes.temp_dir().unwrap().to_owned();
    drop(planes);
    let survivors: Vec<u32> = pids
        .into_iter()
        .filter(|&pid| process_exists(pid))
        .collect();
    assert!(
        survivors.is_empty(),
        "processes survived the drop: {survivors:?}"
    );
    assert!(!dir.exists(), "{} survived the drop", dir.display());
}

//! One size of the end-to-end run: a hub and `n` members (every API server auditing every
//! request), the Skupper controller double, the operator binary with production timings;
//! apply the two-hub network with its services and wait for Ready (where the time went, from
//! the operator's log); then requests at rest; then, at the failover size, the failover.

use crate::audit_count::{self, OPERATOR_USER_AGENT, Requests};
use crate::failover::{self, Failover};
use crate::procfs::{self, Memory};
use crate::scenario;
use crate::timeline::{self, CriticalPath};
use anyhow::Context as _;
use federation_core::api::{ConditionExt, FederatedNetwork, READY};
use federation_testkit::Cluster;
use federation_tests::operator_env::{
    APP_NAMESPACE, FedEnv, NETWORK, OperatorOptions, OperatorProcess,
};
use k8s_openapi::jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether the network is Ready for its current generation.
pub fn is_ready(n: &FederatedNetwork) -> bool {
    n.status.as_ref().is_some_and(|s| {
        s.conditions.is_true(READY) && s.observed_generation == n.metadata.generation
    })
}

/// What to do in one size's run.
#[derive(Clone, Debug)]
pub struct SizeRun {
    /// Members.
    pub members: usize,
    /// FederatedServices.
    pub services: usize,
    /// Measure convergence (always done: the rest and failover need a converged network).
    pub rest_window: Option<Duration>,
    /// Measure a failover after the rest.
    pub failover: bool,
    /// Timeout of waits.
    pub timeout: Duration,
    /// Where the operator's log is kept.
    pub log_dir: PathBuf,
}

/// Requests at rest.
#[derive(Clone, Debug)]
pub struct Rest {
    /// The window.
    pub window: Duration,
    /// The hub's API server.
    pub hub: Requests,
    /// Each member's API server.
    pub members: Vec<Requests>,
    /// Network passes the operator ran within the window.
    pub passes: usize,
}

/// What one size's run measured.
#[derive(Clone, Debug)]
pub struct SizeResult {
    /// Members.
    pub members: usize,
    /// Services.
    pub services: usize,
    /// Starting the control planes and registering the members.
    pub started_in: Duration,
    /// Applying the network until Ready (`None`: not within the timeout).
    pub to_ready: Option<Duration>,
    /// Where the time went.
    pub critical_path: CriticalPath,
    /// Requests at rest, if measured.
    pub rest: Option<Rest>,
    /// Failover, if measured.
    pub failover: Option<Failover>,
    /// The operator's memory once Ready.
    pub memory: Memory,
    /// The 1-minute load average before applying and once Ready.
    pub load: (f64, f64),
    /// The operator's log.
    pub log: PathBuf,
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Operator options of the benchmark: production timings (no fast flags), JSON logs.
pub fn operator_options(identity: &str, extra: &[String]) -> OperatorOptions {
    OperatorOptions {
        identity: identity.to_owned(),
        leader_election: true,
        fast: false,
        kubeconfig: None,
        extra_args: std::iter::once("--log-format=json".to_owned())
            .chain(extra.iter().cloned())
            .collect(),
    }
}

/// Runs one size.
pub async fn run(spec: &SizeRun) -> anyhow::Result<SizeResult> {
    let started = Instant::now();
    let mut env = FedEnv::start_audited_all(spec.members)
        .await
        .with_context(|| format!("starting a hub and {} members", spec.members))?;
    let started_in = started.elapsed();
    env.start_double();
    std::fs::create_dir_all(&spec.log_dir)?;
    let mut operator = OperatorProcess::start(&env, operator_options("bench", &[]), &spec.log_dir)
        .await
        .context("starting the operator")?;
    operator.wait_ready(Duration::from_secs(60)).await?;

    let members = env.members().to_vec();
    let mut manifests =
        scenario::service_manifests(NETWORK, APP_NAMESPACE, &members, spec.services);
    // The services first, then the network: the first pass sees them all.
    manifests.push(scenario::network_manifest(NETWORK, APP_NAMESPACE, &members));
    let load_before = load_average();
    let applied_at = Timestamp::now();
    let applied = Instant::now();
    scenario::apply_on_hub(&env, &manifests).await?;
    let ready = env.wait_network("Ready", spec.timeout, is_ready).await;
    let to_ready = ready.is_ok().then(|| applied.elapsed());
    let ready_at = Timestamp::now();
    let load_after = load_average();
    let memory = procfs::memory(operator.pid());
    // Let the log reach the file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(operator.log()).unwrap_or_default();
    let critical_path = timeline::parse(&log).critical_path(applied_at, ready_at);
    if let Err(e) = ready {
        eprintln!(
            "{} members: {e:#}\noperator log: {}",
            spec.members,
            operator.log().display()
        );
    }

    let rest = match (spec.rest_window, to_ready) {
        (Some(window), Some(_)) => Some(measure_rest(&env, &operator, window).await?),
        _ => None,
    };
    let failover = if spec.failover && to_ready.is_some() {
        let hubs = scenario::hubs(&members);
        Some(failover::measure(&env, &hubs, spec.timeout).await?)
    } else {
        None
    };
    operator.terminate(Duration::from_secs(30)).await.ok();
    Ok(SizeResult {
        members: spec.members,
        services: spec.services,
        started_in,
        to_ready,
        critical_path,
        rest,
        failover,
        memory,
        load: (load_before, load_after),
        log: operator.log().to_path_buf(),
    })
}

fn audit_log(cluster: &Cluster) -> anyhow::Result<&Path> {
    cluster
        .audit_log()
        .ok_or_else(|| anyhow::anyhow!("{} has no audit log", cluster.name()))
}

/// Lets in-flight passes end, then counts the operator's requests per API server over
/// `window`, and its network passes. The Skupper double keeps running (it writes nothing
/// while nothing changes, and its requests are not the operator's): restarting it would give
/// every site a new CA and break the links a failover run measures next.
async fn measure_rest(
    env: &FedEnv,
    operator: &OperatorProcess,
    window: Duration,
) -> anyhow::Result<Rest> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    let from = Timestamp::now();
    tokio::time::sleep(window).await;
    let to = Timestamp::now();
    // Requests received at the end of the window are logged when answered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hub = audit_count::count(
        &audit_count::read_log(audit_log(env.hub())?)?,
        OPERATOR_USER_AGENT,
        from,
        to,
    );
    let mut members = Vec::new();
    for c in env.member_clusters() {
        members.push(audit_count::count(
            &audit_count::read_log(audit_log(c)?)?,
            OPERATOR_USER_AGENT,
            from,
            to,
        ));
    }
    let log = std::fs::read_to_string(operator.log()).unwrap_or_default();
    let passes = timeline::parse(&log)
        .passes
        .iter()
        .filter(|p| p.end >= from && p.end < to)
        .count();
    Ok(Rest {
        window,
        hub,
        members,
        passes,
    })
}

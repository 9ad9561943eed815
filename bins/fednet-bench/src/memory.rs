//! The operator's memory (`VmHWM`, `VmRSS` of the process): one replica serving a network of
//! many members and services, and several replicas sharing several networks.

use crate::converge::{is_ready, load_average, operator_options};
use crate::procfs::{self, Memory};
use crate::scenario;
use anyhow::Context as _;
use federation_core::api::FederatedNetwork;
use federation_tests::operator_env::{
    APP_NAMESPACE, FedEnv, HUB_NAMESPACE, NETWORK, OperatorOptions, OperatorProcess,
};
use kube::Api;
use std::path::Path;
use std::time::{Duration, Instant};

/// One replica, one network of many services.
#[derive(Clone, Debug)]
pub struct ManyServices {
    /// Members.
    pub members: usize,
    /// Services.
    pub services: usize,
    /// Applying until Ready (`None`: not within the timeout).
    pub to_ready: Option<Duration>,
    /// Memory once Ready (or at the timeout).
    pub at_ready: Memory,
    /// Memory 30 s later.
    pub at_rest: Memory,
    /// Load average when Ready.
    pub load: f64,
}

/// Measures one replica serving `services` services over `members` members.
pub async fn many_services(
    members: usize,
    services: usize,
    timeout: Duration,
    log_dir: &Path,
) -> anyhow::Result<ManyServices> {
    let mut env = FedEnv::start(members).await.context("starting clusters")?;
    env.start_double();
    std::fs::create_dir_all(log_dir)?;
    let mut operator =
        OperatorProcess::start(&env, operator_options("bench-memory", &[]), log_dir).await?;
    operator.wait_ready(Duration::from_secs(60)).await?;
    let names = env.members().to_vec();
    let mut manifests = scenario::service_manifests(NETWORK, APP_NAMESPACE, &names, services);
    manifests.push(scenario::network_manifest(NETWORK, APP_NAMESPACE, &names));
    let applied = Instant::now();
    scenario::apply_on_hub(&env, &manifests).await?;
    let ready = env.wait_network("Ready", timeout, is_ready).await;
    let to_ready = ready.is_ok().then(|| applied.elapsed());
    let at_ready = procfs::memory(operator.pid());
    let load = load_average();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let at_rest = procfs::memory(operator.pid());
    operator.terminate(Duration::from_secs(30)).await.ok();
    Ok(ManyServices {
        members,
        services,
        to_ready,
        at_ready,
        at_rest,
        load,
    })
}

/// How replica `index` of the replica run is started: production timings, JSON logs, and
/// `extra` (the `BENCH_REPLICA_ARGS`). This is the one place replica flags are set, so
/// `--shards 3` goes here (or into `BENCH_REPLICA_ARGS`) once sharded replicas exist.
pub fn replica_options(index: usize, extra: &[String]) -> OperatorOptions {
    operator_options(&format!("replica-{index}"), extra)
}

/// One replica of the replica run.
#[derive(Clone, Debug)]
pub struct Replica {
    /// Its identity.
    pub identity: String,
    /// Whether it held the Lease at the end.
    pub leader: bool,
    /// Its memory once every network was Ready.
    pub memory: Memory,
}

/// Several replicas sharing several networks.
#[derive(Clone, Debug)]
pub struct Replicas {
    /// Networks.
    pub networks: usize,
    /// Members.
    pub members: usize,
    /// Until every network was Ready (`None`: not within the timeout).
    pub to_ready: Option<Duration>,
    /// Each replica.
    pub replicas: Vec<Replica>,
    /// The flags every replica got besides the defaults.
    pub flags: Vec<String>,
}

/// Name of the `i`-th network of the replica run (also its member namespace).
pub fn replica_network(i: usize) -> String {
    format!("net-{i:02}")
}

async fn ready_networks(env: &FedEnv) -> usize {
    Api::<FederatedNetwork>::namespaced(env.hub().client(), HUB_NAMESPACE)
        .list(&Default::default())
        .await
        .map(|l| l.items.iter().filter(|n| is_ready(n)).count())
        .unwrap_or(0)
}

/// Starts `replicas` operator processes over `networks` networks of three members (each in
/// its own member namespace, with `services_each` services) and reads their memory once every
/// network is Ready.
pub async fn replicas(
    replicas: usize,
    networks: usize,
    services_each: usize,
    flags: &[String],
    timeout: Duration,
    log_dir: &Path,
) -> anyhow::Result<Replicas> {
    const MEMBERS: usize = 3;
    let mut env = FedEnv::start(MEMBERS).await.context("starting clusters")?;
    env.start_double();
    std::fs::create_dir_all(log_dir)?;
    let names = env.members().to_vec();
    let mut manifests = Vec::new();
    for i in 0..networks {
        let net = replica_network(i);
        scenario::prepare_member_namespace(&env, &net).await?;
        manifests.extend(scenario::service_manifests(
            &net,
            &net,
            &names,
            services_each,
        ));
        manifests.push(scenario::network_manifest(&net, &net, &names));
    }
    let mut processes = Vec::new();
    for i in 0..replicas {
        let p = OperatorProcess::start(&env, replica_options(i, flags), log_dir).await?;
        processes.push(p);
    }
    let applied = Instant::now();
    scenario::apply_on_hub(&env, &manifests).await?;
    let mut to_ready = None;
    while applied.elapsed() < timeout {
        if ready_networks(&env).await == networks {
            to_ready = Some(applied.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let holder = env.lease_holder().await;
    let mut out = Vec::new();
    for p in &processes {
        let identity = p.options.identity.clone();
        out.push(Replica {
            leader: holder.as_deref() == Some(identity.as_str()),
            identity,
            memory: procfs::memory(p.pid()),
        });
    }
    for p in &mut processes {
        p.terminate(Duration::from_secs(30)).await.ok();
    }
    Ok(Replicas {
        networks,
        members: MEMBERS,
        to_ready,
        replicas: out,
        flags: flags.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_get_production_timings_json_logs_and_the_extra_flags() {
        let o = replica_options(2, &["--shards".into(), "3".into()]);
        assert_eq!(o.identity, "replica-2");
        assert!(!o.fast && o.leader_election);
        assert_eq!(o.extra_args, ["--log-format=json", "--shards", "3"]);
        assert_eq!(replica_network(7), "net-07");
    }
}

//! A simulated run at a size no machine here can start control planes for: `members` members
//! and `services` services in `networks` networks spread over `shards` shards. The hub objects
//! are real API types, the planner, the engine and the Skupper backend's rendering and
//! assessment are the real code; the **members are simulated** by in-memory maps
//! ([`members::SimulatedMembers`]), so there is no network, no API server and no
//! serialisation to a member. What it shows is where the operator's own time and memory go
//! per phase of a pass: plan, observe (here: copying a member's objects out of memory, what a
//! watch-fed cache read costs), render, assess, write (diff, apply, delete), status.
//!
//! Networks are run one after another (a shard's replica runs its networks on its own
//! cores; on two shared cores a parallel run would measure contention, not the code). Each
//! network runs passes until one finds it converged: the first pass (everything new) and
//! that converged pass (the steady state, what every later pass costs) are reported.

pub mod members;

use crate::procfs::{self, PhaseMark};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use federation_core::backend::{NetworkBackend, Target};
use federation_core::cluster::MemberRegistry;
use federation_core::engine::{Engine, EngineConfig};
use federation_core::plan::{PlanInput, plan};
use federation_core::status::{network_status, service_status};
use federation_skupper::SkupperBackend;
use k8s_openapi::jiff::Timestamp;
use members::SimulatedMembers;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The size of the simulated run.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Members.
    pub members: usize,
    /// Services.
    pub services: usize,
    /// Networks (each member in exactly one).
    pub networks: usize,
    /// Shards the networks are spread over (network `i` in shard `i mod shards`).
    pub shards: usize,
}

/// The phases of a pass.
pub const PHASES: [&str; 6] = ["plan", "observe", "render", "assess", "write", "status"];

/// Time and peak resident memory per phase of one pass (or summed over passes).
#[derive(Clone, Debug, Default)]
pub struct Phases {
    /// Time per phase, in [`PHASES`] order.
    pub time: [Duration; 6],
    /// Peak resident KiB of the process per phase (the highest seen).
    pub peak_kib: [u64; 6],
    /// How far the resident size rose above its level at the phase's start (the highest
    /// seen): what the phase needed beyond memory already held.
    pub rise_kib: [u64; 6],
}

impl Phases {
    /// Adds another pass's times, keeps the higher peaks.
    pub fn add(&mut self, other: &Phases) {
        for i in 0..PHASES.len() {
            self.time[i] += other.time[i];
            self.peak_kib[i] = self.peak_kib[i].max(other.peak_kib[i]);
            self.rise_kib[i] = self.rise_kib[i].max(other.rise_kib[i]);
        }
    }

    /// All phases.
    pub fn total(&self) -> Duration {
        self.time.iter().sum()
    }
}

/// One shard's figures.
#[derive(Clone, Debug, Default)]
pub struct Shard {
    /// Networks.
    pub networks: usize,
    /// Members of its networks.
    pub members: usize,
    /// Services of its networks.
    pub services: usize,
    /// Objects in its simulated members once converged.
    pub objects: usize,
    /// Passes until converged, summed over networks.
    pub passes: usize,
    /// The first pass of every network, summed.
    pub first: Phases,
    /// The converged pass of every network, summed.
    pub converged: Phases,
    /// Networks that did not converge within the pass limit.
    pub unconverged: usize,
}

/// The whole simulated run.
#[derive(Clone, Debug, Default)]
pub struct Simulation {
    /// Building the hub objects (members, networks, services) in memory.
    pub hub_build: Duration,
    /// Resident KiB once the hub objects exist.
    pub hub_rss_kib: Option<u64>,
    /// Per shard.
    pub shards: Vec<Shard>,
    /// The slowest network's converged pass.
    pub slowest_network: Phases,
    /// The first pass of the slowest network.
    pub slowest_first: Phases,
}

/// Passes a network gets to converge before it is reported as not converging.
const MAX_PASSES: usize = 6;

fn network_name(i: usize) -> String {
    format!("net-{i:04}")
}

/// Members, networks and services of the hub, as the operator's caches would hold them.
pub fn hub_objects(
    size: Size,
) -> anyhow::Result<(
    Vec<MemberCluster>,
    Vec<FederatedNetwork>,
    Vec<FederatedService>,
)> {
    let networks = size.networks.max(1);
    let network_of_member = |m: usize| m % networks;
    let members = (0..size.members)
        .map(|m| {
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
                "metadata": {"name": format!("m-{m:05}"), "labels": {"fednet.io/bench-network": network_name(network_of_member(m))}},
                "spec": {"clusterId": format!("m-{m:05}"),
                         "kubeconfigSecretRef": {"namespace": "fednet-system", "name": format!("m-{m:05}")}}
            }))
        })
        .collect::<Result<Vec<MemberCluster>, _>>()?;
    // Member `m` is in network `m mod networks`; the first two of each are its hubs.
    let member_of = |net: usize, k: usize| format!("m-{:05}", net + k * networks);
    let nets = (0..networks)
        .map(|n| {
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
                "metadata": {"name": network_name(n), "namespace": "fednet-system", "generation": 1},
                "spec": {
                    "backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct"}},
                    "members": {"selector": {"matchLabels": {"fednet.io/bench-network": network_name(n)}}},
                    "namespaces": ["apps"],
                    "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": [member_of(n, 0), member_of(n, 1)], "hubsPerSpoke": 1}}
                }
            }))
        })
        .collect::<Result<Vec<FederatedNetwork>, _>>()?;
    let members_per_network = (size.members / networks).max(1);
    let services = (0..size.services)
        .map(|s| {
            let n = s % networks;
            let exporter = member_of(n, (s / networks) % members_per_network);
            serde_json::from_value(json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
                "metadata": {"name": format!("svc-{s:06}"), "namespace": "fednet-system", "generation": 1},
                "spec": {"network": network_name(n), "namespace": "apps", "serviceName": format!("svc-{s:06}"),
                         "exporters": [{"member": exporter, "selector": {"app": format!("svc-{s:06}")}}],
                         "ports": [{"name": "http", "port": 8080}]}
            }))
        })
        .collect::<Result<Vec<FederatedService>, _>>()?;
    Ok((members, nets, services))
}

/// Runs the simulation.
pub async fn run(size: Size) -> anyhow::Result<Simulation> {
    let started = Instant::now();
    let (members, networks, services) = hub_objects(size)?;
    let mut out = Simulation {
        hub_build: started.elapsed(),
        hub_rss_kib: procfs::own_memory().rss_kib,
        shards: vec![Shard::default(); size.shards.max(1)],
        ..Simulation::default()
    };
    // The Skupper backend's pure half needs no member client; the registry is never asked.
    let config = kube::Config::new("https://127.0.0.1:1".parse()?);
    let registry = Arc::new(MemberRegistry::new(kube::Client::try_from(config)?));
    let skupper: Arc<dyn NetworkBackend> = Arc::new(SkupperBackend::new(registry));
    let unhealthy = BTreeSet::new();
    let mut slowest = Duration::ZERO;
    for (i, net) in networks.iter().enumerate() {
        let shard = &mut out.shards[i % size.shards.max(1)];
        let sim = Arc::new(SimulatedMembers::new(skupper.clone()));
        let engine = Engine::new(sim.clone(), EngineConfig::default());
        let mut previous = None;
        let mut first = None;
        let mut converged = None;
        let mut planned_services = 0;
        let mut planned_members = 0;
        for _ in 0..MAX_PASSES {
            let mut phases = Phases::default();
            let mark = PhaseMark::begin();
            let t = Instant::now();
            let planned = plan(PlanInput {
                network: net,
                member_clusters: &members,
                services: &services,
                unhealthy: &unhealthy,
            })
            .map_err(|e| anyhow::anyhow!("planning {}: {e}", network_name(i)))?;
            phases.time[0] = t.elapsed();
            (phases.peak_kib[0], phases.rise_kib[0]) = mark.end();
            planned_services = planned.services.len();
            planned_members = planned.members.len();
            let recorded: BTreeSet<Target> = sim.targets(&planned);

            sim.start_pass();
            let report = engine.reconcile(&planned, &recorded).await;
            let ended = Instant::now();
            let clock = sim.clock();
            phases.time[1] = clock.observe();
            phases.time[2] = clock.render();
            phases.time[3] = clock.assess();
            phases.time[4] = clock.write(ended);
            (phases.peak_kib[1], phases.rise_kib[1]) = clock.observe_peak;
            (phases.peak_kib[2], phases.rise_kib[2]) = clock.render_peak;
            (phases.peak_kib[3], phases.rise_kib[3]) = clock.assess_peak;
            (phases.peak_kib[4], phases.rise_kib[4]) = clock.write_mark.end();

            let mark = PhaseMark::begin();
            let t = Instant::now();
            let now = Timestamp::now();
            let status = network_status(
                previous.as_ref(),
                net.metadata.generation,
                Some(&planned),
                Ok(&report),
                now,
            );
            for svc in &planned.services {
                std::hint::black_box(service_status(
                    None,
                    Some(1),
                    &svc.name,
                    Some(&planned),
                    &report.health,
                    now,
                ));
            }
            previous = Some(status);
            phases.time[5] = t.elapsed();
            (phases.peak_kib[5], phases.rise_kib[5]) = mark.end();

            shard.passes += 1;
            if first.is_none() {
                first = Some(phases.clone());
            }
            if report.is_converged() {
                converged = Some(phases);
                break;
            }
        }
        let first = first.unwrap_or_default();
        eprintln!(
            "[bench] simulated network {}/{}: {planned_members} members, {planned_services} services, {} objects; first pass {:.2} s, converged pass {}",
            i + 1,
            networks.len(),
            sim.object_count(),
            first.total().as_secs_f64(),
            converged.as_ref().map_or_else(
                || "none".to_owned(),
                |c| format!("{:.2} s", c.total().as_secs_f64())
            )
        );
        shard.networks += 1;
        shard.members += planned_members;
        shard.services += planned_services;
        shard.objects += sim.object_count();
        shard.first.add(&first);
        match &converged {
            Some(c) => {
                shard.converged.add(c);
                if c.total() > slowest {
                    slowest = c.total();
                    out.slowest_network = c.clone();
                    out.slowest_first = first.clone();
                }
            }
            None => shard.unconverged += 1,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_small_simulation_converges_every_network_through_the_real_engine() {
        let size = Size {
            members: 12,
            services: 6,
            networks: 2,
            shards: 2,
        };
        let sim = run(size).await.unwrap();
        assert_eq!(sim.shards.len(), 2);
        for shard in &sim.shards {
            assert_eq!(shard.networks, 1);
            assert_eq!(shard.unconverged, 0, "{shard:?}");
            assert_eq!(shard.members, 6);
            assert_eq!(shard.services, 3);
            // Site per member, listeners/connectors per service and member, links and
            // their credentials per spoke: more than one object per member.
            assert!(shard.objects > shard.members * 4, "{shard:?}");
            // Links need the hub's Site and then the Certificate's Secret: several passes.
            assert!(shard.passes >= 3, "{shard:?}");
        }
    }

    #[test]
    fn phases_add_times_and_keep_peaks() {
        let mut a = Phases::default();
        let mut b = Phases::default();
        b.time[2] = Duration::from_millis(5);
        b.peak_kib[2] = 100;
        a.add(&b);
        a.add(&b);
        assert_eq!(a.time[2], Duration::from_millis(10));
        assert_eq!(a.peak_kib[2], 100);
        assert_eq!(a.total(), Duration::from_millis(10));
    }
}

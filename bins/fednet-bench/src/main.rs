//! `fednet-bench` (`make bench-e2e`): end-to-end figures of the operator binary on real
//! control planes, and a simulated 10,000-member run of the core.
//!
//! A binary rather than a `harness = false` bench target: `make test` runs `cargo test
//! --workspace --all-targets`, which would *run* such a bench target's `main` in CI (many
//! minutes of control planes); a binary is only built there, and its unit tests run.
//!
//! Parts (each can be chosen or skipped, see [`settings::Settings`]):
//! 1. convergence: a hub and `n` members on real kube-apiservers, the operator binary with
//!    production timings, a two-hub Skupper network with 100 services applied, until Ready;
//!    where the time went from the operator's own log;
//! 2. requests at rest per API server, from audit logs of every request, filtered to the
//!    operator's user agent;
//! 3. failover: the busiest hub paused until its spokes are Up through the other one;
//! 4. operator memory with many services, and with several replicas sharing networks;
//! 5. the simulated run (members in memory; said so in the output).

mod audit_count;
mod converge;
mod failover;
mod memory;
mod procfs;
mod report;
mod scenario;
mod settings;
mod simulate;
mod table;
mod timeline;

use clap::Parser;
use settings::{Part, Settings};
use std::process::ExitCode;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(&settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nfednet-bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    let mut report = report::Report::new(settings)?;
    report.print_header();
    let timeout = Duration::from_secs(settings.timeout_secs);
    let logs = settings
        .out
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("bench-e2e-logs");

    let mut sizes = settings.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut results = Vec::new();
    for &members in sizes.iter().filter(|m| settings.runs_size(**m)) {
        eprintln!(
            "[bench] {members} members: starting (load {:.2})",
            converge::load_average()
        );
        let spec = converge::SizeRun {
            members,
            services: settings.services,
            rest_window: settings
                .runs(Part::Rest)
                .then(|| Duration::from_secs(settings.rest_secs)),
            failover: settings.runs(Part::Failover) && settings.failover_size() == Some(members),
            timeout,
            log_dir: logs.join(format!("converge-{members}")),
        };
        let result = converge::run(&spec).await?;
        eprintln!("[bench] {members} members: done");
        results.push(result);
    }
    if settings.runs(Part::Converge) {
        report.add(report::convergence(&results));
    }
    if settings.runs(Part::Rest) {
        report.add(report::rest(&results));
    }
    if settings.runs(Part::Failover) {
        report.add(report::failover(&results));
    }
    if settings.runs(Part::Memory) {
        eprintln!(
            "[bench] memory: {} members, {} services",
            settings.memory_members, settings.memory_services
        );
        let many = memory::many_services(
            settings.memory_members,
            settings.memory_services,
            timeout,
            &logs.join("memory-services"),
        )
        .await?;
        eprintln!(
            "[bench] memory: {} replicas, {} networks",
            settings.replicas, settings.replica_networks
        );
        let replicas = memory::replicas(
            settings.replicas,
            settings.replica_networks,
            10,
            &settings.replica_flags(),
            timeout,
            &logs.join("memory-replicas"),
        )
        .await?;
        report.add(report::memory(&many, &replicas));
    }
    if settings.runs(Part::Simulate) {
        let size = simulate::Size {
            members: settings.sim_members,
            services: settings.sim_services,
            networks: settings.sim_networks,
            shards: settings.sim_shards,
        };
        eprintln!("[bench] simulation: {size:?}");
        let sim = simulate::run(size).await?;
        report.add(report::simulation(size, &sim));
    }
    report.finish()
}

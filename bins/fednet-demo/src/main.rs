//! `fednet-demo`: the whole thing on this machine, in one command (`make demo`).
//!
//! Starts a hub and member control planes (real kube-apiserver and etcd, no nodes), registers
//! the members on the hub with kubeconfig Secrets, runs a stand-in for Skupper's controller,
//! applies a hub-and-spoke Skupper network and a shared service, runs the operator binary,
//! waits for Ready and prints what converged. The environment is the one the operator's
//! tests use (`federation_tests::operator_env`); this file only drives and prints it.

mod report;
mod submariner;

use anyhow::Context as _;
use clap::Parser;
use federation_core::api::{ConditionExt, READY};
use federation_tests::operator_env::metrics::{operator_requests_on, parse};
use federation_tests::operator_env::{FedEnv, OperatorOptions, OperatorProcess, sdwan};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Runs the fednet demo on local control planes and exits when the network is Ready.
#[derive(Parser, Debug)]
#[command(name = "fednet-demo", version, about)]
struct Args {
    /// Member clusters (besides the hub); the first, `central`, is the topology's hub.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=16))]
    members: u16,
    /// How long the network may take to become Ready.
    #[arg(long, default_value_t = 180)]
    timeout_secs: u64,
    /// After Ready, stop the Skupper stand-in and count the operator's API requests at rest
    /// for this many seconds (0: skip).
    #[arg(long, default_value_t = 0)]
    measure_rest_secs: u64,
    /// `skupper` (the default), or `submariner`: three members over a broker with the real
    /// Submariner operator and Lighthouse agents (needs root; `--members` is ignored).
    #[arg(long, default_value = "skupper", value_parser = ["skupper", "submariner"])]
    backend: String,
    /// Run the network over an SD-WAN controller instead of Skupper: `headscale` starts a real
    /// Headscale with a real Tailscale client per member as its edge.
    #[arg(long, value_enum)]
    sdwan: Option<SdwanDemo>,
}

/// The SD-WAN controllers the demo can run.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SdwanDemo {
    /// A real Headscale v0.29.2 (hack/headscale/build.sh) on loopback.
    Headscale,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // kube's client logs every 500 the kit's readiness polls see while API servers start.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let run = if args.backend == "submariner" {
        submariner::demo(Duration::from_secs(args.timeout_secs)).await
    } else {
        demo(&args).await
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nfednet-demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: &Args) -> anyhow::Result<()> {
    match args.sdwan {
        Some(SdwanDemo::Headscale) => report::banner_sdwan(usize::from(args.members)),
        None => report::banner(usize::from(args.members)),
    }
    let started = Instant::now();
    let mut env = FedEnv::start(usize::from(args.members))
        .await
        .context("starting the local clusters")?;
    println!(
        "started the hub and {} members in {:.1} s; members registered (ServiceAccount token per member, kubeconfig Secret + MemberCluster on the hub)",
        args.members,
        started.elapsed().as_secs_f64()
    );
    // The Skupper stand-in is not needed when the network runs over an SD-WAN controller.
    let headscale = match args.sdwan {
        Some(SdwanDemo::Headscale) => {
            let started = Instant::now();
            let h = sdwan::prepare(&env).await?;
            println!(
                "started Headscale ({}) and a Tailscale edge per member in {:.1} s; MemberClusters name their edges",
                h.url(),
                started.elapsed().as_secs_f64()
            );
            Some(h)
        }
        None => {
            env.start_double();
            None
        }
    };
    let logs = tempfile::tempdir()?;
    let options = OperatorOptions {
        identity: "demo".to_owned(),
        leader_election: true,
        fast: false,
        kubeconfig: None,
        extra_args: Vec::new(),
    };
    let mut operator = OperatorProcess::start(&env, options, logs.path())
        .await
        .context("starting the operator")?;
    operator.wait_ready(Duration::from_secs(60)).await?;
    println!(
        "operator running (pid {}), default timings, leader election on\n",
        operator.pid()
    );

    let hub_before = parse(&operator.metrics().await?);
    let members_before = member_requests(&env).await?;
    let applied = Instant::now();
    match &headscale {
        Some(h) => sdwan::apply_network(&env, h).await?,
        None => env.apply_network().await?,
    }
    let timeout = Duration::from_secs(args.timeout_secs);
    let waited = env
        .wait_network("Ready", timeout, |n| {
            n.status.as_ref().is_some_and(|s| {
                s.conditions.is_true(READY) && s.observed_generation == n.metadata.generation
            })
        })
        .await;
    let net = match waited {
        Ok(net) => net,
        Err(e) => {
            eprintln!("operator log (last lines):\n{}", operator.log_tail(40));
            return Err(e.context("giving up (a slower machine may need --timeout-secs)"));
        }
    };
    let to_ready = applied.elapsed();
    report::converged_state(&env, &net).await?;
    if let Some(h) = &headscale {
        sdwan::print_controller(h).await?;
    }
    let hub_after = parse(&operator.metrics().await?);
    let members_after = member_requests(&env).await?;
    report::convergence_figures(
        usize::from(args.members),
        to_ready,
        &hub_before,
        &hub_after,
        members_after - members_before,
        operator.rss_kib(),
    );
    if args.measure_rest_secs > 0 {
        measure_rest(
            &mut env,
            &operator,
            Duration::from_secs(args.measure_rest_secs),
        )
        .await?;
    }
    match args.sdwan {
        Some(SdwanDemo::Headscale) => report::simulated_and_real_sdwan(),
        None => report::simulated_and_real(),
    }
    let code = operator.terminate(Duration::from_secs(30)).await?;
    let code = code.map_or_else(|| "killed by a signal".to_owned(), |c| c.to_string());
    println!("operator stopped on SIGTERM (exit code {code}); tearing the clusters down");
    drop(env);
    Ok(())
}

async fn member_requests(env: &FedEnv) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for c in env.member_clusters() {
        total += operator_requests_on(c).await?;
    }
    Ok(total)
}

async fn measure_rest(
    env: &mut FedEnv,
    operator: &OperatorProcess,
    window: Duration,
) -> anyhow::Result<()> {
    env.stop_double();
    // Let in-flight passes triggered by the last status changes finish.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let hub_before = parse(&operator.metrics().await?);
    let members_before = member_requests(env).await?;
    tokio::time::sleep(window).await;
    let hub_after = parse(&operator.metrics().await?);
    let members_after = member_requests(env).await?;
    report::rest_figures(
        window,
        &hub_before,
        &hub_after,
        members_after - members_before,
        operator.rss_kib(),
    );
    Ok(())
}

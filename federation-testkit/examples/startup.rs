//! Measures how long the kit takes to start 1, 3 and 8 clusters, and how much memory each
//! kube-apiserver and etcd holds, for both etcd layouts. Prints a Markdown table.
//!
//! ```text
//! cargo run -p federation-testkit --example startup -- [--runs N] [--clusters 1,3,8]
//!     [--layout shared|per-cluster|both] [--crds]
//! ```
//! `--crds` also installs every upstream CRD (Skupper, Submariner, MCS, about-api), which costs
//! time and API server memory.
//!
//! `--clusters 33 --layout shared --runs 2` on the 2-core, 24 GiB machine: 61.8 s and 61.4 s,
//! kube-apiserver 280-282 MiB each (max 294), etcd 258-263 MiB, 9.3 GiB summed RSS (shared binary
//! pages counted 33 times: `MemAvailable` falls by about 6.4 GiB).

use std::time::Duration;

use federation_testkit::{ControlPlanes, EtcdLayout, ProcessRole, Upstream, resident_memory_kib};

struct Options {
    runs: usize,
    clusters: Vec<usize>,
    layouts: Vec<EtcdLayout>,
    crds: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        runs: 1,
        clusters: vec![1, 3, 8],
        layouts: vec![EtcdLayout::Shared, EtcdLayout::PerCluster],
        crds: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => options.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--clusters" => {
                options.clusters = value()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|e| format!("--clusters: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--layout" => {
                options.layouts = match value()?.as_str() {
                    "shared" => vec![EtcdLayout::Shared],
                    "per-cluster" => vec![EtcdLayout::PerCluster],
                    "both" => vec![EtcdLayout::Shared, EtcdLayout::PerCluster],
                    other => return Err(format!("unknown layout {other}")),
                };
            }
            "--crds" => options.crds = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

/// One measured start.
struct Sample {
    startup: Duration,
    apiserver_kib: Vec<u64>,
    etcd_kib: Vec<u64>,
}

async fn measure(
    layout: EtcdLayout,
    clusters: usize,
    crds: bool,
) -> federation_testkit::Result<Sample> {
    let mut builder = ControlPlanes::builder()
        .clusters(clusters)
        .etcd_layout(layout);
    if crds {
        builder = builder.upstream_crds(&Upstream::ALL);
    }
    let planes = builder.start().await?;
    let mut sample = Sample {
        startup: planes.startup_duration(),
        apiserver_kib: Vec::new(),
        etcd_kib: Vec::new(),
    };
    for process in planes.processes() {
        let rss = process.pid.and_then(resident_memory_kib).unwrap_or(0);
        match process.role {
            ProcessRole::Etcd => sample.etcd_kib.push(rss),
            _ => sample.apiserver_kib.push(rss),
        }
    }
    Ok(sample)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn stats(values: &[u64]) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    let sum: u64 = values.iter().sum();
    let max = values.iter().copied().max().unwrap_or(0);
    format!(
        "{:.0} (max {:.0})",
        mib(sum / values.len() as u64),
        mib(max)
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Display, not Debug: the kit's messages name the log file and the build script.
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_options()?;
    println!(
        "| etcd layout | clusters | run | start (s) | kube-apiserver RSS MiB, mean (max) | etcd RSS MiB, mean (max) | etcd processes | total RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &layout in &options.layouts {
        for &clusters in &options.clusters {
            for run in 1..=options.runs {
                let sample = measure(layout, clusters, options.crds).await?;
                let total: u64 = sample.apiserver_kib.iter().chain(&sample.etcd_kib).sum();
                println!(
                    "| {layout:?} | {clusters} | {run} | {:.1} | {} | {} | {} | {:.0} |",
                    sample.startup.as_secs_f64(),
                    stats(&sample.apiserver_kib),
                    stats(&sample.etcd_kib),
                    sample.etcd_kib.len(),
                    mib(total),
                );
            }
        }
    }
    Ok(())
}

//! `fedctl`: the fednet command-line tool.

mod diff_cmd;
mod doctor_cmd;
mod plan_cmd;
mod status_cmd;
mod topology_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use fedctl::hub::HubOptions;
use fedctl::render::Format;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// fednet command-line tool.
#[derive(Parser)]
#[command(name = "fedctl", version, about)]
struct Cli {
    /// Kubeconfig of the hub (else $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (else its current context).
    #[arg(long, global = true)]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of the fednet.io API as YAML.
    Crd,
    /// Plan networks from YAML manifests, offline: members, sites, links and services.
    Plan {
        /// Files or folders with FederatedNetwork, MemberCluster and FederatedService
        /// manifests (multi-document YAML; other kinds are ignored).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Members to plan as unhealthy (as if their last probe failed).
        #[arg(long = "unhealthy", value_delimiter = ',')]
        unhealthy: Vec<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show a network's members, links, services and conditions from the hub; without a
    /// network, one line per network.
    Status {
        /// The FederatedNetwork (all networks of the namespace when omitted).
        network: Option<String>,
        /// Namespace of the networks on the hub (else the kubeconfig context's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Networks of every namespace.
        #[arg(short = 'A', long, conflicts_with_all = ["network", "namespace"])]
        all_namespaces: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Keep watching and show each change (redrawn on a terminal).
        #[arg(short, long)]
        watch: bool,
    },
    /// Draw a network: members (hubs and spokes), links dialer -> acceptor coloured by phase,
    /// costs. From the hub's live status, or offline from manifests with -f.
    Topology {
        /// The FederatedNetwork (may be omitted with -f when the files hold one network).
        network: Option<String>,
        /// Namespace of the network on the hub (else the kubeconfig context's; with -f, the
        /// manifest's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Picture format.
        #[arg(short = 'F', long, value_enum, default_value_t = Format::Mermaid)]
        format: Format,
        /// Draw from these manifests (files or folders) instead of the hub, as `fedctl plan`
        /// reads them: links from the plan, phases unknown (grey).
        #[arg(short = 'f', long = "filename")]
        files: Vec<PathBuf>,
    },
    /// Show what applying manifests (networks and services, as `fedctl plan` reads them)
    /// would change in every member, by server-side dry-run. Exit 0: nothing; 1: changes;
    /// 2: errors.
    Diff {
        /// Files or folders with FederatedNetwork and FederatedService manifests
        /// (MemberClusters in them are ignored: the hub's are used).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check the hub and every member (CRDs, operator Lease, member credentials, reachability,
    /// permissions, backend CRDs, CIDRs) and say how to fix what is wrong. Exits 1 when a
    /// check fails, 2 when doctor could not run.
    Doctor {
        /// Namespace of the operator's Lease.
        #[arg(long, default_value = "fednet-system")]
        lease_namespace: String,
        /// Seconds each member may take to answer one check.
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// How `fedctl plan` and `fedctl status` print.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Readable text.
    Text,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let hub = HubOptions {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
    };
    let colour = fedctl::table::use_colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let result = match cli.command {
        Command::Crd => federation_core::api::crds_yaml()
            .map(|y| print!("{y}"))
            .map_err(anyhow::Error::from),
        Command::Plan {
            files,
            unhealthy,
            output,
        } => plan_cmd::run(&files, &unhealthy, output),
        Command::Status {
            network,
            namespace,
            all_namespaces,
            output,
            watch,
        } => status_cmd::run(
            &hub,
            status_cmd::Args {
                network,
                namespace,
                all_namespaces,
                output,
                watch,
                colour,
            },
        ),
        Command::Topology {
            network,
            namespace,
            format,
            files,
        } => topology_cmd::run(&hub, network, namespace, format, &files),
        // Its own exit codes, as `kubectl diff`: 1 means "would change", not failure.
        Command::Diff { files, output } => return diff_cmd::run(&hub, &files, output),
        Command::Doctor {
            lease_namespace,
            timeout,
            output,
        } => {
            let options = fedctl::doctor::DoctorOptions {
                lease_namespace,
                member_timeout: std::time::Duration::from_secs(timeout),
                ..Default::default()
            };
            return doctor_cmd::run(&hub, options, output, colour);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A runtime for the commands that talk to the hub; one thread is plenty for a CLI.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))
}

/// Writes `text` to stdout. Returns `false` when the reader has gone (`fedctl ... | head`),
/// which is not an error: there is simply nobody left to print for.
fn emit(text: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::anyhow!("writing to stdout: {e}")),
    }
}

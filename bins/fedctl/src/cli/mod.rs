//! The command line: argument parsing and printing around the library (the `fedctl` and
//! `kubectl-fednet` binaries are this module's [`main`]).

mod diff_cmd;
mod doctor_cmd;
mod join_cmd;
mod plan_cmd;
mod status_cmd;
mod topology_cmd;

use crate::hub::HubOptions;
use crate::render::Format;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// fednet command-line tool. Also runs as a kubectl plugin: installed as `kubectl-fednet`
/// on the PATH, it is `kubectl fednet ...`.
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
    /// Register a member on the hub with least privilege: a ServiceAccount in the member
    /// with namespaced Roles for the backend, a token, the kubeconfig Secret and the
    /// MemberCluster on the hub; prints the access review table proving what the identity
    /// may and may not do. Idempotent: run it again to renew the token.
    Join(Box<JoinArgs>),
    /// Remove a member: delete its MemberCluster and wait until the operator has removed
    /// every network's objects from it, then its hub Secret and the member's ServiceAccount
    /// and Roles.
    Unjoin {
        /// Name of the MemberCluster.
        member: String,
        /// Kubeconfig context of the member.
        #[arg(long)]
        member_context: Option<String>,
        /// Kubeconfig file of the member, when it is not the hub's.
        #[arg(long, value_name = "PATH")]
        member_kubeconfig: Option<PathBuf>,
        /// Name of the member ServiceAccount.
        #[arg(long, default_value = "fednet-operator")]
        service_account: String,
        /// How long to wait for the operator to release the member (s, m, h or d).
        #[arg(long, default_value = "5m", value_parser = crate::join::parse_duration)]
        timeout: std::time::Duration,
        /// Only the hub side (the member cannot be reached any more).
        #[arg(long)]
        hub_only: bool,
    },
    /// Print a shell completion script: `source <(fedctl completion bash)`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
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

/// The flags of `fedctl join`.
#[derive(clap::Args)]
struct JoinArgs {
    /// Name of the MemberCluster (a DNS-1123 label).
    member: String,
    /// Kubeconfig context of the member (admin credentials; they never leave this
    /// machine). --context selects the hub.
    #[arg(long)]
    member_context: Option<String>,
    /// Kubeconfig file of the member, when it is not the hub's.
    #[arg(long, value_name = "PATH")]
    member_kubeconfig: Option<PathBuf>,
    /// Namespaces the member's networks span (Roles are created there, nowhere else).
    #[arg(
        long = "namespace",
        short = 'N',
        required = true,
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Backend whose access to grant.
    #[arg(long, default_value = "Skupper")]
    backend: String,
    /// Cluster id (else the member's cluster.clusterset.k8s.io ClusterProperty, else the
    /// member name).
    #[arg(long)]
    cluster_id: Option<String>,
    /// Pod CIDR(s); required when the cluster does not state them (kubeadm-config).
    #[arg(long = "pod-cidr", value_delimiter = ',')]
    pod_cidrs: Vec<String>,
    /// Service CIDR(s); read from the ServiceCIDR objects when omitted.
    #[arg(long = "service-cidr", value_delimiter = ',')]
    service_cidrs: Vec<String>,
    /// Region (topology selectors, status).
    #[arg(long)]
    region: Option<String>,
    /// Zone.
    #[arg(long)]
    zone: Option<String>,
    /// Labels for the MemberCluster, `key=value`.
    #[arg(long = "label", short = 'l', value_delimiter = ',')]
    labels: Vec<String>,
    /// Lifetime of the member token (s, m, h or d). The API server may grant less; the
    /// operator reports it as expiring a week before (CredentialsExpiring).
    #[arg(long, default_value = "720h", value_parser = crate::join::parse_duration)]
    token_ttl: std::time::Duration,
    /// Hub namespace of the kubeconfig Secret (the operator's namespace).
    #[arg(long, default_value = "fednet-system")]
    secret_namespace: String,
    /// Name of the member ServiceAccount (in fednet-system).
    #[arg(long, default_value = "fednet-operator")]
    service_account: String,
    /// The member's API server URL as the operator reaches it, when it differs from the
    /// member context's (the CA is still the context's).
    #[arg(long, value_name = "URL")]
    member_server: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
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

/// Runs the command line (`fedctl` or `kubectl-fednet`) and returns its exit code.
pub fn main() -> ExitCode {
    let name = program_name();
    // kubectl runs plugins as `kubectl-fednet`; the user typed `kubectl fednet`.
    let bin_name = if name == "kubectl-fednet" {
        "kubectl fednet"
    } else {
        name
    };
    let cli = Cli::command().name(name).bin_name(bin_name);
    let cli = match Cli::from_arg_matches(&cli.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let hub = HubOptions {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
    };
    let colour = crate::table::use_colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let result = match cli.command {
        Command::Crd => federation_core::api::crds_yaml()
            .map_err(anyhow::Error::from)
            .and_then(|y| emit(&y).map(|_| ())),
        Command::Completion { shell } => {
            let mut buffer = Vec::new();
            let name = program_name();
            clap_complete::generate(shell, &mut Cli::command(), name, &mut buffer);
            emit(&String::from_utf8_lossy(&buffer)).map(|_| ())
        }
        Command::Join(args) => args.options().and_then(|options| {
            join_cmd::run_join(
                &hub,
                args.member_context.clone(),
                args.member_kubeconfig.clone(),
                options,
                args.output,
                colour,
            )
        }),
        Command::Unjoin {
            member,
            member_context,
            member_kubeconfig,
            service_account,
            timeout,
            hub_only,
        } => join_cmd::run_unjoin(
            &hub,
            member_context,
            member_kubeconfig,
            crate::join::UnjoinOptions {
                member,
                service_account,
                timeout,
            },
            hub_only,
            colour,
        ),
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
            let options = crate::doctor::DoctorOptions {
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

/// `kubectl-fednet` when run as a kubectl plugin (so completions and help name the command
/// the user typed), else `fedctl`.
fn program_name() -> &'static str {
    let invoked = std::env::args_os().next().unwrap_or_default();
    let invoked = std::path::Path::new(&invoked)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked.starts_with("kubectl-fednet") {
        "kubectl-fednet"
    } else {
        "fedctl"
    }
}

impl JoinArgs {
    /// The library's options from the flags (backend and labels parsed).
    fn options(&self) -> anyhow::Result<crate::join::JoinOptions> {
        let backend: federation_core::api::BackendKind = serde_json::from_value(
            serde_json::Value::String(self.backend.clone()),
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "--backend {:?}: one of Skupper, Submariner, SdWan",
                self.backend
            )
        })?;
        let labels = self
            .labels
            .iter()
            .map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| anyhow::anyhow!("--label {l:?}: use key=value"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(crate::join::JoinOptions {
            member: self.member.clone(),
            backend,
            namespaces: self.namespaces.clone(),
            cluster_id: self.cluster_id.clone(),
            pod_cidrs: self.pod_cidrs.clone(),
            service_cidrs: self.service_cidrs.clone(),
            region: self.region.clone(),
            zone: self.zone.clone(),
            labels,
            token_ttl: self.token_ttl,
            secret_namespace: self.secret_namespace.clone(),
            service_account: self.service_account.clone(),
            server: self.member_server.clone(),
        })
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

//! The kit's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting, driving or stopping test control planes.
///
/// Messages name the file to look at (a process log, a CRD file) so that a failing test can be
/// debugged from its output alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A binary (`kube-apiserver` or `etcd`) was found nowhere.
    #[error(
        "{binary} not found (looked in: {}); set {env_var} or KUBEBUILDER_ASSETS, \
         or run hack/envtest/assets.sh to build it into the setup-envtest store",
        display_paths(searched)
    )]
    AssetNotFound {
        /// The binary's file name.
        binary: &'static str,
        /// The environment variable that names this binary directly.
        env_var: &'static str,
        /// Every path that was tried, in order.
        searched: Vec<PathBuf>,
    },

    /// The Headscale binary was not found.
    #[error(
        "headscale not found at {}; set HEADSCALE_BIN or run hack/headscale/build.sh to build it",
        searched.display()
    )]
    HeadscaleNotFound {
        /// Where it was looked for.
        searched: PathBuf,
    },

    /// A command-line tool of a server the kit runs failed.
    #[error("{command}: {detail}")]
    Command {
        /// The command, without secrets.
        command: String,
        /// What it said.
        detail: String,
    },

    /// A file system or socket operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "write" or "create directory".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Generating the test PKI failed.
    #[error("could not generate test certificates: {0}")]
    Certificate(#[from] rcgen::Error),

    /// A process could not be started.
    #[error("could not start {name} ({}): {source}; log: {}", program.display(), log.display())]
    Spawn {
        /// The process's name in the kit, e.g. `cluster-0/kube-apiserver`.
        name: String,
        /// The binary that was executed.
        program: PathBuf,
        /// Its log file.
        log: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A process exited while the kit still needed it (usually during startup).
    #[error("{name} exited ({status}); log: {}\n--- last lines of the log ---\n{tail}", log.display())]
    ProcessExited {
        /// The process's name in the kit.
        name: String,
        /// Its exit status, as text.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },

    /// Something did not become ready in time.
    #[error("{what} not ready after {waited:?}: {last_error}; log: {}\n{tail}", log.display())]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long the kit waited.
        waited: Duration,
        /// The last error seen while polling.
        last_error: String,
        /// The log file of the process concerned.
        log: PathBuf,
        /// The last lines of that log, if any.
        tail: String,
    },

    /// A request to a test API server failed.
    #[error("{context}: {source}")]
    Kube {
        /// What the request was for.
        context: String,
        /// The client error.
        source: kube::Error,
    },

    /// The generated kubeconfig could not be turned into a client configuration.
    #[error("invalid kubeconfig for {cluster}: {source}")]
    Kubeconfig {
        /// The cluster name.
        cluster: String,
        /// The underlying error.
        source: kube::config::KubeconfigError,
    },

    /// A YAML document could not be parsed or written.
    #[error("invalid YAML in {}: {source}", path.display())]
    Yaml {
        /// The file (or a description of the in-memory document).
        path: PathBuf,
        /// The underlying error.
        source: serde_yaml::Error,
    },

    /// A YAML document was not what it should be (e.g. not a CustomResourceDefinition).
    #[error("unexpected document in {}: {reason}", path.display())]
    InvalidDocument {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// Sending a signal to a process failed.
    #[error("could not send SIG{signal} to {name} (pid {pid}): {detail}")]
    Signal {
        /// The signal's name without the `SIG` prefix.
        signal: &'static str,
        /// The process's name in the kit.
        name: String,
        /// Its pid.
        pid: u32,
        /// What `kill` reported.
        detail: String,
    },

    /// A fault operation needs a running process and there is none.
    #[error("{name} is not running (killed and not restarted?)")]
    NotRunning {
        /// The process's name in the kit.
        name: String,
    },

    /// The operation is not available for this kind of cluster.
    #[error("{operation} is not supported for {runtime} clusters")]
    Unsupported {
        /// The operation, e.g. `pause`.
        operation: &'static str,
        /// The kind of cluster, e.g. `k3s`.
        runtime: &'static str,
    },

    /// Startup failed; every process was killed, and the temp folder with the logs was kept.
    #[error("control planes failed to start (logs kept in {}): {source}", dir.display())]
    Startup {
        /// The kept temp folder; remove it when done.
        dir: PathBuf,
        /// What failed.
        source: Box<Error>,
    },

    /// A line of an API server's audit log is not an audit event.
    #[error("invalid audit event in {} line {line}: {source}", path.display())]
    AuditLog {
        /// The audit log.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// The underlying error.
        source: serde_json::Error,
    },

    /// A server kept failing to start because another process took its port first, on every
    /// attempt with fresh ports.
    #[error(
        "{name} could not bind its port in {attempts} attempts (each time another process held \
         one of {ports:?}); logs of the attempts: {}",
        display_paths(logs)
    )]
    PortsTaken {
        /// The process's name in the kit.
        name: String,
        /// How many times it was started.
        attempts: usize,
        /// The ports that were found taken, one per attempt.
        ports: Vec<u16>,
        /// The log of each attempt.
        logs: Vec<PathBuf>,
    },

    /// No loopback port was left to hand out (every port of the pool is in use or was handed
    /// out already by this process).
    #[error("no free loopback port left ({handed_out} handed out by this process)")]
    NoFreePort {
        /// How many ports this process was given so far.
        handed_out: usize,
    },

    /// The caller asked for something impossible, e.g. zero clusters.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Starting or inspecting a k3s container failed.
    #[cfg(feature = "k3s")]
    #[error("k3s container: {0}")]
    Container(#[from] testcontainers::TestcontainersError),
}

/// The kit's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            context: context.into(),
            source,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

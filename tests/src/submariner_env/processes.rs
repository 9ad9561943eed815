//! The real Submariner operator and Lighthouse agent as child processes, run out of cluster
//! against the test API servers.
//!
//! - The operator's metrics listener binds `<main.metricsHost>:8383`, both fixed at build
//!   time; `hack/submariner/assets.sh` links it with a host name, and each instance runs in its
//!   own mount namespace (`unshare -m`) where `/etc/hosts` maps that name to a loopback
//!   address of its own.
//! - The agent only uses in-cluster configuration: it runs with `KUBERNETES_SERVICE_HOST` and
//!   `_PORT` set to its member's API server, in its own mount namespace whose `/run` is a
//!   fresh tmpfs holding the service-account folder (token minted by TokenRequest for its
//!   ServiceAccount, `ca.crt`, `namespace`) and the broker Secret's folder, bind-mounted where
//!   a kubelet would mount them.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Environment variable naming the folder with the Submariner binaries.
pub const ENV_SUBMARINER_ASSETS: &str = "SUBMARINER_ASSETS";
/// The host name the operator's metrics listener was linked with.
pub const METRICS_HOST_NAME: &str = "submariner-operator-metrics.fednet.invalid";

/// The folder with `submariner-operator`, `lighthouse-agent` and the agent's RBAC: from
/// `$SUBMARINER_ASSETS`, else from `hack/submariner/assets.sh` (which builds them when
/// missing; about six minutes on two cores, once).
pub fn assets() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV_SUBMARINER_ASSETS).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/submariner/assets.sh");
    let out = std::process::Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed", script.display());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let file = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let err = file.try_clone()?;
    Ok((file, err))
}

/// Starts the operator for one cluster, watching `namespace`; its metrics bind `metrics_ip`.
pub fn start_operator(
    assets: &Path,
    dir: &Path,
    name: &str,
    kubeconfig: &Path,
    namespace: &str,
    metrics_ip: &str,
) -> anyhow::Result<Child> {
    let hosts = dir.join(format!("{name}.hosts"));
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n{metrics_ip} {METRICS_HOST_NAME}\n"),
    )?;
    let (out, err) = log_file(dir, &format!("{name}-operator"))?;
    let script = r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#;
    Command::new("unshare")
        .args(["-m", "--", "sh", "-c", script, "sh"])
        .arg(&hosts)
        .arg(assets.join("submariner-operator"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["--health-probe-bind-address=0", "--pprof-bind-address=0"])
        .env("WATCH_NAMESPACE", namespace)
        .env("OPERATOR_NAME", "submariner-operator")
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .context("starting submariner-operator")
}

/// What a Lighthouse agent runs with: its folders and the environment the operator rendered.
pub struct AgentSpec<'a> {
    /// Member name (for the log file).
    pub member: &'a str,
    /// The member's API server, `host` and `port`.
    pub host: &'a str,
    /// Port of the member's API server.
    pub port: u16,
    /// Folder holding `token`, `ca.crt`, `namespace`.
    pub service_account_dir: &'a Path,
    /// The broker Secret's name and the folder holding its keys.
    pub broker_secret: Option<(&'a str, &'a Path)>,
    /// The container environment from the operator's Deployment.
    pub env: Vec<(String, String)>,
}

/// Starts a Lighthouse agent as a pod of the operator's Deployment would run.
pub fn start_agent(assets: &Path, dir: &Path, spec: &AgentSpec<'_>) -> anyhow::Result<Child> {
    let (out, err) = log_file(dir, &format!("{}-lighthouse-agent", spec.member))?;
    let script = r#"set -e
sa="$1"; secret_name="$2"; secret_dir="$3"; shift 3
mount -t tmpfs fednet-pod-run /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind "$sa" /run/secrets/kubernetes.io/serviceaccount
if [ -n "$secret_name" ]; then
  mkdir -p "/run/secrets/submariner.io/$secret_name"
  mount --bind "$secret_dir" "/run/secrets/submariner.io/$secret_name"
fi
exec "$@""#;
    let (secret_name, secret_dir) = spec
        .broker_secret
        .map_or((String::new(), PathBuf::new()), |(n, d)| {
            (n.to_owned(), d.to_path_buf())
        });
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--", "sh", "-c", script, "sh"])
        .arg(spec.service_account_dir)
        .arg(secret_name)
        .arg(secret_dir)
        .arg(assets.join("lighthouse-agent"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBERNETES_SERVICE_HOST", spec.host)
        .env("KUBERNETES_SERVICE_PORT", spec.port.to_string())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.spawn().context("starting lighthouse-agent")
}

//! The operator binary as a child process.
//!
//! # Finding the binary
//! The tests live in the `federation-tests` package, so Cargo does not set
//! `CARGO_BIN_EXE_federation-operator` for them (it does so only for the binary's own
//! package). [`operator_binary`] therefore uses `$FEDNET_OPERATOR_BIN` when set, and otherwise
//! runs `cargo build -p federation-operator` once per process (a no-op when it is fresh; Cargo
//! releases its build lock while tests run) and takes `federation-operator` from the target
//! folder the running executable lives in (`target/<profile>/`, the parent of `deps/`).

use super::{FedEnv, HUB_NAMESPACE};
use anyhow::{Context as _, anyhow, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Environment variable naming a prebuilt operator binary.
pub const ENV_OPERATOR_BIN: &str = "FEDNET_OPERATOR_BIN";

/// The operator binary, built if needed (see the module docs).
pub fn operator_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate_or_build() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_OPERATOR_BIN).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| anyhow!("executable without a folder"))?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("no workspace folder"))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut build = std::process::Command::new(cargo);
    build
        .args([
            "build",
            "-q",
            "-p",
            "federation-operator",
            "--bin",
            "federation-operator",
        ])
        .current_dir(workspace);
    if release {
        build.arg("--release");
    }
    let status = build
        .status()
        .context("running cargo build -p federation-operator")?;
    if !status.success() {
        bail!("cargo build -p federation-operator failed: {status}");
    }
    let bin = dir.join("federation-operator");
    if !bin.exists() {
        bail!("{} missing after the build", bin.display());
    }
    Ok(bin)
}

/// How to run one operator process.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// `--identity`.
    pub identity: String,
    /// `--leader-election`.
    pub leader_election: bool,
    /// Short timings so tests run in seconds (requeues, probes, timeouts, Lease).
    pub fast: bool,
    /// Hub kubeconfig to use instead of the kit's admin one.
    pub kubeconfig: Option<PathBuf>,
    /// More flags.
    pub extra_args: Vec<String>,
}

impl OperatorOptions {
    /// Fast timings, leader election on.
    pub fn fast(identity: &str) -> Self {
        Self {
            identity: identity.to_owned(),
            leader_election: true,
            fast: true,
            kubeconfig: None,
            extra_args: Vec::new(),
        }
    }
}

/// Flags that make the operator react within seconds (production defaults are slower).
pub const FAST_FLAGS: &[&str] = &[
    "--requeue-progressing=1s",
    "--probe-interval=2s",
    "--probe-timeout=1s",
    "--target-timeout=4s",
    "--debounce=200ms",
    "--lease-duration=4s",
    "--lease-renew-deadline=3s",
    "--lease-retry-period=500ms",
    "--shutdown-grace=5s",
];

/// A running operator; killed (SIGKILL) when dropped.
pub struct OperatorProcess {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    log: PathBuf,
    /// The options it was started with.
    pub options: OperatorOptions,
}

impl OperatorProcess {
    /// Starts the operator against the environment's hub; logs go to `log_dir`.
    pub async fn start(
        env: &FedEnv,
        options: OperatorOptions,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let bin = operator_binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = log_dir.join(format!("operator-{}.log", options.identity));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(&bin);
        let kubeconfig = options
            .kubeconfig
            .as_deref()
            .unwrap_or(env.hub().kubeconfig_path());
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--namespace={HUB_NAMESPACE}"))
            .arg(format!("--lease-namespace={HUB_NAMESPACE}"))
            .arg(format!("--identity={}", options.identity))
            .arg(format!("--leader-election={}", options.leader_election))
            .arg(format!("--metrics-addr={addr}"))
            .arg(format!("--health-addr={addr}"));
        if options.fast {
            cmd.args(FAST_FLAGS);
        }
        cmd.args(&options.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("FEDNET_OPERATOR_LOG")
                    .unwrap_or_else(|_| "info,federation_operator=debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("operator exited at once"))?;
        let process = Self {
            child,
            pid,
            addr,
            log,
            options,
        };
        process.wait_serving(Duration::from_secs(30)).await?;
        Ok(process)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        federation_testkit::resident_memory_kib(self.pid)
    }

    async fn wait_serving(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self
                .get("/healthz")
                .await
                .is_ok_and(|(code, _)| code == 200)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "operator not serving /healthz within {timeout:?}; log:\n{}",
            self.log_tail(40)
        )
    }

    /// GETs a path of its HTTP endpoint: (status code, body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .map_err(|_| anyhow!("GET {path} timed out"))??;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow!("malformed response to GET {path}"))?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("no status in response to GET {path}"))?;
        Ok((code, body.to_owned()))
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let (code, body) = self.get("/metrics").await?;
        if code != 200 {
            bail!("/metrics answered {code}");
        }
        Ok(body)
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        self.get("/readyz").await.is_ok_and(|(code, _)| code == 200)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.ready().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "operator not ready within {timeout:?}; log:\n{}",
            self.log_tail(40)
        )
    }

    /// SIGKILL: no cleanup, the Lease stays held until it expires.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then waits (at most `timeout`) for it to exit; returns its exit code.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        let exit = tokio::time::timeout(timeout, self.child.wait())
            .await
            .map_err(|_| anyhow!("operator did not exit within {timeout:?} of SIGTERM"))??;
        Ok(exit.code())
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

//! One etcd server on loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::ports::{Ports, start_with_fresh_ports};
use crate::process::{ManagedProcess, ProcessInfo, ProcessRole, ProcessSpec};

/// A running etcd. Dropping it kills the process (its data folder stays until the kit's temp
/// folder is removed).
#[derive(Debug)]
pub(crate) struct Etcd {
    process: ManagedProcess,
    client_url: String,
}

impl Etcd {
    /// Starts etcd named `name` with its data and log under `dir`, and waits for `/health`.
    /// Started again on fresh ports (from `ports`) if another process takes one of its ports.
    pub(crate) async fn start(
        binary: &Path,
        name: &str,
        dir: &Path,
        timeout: Duration,
        ports: &Ports,
    ) -> Result<Self> {
        let log = dir.join(format!("{name}.log"));
        start_with_fresh_ports(name, &log, ports, 2, |chosen| {
            let log = log.clone();
            async move {
                let [client_port, peer_port] = chosen[..] else {
                    return Err(Error::InvalidArgument(format!(
                        "etcd needs two ports, got {chosen:?}"
                    )));
                };
                Self::start_on(binary, name, dir, timeout, log, client_port, peer_port).await
            }
        })
        .await
    }

    /// One attempt of [`start`](Self::start).
    async fn start_on(
        binary: &Path,
        name: &str,
        dir: &Path,
        timeout: Duration,
        log: PathBuf,
        client_port: u16,
        peer_port: u16,
    ) -> Result<Self> {
        let data_dir = dir.join(name);
        // A failed attempt may have begun a member with the old peer URL, which etcd would
        // reuse instead of the new one.
        match tokio::fs::remove_dir_all(&data_dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove the data of a failed start", &data_dir, e)),
        }
        tokio::fs::create_dir_all(&data_dir)
            .await
            .map_err(|e| Error::io("create directory", &data_dir, e))?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let args = vec![
            format!("--name={name}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            // Without these two etcd advertises the default localhost:2380 peer URL: harmless
            // for a one-member cluster, but confusing when reading several etcd logs side by side.
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={name}={peer_url}"),
            // Test data need not survive a power cut; fsync dominates etcd's write latency.
            "--unsafe-no-fsync=true".to_owned(),
        ];
        let process = ManagedProcess::spawn(ProcessSpec {
            role: ProcessRole::Etcd,
            name: name.to_owned(),
            program: binary.to_owned(),
            args,
            log,
            env: Vec::new(),
        })?;
        process
            .wait_ready("GET /health", timeout, || health(client_port))
            .await?;
        Ok(Self {
            process,
            client_url,
        })
    }

    pub(crate) fn client_url(&self) -> &str {
        &self.client_url
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        self.process.info()
    }

    pub(crate) fn kill_blocking(&self) {
        self.process.kill_blocking();
    }
}

/// One plain HTTP/1.0 request to etcd's `/health`: etcd's client port speaks plain HTTP here, and a
/// dozen lines of socket code spare the kit a second HTTP client stack.
async fn health(port: u16) -> std::result::Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") && text.contains("\"health\":\"true\"")
    {
        Ok(())
    } else {
        Err(format!("unhealthy: {}", text.replace("\r\n", " ")))
    }
}

/// A standalone etcd on loopback for tests that use etcd itself (not through an API server),
/// such as a service registry. Dropping it kills the process and removes its data.
#[derive(Debug)]
pub struct EtcdServer {
    etcd: Etcd,
    // Last: removed after the process is killed.
    _dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd (the binary [`crate::Assets`] finds) and waits for `/health`.
    pub async fn start() -> Result<Self> {
        let assets = crate::Assets::from_env()?;
        let dir = tempfile::Builder::new()
            .prefix("fednet-etcd-")
            .tempdir()
            .map_err(|e| Error::io("create temp folder", Path::new("/tmp"), e))?;
        let etcd = Etcd::start(
            &assets.etcd,
            "etcd",
            dir.path(),
            Duration::from_secs(30),
            &Ports::default(),
        )
        .await?;
        Ok(Self { etcd, _dir: dir })
    }

    /// `http://127.0.0.1:<port>`: etcd's client URL (gRPC and its JSON gateway under `/v3`).
    pub fn client_url(&self) -> &str {
        self.etcd.client_url()
    }

    /// The process, for diagnostics.
    pub fn info(&self) -> ProcessInfo {
        self.etcd.info()
    }
}

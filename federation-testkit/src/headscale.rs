//! A real Headscale server on loopback, the overlay controller the SD-WAN backend's Headscale
//! adapter is tested against.
//!
//! The binary is built from its Go module by `hack/headscale/build.sh` (cached next to the
//! envtest assets; `HEADSCALE_BIN` names another one). Each [`Headscale`] gets its own temp
//! folder with an SQLite database, a DERP map file that names only loopback (no traffic leaves
//! the machine), update checks off, the ACL policy kept in the database (so it can be set over
//! the REST API), and a serving certificate from a CA made for it: clients verify TLS against
//! [`Headscale::ca_pem`], nothing skips verification.
//!
//! Nodes come two ways:
//! - [`Headscale::join`] runs a real Tailscale client (`tailscaled` in userspace networking, no
//!   root, no TUN device, built by the same script) that logs in with a pre-auth key and
//!   announces routes: the node is online and its approved routes are served;
//! - [`Headscale::create_node`] registers a node without a client (`headscale debug
//!   create-node`, then `headscale auth register`): it exists and can have routes approved, but
//!   it is offline and announces nothing.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::certs::Pki;
use crate::error::{Error, Result};
use crate::ports::{Ports, start_with_fresh_ports};
use crate::process::{ManagedProcess, ProcessInfo, ProcessRole, ProcessSpec};

/// Names the Headscale binary to run, overriding the cached build.
pub const ENV_HEADSCALE_BIN: &str = "HEADSCALE_BIN";
/// The Headscale release `hack/headscale/build.sh` builds.
pub const HEADSCALE_VERSION: &str = "0.29.2";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the Headscale binary is: `HEADSCALE_BIN`, else the cache `hack/headscale/build.sh`
/// fills (`<data home>/kubebuilder-envtest/headscale/<version>-linux-amd64/headscale`).
pub fn headscale_binary() -> Result<PathBuf> {
    let searched = match std::env::var(ENV_HEADSCALE_BIN) {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::assets::data_home()
            .unwrap_or_default()
            .join("kubebuilder-envtest/headscale")
            .join(format!("{HEADSCALE_VERSION}-linux-amd64/headscale")),
    };
    if searched.is_file() {
        Ok(searched)
    } else {
        Err(Error::HeadscaleNotFound { searched })
    }
}

/// A running Headscale. Dropping it kills the process and removes its folder (unless
/// `FEDNET_TESTKIT_KEEP=1`).
#[derive(Debug)]
pub struct Headscale {
    process: ManagedProcess,
    binary: PathBuf,
    config: PathBuf,
    url: String,
    ca_pem: String,
    ca_file: PathBuf,
    root: PathBuf,
    /// The Tailscale clients of [`Self::join`]; killed on drop.
    clients: Mutex<Vec<ManagedProcess>>,
    // Last: dropped after the process is killed.
    dir: Option<tempfile::TempDir>,
}

impl Headscale {
    /// Starts Headscale and waits until its API and CLI socket answer.
    pub async fn start() -> Result<Self> {
        let binary = headscale_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("fednet-headscale-")
            .tempdir()
            .map_err(|e| Error::io("create temp folder", Path::new("/tmp"), e))?;
        let root = dir.path().to_owned();
        let pki = Pki::generate(&root.join("pki"))?;
        let root_for_self = root.clone();
        let derp = root.join("derp.yaml");
        write(&derp, DERP_MAP)?;
        let log = root.join("headscale.log");
        let ports = Ports::default();
        let (process, config, url) =
            start_with_fresh_ports("headscale", &log, &ports, 3, |chosen| {
                let (binary, root, log, pki) = (binary.clone(), root.clone(), log.clone(), &pki);
                async move {
                    let [http, metrics, grpc] = chosen[..] else {
                        return Err(Error::InvalidArgument(format!(
                            "headscale needs three ports, got {chosen:?}"
                        )));
                    };
                    let url = format!("https://127.0.0.1:{http}");
                    let config = root.join("config.yaml");
                    write(&config, &config_yaml(&root, pki, &url, http, metrics, grpc))?;
                    let process = ManagedProcess::spawn(ProcessSpec {
                        role: ProcessRole::Headscale,
                        name: "headscale".into(),
                        program: binary.clone(),
                        args: vec!["serve".into(), "-c".into(), config.display().to_string()],
                        log,
                        env: Vec::new(),
                    })?;
                    wait_ready(&process, &binary, &config).await?;
                    Ok((process, config, url))
                }
            })
            .await?;
        let keep = std::env::var(crate::ENV_KEEP_TEMP_DIR).is_ok_and(|v| v == "1");
        let dir = if keep {
            tracing::info!(dir = %dir.keep().display(), "keeping the headscale folder");
            None
        } else {
            Some(dir)
        };
        Ok(Self {
            process,
            binary,
            config,
            url,
            ca_pem: pki.ca_cert_pem,
            ca_file: pki.files.ca_cert,
            root: root_for_self,
            clients: Mutex::new(Vec::new()),
            dir,
        })
    }

    /// The REST API's base URL, `https://127.0.0.1:<port>` (the API is under `/api/v1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server process, for diagnostics.
    pub fn info(&self) -> ProcessInfo {
        self.process.info()
    }

    /// The server and every client process.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        std::iter::once(self.process.info())
            .chain(clients.iter().map(ManagedProcess::info))
            .collect()
    }

    /// Runs the `headscale` CLI against this server (over its local socket) and returns
    /// its standard output.
    pub async fn cli(&self, args: &[&str]) -> Result<String> {
        cli(&self.binary, &self.config, args).await
    }

    /// A new API key (`headscale apikeys create`).
    pub async fn create_api_key(&self) -> Result<String> {
        let out = self
            .cli(&["apikeys", "create", "--expiration", "24h"])
            .await?;
        out.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::Command {
                command: "headscale apikeys create".into(),
                detail: "printed no key".into(),
            })
    }

    /// Creates a user.
    pub async fn create_user(&self, name: &str) -> Result<()> {
        self.cli(&["users", "create", name]).await.map(drop)
    }

    /// Creates a node named `name` owned by `user`, without a client: registered, offline,
    /// announcing no routes.
    pub async fn create_node(&self, user: &str, name: &str) -> Result<()> {
        // Registration ids are `hskey-authreq-` and 24 letters or digits.
        let id: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(24)
            .collect();
        let auth_id = format!("hskey-authreq-{id}");
        self.cli(&[
            "debug",
            "create-node",
            "--user",
            user,
            "--name",
            name,
            "--key",
            &auth_id,
        ])
        .await?;
        self.cli(&["auth", "register", "--user", user, "--auth-id", &auth_id])
            .await
            .map(drop)
    }

    /// Runs a real Tailscale client named `name` that logs in as `user` (with a pre-auth key)
    /// and announces `routes`; returns once the login succeeded (the node is online).
    pub async fn join(&self, user: &str, name: &str, routes: &[String]) -> Result<()> {
        let key = self.pre_auth_key(user).await?;
        let bin_dir = self.binary.parent().unwrap_or(Path::new("."));
        let (tailscaled, tailscale) = (bin_dir.join("tailscaled"), bin_dir.join("tailscale"));
        let dir = self.root.join(format!("tailscale-{name}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let socket = dir.join("tailscaled.sock");
        // Go's TLS reads extra roots from SSL_CERT_FILE: the client trusts this server's CA.
        let env = vec![(
            "SSL_CERT_FILE".to_owned(),
            self.ca_file.display().to_string(),
        )];
        let client = ManagedProcess::spawn(ProcessSpec {
            role: ProcessRole::Tailscaled,
            name: format!("tailscaled-{name}"),
            program: tailscaled,
            args: vec![
                "--tun=userspace-networking".into(),
                format!("--statedir={}", dir.display()),
                format!("--socket={}", socket.display()),
                "--port=0".into(),
            ],
            log: dir.join("tailscaled.log"),
            env: env.clone(),
        })?;
        let socket_for_probe = socket.clone();
        client
            .wait_ready("socket", START_TIMEOUT, || {
                let exists = socket_for_probe.exists();
                async move {
                    if exists {
                        Ok(())
                    } else {
                        Err("no socket yet".to_owned())
                    }
                }
            })
            .await?;
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(client);
        let up = tokio::process::Command::new(tailscale)
            .arg(format!("--socket={}", socket.display()))
            .args(["up", "--accept-dns=false", "--timeout=60s"])
            .arg(format!("--login-server={}", self.url))
            .arg(format!("--auth-key={key}"))
            .arg(format!("--hostname={name}"))
            .arg(format!("--advertise-routes={}", routes.join(",")))
            .envs(env)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(90), up)
            .await
            .map_err(|_| Error::Command {
                command: format!("tailscale up ({name})"),
                detail: "no answer in 90 s".into(),
            })?
            .map_err(|e| Error::io("run", &self.binary, e))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Command {
                command: format!("tailscale up ({name})"),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// A reusable pre-auth key of `user` (created once per call; keys are cheap).
    async fn pre_auth_key(&self, user: &str) -> Result<String> {
        let users: serde_json::Value = serde_json::from_str(
            &self.cli(&["users", "list", "-o", "json"]).await?,
        )
        .map_err(|e| Error::Command {
            command: "headscale users list".into(),
            detail: e.to_string(),
        })?;
        let id = users
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["name"] == user)
            .map(|u| u["id"].to_string())
            .ok_or_else(|| Error::Command {
                command: "headscale users list".into(),
                detail: format!("no user {user}"),
            })?;
        let out = self
            .cli(&[
                "preauthkeys",
                "create",
                "--user",
                &id,
                "--reusable",
                "--expiration",
                "1h",
            ])
            .await?;
        out.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::Command {
                command: "headscale preauthkeys create".into(),
                detail: "printed no key".into(),
            })
    }

    /// Stops the client named `name` (SIGKILL): an edge that goes away.
    pub async fn kill_client(&self, name: &str) -> Result<()> {
        let client = {
            let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
            let at = clients
                .iter()
                .position(|c| c.info().name == format!("tailscaled-{name}"));
            at.map(|i| clients.remove(i))
        };
        match client {
            Some(c) => c.kill().await,
            None => Ok(()),
        }
    }

    /// Kills the server (SIGKILL): a controller crash.
    pub async fn kill(&self) -> Result<()> {
        self.process.kill().await
    }

    /// Starts the server again on the same port and data, and waits until it answers.
    pub async fn restart(&self) -> Result<()> {
        self.process.respawn().await?;
        wait_ready(&self.process, &self.binary, &self.config).await
    }

    /// The folder holding the database, config and log (gone after drop unless kept).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }
}

async fn wait_ready(process: &ManagedProcess, binary: &Path, config: &Path) -> Result<()> {
    process
        .wait_ready("CLI socket answers", START_TIMEOUT, || async {
            cli(binary, config, &["users", "list"])
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
}

async fn cli(binary: &Path, config: &Path, args: &[&str]) -> Result<String> {
    let run = tokio::process::Command::new(binary)
        .arg("-c")
        .arg(config)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CLI_TIMEOUT, run)
        .await
        .map_err(|_| Error::Command {
            command: format!("headscale {}", args.join(" ")),
            detail: format!("no answer within {CLI_TIMEOUT:?}"),
        })?
        .map_err(|e| Error::io("run", binary, e))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        // Only the subcommand is named: arguments can be registration ids.
        Err(Error::Command {
            command: format!(
                "headscale {}",
                args.iter().take(2).copied().collect::<Vec<_>>().join(" ")
            ),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr).trim(),
                String::from_utf8_lossy(&output.stdout).trim()
            ),
        })
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

/// One DERP region on loopback: Headscale refuses to start without a DERP map, and the public
/// one would make it fetch from the internet.
const DERP_MAP: &str = "regions:
  900:
    regionid: 900
    regioncode: loopback
    regionname: Loopback
    nodes:
      - name: 900a
        regionid: 900
        hostname: 127.0.0.1
        ipv4: 127.0.0.1
        stunport: -1
        derpport: 1
";

fn config_yaml(root: &Path, pki: &Pki, url: &str, http: u16, metrics: u16, grpc: u16) -> String {
    let r = root.display();
    format!(
        "server_url: {url}
listen_addr: 127.0.0.1:{http}
metrics_listen_addr: 127.0.0.1:{metrics}
grpc_listen_addr: 127.0.0.1:{grpc}
grpc_allow_insecure: false
noise:
  private_key_path: {r}/noise_private.key
prefixes:
  v4: 100.64.0.0/10
  v6: fd7a:115c:a1e0::/48
  allocation: sequential
derp:
  server:
    enabled: false
  urls: []
  paths: [{r}/derp.yaml]
  auto_update_enabled: false
disable_check_updates: true
database:
  type: sqlite
  sqlite:
    path: {r}/db.sqlite
    write_ahead_log: true
tls_cert_path: {cert}
tls_key_path: {key}
log:
  level: info
policy:
  mode: database
dns:
  magic_dns: false
  override_local_dns: false
  base_domain: fednet.test
unix_socket: {r}/headscale.sock
unix_socket_permission: \"0770\"
logtail:
  enabled: false
",
        cert = pki.files.serving_cert.display(),
        key = pki.files.serving_key.display(),
    )
}

//! One simulated cluster: its API server, an admin client and kubeconfig, and fault handles.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::{Client, Config};

use crate::crds;
use crate::error::{Error, Result};
use crate::kubeconfig::AdminKubeconfig;
use crate::process::{ManagedProcess, ProcessInfo, Signal};

/// Label put on every namespace made by [`Cluster::test_namespace`].
pub const TEST_NAMESPACE_LABEL: &str = "testkit.fednet.io/test-namespace";

/// What runs the cluster's API server.
#[derive(Debug)]
pub(crate) enum Runtime {
    /// A kube-apiserver child process of this test process.
    Process {
        // Boxed like the container below: both are large, the handle is moved around.
        apiserver: Box<ManagedProcess>,
        ready_timeout: Duration,
    },
    /// A k3s container; fault injection is not available.
    #[cfg(feature = "k3s")]
    K3s {
        // Held only to keep the container alive; dropping it removes the container.
        _container: Box<testcontainers::ContainerAsync<testcontainers_modules::k3s::K3s>>,
    },
}

/// One test cluster.
///
/// Owned by [`ControlPlanes`](crate::ControlPlanes), which tears it down on drop. Clients handed
/// out here stay usable across [`restart`](Self::restart): the server keeps its URL and
/// certificates.
pub struct Cluster {
    name: String,
    server_url: String,
    kubeconfig: AdminKubeconfig,
    kubeconfig_path: PathBuf,
    client: Client,
    ca_cert_pem: String,
    runtime: Runtime,
    audit_log: Option<PathBuf>,
}

impl std::fmt::Debug for Cluster {
    // kube::Client is not Debug, and the kubeconfig holds a private key: show what identifies
    // the cluster instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("server_url", &self.server_url)
            .field("kubeconfig_path", &self.kubeconfig_path)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Builds the handle; `kubeconfig.config` must point at `server_url`.
    pub(crate) fn new(
        name: String,
        server_url: String,
        kubeconfig: AdminKubeconfig,
        kubeconfig_path: PathBuf,
        ca_cert_pem: String,
        runtime: Runtime,
    ) -> Result<Self> {
        let client = Client::try_from(kubeconfig.config.clone())
            .map_err(|e| Error::kube(format!("{name}: build client"), e))?;
        Ok(Self {
            name,
            server_url,
            kubeconfig,
            kubeconfig_path,
            client,
            ca_cert_pem,
            runtime,
            audit_log: None,
        })
    }

    /// Records that the API server writes its audit log to `path`.
    pub(crate) fn with_audit_log(mut self, path: PathBuf) -> Self {
        self.audit_log = Some(path);
        self
    }

    /// Where the API server writes its audit log, if the kit was started with
    /// [`audit_writes`](crate::ControlPlanesBuilder::audit_writes) or
    /// [`audit_all_requests`](crate::ControlPlanesBuilder::audit_all_requests).
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit_log.as_deref()
    }

    /// Every audit event the API server has written so far (see [`crate::AuditEvent`] for
    /// what is recorded). Events are written as requests are handled: a test that wants the
    /// events of requests it just saw answered should allow the server a moment.
    ///
    /// # Errors
    /// The kit was started without audit logs, the log cannot be read, or a line is not an
    /// audit event.
    pub async fn audit_events(&self) -> Result<Vec<crate::AuditEvent>> {
        let path = self.audit_log.as_ref().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: started without an audit log (ControlPlanesBuilder::audit_writes)",
                self.name
            ))
        })?;
        let text = match tokio::fs::read_to_string(path).await {
            Ok(text) => text,
            // Nothing written yet: the server creates the file on its first event.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        crate::audit::parse(path, &text)
    }

    /// The cluster's name (`cluster-0`, `cluster-1`, ... unless a prefix was chosen).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API server URL, e.g. `https://127.0.0.1:38147`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// A client authenticated as `admin` (group `system:masters`), verifying the server against the
    /// test CA. Cheap to call: clients share one connection pool.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The client configuration behind [`client`](Self::client), for tests that need other
    /// timeouts or headers.
    pub fn config(&self) -> Config {
        self.kubeconfig.config.clone()
    }

    /// A new client (own connection pool) whose connect, read and write timeouts are `timeout`:
    /// for fault tests that expect requests to a hung server to fail quickly.
    ///
    /// # Errors
    /// The client could not be built.
    pub fn client_with_timeout(&self, timeout: Duration) -> Result<Client> {
        let mut config = self.config();
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // Count the read timeout from the request, not from when a pooled connection went idle.
        config.reset_reader_on_write = true;
        Client::try_from(config).map_err(|e| Error::kube(format!("{}: build client", self.name), e))
    }

    /// The kubeconfig (certificates inlined, current context = this cluster).
    pub fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig.kubeconfig
    }

    /// The kubeconfig as YAML text.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig.yaml
    }

    /// Where the kubeconfig was written (inside the kit's temp folder), for `kubectl --kubeconfig`
    /// or a child process under test.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// PEM of the CA that signed the API server's serving certificate.
    pub fn ca_certificate_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Creates a namespace with a unique generated name (`test-xxxxx`) and returns its name.
    ///
    /// # Errors
    /// The API request failed.
    pub async fn test_namespace(&self) -> Result<String> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                generate_name: Some("test-".to_owned()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(|e| Error::kube(format!("{}: create test namespace", self.name), e))?;
        created.metadata.name.ok_or_else(|| {
            Error::InvalidArgument(format!("{}: created namespace has no name", self.name))
        })
    }

    /// Creates a namespace with exactly this name (labelled like a test namespace).
    ///
    /// # Errors
    /// The API request failed, e.g. the namespace exists already.
    pub async fn create_namespace(&self, name: &str) -> Result<()> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(|e| Error::kube(format!("{}: create namespace {name}", self.name), e))?;
        Ok(())
    }

    /// Installs CRDs (server-side apply) and waits until discovery serves each of them.
    ///
    /// # Errors
    /// A request failed, a CRD's names conflict, or it was not served within a minute.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        crds::install(&self.client, &self.name, crds, Duration::from_secs(60)).await
    }

    /// Freezes the API server with SIGSTOP: it keeps its sockets, so clients connect and then
    /// hang, as with an unreachable or overloaded peer.
    ///
    /// # Errors
    /// The server is not running, or the signal could not be sent; [`Error::Unsupported`] for k3s.
    pub fn pause(&self) -> Result<()> {
        self.apiserver("pause")?.signal(Signal::Stop)
    }

    /// Lets a paused API server run again (SIGCONT).
    ///
    /// # Errors
    /// As for [`pause`](Self::pause).
    pub fn resume(&self) -> Result<()> {
        self.apiserver("resume")?.signal(Signal::Cont)
    }

    /// Kills the API server (SIGKILL) and reaps it. Its data stays in etcd.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for k3s; an I/O error from killing.
    pub async fn kill(&self) -> Result<()> {
        self.apiserver("kill")?.kill().await
    }

    /// Starts the API server again on the same port with the same etcd data (killing it first if
    /// it still runs), and waits until it is healthy and serves the `default` namespace.
    ///
    /// # Errors
    /// It did not come back in time (the error names its log), or [`Error::Unsupported`] for k3s.
    pub async fn restart(&self) -> Result<()> {
        self.apiserver("restart")?.respawn().await?;
        self.wait_ready().await
    }

    /// Waits until the API server is healthy and serves the `default` namespace.
    pub(crate) async fn wait_ready(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Process {
                apiserver,
                ready_timeout,
            } => wait_apiserver_ready(apiserver, &self.client, *ready_timeout).await,
            // The container's own wait strategy already waited for the node controller.
            #[cfg(feature = "k3s")]
            Runtime::K3s { .. } => Ok(()),
        }
    }

    /// The pid of the kube-apiserver process, if it runs as a child of this process.
    pub fn apiserver_pid(&self) -> Option<u32> {
        match &self.runtime {
            Runtime::Process { apiserver, .. } => apiserver.pid(),
            #[cfg(feature = "k3s")]
            Runtime::K3s { .. } => None,
        }
    }

    /// The kube-apiserver's log file, if it runs as a child of this process.
    pub fn apiserver_log(&self) -> Option<&Path> {
        match &self.runtime {
            Runtime::Process { apiserver, .. } => Some(apiserver.log()),
            #[cfg(feature = "k3s")]
            Runtime::K3s { .. } => None,
        }
    }

    pub(crate) fn process_info(&self) -> Option<ProcessInfo> {
        match &self.runtime {
            Runtime::Process { apiserver, .. } => Some(apiserver.info()),
            #[cfg(feature = "k3s")]
            Runtime::K3s { .. } => None,
        }
    }

    pub(crate) fn kill_blocking(&self) {
        match &self.runtime {
            Runtime::Process { apiserver, .. } => apiserver.kill_blocking(),
            #[cfg(feature = "k3s")]
            Runtime::K3s { .. } => {}
        }
    }

    #[cfg_attr(
        not(feature = "k3s"),
        allow(unused_variables, reason = "only k3s clusters refuse fault operations")
    )]
    fn apiserver(&self, operation: &'static str) -> Result<&ManagedProcess> {
        match &self.runtime {
            Runtime::Process { apiserver, .. } => Ok(apiserver),
            #[cfg(feature = "k3s")]
            Runtime::K3s { .. } => Err(Error::Unsupported {
                operation,
                runtime: "k3s",
            }),
        }
    }
}

/// Waits for `/healthz` to answer `ok`, then for the `default` namespace (created by a post-start
/// hook a moment after the server reports healthy).
async fn wait_apiserver_ready(
    apiserver: &ManagedProcess,
    client: &Client,
    timeout: Duration,
) -> Result<()> {
    apiserver
        .wait_ready("GET /healthz", timeout, || async {
            let request = http::Request::get("/healthz")
                .body(Vec::new())
                .map_err(|e| e.to_string())?;
            match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => Ok(()),
                Ok(body) => Err(format!("/healthz answered {body:?}")),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    apiserver
        .wait_ready("namespace default", timeout, || async {
            namespaces
                .get("default")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
}

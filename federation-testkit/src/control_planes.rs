//! Several simulated clusters started together, torn down together.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use tokio::sync::Semaphore;

use crate::assets::Assets;
use crate::certs::Pki;
use crate::cluster::{Cluster, Runtime};
use crate::crds::{self, Upstream};
use crate::error::{Error, Result};
use crate::etcd::Etcd;
use crate::kubeconfig::admin_kubeconfig;
use crate::ports::{Ports, start_with_fresh_ports};
use crate::process::{ManagedProcess, ProcessInfo, ProcessRole, ProcessSpec};

/// Set to `1` to keep the temp folder (logs, etcd data, kubeconfigs) after the kit is dropped.
pub const ENV_KEEP_TEMP_DIR: &str = "FEDNET_TESTKIT_KEEP";

/// How many kube-apiservers per CPU this process starts at once; the others wait their turn.
///
/// All 33 at once on two cores starved the shared etcd: requests timed out and an API server whose
/// post-start hook (`scheduling/bootstrap-system-priority-classes`) hit the timeout exited. Eight at
/// once start in about 16 s (see [`EtcdLayout`]), so the machine stays busy without thrashing.
const APISERVER_STARTS_PER_CPU: usize = 4;

/// The process-wide limit on kube-apiservers starting at once: every kit (and test) in the
/// process shares the same CPUs and, with the default layout, pushes through one etcd.
fn apiserver_start_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Semaphore::new(cpus.saturating_mul(APISERVER_STARTS_PER_CPU))
    })
}

/// The service CIDR every test API server gets (envtest's choice; nothing is routed there).
const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

/// How the clusters' API servers share etcd.
///
/// # Why [`Shared`](Self::Shared) is the default
/// Measured on the project's 2-core, 24 GiB machine with `cargo run -p federation-testkit
/// --example startup -- --runs 3` (kube-apiserver v1.37.2, etcd v3.7.3; median of 3 runs, resident
/// memory right after startup):
///
/// | clusters | start, shared | start, per cluster | total RSS, shared | total RSS, per cluster |
/// |---|---|---|---|---|
/// | 1 | 3.5 s | 4.2 s | 303 MiB | 305 MiB |
/// | 3 | 7.0 s | 7.4 s | 878 MiB | 942 MiB |
/// | 8 | 16.3 s | 14.7 s | 2341 MiB | 2576 MiB |
///
/// Startup time is the same within noise (the API servers' own start, CPU-bound on two cores,
/// dominates; one etcd is healthy in about 0.3 s either way). A shared etcd grows from 39 MiB to
/// about 100 MiB for eight clusters, while eight etcds take 8 × 39 MiB, so sharing saves about
/// 30 MiB per extra cluster and one process per cluster. Distinct `--etcd-prefix`es keep clusters
/// apart (tested). [`PerCluster`](Self::PerCluster) stays available for tests that want etcd
/// faults confined to one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EtcdLayout {
    /// One etcd for all clusters; each API server stores under its own `--etcd-prefix`.
    #[default]
    Shared,
    /// One etcd per cluster.
    PerCluster,
}

/// What runs the clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClusterRuntime {
    /// kube-apiserver and etcd as child processes (the default; supports fault injection).
    #[default]
    Processes,
    /// One k3s container per cluster through testcontainers (needs a container engine; fault
    /// operations return [`Error::Unsupported`]).
    #[cfg(feature = "k3s")]
    K3s,
}

/// Configures and starts [`ControlPlanes`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct ControlPlanesBuilder {
    clusters: usize,
    etcd_layout: EtcdLayout,
    runtime: ClusterRuntime,
    crds: Vec<CustomResourceDefinition>,
    crd_paths: Vec<PathBuf>,
    upstream: Vec<Upstream>,
    name_prefix: String,
    startup_timeout: Duration,
    assets: Option<Assets>,
    audit_writes: bool,
    audit_all_requests: bool,
    /// Ports handed out before any from the process-wide registry (a test seam: a test plants a
    /// port it holds to make a start collide on purpose).
    planted_ports: Vec<u16>,
}

impl Default for ControlPlanesBuilder {
    fn default() -> Self {
        Self {
            clusters: 1,
            etcd_layout: EtcdLayout::default(),
            runtime: ClusterRuntime::default(),
            crds: Vec::new(),
            crd_paths: Vec::new(),
            upstream: Vec::new(),
            name_prefix: "cluster".to_owned(),
            // Generous: eight API servers starting at once on two cores take about a minute, and
            // test binaries run their tests in parallel.
            startup_timeout: Duration::from_secs(240),
            assets: None,
            audit_writes: false,
            audit_all_requests: false,
            planted_ports: Vec::new(),
        }
    }
}

impl ControlPlanesBuilder {
    /// Number of clusters (at least one; default one).
    pub fn clusters(mut self, count: usize) -> Self {
        self.clusters = count;
        self
    }

    /// How API servers share etcd (default [`EtcdLayout::Shared`]).
    pub fn etcd_layout(mut self, layout: EtcdLayout) -> Self {
        self.etcd_layout = layout;
        self
    }

    /// What runs the clusters (default [`ClusterRuntime::Processes`]).
    pub fn runtime(mut self, runtime: ClusterRuntime) -> Self {
        self.runtime = runtime;
        self
    }

    /// CRDs to install into every cluster, e.g. `federation_core::api::crds()`.
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// A YAML file or folder of CRDs to install into every cluster (see [`load_crds`](crate::load_crds)).
    pub fn crd_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.crd_paths.push(path.into());
        self
    }

    /// Upstream CRDs (from [`upstream_crds_dir`](crate::upstream_crds_dir)) to install into every cluster.
    pub fn upstream_crds(mut self, projects: &[Upstream]) -> Self {
        self.upstream.extend_from_slice(projects);
        self
    }

    /// Cluster names are `<prefix>-0`, `<prefix>-1`, ... (default prefix `cluster`).
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    /// How long each process may take to become ready (default four minutes).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Every API server writes an audit log of write requests (`--audit-log-path`,
    /// `--audit-policy-file`; see [`AuditEvent`](crate::AuditEvent) for what is recorded),
    /// read with [`Cluster::audit_events`]. Off by default: it costs a file write per request.
    /// Only for [`ClusterRuntime::Processes`].
    pub fn audit_writes(mut self, enabled: bool) -> Self {
        self.audit_writes = enabled;
        self
    }

    /// Every API server writes an audit log of *every* request, reads and watches included
    /// (`Metadata` level, one event per request when it is answered, plus one when a watch
    /// starts; the `RequestReceived` stage is left out to halve the volume). For counting
    /// who sends what, e.g. a controller's requests at rest by verb (`make bench-e2e`).
    /// Takes precedence over [`Self::audit_writes`]. Only for [`ClusterRuntime::Processes`].
    pub fn audit_all_requests(mut self, enabled: bool) -> Self {
        self.audit_all_requests = enabled;
        self
    }

    /// Hands out these ports first, in start order (shared etcd: client, peer; then the API
    /// servers), before any from the registry.
    #[cfg(test)]
    pub(crate) fn plant_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.planted_ports.extend(ports);
        self
    }

    /// Use these binaries instead of resolving them from the environment.
    pub fn assets(mut self, assets: Assets) -> Self {
        self.assets = Some(assets);
        self
    }

    /// Starts everything and installs the requested CRDs.
    ///
    /// If startup fails, every process started so far is killed and the temp folder is kept so
    /// that the logs named in the error can be read ([`Error::Startup`] names the folder).
    ///
    /// # Errors
    /// Before anything started: invalid arguments, missing binaries, an unreadable CRD file.
    /// Afterwards, wrapped in [`Error::Startup`]: a process that exits or does not become ready, a
    /// CRD that is not served in time.
    pub async fn start(self) -> Result<ControlPlanes> {
        if self.clusters == 0 {
            return Err(Error::InvalidArgument(
                "at least one cluster is needed".to_owned(),
            ));
        }
        // Read CRD files before starting anything: a typo in a path should fail in milliseconds.
        let mut crds = self.crds.clone();
        for path in &self.crd_paths {
            crds.extend(crds::load_crds(path)?);
        }
        crds.extend(crds::upstream_crds(&self.upstream)?);
        // Likewise for missing binaries, and without leaving an empty temp folder behind.
        let assets = match (&self.assets, self.runtime) {
            (Some(assets), _) => Some(assets.clone()),
            (None, ClusterRuntime::Processes) => Some(Assets::from_env()?),
            #[cfg(feature = "k3s")]
            (None, ClusterRuntime::K3s) => None,
        };

        let dir = tempfile::Builder::new()
            .prefix("fednet-testkit-")
            .tempdir()
            .map_err(|e| Error::io("create temp folder in", std::env::temp_dir(), e))?;
        let started = Instant::now();
        match self.start_in(dir.path(), assets.as_ref(), &crds).await {
            Ok((clusters, etcds)) => Ok(ControlPlanes {
                clusters,
                etcds,
                etcd_layout: self.etcd_layout,
                dir: Some(dir),
                startup: started.elapsed(),
            }),
            Err(e) => Err(Error::Startup {
                dir: dir.keep(),
                source: Box::new(e),
            }),
        }
    }

    async fn start_in(
        &self,
        dir: &Path,
        assets: Option<&Assets>,
        crds: &[CustomResourceDefinition],
    ) -> Result<(Vec<Cluster>, Vec<Etcd>)> {
        let (clusters, etcds) = match (self.runtime, assets) {
            (ClusterRuntime::Processes, Some(assets)) => self.start_processes(assets, dir).await?,
            (ClusterRuntime::Processes, None) => {
                return Err(Error::InvalidArgument("no binaries resolved".to_owned()));
            }
            #[cfg(feature = "k3s")]
            (ClusterRuntime::K3s, _) => (self.start_k3s(dir).await?, Vec::new()),
        };
        if !crds.is_empty() {
            try_join_all(clusters.iter().map(|c| c.install_crds(crds))).await?;
        }
        Ok((clusters, etcds))
    }

    async fn start_processes(
        &self,
        assets: &Assets,
        dir: &Path,
    ) -> Result<(Vec<Cluster>, Vec<Etcd>)> {
        let pki = Arc::new(Pki::generate(&dir.join("pki"))?);
        let policy = match (self.audit_all_requests, self.audit_writes) {
            (true, _) => Some(crate::audit::ALL_REQUESTS_POLICY),
            (false, true) => Some(crate::audit::WRITES_POLICY),
            (false, false) => None,
        };
        let audit_policy = if let Some(policy) = policy {
            let path = dir.join("audit-policy.yaml");
            std::fs::write(&path, policy).map_err(|e| Error::io("write", &path, e))?;
            Some(path)
        } else {
            None
        };
        let audit_policy = audit_policy.as_deref();
        let ports = Ports::with_planted(self.planted_ports.iter().copied());
        let names: Vec<String> = (0..self.clusters)
            .map(|i| format!("{}-{i}", self.name_prefix))
            .collect();
        let settings = ApiserverSettings {
            assets,
            pki: &pki,
            dir,
            timeout: self.startup_timeout,
            audit_policy,
            ports: &ports,
        };
        match self.etcd_layout {
            EtcdLayout::Shared => {
                let etcd = Etcd::start(
                    &assets.etcd,
                    "etcd-shared",
                    dir,
                    self.startup_timeout,
                    &ports,
                )
                .await?;
                let clusters = try_join_all(
                    names
                        .iter()
                        .map(|name| start_apiserver(name, etcd.client_url(), settings)),
                )
                .await?;
                Ok((clusters, vec![etcd]))
            }
            EtcdLayout::PerCluster => {
                let pairs = try_join_all(names.iter().map(|name| {
                    let ports = &ports;
                    async move {
                        let etcd_name = format!("{name}-etcd");
                        let etcd =
                            Etcd::start(&assets.etcd, &etcd_name, dir, self.startup_timeout, ports)
                                .await?;
                        let cluster = start_apiserver(name, etcd.client_url(), settings).await?;
                        Ok::<_, Error>((cluster, etcd))
                    }
                }))
                .await?;
                Ok(pairs.into_iter().unzip())
            }
        }
    }

    #[cfg(feature = "k3s")]
    async fn start_k3s(&self, dir: &Path) -> Result<Vec<Cluster>> {
        try_join_all((0..self.clusters).map(|i| {
            let name = format!("{}-{i}", self.name_prefix);
            async move { crate::k3s::start_cluster(&name, dir).await }
        }))
        .await
    }
}

/// What every kube-apiserver of a kit is started with.
#[derive(Debug, Clone, Copy)]
struct ApiserverSettings<'a> {
    assets: &'a Assets,
    pki: &'a Pki,
    dir: &'a Path,
    timeout: Duration,
    audit_policy: Option<&'a Path>,
    ports: &'a Ports,
}

/// Starts one kube-apiserver against `etcd_url` and waits until it serves `default`; started
/// again on a fresh port if another process takes its port.
async fn start_apiserver(
    name: &str,
    etcd_url: &str,
    settings: ApiserverSettings<'_>,
) -> Result<Cluster> {
    let cluster_dir = settings.dir.join(name);
    let cert_dir = cluster_dir.join("certs");
    tokio::fs::create_dir_all(&cert_dir)
        .await
        .map_err(|e| Error::io("create directory", &cert_dir, e))?;
    let log = cluster_dir.join("kube-apiserver.log");
    // Held until the server is ready (or failed): the startup timeout counts from its spawn, so
    // waiting here does not eat into it.
    let _permit = apiserver_start_permits()
        .acquire()
        .await
        .map_err(|_| Error::InvalidArgument("the start limiter was closed".to_owned()))?;
    start_with_fresh_ports(
        &format!("{name}/kube-apiserver"),
        &log,
        settings.ports,
        1,
        |chosen| {
            let log = log.clone();
            async move {
                let [port] = chosen[..] else {
                    return Err(Error::InvalidArgument(format!(
                        "kube-apiserver needs one port, got {chosen:?}"
                    )));
                };
                start_apiserver_on(name, etcd_url, settings, log, port).await
            }
        },
    )
    .await
}

/// One attempt of [`start_apiserver`], on `port`.
async fn start_apiserver_on(
    name: &str,
    etcd_url: &str,
    settings: ApiserverSettings<'_>,
    log: PathBuf,
    port: u16,
) -> Result<Cluster> {
    let ApiserverSettings {
        assets,
        pki,
        dir,
        timeout,
        audit_policy,
        ports: _,
    } = settings;
    let cluster_dir = dir.join(name);
    let cert_dir = cluster_dir.join("certs");
    let server_url = format!("https://127.0.0.1:{port}");
    let files = &pki.files;
    let mut args = vec![
        format!("--etcd-servers={etcd_url}"),
        // Distinct per cluster so that clusters can share one etcd without seeing each other.
        format!("--etcd-prefix=/fednet-testkit/{name}"),
        format!("--cert-dir={}", cert_dir.display()),
        format!("--tls-cert-file={}", files.serving_cert.display()),
        format!("--tls-private-key-file={}", files.serving_key.display()),
        format!("--client-ca-file={}", files.ca_cert.display()),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".to_owned(),
        // Without it the server looks for a non-loopback interface to advertise.
        "--advertise-address=127.0.0.1".to_owned(),
        // Since 1.37 the endpoint reconciler refuses a loopback advertise address. Nothing in a
        // test dials the `kubernetes` Service's endpoints, so it is switched off.
        "--endpoint-reconciler-type=none".to_owned(),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        "--authorization-mode=RBAC".to_owned(),
        // No controller-manager runs to create service-account tokens for pods.
        "--disable-admission-plugins=ServiceAccount".to_owned(),
        "--allow-privileged=true".to_owned(),
        format!("--service-account-issuer={server_url}/"),
        format!(
            "--service-account-key-file={}",
            files.service_account_public_key.display()
        ),
        format!(
            "--service-account-signing-key-file={}",
            files.service_account_key.display()
        ),
    ];
    let audit_log = audit_policy.map(|_| cluster_dir.join("audit.log"));
    if let (Some(policy), Some(log)) = (audit_policy, &audit_log) {
        args.extend([
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", log.display()),
            "--audit-log-format=json".to_owned(),
            // Written on the request's own goroutine: an answered request's events are in
            // the file (not in a buffer) by the time the client has its answer.
            "--audit-log-mode=blocking".to_owned(),
        ]);
    }
    let apiserver = ManagedProcess::spawn(ProcessSpec {
        role: ProcessRole::KubeApiserver,
        name: format!("{name}/kube-apiserver"),
        program: assets.kube_apiserver.clone(),
        args,
        log,
        env: Vec::new(),
    })?;
    let kubeconfig_path = cluster_dir.join("kubeconfig.yaml");
    let kubeconfig = admin_kubeconfig(
        name,
        &server_url,
        &pki.ca_cert_pem,
        &pki.admin_cert_pem,
        &pki.admin_key_pem,
        &kubeconfig_path,
    )
    .await?;
    let cluster = Cluster::new(
        name.to_owned(),
        server_url,
        kubeconfig,
        kubeconfig_path,
        pki.ca_cert_pem.clone(),
        Runtime::Process {
            apiserver: Box::new(apiserver),
            ready_timeout: timeout,
        },
    )?;
    let cluster = match audit_log {
        Some(path) => cluster.with_audit_log(path),
        None => cluster,
    };
    cluster.wait_ready().await?;
    Ok(cluster)
}

/// Several test clusters (one kube-apiserver each, etcd per [`EtcdLayout`]).
///
/// Dropping it kills every child process (SIGKILL, then waits until each is reaped), then removes
/// the temp folder; this also happens when a test panics, because unwinding drops it. Only a
/// test process that is itself killed (SIGKILL, or an abort) leaves its children behind.
#[derive(Debug)]
pub struct ControlPlanes {
    clusters: Vec<Cluster>,
    etcds: Vec<Etcd>,
    etcd_layout: EtcdLayout,
    dir: Option<tempfile::TempDir>,
    startup: Duration,
}

impl ControlPlanes {
    /// Starts `clusters` clusters with the defaults (shared etcd, no CRDs).
    ///
    /// # Errors
    /// See [`ControlPlanesBuilder::start`].
    pub async fn start(clusters: usize) -> Result<Self> {
        Self::builder().clusters(clusters).start().await
    }

    /// A builder for anything beyond the defaults.
    pub fn builder() -> ControlPlanesBuilder {
        ControlPlanesBuilder::default()
    }

    /// All clusters, in name order.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// The cluster at `index`, if there is one.
    pub fn cluster(&self, index: usize) -> Option<&Cluster> {
        self.clusters.get(index)
    }

    /// The number of clusters.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// Always `false`: a kit has at least one cluster.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// The etcd layout in use.
    pub fn etcd_layout(&self) -> EtcdLayout {
        self.etcd_layout
    }

    /// How long [`ControlPlanesBuilder::start`] took, CRD installation included.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// The temp folder holding logs, etcd data, certificates and kubeconfigs.
    pub fn temp_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Every child process (etcds first), with pid and log file.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.etcds
            .iter()
            .map(Etcd::info)
            .chain(self.clusters.iter().filter_map(Cluster::process_info))
            .collect()
    }

    /// Installs CRDs into every cluster in parallel and waits until each serves them.
    ///
    /// # Errors
    /// See [`Cluster::install_crds`].
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        try_join_all(self.clusters.iter().map(|c| c.install_crds(crds))).await?;
        Ok(())
    }

    /// Creates one namespace with the same unique name in every cluster (what multi-cluster tests
    /// need: Skupper sites and MCS exports pair namespaces by name) and returns the name.
    ///
    /// # Errors
    /// An API request failed.
    pub async fn shared_test_namespace(&self) -> Result<String> {
        let (first, rest) = self
            .clusters
            .split_first()
            .ok_or_else(|| Error::InvalidArgument("no clusters".to_owned()))?;
        let name = first.test_namespace().await?;
        try_join_all(rest.iter().map(|c| c.create_namespace(&name))).await?;
        Ok(name)
    }
}

impl Drop for ControlPlanes {
    fn drop(&mut self) {
        // API servers first: an etcd that vanishes under a live API server makes it log a storm
        // of errors into the files we are about to delete.
        for cluster in &self.clusters {
            cluster.kill_blocking();
        }
        for etcd in &self.etcds {
            etcd.kill_blocking();
        }
        if let Some(dir) = self.dir.take() {
            if std::env::var(ENV_KEEP_TEMP_DIR).is_ok_and(|v| v == "1") {
                let kept = dir.keep();
                tracing::info!(dir = %kept.display(), "kept control-plane temp folder");
            } else if let Err(e) = dir.close() {
                tracing::warn!(error = %e, "could not remove control-plane temp folder");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    //! Start-up when another process takes a port between the kit's probe and the server's bind.
    //! The tests hold ports themselves (from the registry, so no other kit in this binary gets
    //! them) and plant them as the first ports handed out. They need the envtest binaries.

    use std::net::{Ipv4Addr, TcpListener};

    use k8s_openapi::api::core::v1::Namespace;
    use kube::Api;

    use super::*;
    use crate::ports::START_ATTEMPTS;

    /// `count` ports held by listeners of this test, which the servers cannot bind.
    fn held_ports(count: usize) -> (Vec<u16>, Vec<TcpListener>) {
        let ports = Ports::default().take(count).unwrap();
        let listeners = ports
            .iter()
            .map(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap())
            .collect();
        (ports, listeners)
    }

    fn port_of(url: &str) -> u16 {
        url.rsplit(':').next().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn servers_whose_ports_were_taken_start_again_on_fresh_ports() {
        // Planted ports are handed out in order, retries included: etcd's first attempt gets
        // two taken ports, its second two free ones, then the API server gets a taken one.
        let (held, _listeners) = held_ports(3);
        let free = Ports::default().take(2).unwrap();
        let planes = ControlPlanes::builder()
            .plant_ports([held[0], held[1], free[0], free[1], held[2]])
            .start()
            .await
            .unwrap();

        let cluster = &planes.clusters()[0];
        assert!(!held.contains(&port_of(cluster.server_url())));
        assert_eq!(
            planes.etcds[0].client_url(),
            format!("http://127.0.0.1:{}", free[0])
        );
        Api::<Namespace>::all(cluster.client())
            .get("default")
            .await
            .unwrap();

        // Each lost its port once, and the log of that attempt says so (etcd binds its peer port
        // first, so it names that one).
        let dir = planes.temp_dir().unwrap();
        for (log, ports) in [
            ("etcd-shared.attempt-1.log", &held[..2]),
            ("cluster-0/kube-apiserver.attempt-1.log", &held[2..]),
        ] {
            let text = std::fs::read_to_string(dir.join(log)).unwrap();
            assert!(
                ports.iter().any(|port| {
                    text.contains(&format!("127.0.0.1:{port}: bind: address already in use"))
                }),
                "{log} does not say one of {ports:?} was taken: {text}"
            );
        }
        assert!(!dir.join("etcd-shared.attempt-2.log").exists());
        assert!(!dir.join("cluster-0/kube-apiserver.attempt-2.log").exists());
    }

    #[tokio::test]
    async fn a_server_that_keeps_losing_its_port_fails_with_ports_taken() {
        // Two free ports for etcd, then a taken one for every attempt of the API server.
        let etcd_ports = Ports::default().take(2).unwrap();
        let (held, _listeners) = held_ports(START_ATTEMPTS);
        let error = ControlPlanes::builder()
            .plant_ports(etcd_ports.into_iter().chain(held.iter().copied()))
            .start()
            .await
            .unwrap_err();

        let Error::Startup { dir, source } = error else {
            panic!("not a startup error: {error}");
        };
        let Error::PortsTaken {
            name,
            attempts,
            ports,
            logs,
        } = *source
        else {
            panic!("not PortsTaken: {source}");
        };
        assert_eq!(name, "cluster-0/kube-apiserver");
        assert_eq!(attempts, START_ATTEMPTS);
        assert_eq!(ports, held);
        assert_eq!(logs.len(), START_ATTEMPTS);
        assert!(logs.iter().all(|log| log.is_file()), "{logs:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

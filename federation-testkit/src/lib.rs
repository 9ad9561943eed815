//! Real Kubernetes control planes for tests: several simulated clusters, each a real
//! `kube-apiserver` on loopback backed by a real `etcd`, started in parallel and torn down on drop.
//!
//! Only an API server runs: no kubelet, no controllers. What a test writes is validated by the
//! real API machinery (OpenAPI schemas of installed CRDs, RBAC, admission), which is the point.
//! Where a test needs an upstream controller's observable behaviour, [`doubles`] has a test
//! double that writes exactly that (Skupper's controller: [`doubles::skupper`]).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> federation_testkit::Result<()> {
//! use federation_testkit::{ControlPlanes, Upstream};
//!
//! let planes = ControlPlanes::builder()
//!     .clusters(3)
//!     .upstream_crds(&Upstream::ALL)
//!     .start()
//!     .await?;
//! let east = &planes.clusters()[0];
//! let namespace = east.test_namespace().await?;
//! let client = east.client();
//! # let _ = (namespace, client);
//! east.pause()?; // a hung peer
//! east.resume()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Binaries
//! See [`Assets`]: `TEST_ASSET_KUBE_APISERVER`/`TEST_ASSET_ETCD`, then `KUBEBUILDER_ASSETS`, then
//! the setup-envtest store that `hack/envtest/assets.sh` fills.
//!
//! # Guarantees and caveats
//! - Each cluster gets its own port, `--etcd-prefix` and service-account issuer; clusters never
//!   see each other's objects.
//! - Clients verify the server certificate against a CA generated per kit; nothing skips TLS
//!   verification.
//! - Dropping [`ControlPlanes`] (also while unwinding from a panic) kills and reaps every child
//!   and removes the temp folder (set `FEDNET_TESTKIT_KEEP=1` to keep it). A test process killed
//!   with SIGKILL cannot clean up: its children outlive it.
//! - Ports come from outside the kernel's ephemeral range (so no outgoing connection can take one)
//!   and are never handed out twice in a process. Another process can still bind a port between
//!   the kit's probe and the server's bind; the server then exits with `address already in use`
//!   and the kit starts it again on fresh ports (five attempts, then [`Error::PortsTaken`]).

mod assets;
mod audit;
mod certs;
mod cluster;
mod control_planes;
mod crds;
pub mod doubles;
mod error;
mod etcd;
pub use etcd::EtcdServer;
mod headscale;
#[cfg(feature = "k3s")]
mod k3s;
mod kubeconfig;
mod ports;
mod process;

pub use assets::{
    Assets, ENV_ETCD, ENV_KUBE_APISERVER, ENV_KUBEBUILDER_ASSETS, KUBERNETES_VERSION,
    envtest_store_dir,
};
pub use audit::{AuditEvent, AuditObjectRef, AuditStatus, AuditUser};
pub use certs::{ADMIN_GROUP, ADMIN_USER};
pub use cluster::{Cluster, TEST_NAMESPACE_LABEL};
pub use control_planes::{
    ClusterRuntime, ControlPlanes, ControlPlanesBuilder, ENV_KEEP_TEMP_DIR, EtcdLayout,
};
pub use crds::{
    ENV_UPSTREAM_CRDS, Upstream, load_crds, parse_crds, upstream_crds, upstream_crds_dir,
};
pub use error::{Error, Result};
pub use headscale::{ENV_HEADSCALE_BIN, HEADSCALE_VERSION, Headscale, headscale_binary};
pub use process::{ProcessInfo, ProcessRole, process_exists, resident_memory_kib};

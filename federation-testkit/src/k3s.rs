//! k3s clusters in containers (feature `k3s`), for machines with a container engine.
//!
//! Each cluster is one k3s server container; its kubeconfig is read from a bind-mounted folder and
//! pointed at the host port Docker mapped. The handle has the same shape as a process cluster, but
//! fault operations return [`Error::Unsupported`](crate::Error::Unsupported): pausing a container
//! pauses kubelet and controllers too, which is a different fault.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::Kubeconfig;
use testcontainers::ImageExt as _;
use testcontainers::runners::AsyncRunner as _;
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

use crate::cluster::{Cluster, Runtime};
use crate::error::{Error, Result};
use crate::kubeconfig::from_kubeconfig;

/// Starts one k3s container and returns its cluster handle once the node controller has synced.
pub(crate) async fn start_cluster(name: &str, dir: &Path) -> Result<Cluster> {
    let conf_dir = dir.join(name).join("k3s");
    std::fs::create_dir_all(&conf_dir).map_err(|e| Error::io("create directory", &conf_dir, e))?;
    let container = K3s::default()
        .with_conf_mount(&conf_dir)
        .with_privileged(true)
        .with_userns_mode("host")
        .start()
        .await?;
    let host = container.get_host().await?;
    let port = container.get_host_port_ipv4(KUBE_SECURE_PORT).await?;
    let server_url = format!("https://{host}:{port}");

    let yaml = container
        .image()
        .read_kube_config()
        .map_err(|e| Error::io("read", conf_dir.join("k3s.yaml"), e))?;
    let kubeconfig_error = |source| Error::Kubeconfig {
        cluster: name.to_owned(),
        source,
    };
    let mut kubeconfig = Kubeconfig::from_yaml(&yaml).map_err(kubeconfig_error)?;
    // k3s writes its in-container address (127.0.0.1:6443); its certificate also names 127.0.0.1
    // and localhost, so only the port changes for a local engine.
    let mut ca_cert_pem = String::new();
    for named in &mut kubeconfig.clusters {
        if let Some(cluster) = named.cluster.as_mut() {
            cluster.server = Some(server_url.clone());
            if let Some(data) = &cluster.certificate_authority_data {
                let decoded = STANDARD.decode(data).map_err(|e| Error::InvalidDocument {
                    path: conf_dir.join("k3s.yaml"),
                    reason: format!("certificate-authority-data is not base64: {e}"),
                })?;
                ca_cert_pem = String::from_utf8_lossy(&decoded).into_owned();
            }
        }
    }
    let kubeconfig_path = dir.join(name).join("kubeconfig.yaml");
    let admin = from_kubeconfig(name, kubeconfig, &kubeconfig_path).await?;
    Cluster::new(
        name.to_owned(),
        server_url,
        admin,
        kubeconfig_path,
        ca_cert_pem,
        Runtime::K3s {
            _container: Box::new(container),
        },
    )
}

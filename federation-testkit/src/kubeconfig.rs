//! Kubeconfigs for the admin user of a test cluster.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{
    AuthInfo, Cluster as KubeconfigCluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};

use crate::error::{Error, Result};

/// A kubeconfig in its three forms plus the client configuration derived from it.
#[derive(Debug, Clone)]
pub(crate) struct AdminKubeconfig {
    pub kubeconfig: Kubeconfig,
    pub yaml: String,
    pub config: kube::Config,
}

/// Builds a self-contained kubeconfig (certificates inlined) for `cluster` at `server_url`, using
/// client-certificate authentication, and writes it to `path`.
pub(crate) async fn admin_kubeconfig(
    cluster: &str,
    server_url: &str,
    ca_cert_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
    path: &Path,
) -> Result<AdminKubeconfig> {
    let user = format!("{cluster}-admin");
    let kubeconfig = Kubeconfig {
        clusters: vec![NamedCluster {
            name: cluster.to_owned(),
            cluster: Some(KubeconfigCluster {
                server: Some(server_url.to_owned()),
                certificate_authority_data: Some(STANDARD.encode(ca_cert_pem)),
                ..KubeconfigCluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user.clone(),
            auth_info: Some(AuthInfo {
                client_certificate_data: Some(STANDARD.encode(client_cert_pem)),
                client_key_data: Some(STANDARD.encode(client_key_pem).into()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: cluster.to_owned(),
            context: Some(Context {
                cluster: cluster.to_owned(),
                user: Some(user),
                namespace: Some("default".to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(cluster.to_owned()),
        kind: Some("Config".to_owned()),
        api_version: Some("v1".to_owned()),
        ..Kubeconfig::default()
    };
    from_kubeconfig(cluster, kubeconfig, path).await
}

/// Serialises `kubeconfig`, writes it to `path` and derives the client configuration.
pub(crate) async fn from_kubeconfig(
    cluster: &str,
    kubeconfig: Kubeconfig,
    path: &Path,
) -> Result<AdminKubeconfig> {
    let yaml = serde_yaml::to_string(&kubeconfig).map_err(|source| Error::Yaml {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, &yaml).map_err(|e| Error::io("write", path, e))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .map_err(|source| Error::Kubeconfig {
                cluster: cluster.to_owned(),
                source,
            })?;
    Ok(AdminKubeconfig {
        kubeconfig,
        yaml,
        config,
    })
}

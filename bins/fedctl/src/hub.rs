//! Reading the hub: its client from the usual kubeconfig sources, and the objects the views
//! need.

use crate::error::FedctlError;
use crate::report::{StatusReport, SummaryRow};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use std::path::Path;

/// Where the hub is: `--kubeconfig` and `--context`, else `$KUBECONFIG`, `~/.kube/config` or
/// the in-cluster service account, as kubectl does.
#[derive(Clone, Debug, Default)]
pub struct HubOptions {
    /// A kubeconfig file to use instead of the default ones.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// A context of the kubeconfig other than its current one.
    pub context: Option<String>,
}

/// The hub's client and the namespace its context defaults to.
pub async fn connect(options: &HubOptions) -> Result<(Client, String), FedctlError> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = read_kubeconfig(path).await?;
            Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(config_error)?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
            .await
            .map_err(config_error)?,
        None => Config::infer().await.map_err(config_error)?,
    };
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| FedctlError::Config {
        message: e.to_string(),
    })?;
    Ok((client, namespace))
}

fn config_error(e: impl std::fmt::Display) -> FedctlError {
    FedctlError::Config {
        message: e.to_string(),
    }
}

/// Reads the file off the runtime's threads: kube's reader is blocking.
async fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, FedctlError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || Kubeconfig::read_from(&owned))
        .await
        .map_err(|e| FedctlError::Config {
            message: format!("reading {}: {e}", path.display()),
        })?
        .map_err(|e| FedctlError::Config {
            message: format!("reading {}: {e}", path.display()),
        })
}

/// Networks of a namespace, or of all namespaces when `namespace` is `None`.
fn networks_api(client: &Client, namespace: Option<&str>) -> Api<FederatedNetwork> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn services_api(client: &Client, namespace: Option<&str>) -> Api<FederatedService> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The report of one network, or [`FedctlError::NetworkNotFound`] naming those that exist.
pub async fn network_report(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<StatusReport, FedctlError> {
    let network = networks_api(client, Some(namespace))
        .get_opt(name)
        .await
        .map_err(|e| FedctlError::kube(format!("reading network {namespace}/{name}"), e))?;
    let Some(network) = network else {
        return Err(not_found(client, namespace, name).await);
    };
    let services = services_api(client, Some(namespace))
        .list(&ListParams::default())
        .await
        .map_err(|e| FedctlError::kube(format!("listing FederatedServices in {namespace}"), e))?;
    let members = Api::<MemberCluster>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| FedctlError::kube("listing MemberClusters", e))?;
    Ok(StatusReport::build(
        &network,
        &services.items,
        &members.items,
    ))
}

/// One summary row per network of `namespace` (all namespaces when `None`).
pub async fn summaries(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<SummaryRow>, FedctlError> {
    let where_ = namespace.unwrap_or("any namespace");
    let networks = networks_api(client, namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| FedctlError::kube(format!("listing FederatedNetworks in {where_}"), e))?;
    let services = services_api(client, namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| FedctlError::kube(format!("listing FederatedServices in {where_}"), e))?;
    Ok(SummaryRow::build_all(&networks.items, &services.items))
}

/// The not-found error, with the networks that do exist. Listing them is best effort: a user
/// allowed to read one namespace may not list the others, and the error must still say what
/// it can.
pub async fn not_found(client: &Client, namespace: &str, name: &str) -> FedctlError {
    let names = |list: Vec<FederatedNetwork>, qualified: bool| -> Vec<String> {
        let mut v: Vec<String> = list
            .iter()
            .map(|n| match qualified {
                true => format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any()),
                false => n.name_any(),
            })
            .collect();
        v.sort();
        v
    };
    let here = networks_api(client, Some(namespace))
        .list(&ListParams::default())
        .await
        .map(|l| names(l.items, false))
        .unwrap_or_default();
    let elsewhere = if here.is_empty() {
        networks_api(client, None)
            .list(&ListParams::default())
            .await
            .map(|l| names(l.items, true))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    FedctlError::NetworkNotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        here,
        elsewhere,
    }
}

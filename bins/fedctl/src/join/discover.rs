//! Facts about a member read from the member itself: its pod and service CIDRs and its
//! cluster id. Read where the cluster states them, never guessed: a wrong CIDR breaks
//! routing (Submariner) or policy (SD-WAN) silently.

use super::JoinError;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

/// Where a member's CIDRs came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cidrs {
    /// Pod CIDRs.
    pub pods: Vec<String>,
    /// Service CIDRs.
    pub services: Vec<String>,
    /// How each was found, for the user (`--pod-cidr`, `kube-system/kubeadm-config`, ...).
    pub sources: Vec<String>,
}

/// The `ClusterConfiguration.networking` subnets kubeadm records, if the cluster has them.
async fn kubeadm_subnets(client: &Client) -> Option<(Vec<String>, Vec<String>)> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "kube-system");
    let cm = api.get_opt("kubeadm-config").await.ok().flatten()?;
    let text = cm.data?.get("ClusterConfiguration")?.clone();
    let config: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let split = |key: &str| -> Vec<String> {
        config["networking"][key]
            .as_str()
            .map(|s| s.split(',').map(|c| c.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    Some((split("podSubnet"), split("serviceSubnet")))
}

/// The cluster's `ServiceCIDR` objects (`networking.k8s.io/v1`, GA since Kubernetes 1.33):
/// the ranges the API server really allocates Service IPs from.
async fn service_cidr_objects(client: &Client) -> Vec<String> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.k8s.io", "v1", "ServiceCIDR"),
        "servicecidrs",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return Vec::new();
    };
    let mut cidrs: Vec<String> = list
        .items
        .iter()
        .flat_map(|o| {
            o.data["spec"]["cidrs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    cidrs.sort();
    cidrs.dedup();
    cidrs
}

/// The member's CIDRs: flags first, then what the cluster states (kubeadm's configuration,
/// the `ServiceCIDR` objects). A CIDR found nowhere is an error naming the flag to pass.
pub async fn cidrs(
    client: &Client,
    pod_flags: &[String],
    service_flags: &[String],
) -> Result<Cidrs, JoinError> {
    let mut found = Cidrs::default();
    let kubeadm = if pod_flags.is_empty() || service_flags.is_empty() {
        kubeadm_subnets(client).await
    } else {
        None
    };
    if pod_flags.is_empty() {
        if let Some((pods, _)) = kubeadm.as_ref().filter(|(p, _)| !p.is_empty()) {
            found.pods.clone_from(pods);
            found
                .sources
                .push("pod CIDRs from kube-system/kubeadm-config".into());
        }
    } else {
        found.pods = pod_flags.to_vec();
        found.sources.push("pod CIDRs from --pod-cidr".into());
    }
    if service_flags.is_empty() {
        let objects = service_cidr_objects(client).await;
        if !objects.is_empty() {
            found.services = objects;
            found
                .sources
                .push("service CIDRs from the cluster's ServiceCIDR objects".into());
        } else if let Some((_, services)) = kubeadm.as_ref().filter(|(_, s)| !s.is_empty()) {
            found.services.clone_from(services);
            found
                .sources
                .push("service CIDRs from kube-system/kubeadm-config".into());
        }
    } else {
        found.services = service_flags.to_vec();
        found
            .sources
            .push("service CIDRs from --service-cidr".into());
    }
    let mut missing = Vec::new();
    if found.pods.is_empty() {
        missing.push(
            "--pod-cidr (the cluster does not state its pod CIDR: no kube-system/kubeadm-config)",
        );
    }
    if found.services.is_empty() {
        missing.push("--service-cidr (no ServiceCIDR objects or kubeadm-config found)");
    }
    if !missing.is_empty() {
        return Err(JoinError::CidrsUnknown {
            missing: missing.join("; "),
        });
    }
    for cidr in found.pods.iter().chain(&found.services) {
        if cidr.parse::<federation_core::plan::Cidr>().is_err() {
            return Err(JoinError::Invalid(format!(
                "{cidr:?} is not a CIDR (like 10.244.0.0/16)"
            )));
        }
    }
    Ok(found)
}

/// The cluster's id: the flag, else the `cluster.clusterset.k8s.io` ClusterProperty the
/// member publishes (KEP-2149), else the member's name.
pub async fn cluster_id(
    client: &Client,
    flag: Option<&str>,
    member: &str,
) -> Result<String, JoinError> {
    let id = match flag {
        Some(id) => id.to_owned(),
        None => cluster_property(client)
            .await
            .unwrap_or_else(|| member.to_owned()),
    };
    if !is_dns_label(&id) {
        return Err(JoinError::Invalid(format!(
            "cluster id {id:?} is not a DNS-1123 label; pass --cluster-id"
        )));
    }
    Ok(id)
}

async fn cluster_property(client: &Client) -> Option<String> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("about.k8s.io", "v1alpha1", "ClusterProperty"),
        "clusterproperties",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let property = api.get_opt("cluster.clusterset.k8s.io").await.ok()??;
    property.data["spec"]["value"].as_str().map(str::to_owned)
}

/// Whether `s` is a DNS-1123 label (what `MemberCluster.spec.clusterId` must be).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("east-1"));
        assert!(!is_dns_label("East"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}

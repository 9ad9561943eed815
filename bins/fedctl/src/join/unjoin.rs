//! `fedctl unjoin`: the reverse of join, in the order that leaves nothing behind.
//!
//! 1. The `MemberCluster` is deleted on the hub. The operator holds it (finalizer
//!    `fednet.io/member-in-use`) until no network's inventory names the member any more,
//!    which it brings about by removing the networks' objects from the member with the
//!    member's own credentials. Unjoin waits for that; the credentials must outlive it.
//! 2. Then the hub's kubeconfig Secret, and in the member the RoleBindings, Roles and the
//!    ServiceAccount (which invalidates every token minted for it), and `fednet-system` if
//!    join created it and nothing else lives there.

use super::{IDENTITY_NAMESPACE, JOINED_AS, JoinError, MANAGED_BY, request};
use federation_core::api::{FederatedNetwork, MemberCluster};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use std::time::Duration;

/// What `fedctl unjoin` is asked to do.
#[derive(Clone, Debug)]
pub struct UnjoinOptions {
    /// `MemberCluster` name.
    pub member: String,
    /// ServiceAccount name in the member.
    pub service_account: String,
    /// How long to wait for the operator to release the member.
    pub timeout: Duration,
}

/// What unjoin removed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct UnjoinReport {
    /// Objects removed, in words.
    pub removed: Vec<String>,
}

/// Unjoins a member: see the module docs. `member` is `None` when the member cannot be
/// reached; then only the hub side is removed, and the report says what is left.
pub async fn unjoin(
    hub: &Client,
    member: Option<&Client>,
    options: &UnjoinOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<UnjoinReport, JoinError> {
    let mut report = UnjoinReport::default();
    let members: Api<MemberCluster> = Api::all(hub.clone());
    let existing = members
        .get_opt(&options.member)
        .await
        .map_err(request(format!("reading MemberCluster {}", options.member)))?;
    let secret_ref = existing
        .as_ref()
        .map(|m| m.spec.kubeconfig_secret_ref.clone());
    if let Some(mc) = &existing {
        if !super::made_by_fedctl(mc.labels()) {
            return Err(super::JoinError::NotOurs {
                what: format!("MemberCluster {}", options.member),
                fix: "it was registered by hand: delete it with kubectl".into(),
            });
        }
        progress(
            "deleting the MemberCluster; the operator first removes every network's objects from the member",
        );
        members
            .delete(&options.member, &DeleteParams::default())
            .await
            .map_err(request(format!(
                "deleting MemberCluster {}",
                options.member
            )))?;
        wait_gone(hub, &members, &options.member, options.timeout).await?;
        report
            .removed
            .push(format!("MemberCluster {}", options.member));
    }
    if let Some(r) = secret_ref {
        let secrets: Api<Secret> = Api::namespaced(hub.clone(), &r.namespace);
        if let Some(secret) = secrets.get_opt(&r.name).await.map_err(request(format!(
            "reading Secret {}/{}",
            r.namespace, r.name
        )))? && super::made_by_fedctl(secret.labels())
        {
            progress("deleting the kubeconfig Secret on the hub");
            secrets
                .delete(&r.name, &DeleteParams::default())
                .await
                .map_err(request(format!(
                    "deleting Secret {}/{}",
                    r.namespace, r.name
                )))?;
            report
                .removed
                .push(format!("hub Secret {}/{}", r.namespace, r.name));
        }
    }
    let Some(client) = member else {
        return Ok(report);
    };
    progress("removing the member's Roles, RoleBindings and ServiceAccount");
    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), IDENTITY_NAMESPACE);
    if let Some(sa) = sa_api
        .get_opt(&options.service_account)
        .await
        .map_err(request("reading the member's ServiceAccount"))?
        .filter(|sa| super::made_by_fedctl(sa.labels()))
    {
        for ns in &super::granted_namespaces(&sa) {
            for name in delete_joined_in(client, ns, &options.member).await? {
                report.removed.push(format!("{name} in {ns}"));
            }
        }
        let selector = format!(
            "{}={},{JOINED_AS}={}",
            MANAGED_BY.0, MANAGED_BY.1, options.member
        );
        let params = ListParams::default().labels(&selector);
        let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
        report
            .removed
            .extend(delete_listed(&bindings, &params, "ClusterRoleBinding", "the cluster").await?);
        let roles: Api<ClusterRole> = Api::all(client.clone());
        report
            .removed
            .extend(delete_listed(&roles, &params, "ClusterRole", "the cluster").await?);
        sa_api
            .delete(&options.service_account, &DeleteParams::default())
            .await
            .map_err(request("deleting the member's ServiceAccount"))?;
        report.removed.push(format!(
            "ServiceAccount {IDENTITY_NAMESPACE}/{}",
            options.service_account
        ));
    }
    if remove_identity_namespace(client).await? {
        report
            .removed
            .push(format!("namespace {IDENTITY_NAMESPACE}"));
    }
    Ok(report)
}

/// Waits until the `MemberCluster` is gone; on timeout, names the networks still holding it.
async fn wait_gone(
    hub: &Client,
    members: &Api<MemberCluster>,
    name: &str,
    timeout: Duration,
) -> Result<(), JoinError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if members
            .get_opt(name)
            .await
            .map_err(request(format!("reading MemberCluster {name}")))?
            .is_none()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let holders = networks_holding(hub, name).await;
            return Err(JoinError::StillInUse(format!(
                "MemberCluster {name} is still held after {timeout:?} by networks {holders:?}: the operator is removing their objects from the member (is it running? see `fedctl status`). Run unjoin again to keep waiting; to give the member up without cleaning it, annotate it `fednet.io/abandon=true`. The member's credentials were kept so the operator can finish."
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn networks_holding(hub: &Client, member: &str) -> Vec<String> {
    let Ok(list) = Api::<FederatedNetwork>::all(hub.clone())
        .list(&ListParams::default())
        .await
    else {
        return vec!["(networks could not be listed)".into()];
    };
    list.items
        .iter()
        .filter(|n| {
            federation_core::controller::inventory_uses_member(
                n.status.as_ref().and_then(|s| s.inventory.as_ref()),
                member,
            )
        })
        .map(|n| format!("{}/{}", n.namespace().unwrap_or_default(), n.name_any()))
        .collect()
}

/// Deletes the Role and RoleBinding `name` of fedctl in `namespace`, if there.
pub(super) async fn delete_access_in(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), JoinError> {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    delete_if_ours(&bindings, name, &format!("RoleBinding {namespace}/{name}")).await?;
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    delete_if_ours(&roles, name, &format!("Role {namespace}/{name}")).await
}

/// Deletes object `name` if fedctl made it.
async fn delete_if_ours<K>(api: &Api<K>, name: &str, what: &str) -> Result<(), JoinError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let found = api
        .get_opt(name)
        .await
        .map_err(request(format!("reading {what}")))?;
    if found.is_some_and(|o| super::made_by_fedctl(o.labels())) {
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(request(format!("deleting {what}")))?;
    }
    Ok(())
}

/// Deletes every RoleBinding and Role join created for `member` in `namespace`.
async fn delete_joined_in(
    client: &Client,
    namespace: &str,
    member: &str,
) -> Result<Vec<String>, JoinError> {
    let selector = format!("{}={},{JOINED_AS}={member}", MANAGED_BY.0, MANAGED_BY.1);
    let params = ListParams::default().labels(&selector);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let mut removed = delete_listed(&bindings, &params, "RoleBinding", namespace).await?;
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    removed.extend(delete_listed(&roles, &params, "Role", namespace).await?);
    Ok(removed)
}

/// Deletes every object `params` selects; returns `<kind> <name>` of each.
async fn delete_listed<K>(
    api: &Api<K>,
    params: &ListParams,
    kind: &str,
    namespace: &str,
) -> Result<Vec<String>, JoinError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut removed = Vec::new();
    for o in api
        .list(params)
        .await
        .map_err(request(format!("listing {kind}s in {namespace}")))?
    {
        let name = o.name_any();
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(request(format!("deleting {kind} {namespace}/{name}")))?;
        removed.push(format!("{kind} {name}"));
    }
    Ok(removed)
}

/// Deletes `fednet-system` when join created it and no ServiceAccount but the default one
/// is left in it.
async fn remove_identity_namespace(client: &Client) -> Result<bool, JoinError> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = ns_api
        .get_opt(IDENTITY_NAMESPACE)
        .await
        .map_err(request(format!("reading namespace {IDENTITY_NAMESPACE}")))?
    else {
        return Ok(false);
    };
    if !super::made_by_fedctl(ns.labels()) || ns.metadata.deletion_timestamp.is_some() {
        return Ok(false);
    }
    let others = Api::<ServiceAccount>::namespaced(client.clone(), IDENTITY_NAMESPACE)
        .list(&ListParams::default())
        .await
        .map_err(request(format!(
            "listing ServiceAccounts in {IDENTITY_NAMESPACE}"
        )))?
        .items
        .iter()
        .any(|sa| sa.name_any() != "default");
    if others {
        return Ok(false);
    }
    ns_api
        .delete(IDENTITY_NAMESPACE, &DeleteParams::default())
        .await
        .map_err(request(format!("deleting namespace {IDENTITY_NAMESPACE}")))?;
    Ok(true)
}

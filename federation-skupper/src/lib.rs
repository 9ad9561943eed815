//! # federation-skupper
//!
//! The Skupper v2 (`skupper.io/v2alpha1`) backend of fednet. For every (member, namespace)
//! of a network it keeps a `Site`; for every planned link it makes the dialing site link to
//! the accepting one, by the direct flow (a client `Certificate` issued by the acceptor's
//! site CA, its credentials copied to the dialer, one `Link` per router group) or the grant
//! flow (`AccessGrant` in the acceptor, `AccessToken` in the dialer); for every shared service
//! it keeps a `Connector` where the service runs and a `Listener` where it is consumed.
//!
//! Rendering and health assessment are pure functions ([`render::render`],
//! [`assess::assess`]); the effects go through `federation_core::kubernetes` with
//! server-side apply, one field manager and the network's ownership labels.

pub mod assess;
pub mod kinds;
pub mod names;
pub mod render;
mod status_read;
pub mod validate;

use async_trait::async_trait;
use federation_core::api::{BackendKind, TopologyKind};
use federation_core::backend::{
    AccessRule, AccessScope, BackendError, Capabilities, Deletion, DesiredObject, DesiredState,
    Health, Layer, NetworkBackend, ObjectKey, ObserveScope, Observed, Singleton, Target,
    ValidationIssue,
};
use federation_core::cluster::MemberRegistry;
use federation_core::kubernetes::{
    apply_objects, delete_objects, read_owned, read_unowned, target_client,
};
use federation_core::plan::NetworkPlan;
use kinds::{CERTIFICATE, OWNED, SECRET};
use kube::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The Skupper backend.
pub struct SkupperBackend {
    registry: Arc<MemberRegistry>,
}

impl SkupperBackend {
    /// A backend reaching members through `registry`.
    pub fn new(registry: Arc<MemberRegistry>) -> Self {
        Self { registry }
    }

    async fn client(&self, target: &Target) -> Result<Client, BackendError> {
        target_client(&self.registry, target, "Skupper").await
    }
}

/// What Skupper offers: application-level (L7) links with costs, mutual TLS between routers,
/// no broker, any topology, and no constraint on members' CIDRs.
pub fn capabilities() -> Capabilities {
    Capabilities {
        layer: Layer::L7,
        overlapping_cidrs: true,
        link_costs: true,
        encryption: true,
        needs_broker: false,
        topologies: vec![
            TopologyKind::FullMesh,
            TopologyKind::HubSpoke,
            TopologyKind::Explicit,
        ],
        restricted_consumers: true,
    }
}

/// What fednet's identity needs in each namespace a Skupper network spans, and nothing
/// elsewhere: every verb on the kinds it owns (`get` for single reads such as the Secrets
/// Skupper's controller writes; `list`, `watch` to observe; `create`, `patch`, `update` for
/// server-side apply; `delete` to remove), grouped by API group.
pub fn member_access() -> Vec<AccessRule> {
    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for kind in OWNED {
        let group = kind.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        by_group
            .entry(group)
            .or_default()
            .push(kind.plural.to_owned());
    }
    let verbs = [
        "get", "list", "watch", "create", "patch", "update", "delete",
    ];
    by_group
        .into_iter()
        .map(|(group, resources)| AccessRule {
            api_group: group.to_owned(),
            resources,
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            resource_names: Vec::new(),
            scope: AccessScope::NetworkNamespaces,
        })
        .collect()
}

#[async_trait]
impl NetworkBackend for SkupperBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Skupper
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn validate(&self, plan: &NetworkPlan) -> Vec<ValidationIssue> {
        validate::validate(plan)
    }

    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target> {
        plan.members
            .iter()
            .map(|m| Target::Member(m.name.clone()))
            .collect()
    }

    fn render(
        &self,
        plan: &NetworkPlan,
        observed: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError> {
        Ok(render::render(plan, observed))
    }

    fn assess(&self, plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
        assess::assess(plan, observed)
    }

    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        let client = self.client(target).await?;
        let mut objects = read_owned(&self.registry, &client, target, OWNED, scope).await?;
        // The Secrets Skupper's controller writes for our Certificates, and the Secret and
        // Links it writes when redeeming our AccessTokens, carry no label of ours: read them
        // by name so rendering can copy and adopt them.
        let mut extra = Vec::new();
        for o in objects
            .iter()
            .filter(|o| o.key.kind == CERTIFICATE.kind || o.key.kind == kinds::ACCESS_TOKEN.kind)
        {
            let ns = o.key.namespace.as_deref().unwrap_or_default();
            let already = |kind: &str, name: &str| {
                objects.iter().any(|x| {
                    x.key.kind == kind && x.key.name == name && x.key.namespace == o.key.namespace
                })
            };
            if !already(SECRET.kind, &o.key.name) {
                extra.extend(
                    read_unowned(&self.registry, &client, target, &SECRET, ns, &o.key.name).await?,
                );
            }
            if o.key.kind == kinds::ACCESS_TOKEN.kind {
                for name in [
                    o.key.name.clone(),
                    format!("{}-1", o.key.name),
                    format!("{}-2", o.key.name),
                ] {
                    if !already(kinds::LINK.kind, &name) {
                        extra.extend(
                            read_unowned(&self.registry, &client, target, &kinds::LINK, ns, &name)
                                .await?,
                        );
                    }
                }
            }
        }
        // What Skupper redeemed from fednet's own token into objects owned by fednet's own
        // Site is fednet's too (it is named after the token and exists because of it): it is
        // cleaned up with the token even before a pass adopted (labelled) it.
        let site_uids: BTreeSet<String> = objects
            .iter()
            .filter(|o| o.owned && o.key.kind == kinds::SITE.kind)
            .filter_map(|o| o.uid().map(str::to_owned))
            .collect();
        for o in &mut extra {
            let from_our_site = o.body["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| {
                    r["kind"] == kinds::SITE.kind
                        && r["uid"].as_str().is_some_and(|u| site_uids.contains(u))
                });
            let from_token = o.key.kind == kinds::LINK.kind
                || objects.iter().any(|t| {
                    t.key.kind == kinds::ACCESS_TOKEN.kind
                        && t.key.name == o.key.name
                        && t.key.namespace == o.key.namespace
                });
            o.owned = from_our_site && from_token;
        }
        objects.extend(extra);
        Ok(Observed::of(objects))
    }

    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        let client = self.client(target).await?;
        apply_objects(&client, target, OWNED, objects).await
    }

    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        let client = self.client(target).await?;
        let mut ordered = objects.to_vec();
        ordered.sort_by_key(|d| self.deletion_order(&d.key));
        delete_objects(&client, target, OWNED, &ordered).await
    }

    fn deletion_order(&self, key: &ObjectKey) -> u8 {
        // Links before the Secret they name; the Secret and Links a token was redeemed into
        // before the token (while it exists they are found by its name); the Site last.
        match key.kind.as_str() {
            "Link" | "Listener" | "Connector" => 0,
            "Secret" => 1,
            "AccessToken" | "Certificate" | "AccessGrant" => 2,
            _ => 3,
        }
    }

    fn waits_for_links(&self, key: &ObjectKey) -> bool {
        // Removing a Site, a link or its credentials can cut traffic; services cannot, and
        // neither can a grant (a redeemed link no longer needs it).
        !matches!(key.kind.as_str(), "Connector" | "Listener" | "AccessGrant")
    }

    fn member_access(&self) -> Vec<AccessRule> {
        member_access()
    }

    fn member_kinds(&self) -> Vec<federation_core::kubernetes::ManagedKind> {
        OWNED.to_vec()
    }

    fn singletons(&self, plan: &NetworkPlan) -> Vec<Singleton> {
        // Skupper runs one Site per namespace: a second network's Site there would fail.
        plan.members
            .iter()
            .flat_map(|m| {
                plan.namespaces.iter().map(|ns| Singleton {
                    target: Target::Member(m.name.clone()),
                    what: format!("the Skupper Site of namespace {ns}"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

//! # federation-sdwan
//!
//! The SD-WAN backend of fednet: a network whose members' edges are connected by an SD-WAN
//! (or overlay) controller reached over its REST API, not by objects in the members.
//!
//! A network is first turned into a vendor-neutral [`model`] (a site per member with the
//! prefixes behind its edge, an overlay of the planned topology, application policies from
//! shared services). An [`adapter::Adapter`] per controller says what it can honour; a network
//! asking for more (link costs, SLA thresholds, encryption, a topology) is refused with the
//! `Unsupported` condition before anything is read or written. The adapter renders the model
//! into objects the engine diffs, applies and deletes on one target, the controller
//! ([`federation_core::backend::Target::Controller`], named by its URL).
//!
//! Adapters:
//! - [`headscale`]: Headscale's `/api/v1` (route approval and the ACL policy), tested against
//!   a real Headscale process.
//! - [`fleximanage`]: flexiManage's `/api` (path labels, interfaces, tunnels and their jobs),
//!   contract-verified against its OpenAPI spec through Prism.
//!
//! Shared services are also published, when the network names one, to a CN-WAN service
//! registry in etcd ([`registry`]), a second controller target.
//!
//! Credentials come from the network's Secret on the hub through an
//! [`access::AccessResolver`]; TLS is always verified (the system's roots plus the network's
//! `caBundle`).

pub mod access;
pub mod adapter;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod fleximanage;
pub mod headscale;
pub mod keys;
pub mod model;
pub mod registry;

use access::{AccessResolver, ClientCache, Connection};
use adapter::{Adapter, refusals};
use async_trait::async_trait;
use federation_core::api::{BackendKind, SdwanAdapter, TopologyKind};
use federation_core::backend::{
    BackendError, Capabilities, Deletion, DesiredObject, DesiredState, Health, Layer,
    NetworkBackend, ObjectKey, ObserveScope, Observed, Target, ValidationIssue,
};
use federation_core::plan::{NetworkPlan, NetworkRef};
use model::SdwanModel;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where an object of a network goes: its controller, through its adapter, or its service
/// registry.
enum Endpoint {
    Controller(Arc<dyn Adapter>, Connection),
    Registry(registry::Registry),
}

/// The SD-WAN backend.
pub struct SdwanBackend {
    resolver: Arc<dyn AccessResolver>,
    clients: ClientCache,
    adapters: BTreeMap<SdwanAdapter, Arc<dyn Adapter>>,
}

impl SdwanBackend {
    /// A backend with every adapter fednet has, reaching controllers with what `resolver`
    /// gives.
    pub fn new(resolver: Arc<dyn AccessResolver>) -> Self {
        let mut backend = Self {
            resolver,
            clients: ClientCache::default(),
            adapters: BTreeMap::new(),
        };
        backend.register(Arc::new(headscale::HeadscaleAdapter));
        backend.register(Arc::new(fleximanage::FlexiManageAdapter::default()));
        backend
    }

    /// Adds (or replaces) the adapter of one controller kind.
    pub fn register(&mut self, adapter: Arc<dyn Adapter>) {
        self.adapters.insert(adapter.kind(), adapter);
    }

    fn adapter(&self, kind: SdwanAdapter) -> Option<&Arc<dyn Adapter>> {
        self.adapters.get(&kind)
    }

    /// Where `target` is for `network`: its controller or its service registry.
    async fn connect(
        &self,
        target: &Target,
        network: &NetworkRef,
    ) -> Result<Endpoint, BackendError> {
        let Target::Controller(_) = target else {
            return Err(BackendError::Other(format!(
                "the SD-WAN backend has no {target} targets"
            )));
        };
        let access = self.resolver.access(network).await?;
        if let Some(r) = access.service_registry.as_ref()
            && &registry::target(r) == target
        {
            return Ok(Endpoint::Registry(registry::Registry::connect(r)?));
        }
        if &access.target() != target {
            // The network now names another controller (or registry); the credentials it
            // has are for that one, and are not sent to the old URL.
            return Err(BackendError::Gone {
                target: target.to_string(),
                reason: format!(
                    "network {network} now uses {}; fednet has no credentials for {target} any more and leaves what it wrote there",
                    access.url
                ),
            });
        }
        let adapter = self
            .adapter(access.adapter)
            .cloned()
            .ok_or_else(|| BackendError::Other(format!("no adapter for {:?}", access.adapter)))?;
        Ok(Endpoint::Controller(
            adapter,
            self.clients.connect(&access)?,
        ))
    }

    fn model(plan: &NetworkPlan) -> Result<SdwanModel, BackendError> {
        SdwanModel::from_plan(plan).map_err(|issues| {
            let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
            BackendError::Render(text.join("; "))
        })
    }

    fn network_of(key: &ObjectKey) -> Result<NetworkRef, BackendError> {
        keys::parse(key)
            .map(|(n, _)| n)
            .ok_or_else(|| BackendError::Other(format!("{key} is not an SD-WAN object")))
    }
}

/// What the SD-WAN backend as a whole can do: the union of its adapters (each network is
/// then checked against its own adapter in `validate`).
pub fn capabilities() -> Capabilities {
    Capabilities {
        layer: Layer::L3,
        overlapping_cidrs: false,
        link_costs: true,
        encryption: true,
        needs_broker: false,
        topologies: vec![
            TopologyKind::FullMesh,
            TopologyKind::HubSpoke,
            TopologyKind::Explicit,
        ],
        // Application policies name their consumers: a service may reach only some members.
        restricted_consumers: true,
    }
}

/// The objects of a plan given what was observed, without a backend instance (pure): what
/// `fedctl plan` shows. Only the adapters' renderings, which need no connection.
pub fn render(
    plan: &NetworkPlan,
    observed: &BTreeMap<Target, Observed>,
) -> Result<DesiredState, BackendError> {
    let mut desired = DesiredState::default();
    let (Some(target), Some(settings)) = (controller_target(plan), plan.backend.sdwan.as_ref())
    else {
        return Ok(desired);
    };
    let model = SdwanBackend::model(plan)?;
    let objects = match settings.adapter {
        SdwanAdapter::Headscale => {
            headscale::HeadscaleAdapter.render(&plan.network, &model, observed.get(&target))
        }
        SdwanAdapter::FlexiManage => {
            fleximanage::render(&plan.network, &model, observed.get(&target))
        }
    };
    desired.targets.insert(target, objects);
    render_registry(plan, &model, observed, &mut desired);
    Ok(desired)
}

/// The registry's objects, when the network names a registry.
fn render_registry(
    plan: &NetworkPlan,
    model: &SdwanModel,
    observed: &BTreeMap<Target, Observed>,
    desired: &mut DesiredState,
) {
    if let Some(r) = plan
        .backend
        .sdwan
        .as_ref()
        .and_then(|s| s.service_registry.as_ref())
    {
        let target = registry::target(r);
        let objects = registry::render(&plan.network, model, observed.get(&target));
        desired.targets.insert(target, objects);
    }
}

/// The controller target of a plan, if it has SD-WAN settings.
pub fn controller_target(plan: &NetworkPlan) -> Option<Target> {
    plan.backend
        .sdwan
        .as_ref()
        .map(|s| Target::Controller(s.controller_url.clone()))
}

#[async_trait]
impl NetworkBackend for SdwanBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::SdWan
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn validate(&self, plan: &NetworkPlan) -> Vec<ValidationIssue> {
        let Some(settings) = plan.backend.sdwan.as_ref() else {
            return vec![ValidationIssue {
                field: "spec.backend.sdwan".into(),
                message: "an SD-WAN network needs its controller settings".into(),
            }];
        };
        let Some(adapter) = self.adapter(settings.adapter) else {
            return vec![ValidationIssue {
                field: "spec.backend.sdwan.adapter".into(),
                message: format!("this operator has no {:?} adapter", settings.adapter),
            }];
        };
        let mut issues = match SdwanModel::from_plan(plan) {
            Err(issues) => issues,
            Ok(model) => {
                let mut issues = refusals(settings.adapter, &adapter.capabilities(), &model);
                issues.extend(adapter.validate(&model));
                issues
            }
        };
        if let Some(why) = settings
            .service_registry
            .as_ref()
            .and_then(registry::refusal)
        {
            issues.push(ValidationIssue {
                field: "spec.backend.sdwan.serviceRegistry.etcdUrl".into(),
                message: why,
            });
        }
        issues
    }

    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target> {
        let registry = plan
            .backend
            .sdwan
            .as_ref()
            .and_then(|s| s.service_registry.as_ref())
            .map(registry::target);
        controller_target(plan)
            .into_iter()
            .chain(registry)
            .collect()
    }

    fn render(
        &self,
        plan: &NetworkPlan,
        observed: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError> {
        let mut desired = DesiredState::default();
        let (Some(target), Some(settings)) = (controller_target(plan), plan.backend.sdwan.as_ref())
        else {
            return Ok(desired);
        };
        let adapter = self.adapter(settings.adapter).ok_or_else(|| {
            BackendError::Render(format!("no adapter for {:?}", settings.adapter))
        })?;
        let model = Self::model(plan)?;
        let objects = adapter.render(&plan.network, &model, observed.get(&target));
        desired.targets.insert(target, objects);
        render_registry(plan, &model, observed, &mut desired);
        Ok(desired)
    }

    fn assess(&self, plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
        let (Some(target), Some(settings)) = (controller_target(plan), plan.backend.sdwan.as_ref())
        else {
            return Health::default();
        };
        match (self.adapter(settings.adapter), SdwanModel::from_plan(plan)) {
            (Some(adapter), Ok(model)) => adapter.assess(&model, observed.get(&target)),
            _ => Health::default(),
        }
    }

    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        // A controller has no member namespaces: the network alone scopes what is read.
        let network = &scope.network;
        match self.connect(target, network).await? {
            Endpoint::Controller(adapter, conn) => adapter.observe(&conn, network).await,
            Endpoint::Registry(r) => r.observe(network).await,
        }
    }

    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        for object in objects {
            let network = Self::network_of(&object.key)?;
            match self.connect(target, &network).await? {
                Endpoint::Controller(adapter, conn) => adapter.apply(&conn, object).await?,
                Endpoint::Registry(r) => r.apply(object).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        for deletion in objects {
            let network = Self::network_of(&deletion.key)?;
            match self.connect(target, &network).await? {
                Endpoint::Controller(adapter, conn) => adapter.delete(&conn, deletion).await?,
                Endpoint::Registry(r) => r.delete(deletion).await?,
            }
        }
        Ok(())
    }

    fn waits_for_links(&self, key: &ObjectKey) -> bool {
        // A flexiManage tunnel that left the plan (the hub moved, say) goes only once every
        // planned link is up: make before break. Headscale's rules are rewritten in place in
        // one write, and what else is deleted (a route approval, a registry key) belongs to
        // a member or service that left, which no remaining link depends on.
        key.kind == fleximanage::TUNNEL
    }

    fn candidate_targets(&self, _member: &str) -> Vec<Target> {
        // Nothing is written into member clusters.
        Vec::new()
    }

    fn deletion_order(&self, key: &ObjectKey) -> u8 {
        // Rules first (stop allowing traffic), then the route approvals they relied on;
        // in a registry, endpoints before their service before its namespace.
        // flexiManage: tunnels before the interface labels they run over, the label last.
        match key.kind.as_str() {
            headscale::ACL_POLICY | registry::ENDPOINT | fleximanage::TUNNEL => 0,
            registry::SERVICE | fleximanage::INTERFACE_LABEL => 1,
            registry::NAMESPACE | fleximanage::PATH_LABEL => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests;

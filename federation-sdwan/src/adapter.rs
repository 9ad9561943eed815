//! The seam between the vendor-neutral model and one controller's REST API.
//!
//! An adapter says what its controller can honour ([`AdapterCapabilities`]); networks asking
//! for more are refused by [`refusals`] before anything is read or written, and the network
//! gets the `Unsupported` condition with each reason. It renders the model into objects the
//! engine diffs (pure), reads what the network owns on the controller, and applies or deletes
//! one object at a time.

use crate::access::Connection;
use crate::model::SdwanModel;
use async_trait::async_trait;
use federation_core::api::{SdwanAdapter, TopologyKind};
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, Health, Observed, ValidationIssue,
};
use federation_core::plan::NetworkRef;

/// Health figures a controller can report per link or site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthFigures {
    /// Whether an edge is connected to the controller.
    pub edge_online: bool,
    /// When an edge was last seen.
    pub last_seen: bool,
    /// Per-tunnel status (connected, pending, down).
    pub tunnel_status: bool,
    /// Round-trip time per tunnel.
    pub rtt: bool,
    /// Packet loss per tunnel.
    pub loss: bool,
}

/// What one controller can honour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterCapabilities {
    /// Overlay topologies it can realise.
    pub topologies: Vec<TopologyKind>,
    /// Whether link costs other than 1 are honoured.
    pub link_costs: bool,
    /// Whether per-application SLA thresholds (delay, jitter, loss) are enforced.
    pub sla_policies: bool,
    /// Whether the overlay is always encrypted (so a network requiring encryption can be
    /// served).
    pub encryption: bool,
    /// The health figures it reports.
    pub health: HealthFigures,
}

/// One controller's REST dialect.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Which controller this is.
    fn kind(&self) -> SdwanAdapter;

    /// What it can honour.
    fn capabilities(&self) -> AdapterCapabilities;

    /// Checks beyond [`Self::capabilities`] (pure). Empty when the model can be served.
    fn validate(&self, _model: &SdwanModel) -> Vec<ValidationIssue> {
        Vec::new()
    }

    /// The objects the network wants on the controller (pure). `observed` is what was read
    /// there this pass, or `None` when the controller could not be read.
    fn render(
        &self,
        network: &NetworkRef,
        model: &SdwanModel,
        observed: Option<&Observed>,
    ) -> Vec<DesiredObject>;

    /// Per-link, per-service and per-site health read off `observed` (pure). Figures the
    /// controller does not report are said to be unknown, never guessed.
    fn assess(&self, model: &SdwanModel, observed: Option<&Observed>) -> Health;

    /// Everything the network owns on the controller, plus what rendering and health need.
    async fn observe(
        &self,
        conn: &Connection,
        network: &NetworkRef,
    ) -> Result<Observed, BackendError>;

    /// Creates or updates one object.
    async fn apply(&self, conn: &Connection, object: &DesiredObject) -> Result<(), BackendError>;

    /// Removes one object the network owns; one already gone counts as removed.
    async fn delete(&self, conn: &Connection, deletion: &Deletion) -> Result<(), BackendError>;
}

/// Why a model cannot be served by a controller with these capabilities (pure).
pub fn refusals(
    adapter: SdwanAdapter,
    caps: &AdapterCapabilities,
    model: &SdwanModel,
) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    let mut refuse = |field: &str, message: String| {
        out.push(ValidationIssue {
            field: field.to_owned(),
            message,
        });
    };
    if !caps.topologies.contains(&model.overlay.topology) {
        refuse(
            "spec.topology.type",
            format!(
                "the {adapter:?} adapter cannot realise a {:?} overlay",
                model.overlay.topology
            ),
        );
    }
    if !caps.link_costs && model.overlay.links.iter().any(|l| l.cost != 1) {
        refuse(
            "spec.topology",
            format!("the {adapter:?} adapter cannot honour link costs; remove them or use cost 1"),
        );
    }
    if model.overlay.encrypted && !caps.encryption {
        refuse(
            "spec.backend.sdwan.encryption",
            format!("the {adapter:?} adapter cannot guarantee encrypted tunnels"),
        );
    }
    if !caps.sla_policies {
        for p in model.policies.iter().filter(|p| p.sla.has_sla()) {
            refuse(
                &format!("FederatedService {}: spec.sdwan", p.service),
                format!(
                    "the {adapter:?} adapter cannot enforce SLA thresholds (delay, jitter, loss); remove them or use a controller that can"
                ),
            );
        }
    }
    out
}

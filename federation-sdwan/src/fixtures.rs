//! Builders of hub objects for SD-WAN networks, for tests (feature `fixtures`).
#![allow(clippy::expect_used)]

use federation_core::api::{
    BackendKind, BackendSpec, FederatedNetwork, FederatedNetworkSpec, FederatedService,
    FederatedServiceSpec, HubSpokeSpec, MemberCluster, MemberClusterSpec, MemberNetwork,
    MemberSelection, SdwanAdapter, SdwanSettings, SecretKeyRef, ServiceExporter, ServicePort,
    TopologyKind, TopologySpec,
};
use federation_core::plan::{NetworkPlan, PlanInput};
use kube::api::ObjectMeta;
use std::collections::BTreeSet;

/// Namespace of the fixtures' networks and services on the hub.
pub const HUB_NAMESPACE: &str = "fednet-system";

/// A member whose edge is `edge-<name>`, with pod CIDR `10.<n>.0.0/16` and service CIDR
/// `10.<100+n>.0.0/16`.
pub fn member(name: &str, n: u8) -> MemberCluster {
    MemberCluster::new(
        name,
        MemberClusterSpec {
            cluster_id: name.into(),
            kubeconfig_secret_ref: SecretKeyRef {
                namespace: HUB_NAMESPACE.into(),
                name: format!("{name}-kubeconfig"),
                key: None,
            },
            location: None,
            network: Some(MemberNetwork {
                pod_cidrs: vec![format!("10.{n}.0.0/16")],
                service_cidrs: vec![format!("10.{}.0.0/16", 100 + u16::from(n))],
                gateway_hints: vec![format!("192.0.2.{n}")],
                sdwan_edge: Some(edge(name)),
            }),
        },
    )
}

/// The edge name of a fixture member.
pub fn edge(member: &str) -> String {
    format!("edge-{member}")
}

/// Members `names[i]` numbered from 1.
pub fn members(names: &[&str]) -> Vec<MemberCluster> {
    names
        .iter()
        .zip(1u8..)
        .map(|(name, n)| member(name, n))
        .collect()
}

/// A full-mesh topology.
pub fn full_mesh() -> TopologySpec {
    TopologySpec {
        kind: TopologyKind::FullMesh,
        default_cost: None,
        hub_spoke: None,
        explicit: None,
    }
}

/// A hub-and-spoke topology with these hubs.
pub fn hub_spoke(hubs: &[&str]) -> TopologySpec {
    TopologySpec {
        kind: TopologyKind::HubSpoke,
        default_cost: None,
        hub_spoke: Some(HubSpokeSpec {
            hubs: hubs.iter().map(|h| (*h).to_owned()).collect(),
            hubs_per_spoke: None,
            spoke_cost: None,
            hub_cost: None,
        }),
        explicit: None,
    }
}

/// SD-WAN settings for a controller at `url` whose token is in Secret
/// `fednet-system/<secret>` (key `token`).
pub fn settings(adapter: SdwanAdapter, url: &str, secret: &str) -> SdwanSettings {
    SdwanSettings {
        adapter,
        controller_url: url.into(),
        credentials_secret_ref: SecretKeyRef {
            namespace: HUB_NAMESPACE.into(),
            name: secret.into(),
            key: Some("token".into()),
        },
        ca_bundle: None,
        organization: None,
        encryption: false,
        service_registry: None,
    }
}

/// An SD-WAN network over `members`.
pub fn network(
    name: &str,
    members: &[&str],
    topology: TopologySpec,
    settings: SdwanSettings,
) -> FederatedNetwork {
    let mut net = FederatedNetwork::new(
        name,
        FederatedNetworkSpec {
            backend: BackendSpec {
                kind: BackendKind::SdWan,
                skupper: None,
                submariner: None,
                sdwan: Some(settings),
            },
            members: MemberSelection {
                names: members.iter().map(|m| (*m).to_owned()).collect(),
                selector: None,
            },
            namespaces: vec!["apps".into()],
            topology,
        },
    );
    net.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some(HUB_NAMESPACE.into()),
        generation: Some(1),
        ..Default::default()
    };
    net
}

/// A service of `network` exported from `exporter` on `port` (target port `port + 1`),
/// consumed by every other member.
pub fn service(name: &str, network: &str, exporter: &str, port: u16) -> FederatedService {
    let mut svc = FederatedService::new(
        name,
        FederatedServiceSpec {
            network: network.into(),
            namespace: "apps".into(),
            service_name: name.into(),
            exporters: vec![ServiceExporter {
                member: exporter.into(),
                selector: Some([("app".to_owned(), name.to_owned())].into()),
                host: None,
            }],
            consumers: None,
            ports: vec![ServicePort {
                name: "http".into(),
                port,
                target_port: Some(port + 1),
            }],
            sdwan: None,
        },
    );
    svc.metadata.namespace = Some(HUB_NAMESPACE.into());
    svc
}

/// The plan of `network` over `members` (all healthy) with `services`.
pub fn plan(
    network: &FederatedNetwork,
    members: &[MemberCluster],
    services: &[FederatedService],
) -> NetworkPlan {
    federation_core::plan::plan(PlanInput {
        network,
        member_clusters: members,
        services,
        unhealthy: &BTreeSet::new(),
    })
    .expect("fixture networks plan")
}

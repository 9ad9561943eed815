//! Builders of hub objects for unit tests.

use crate::api::*;
use kube::api::ObjectMeta;

pub fn member(name: &str) -> MemberCluster {
    let mut mc = MemberCluster::new(
        name,
        MemberClusterSpec {
            cluster_id: name.into(),
            kubeconfig_secret_ref: SecretKeyRef {
                namespace: "fednet-system".into(),
                name: format!("{name}-kubeconfig"),
                key: None,
            },
            location: None,
            network: None,
        },
    );
    mc.metadata.labels = Some([("env".to_owned(), "test".to_owned())].into());
    mc
}

pub fn network(name: &str, members: &[&str], topology: TopologySpec) -> FederatedNetwork {
    let mut net = FederatedNetwork::new(
        name,
        FederatedNetworkSpec {
            backend: BackendSpec {
                kind: BackendKind::Skupper,
                skupper: None,
                submariner: None,
                sdwan: None,
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
        namespace: Some("fednet-system".into()),
        generation: Some(1),
        ..Default::default()
    };
    net
}

pub fn full_mesh() -> TopologySpec {
    TopologySpec {
        kind: TopologyKind::FullMesh,
        default_cost: None,
        hub_spoke: None,
        explicit: None,
    }
}

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

pub fn service(name: &str, network: &str, exporter: &str) -> FederatedService {
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
                port: 8080,
                target_port: None,
            }],
            sdwan: None,
        },
    );
    svc.metadata.namespace = Some("fednet-system".into());
    svc
}

/// Plans `network` over `members` (all registered, all healthy) with `services`.
pub fn plan_of(
    network: &FederatedNetwork,
    members: &[&str],
    services: &[FederatedService],
) -> crate::plan::NetworkPlan {
    let mcs: Vec<MemberCluster> = members.iter().map(|m| member(m)).collect();
    crate::plan::plan(crate::plan::PlanInput {
        network,
        member_clusters: &mcs,
        services,
        unhealthy: &Default::default(),
    })
    .unwrap()
}

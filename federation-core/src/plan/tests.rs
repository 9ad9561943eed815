use super::*;
use crate::api::{ConsumerSelection, MemberNetwork, ServiceExporter};
use crate::fixtures::{full_mesh, hub_spoke, member, network, plan_of, service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

fn input<'a>(
    net: &'a FederatedNetwork,
    mcs: &'a [MemberCluster],
    svcs: &'a [FederatedService],
    unhealthy: &'a BTreeSet<String>,
) -> PlanInput<'a> {
    PlanInput {
        network: net,
        member_clusters: mcs,
        services: svcs,
        unhealthy,
    }
}

#[test]
fn plans_members_sites_links_and_services() {
    let net = network("prod", &["a", "b", "c"], hub_spoke(&["a"]));
    let svcs = [
        service("db", "prod", "a"),
        service("other-net", "elsewhere", "a"),
    ];
    let plan = plan_of(&net, &["a", "b", "c", "d"], &svcs);
    assert_eq!(
        plan.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(plan.topology.links.len(), 2, "two spokes, one hub");
    assert!(plan.topology.links.iter().all(|l| l.acceptor == "a"));
    assert_eq!(
        plan.services.len(),
        1,
        "the service of another network is ignored"
    );
    let db = &plan.services[0];
    assert_eq!(
        *db.consumers,
        ["a", "b", "c"],
        "all members consume by default"
    );
    assert_eq!(db.ports[0].routing_key, "fednet-system.prod.db.http");
    assert_eq!(db.ports[0].target_port, 8080);
}

#[test]
fn selector_and_names_are_united() {
    let mut net = network("prod", &["a"], full_mesh());
    net.spec.members.selector = Some(LabelSelector {
        match_labels: Some([("region".to_owned(), "eu".to_owned())].into()),
        ..Default::default()
    });
    let mut mcs = vec![member("a"), member("b"), member("c")];
    mcs[2].metadata.labels = Some([("region".to_owned(), "eu".to_owned())].into());
    let plan = plan(input(&net, &mcs, &[], &BTreeSet::new())).unwrap();
    assert_eq!(
        plan.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
}

#[test]
fn missing_deleted_and_abandoned_members_are_left_out_and_named() {
    let net = network("prod", &["a", "b", "c", "ghost"], full_mesh());
    let mut mcs = vec![member("a"), member("b"), member("c")];
    mcs[1].metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
    mcs[2].metadata.annotations =
        Some([(crate::api::ABANDON_ANNOTATION.to_owned(), "true".to_owned())].into());
    let plan = plan(input(&net, &mcs, &[], &BTreeSet::new())).unwrap();
    assert_eq!(
        plan.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(
        plan.missing_members
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["b", "c", "ghost"]
    );
    assert!(plan.missing_members["ghost"].contains("no MemberCluster"));
    assert!(plan.missing_members["b"].contains("being deleted"));
    assert!(plan.missing_members["c"].contains("abandoned"));
}

#[test]
fn bad_input_is_a_typed_error() {
    let net = network("prod", &["a", "b"], full_mesh());
    let mut mcs = vec![member("a"), member("b")];
    mcs[1].spec.cluster_id = "a".into();
    let err = plan(input(&net, &mcs, &[], &BTreeSet::new())).unwrap_err();
    assert_eq!(err.reason(), "DuplicateClusterId");

    let net = network("prod", &["a", "b"], hub_spoke(&["z"]));
    let mcs = [member("a"), member("b")];
    let err = plan(input(&net, &mcs, &[], &BTreeSet::new())).unwrap_err();
    assert_eq!(err.reason(), "InvalidTopology");
}

#[test]
fn invalid_services_are_rejected_alone() {
    let net = network("prod", &["a", "b"], full_mesh());
    let mut wrong_ns = service("wrong-ns", "prod", "a");
    wrong_ns.spec.namespace = "not-spanned".into();
    let stranger = service("stranger", "prod", "zz");
    let created = |s: &mut FederatedService, secs: i64| {
        s.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
        ));
    };
    // "ok" is older than "dup", which sorts first by name: the older keeps the Service name.
    let mut dup = service("dup", "prod", "b");
    dup.spec.service_name = "ok".into();
    created(&mut dup, 2000);
    let mut ok = service("ok", "prod", "a");
    created(&mut ok, 1000);
    let plan = plan_of(&net, &["a", "b"], &[wrong_ns, stranger, dup, ok]);
    assert_eq!(
        plan.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["ok"]
    );
    let reasons: BTreeMap<&str, &str> = plan
        .rejected_services
        .iter()
        .map(|r| (r.name.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(reasons["wrong-ns"], "NamespaceNotInNetwork");
    assert_eq!(reasons["stranger"], "ExporterNotMember");
    assert_eq!(reasons["dup"], "ServiceNameConflict");
}

#[test]
fn within_one_second_the_service_already_served_keeps_the_name() {
    let net = network("prod", &["a", "b"], full_mesh());
    let same_second = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(1000).unwrap(),
    ));
    let mut served = service("z-served", "prod", "a");
    served.spec.service_name = "orders".into();
    served.metadata.creation_timestamp = same_second.clone();
    served.status = Some(crate::api::FederatedServiceStatus {
        conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: crate::api::READY.into(),
            status: "True".into(),
            reason: "AllConsumersReady".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }],
        ..Default::default()
    });
    let mut newcomer = service("a-new", "prod", "b");
    newcomer.spec.service_name = "orders".into();
    newcomer.metadata.creation_timestamp = same_second;
    let plan = plan_of(&net, &["a", "b"], &[newcomer, served]);
    assert_eq!(
        plan.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["z-served"]
    );
    assert_eq!(plan.rejected_services[0].name, "a-new");
}

#[test]
fn a_bad_reference_is_left_out_and_the_rest_is_served() {
    let net = network("prod", &["a", "b", "c"], full_mesh());
    let mut svc = service("orders", "prod", "a");
    svc.spec.exporters.push(ServiceExporter {
        member: "zz".into(),
        selector: Some([("app".to_owned(), "orders".to_owned())].into()),
        host: None,
    });
    svc.spec.consumers = Some(ConsumerSelection {
        names: vec!["b".into(), "ghost".into()],
        selector: None,
    });
    let plan = plan_of(&net, &["a", "b", "c"], &[svc]);
    assert!(
        plan.rejected_services.is_empty(),
        "{:?}",
        plan.rejected_services
    );
    let served = &plan.services[0];
    assert_eq!(
        served
            .exporters
            .iter()
            .map(|e| e.member.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(&*served.consumers, ["b".to_owned()]);
    assert_eq!(
        served.problems,
        [
            "exporter zz is not a member of the network",
            "consumer ghost is not a member of the network"
        ]
    );
}

#[test]
fn overlapping_cidrs_are_found() {
    let net = network("prod", &["a", "b", "c"], full_mesh());
    let mut mcs = vec![member("a"), member("b"), member("c")];
    let cidrs = [
        ("10.0.0.0/16", "10.96.0.0/12"),
        ("10.1.0.0/16", "10.100.0.0/16"),
        ("10.0.128.0/17", "172.16.0.0/16"),
    ];
    for (mc, (pod, svc)) in mcs.iter_mut().zip(cidrs) {
        mc.spec.network = Some(MemberNetwork {
            pod_cidrs: vec![pod.into()],
            service_cidrs: vec![svc.into()],
            gateway_hints: vec![],
            sdwan_edge: None,
        });
    }
    let plan = plan(input(&net, &mcs, &[], &BTreeSet::new())).unwrap();
    let overlaps = plan.overlapping_cidrs();
    assert_eq!(overlaps.len(), 2, "{overlaps:?}");
    assert!(overlaps.iter().any(|(a, b, _)| a == "a" && b == "c"));
    assert!(
        overlaps.iter().any(|(a, b, _)| a == "a" && b == "b"),
        "service CIDRs overlap too"
    );
}

#[test]
fn unhealthy_members_are_marked() {
    let net = network("prod", &["a", "b"], full_mesh());
    let mcs = [member("a"), member("b")];
    let unhealthy = BTreeSet::from(["b".to_owned()]);
    let plan = plan(input(&net, &mcs, &[], &unhealthy)).unwrap();
    assert!(plan.member("a").unwrap().healthy);
    assert!(!plan.member("b").unwrap().healthy);
}

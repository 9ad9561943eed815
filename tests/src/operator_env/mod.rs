//! An environment to run the operator *binary* in: a hub and member clusters on real control
//! planes, each member reached through a ServiceAccount token bound to the namespaced Role
//! of `deploy/member-rbac/skupper-namespace.yaml` (so the member RBAC the docs ship is what
//! the tests exercise), kubeconfig Secrets and `MemberCluster`s on the hub, the Skupper controller
//! double in the members, and the example network (hub-and-spoke over Skupper, one
//! `FederatedService`). Used by `tests/tests/operator.rs` and by the `fednet-demo` binary.
//!
//! Requests the operator sends to members are told apart from everyone else's on the
//! members' API servers: the operator is the only client authenticating as a service
//! account, so API Priority and Fairness files its requests under the `service-accounts`
//! flow schema (see [`metrics::operator_requests_on`]).

mod members;
pub mod metrics;
mod process;
pub mod sdwan;

pub use members::{
    member_names, member_rbac_documents, member_rbac_path, register_members,
    service_account_kubeconfig,
};
pub use process::{FAST_FLAGS, OperatorOptions, OperatorProcess, operator_binary};

use anyhow::{Context as _, anyhow, bail};
use federation_core::api::{
    FederatedNetwork, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NETWORK_LABEL, crds,
};
use federation_core::plan::NetworkRef;
use federation_skupper::{kinds, names};
use federation_testkit::doubles::skupper::{SimulatedSite, SkupperControllerDouble};
use federation_testkit::{Cluster, ControlPlanes, Upstream, upstream_crds};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Hub namespace of the network, the kubeconfig Secrets and the Lease.
pub const HUB_NAMESPACE: &str = "fednet-system";
/// Member namespace the network spans.
pub const APP_NAMESPACE: &str = "shop";
/// The network's name.
pub const NETWORK: &str = "shop";
/// The shared service's name.
pub const SERVICE: &str = "orders";
/// The member that runs the shared service.
pub const EXPORTER: &str = "east";
/// The hub of the hub-and-spoke topology.
pub const TOPOLOGY_HUB: &str = "central";
/// Field manager of the environment's own writes.
const FIELD_MANAGER: &str = "fednet-operator-env";

/// An object in a member: (kind, namespace, name).
pub type Key = (String, String, String);

/// Which requests the API servers of an environment record in their audit logs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audit {
    Off,
    Writes,
    AllRequests,
}

/// A hub (cluster 0) and members (clusters 1..), registered and ready for the operator.
pub struct FedEnv {
    planes: ControlPlanes,
    members: Vec<String>,
    double: Option<SkupperControllerDouble>,
}

impl FedEnv {
    /// Starts `members + 1` control planes (our CRDs on the hub, Skupper's on the members),
    /// creates the namespaces and registers the members on the hub.
    pub async fn start(members: usize) -> anyhow::Result<Self> {
        Self::start_inner(members, Audit::Off, true).await
    }

    /// As [`Self::start`], without registering the members on the hub (for tests of
    /// `fedctl join`, which does it).
    pub async fn start_unregistered(members: usize) -> anyhow::Result<Self> {
        Self::start_inner(members, Audit::Off, false).await
    }

    /// As [`Self::start`], with every API server writing an audit log of write requests
    /// (read with `Cluster::audit_events`).
    pub async fn start_audited(members: usize) -> anyhow::Result<Self> {
        Self::start_inner(members, Audit::Writes, true).await
    }

    /// As [`Self::start`], with every API server writing an audit log of every request,
    /// reads and watches included (for counting the operator's requests by verb).
    pub async fn start_audited_all(members: usize) -> anyhow::Result<Self> {
        Self::start_inner(members, Audit::AllRequests, true).await
    }

    async fn start_inner(members: usize, audit: Audit, register: bool) -> anyhow::Result<Self> {
        if members < 2 {
            bail!("a hub-and-spoke network needs at least two members");
        }
        let planes = ControlPlanes::builder()
            .clusters(members + 1)
            .name_prefix("fednet")
            .audit_writes(audit == Audit::Writes)
            .audit_all_requests(audit == Audit::AllRequests)
            .start()
            .await
            .context("starting control planes")?;
        let env = Self {
            planes,
            members: member_names(members),
            double: None,
        };
        let skupper = upstream_crds(&[Upstream::Skupper])?;
        let fednet = crds();
        let mut installs = vec![env.hub().install_crds(&fednet)];
        for m in env.member_clusters() {
            installs.push(m.install_crds(&skupper));
        }
        futures::future::try_join_all(installs)
            .await
            .context("installing CRDs")?;
        env.hub().create_namespace(HUB_NAMESPACE).await?;
        for m in env.member_clusters() {
            m.create_namespace(APP_NAMESPACE).await?;
        }
        if register {
            register_members(&env).await?;
        }
        Ok(env)
    }

    /// The control planes.
    pub fn planes(&self) -> &ControlPlanes {
        &self.planes
    }

    /// The hub cluster.
    pub fn hub(&self) -> &Cluster {
        &self.planes.clusters()[0]
    }

    /// Writes a copy of the hub's admin kubeconfig that dials `server` (for example a
    /// [`crate::tcp_proxy::TcpProxy`] in front of the hub) into `dir`, and returns its path.
    pub fn hub_kubeconfig_via(
        &self,
        server: std::net::SocketAddr,
        dir: &std::path::Path,
    ) -> anyhow::Result<std::path::PathBuf> {
        let hub = self.hub();
        let yaml = hub
            .kubeconfig_yaml()
            .replace(hub.server_url(), &format!("https://{server}"));
        if !yaml.contains(&format!("https://{server}")) {
            bail!("the hub kubeconfig does not name {}", hub.server_url());
        }
        let path = dir.join(format!("hub-via-{}.yaml", server.port()));
        std::fs::write(&path, yaml)?;
        Ok(path)
    }

    /// The member names, in cluster order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The member clusters, in the order of [`Self::members`].
    pub fn member_clusters(&self) -> &[Cluster] {
        &self.planes.clusters()[1..]
    }

    /// The cluster of a member.
    pub fn member(&self, name: &str) -> anyhow::Result<&Cluster> {
        let i = self
            .members
            .iter()
            .position(|m| m == name)
            .ok_or_else(|| anyhow!("no member {name}"))?;
        Ok(&self.planes.clusters()[i + 1])
    }

    /// Starts the Skupper controller double in every member.
    pub fn start_double(&mut self) {
        let sites = self
            .members
            .iter()
            .zip(self.member_clusters())
            .map(|(name, c)| SimulatedSite {
                cluster: name.clone(),
                client: c.client(),
            })
            .collect();
        self.double = Some(SkupperControllerDouble::spawn(sites));
    }

    /// Stops the double (its polling would otherwise dominate the members' request counts).
    pub fn stop_double(&mut self) {
        self.double = None;
    }

    /// The network and service manifests the environment applies.
    pub fn manifests(&self) -> Vec<Value> {
        vec![
            json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
                "metadata": {"name": NETWORK, "namespace": HUB_NAMESPACE},
                "spec": {
                    "backend": {"type": "Skupper", "skupper": {"linkFlow": "Direct"}},
                    "members": {"selector": {"matchLabels": {"env": "prod"}}},
                    "namespaces": [APP_NAMESPACE],
                    "topology": {"type": "HubSpoke", "hubSpoke": {"hubs": [TOPOLOGY_HUB], "spokeCost": 1}}
                }
            }),
            json!({
                "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedService",
                "metadata": {"name": SERVICE, "namespace": HUB_NAMESPACE},
                "spec": {
                    "network": NETWORK, "namespace": APP_NAMESPACE, "serviceName": SERVICE,
                    "exporters": [{"member": EXPORTER, "selector": {"app": SERVICE}}],
                    "ports": [{"name": "http", "port": 8080}]
                }
            }),
        ]
    }

    /// Applies the network and its service on the hub.
    pub async fn apply_network(&self) -> anyhow::Result<()> {
        for manifest in self.manifests() {
            apply_json(&self.hub().client(), &manifest).await?;
        }
        Ok(())
    }

    /// The network as the hub has it now.
    pub async fn network(&self) -> anyhow::Result<FederatedNetwork> {
        Ok(
            Api::<FederatedNetwork>::namespaced(self.hub().client(), HUB_NAMESPACE)
                .get(NETWORK)
                .await?,
        )
    }

    /// Polls the network until `done` holds, for at most `timeout`.
    pub async fn wait_network(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&FederatedNetwork) -> bool,
    ) -> anyhow::Result<FederatedNetwork> {
        let started = Instant::now();
        loop {
            let last = self.network().await.ok();
            if let Some(net) = last.as_ref().filter(|n| done(n)) {
                return Ok(net.clone());
            }
            if started.elapsed() > timeout {
                let status = last.and_then(|n| n.status);
                bail!("network not {what} within {timeout:?}; status: {status:#?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every object carrying the network's ownership labels in a member, by key.
    pub async fn owned_objects(&self, member: &str) -> anyhow::Result<BTreeSet<Key>> {
        owned_objects(&self.member(member)?.client()).await
    }

    /// The objects the operator must have made in each member for the example network,
    /// derived from the Skupper backend's naming rules.
    pub fn expected_objects(&self) -> BTreeMap<String, BTreeSet<Key>> {
        let net = NetworkRef::new(HUB_NAMESPACE, NETWORK);
        let key =
            |kind: &str, name: &str| (kind.to_owned(), APP_NAMESPACE.to_owned(), name.to_owned());
        let service = names::service_port(SERVICE, "http");
        let mut out: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
        for m in &self.members {
            let objects = out.entry(m.clone()).or_default();
            objects.insert(key("Site", &names::site(&net)));
            if m == EXPORTER {
                objects.insert(key("Connector", &service));
            } else {
                objects.insert(key("Listener", &service));
            }
            if m != TOPOLOGY_HUB {
                let link = names::link(&net, m, TOPOLOGY_HUB);
                objects.insert(key("Secret", &link));
                objects.insert(key("Link", &link));
                out.entry(TOPOLOGY_HUB.to_owned())
                    .or_default()
                    .insert(key("Certificate", &link));
            }
        }
        out
    }

    /// Who holds the operator's Lease, if anyone.
    pub async fn lease_holder(&self) -> Option<String> {
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            self.hub().client(),
            HUB_NAMESPACE,
        )
        .get_opt("fednet-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
    }

    /// Waits until `identity` holds the Lease; panics with the holder after `timeout`.
    pub async fn wait_lease_holder(&self, identity: &str, timeout: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.lease_holder().await.as_deref() != Some(identity) {
            assert!(
                started.elapsed() < timeout,
                "{identity} did not take the lease within {timeout:?} (holder {:?})",
                self.lease_holder().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Checks that every member holds exactly the expected objects: none missing, none extra
    /// (an orphan), none twice (names are unique per kind and namespace, and a second site
    /// or link would have another name).
    pub async fn check_inventory(&self) -> anyhow::Result<()> {
        let expected = self.expected_objects();
        for m in &self.members {
            let found = self.owned_objects(m).await?;
            let want = expected.get(m).cloned().unwrap_or_default();
            if found != want {
                let missing: Vec<_> = want.difference(&found).collect();
                let extra: Vec<_> = found.difference(&want).collect();
                bail!("member {m}: missing {missing:?}, unexpected {extra:?}");
            }
        }
        Ok(())
    }
}

/// Lists every owned object (all kinds the Skupper backend manages) in a cluster.
pub async fn owned_objects(client: &Client) -> anyhow::Result<BTreeSet<Key>> {
    let selector = format!(
        "{NETWORK_LABEL}={},{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
        NetworkRef::new(HUB_NAMESPACE, NETWORK).label_value()
    );
    let mut out = BTreeSet::new();
    for kind in kinds::OWNED {
        let ar = resource(kind.api_version, kind.kind, kind.plural);
        let list = Api::<DynamicObject>::all_with(client.clone(), &ar)
            .list(&ListParams::default().labels(&selector))
            .await?;
        for o in list.items {
            out.insert((
                kind.kind.to_owned(),
                o.namespace().unwrap_or_default(),
                o.name_any(),
            ));
        }
    }
    Ok(out)
}

fn resource(api_version: &str, kind: &str, plural: &str) -> kube::core::ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk(group, version, kind),
        plural,
    )
}

/// Server-side applies a manifest given as JSON (any kind the server knows by its plural
/// found through discovery).
pub async fn apply_json(client: &Client, manifest: &Value) -> anyhow::Result<()> {
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let kind = manifest["kind"].as_str().unwrap_or_default();
    let name = manifest["metadata"]["name"]
        .as_str()
        .ok_or_else(|| anyhow!("manifest without a name"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("discovering {api_version}/{kind}"))?;
    let api: Api<DynamicObject> = match manifest["metadata"]["namespace"].as_str() {
        Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        _ => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(manifest),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

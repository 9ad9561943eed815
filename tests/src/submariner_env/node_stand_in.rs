//! What the members' nodes would do, stood in for: the test API servers run no kubelet, no
//! pods and no kube-controller-manager. Everything else is real (the operator, the Lighthouse
//! agents, the API servers). Each stand-in is documented against the upstream code it
//! imitates:
//!
//! - **DaemonSet status** (kube-controller-manager's DaemonSet controller on a cluster with
//!   no schedulable gateway node): `observedGeneration` caught up, nothing scheduled. The
//!   operator's uninstall waits on it (`uninstall.ensureDaemonSetReady`).
//! - **Deployment status** (the Deployment controller and the kubelet): the operator's
//!   Deployments report their replicas available; the Lighthouse agent's really runs (below).
//! - **`Gateway` objects** (what the submariner gateway pod writes,
//!   `pkg/gateway`/`cableengine/syncer` upstream): one active gateway per joined member,
//!   connected to every other joined member's endpoint.
//! - **`Cluster` and `Endpoint` objects on the broker** (what the gateway syncs to the broker,
//!   `pkg/controllers/datastoresyncer` upstream), written with the member's own broker token
//!   from the Secret fednet gave it, so that credential and the broker Role are exercised.
//!   Like upstream, they are left behind when the member leaves.
//! - **The Lighthouse agent pod**: the real agent binary, started from the environment the
//!   real operator rendered into its `submariner-lighthouse-agent` Deployment, with the
//!   service-account token minted by TokenRequest for that Deployment's ServiceAccount and the
//!   broker Secret's keys in files (as the kubelet mounts them, kept in sync); stopped when the
//!   Deployment goes.

use super::processes::{AgentSpec, start_agent};
use base64::Engine as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Child;

/// The field manager of everything the stand-ins write.
pub const MANAGER: &str = "fednet-test-node-stand-in";
const OPERATOR_NS: &str = "submariner-operator";
const BROKER_NS: &str = "submariner-k8s-broker";
const AGENT: &str = "submariner-lighthouse-agent";

/// A member as the stand-ins see it.
#[derive(Clone)]
pub struct StandInMember {
    /// Member name.
    pub name: String,
    /// Cluster id.
    pub cluster_id: String,
    /// A client with a short timeout (a paused member must not hold the others up).
    pub client: Client,
    /// Host and port of its API server (what in-cluster configuration points at).
    pub host: String,
    /// Port of its API server.
    pub port: u16,
    /// Its CA (for the agent's `ca.crt`).
    pub ca_pem: String,
    /// Pod and service CIDRs.
    pub cidrs: (String, String),
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn cable(cluster_id: &str) -> String {
    format!("submariner-cable-{cluster_id}-127-0-0-1")
}

fn endpoint_spec(m: &StandInMember) -> Value {
    json!({
        "cluster_id": m.cluster_id, "cable_name": cable(&m.cluster_id), "hostname": format!("{}-gateway-node", m.name),
        "subnets": [m.cidrs.0, m.cidrs.1], "private_ip": "127.0.0.1", "public_ip": "127.0.0.1",
        "nat_enabled": false, "backend": "libreswan", "healthCheckIP": "127.0.0.1", "backend_config": {},
    })
}

/// The state the stand-ins keep between ticks.
pub struct NodeStandIns {
    members: Vec<StandInMember>,
    assets: PathBuf,
    dir: PathBuf,
    agents: BTreeMap<String, Child>,
    /// Members whose join the operator has reconciled, as last read (kept while unreadable).
    joined: BTreeMap<String, Option<String>>,
}

impl NodeStandIns {
    /// Stand-ins for `members`; agent folders and logs go to `dir`.
    pub fn new(members: Vec<StandInMember>, assets: PathBuf, dir: PathBuf) -> Self {
        Self {
            members,
            assets,
            dir,
            agents: BTreeMap::new(),
            joined: BTreeMap::new(),
        }
    }

    /// Whether the agent of `member` runs.
    pub fn agent_running(&mut self, member: &str) -> bool {
        self.agents
            .get_mut(member)
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// One round over every member. Errors of one member (paused, say) are skipped.
    pub async fn tick(&mut self) {
        for m in self.members.clone() {
            match joined_global_cidr(&m).await {
                Ok(state) => {
                    self.joined.insert(m.name.clone(), state);
                }
                Err(e) => {
                    tracing::debug!(member = %m.name, error = %e, "stand-in: member unreadable")
                }
            }
        }
        for m in self.members.clone() {
            let joined = self.joined.get(&m.name).cloned().flatten();
            if let Err(e) = self.member_tick(&m, joined).await {
                tracing::debug!(member = %m.name, error = %e, "stand-in round failed");
            }
        }
    }

    async fn member_tick(
        &mut self,
        m: &StandInMember,
        joined: Option<String>,
    ) -> anyhow::Result<()> {
        workload_status(&m.client).await?;
        let peers: Vec<StandInMember> = self
            .members
            .iter()
            .filter(|p| p.name != m.name && self.joined.get(&p.name).is_some_and(Option::is_some))
            .cloned()
            .collect();
        gateway(m, joined.is_some(), &peers).await?;
        if let Some(global_cidr) = &joined {
            broker_objects(m, global_cidr).await?;
        }
        self.agent(m).await
    }

    async fn agent(&mut self, m: &StandInMember) -> anyhow::Result<()> {
        let deployments: Api<Deployment> = Api::namespaced(m.client.clone(), OPERATOR_NS);
        let deployment = deployments
            .get_opt(AGENT)
            .await?
            .filter(|d| d.metadata.deletion_timestamp.is_none());
        let Some(deployment) = deployment else {
            if let Some(mut child) = self.agents.remove(&m.name) {
                let _ = child.kill().await;
            }
            return Ok(());
        };
        let folder = self.dir.join(&m.name);
        let spec = deployment.spec.template.spec.unwrap_or_default();
        let broker_secret = spec
            .volumes
            .iter()
            .flatten()
            .find_map(|v| v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        let broker_dir = folder.join("broker-secret");
        if let Some(name) = &broker_secret {
            // The kubelet keeps a mounted Secret's files in step with the Secret.
            let secret = Api::<Secret>::namespaced(m.client.clone(), OPERATOR_NS)
                .get_opt(name)
                .await?;
            if let Some(data) = secret.and_then(|s| s.data) {
                write_files(
                    &broker_dir,
                    data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())),
                )?;
            }
        }
        if self.agent_running(&m.name) {
            return Ok(());
        }
        let sa_dir = folder.join("serviceaccount");
        let account = spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| AGENT.into());
        let token = Api::<ServiceAccount>::namespaced(m.client.clone(), OPERATOR_NS)
            .create_token_request(
                &account,
                &PostParams::default(),
                &TokenRequest {
                    spec: Some(TokenRequestSpec {
                        expiration_seconds: Some(3600),
                        ..TokenRequestSpec::default()
                    }),
                    ..TokenRequest::default()
                },
            )
            .await?
            .status
            .and_then(|s| s.token)
            .unwrap_or_default();
        write_files(
            &sa_dir,
            [
                ("token", token.as_bytes()),
                ("ca.crt", m.ca_pem.as_bytes()),
                ("namespace", OPERATOR_NS.as_bytes()),
            ],
        )?;
        let env = spec
            .containers
            .first()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect();
        let child = start_agent(
            &self.assets,
            &self.dir,
            &AgentSpec {
                member: &m.name,
                host: &m.host,
                port: m.port,
                service_account_dir: &sa_dir,
                broker_secret: broker_secret.as_deref().map(|n| (n, broker_dir.as_path())),
                env,
            },
        )?;
        tracing::info!(member = %m.name, "started the Lighthouse agent");
        self.agents.insert(m.name.clone(), child);
        Ok(())
    }
}

fn write_files<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(tmp, path)?;
        }
    }
    Ok(())
}

/// `Some(globalCIDR or "")` when the member's Submariner was reconciled by the operator and is
/// not being deleted; `None` otherwise.
async fn joined_global_cidr(m: &StandInMember) -> anyhow::Result<Option<String>> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        m.client.clone(),
        OPERATOR_NS,
        &resource("submariner.io", "v1alpha1", "Submariner", "submariners"),
    );
    let cr = match api.get_opt("submariner").await {
        Ok(cr) => cr,
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => return Err(e.into()),
    };
    Ok(cr
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| c.data["status"]["clusterID"] == m.cluster_id.as_str())
        .map(|c| {
            c.data["spec"]["globalCIDR"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }))
}

async fn workload_status(client: &Client) -> anyhow::Result<()> {
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), OPERATOR_NS);
    for ds in daemonsets.list(&ListParams::default()).await? {
        let generation = ds.metadata.generation.unwrap_or_default();
        if ds.status.as_ref().and_then(|s| s.observed_generation) == Some(generation) {
            continue;
        }
        let status = json!({"status": {"observedGeneration": generation, "desiredNumberScheduled": 0,
                                       "currentNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}});
        daemonsets
            .patch_status(
                &ds.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), OPERATOR_NS);
    for d in deployments.list(&ListParams::default()).await? {
        let generation = d.metadata.generation.unwrap_or_default();
        if d.status.as_ref().and_then(|s| s.observed_generation) == Some(generation) {
            continue;
        }
        let replicas = d.spec.replicas.unwrap_or(1);
        let status = json!({"status": {"observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas,
                                       "availableReplicas": replicas, "updatedReplicas": replicas}});
        deployments
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await?;
    }
    Ok(())
}

async fn gateway(m: &StandInMember, joined: bool, peers: &[StandInMember]) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        m.client.clone(),
        OPERATOR_NS,
        &resource("submariner.io", "v1", "Gateway", "gateways"),
    );
    let name = format!("{}-gateway-node", m.name);
    if !joined {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(());
    }
    let connections: Vec<Value> = peers
        .iter()
        .map(|p| json!({"status": "connected", "statusMessage": "", "endpoint": endpoint_spec(p),
                        "usingIP": "127.0.0.1", "usingNAT": false,
                        "latencyRTT": {"last": "1.2ms", "min": "1ms", "average": "1.1ms", "max": "1.4ms", "stdDev": "0.1ms"}}))
        .collect();
    let body = json!({"apiVersion": "submariner.io/v1", "kind": "Gateway", "metadata": {"name": name},
                      "status": {"haStatus": "active", "localEndpoint": endpoint_spec(m), "connections": connections,
                                 "statusFailure": "", "version": "v0.21.1"}});
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// The member's Cluster and Endpoint on the broker, written with the member's broker token.
async fn broker_objects(m: &StandInMember, global_cidr: &str) -> anyhow::Result<()> {
    let Some(client) = broker_client(m).await? else {
        return Ok(());
    };
    let id = &m.cluster_id;
    let global: Vec<&str> = Some(global_cidr)
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect();
    let cluster = json!({"apiVersion": "submariner.io/v1", "kind": "Cluster", "metadata": {"name": id},
                         "spec": {"cluster_id": id, "cluster_cidr": [m.cidrs.0], "service_cidr": [m.cidrs.1],
                                  "global_cidr": global, "color_codes": ["blue"]}});
    let endpoint_name = format!("{id}-{}", cable(id));
    let endpoint = json!({"apiVersion": "submariner.io/v1", "kind": "Endpoint", "metadata": {"name": endpoint_name},
                          "spec": endpoint_spec(m)});
    for (kind, plural, name, body) in [
        ("Cluster", "clusters", id.as_str(), cluster),
        ("Endpoint", "endpoints", endpoint_name.as_str(), endpoint),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            BROKER_NS,
            &resource("submariner.io", "v1", kind, plural),
        );
        api.patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    }
    Ok(())
}

/// A client of the broker authenticated as the member (its token and the broker's CA from the
/// member's broker Secret, the address from its Submariner resource).
async fn broker_client(m: &StandInMember) -> anyhow::Result<Option<Client>> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        m.client.clone(),
        OPERATOR_NS,
        &resource("submariner.io", "v1alpha1", "Submariner", "submariners"),
    );
    let Some(cr) = api.get_opt("submariner").await? else {
        return Ok(None);
    };
    let (Some(server), Some(secret_name)) = (
        cr.data["spec"]["brokerK8sApiServer"].as_str(),
        cr.data["spec"]["brokerK8sSecret"].as_str(),
    ) else {
        return Ok(None);
    };
    let Some(data) = Api::<Secret>::namespaced(m.client.clone(), OPERATOR_NS)
        .get_opt(secret_name)
        .await?
        .and_then(|s| s.data)
    else {
        return Ok(None);
    };
    let (Some(token), Some(ca)) = (data.get("token"), data.get("ca.crt")) else {
        return Ok(None);
    };
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "broker",
        "clusters": [{"name": "broker", "cluster": {"server": format!("https://{server}"),
                      "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(&ca.0)}}],
        "users": [{"name": "member", "user": {"token": String::from_utf8_lossy(&token.0)}}],
        "contexts": [{"name": "broker", "context": {"cluster": "broker", "user": "member"}}],
    });
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&serde_json::to_string(&kubeconfig)?)?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    config.read_timeout = Some(Duration::from_secs(3));
    config.connect_timeout = Some(Duration::from_secs(3));
    Ok(Some(Client::try_from(config)?))
}

//! A test double of Skupper v2's controller (`skupper.io/v2alpha1`).
//!
//! Skupper's real controller cannot run against the kit's clusters: there is no kubelet, so its
//! router pods never start and nothing it manages ever turns ready. The double writes only
//! what the real controller writes that a network operator reads back: the status of Skupper
//! objects and the Secrets and Links the controller itself creates. It does this by polling
//! each simulated cluster (about every 200 ms) and applying the rules below, each of which
//! imitates named upstream code (skupperproject/skupper at the commit the reference CRDs came
//! from, see `shared/reference/SOURCES.md`). Hosts are not real: every endpoint and grant URL
//! names a simulated cluster under the `.sim` domain, which is how the double knows which
//! cluster a Link dials or a token is redeemed at.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> federation_testkit::Result<()> {
//! use federation_testkit::doubles::skupper::{SimulatedSite, SkupperControllerDouble};
//! use federation_testkit::{ControlPlanes, Upstream};
//!
//! let planes = ControlPlanes::builder()
//!     .clusters(3)
//!     .upstream_crds(&[Upstream::Skupper])
//!     .start()
//!     .await?;
//! let sites = ["central", "east", "west"]
//!     .iter()
//!     .zip(planes.clusters())
//!     .map(|(name, c)| SimulatedSite { cluster: (*name).to_owned(), client: c.client() })
//!     .collect();
//! let double = SkupperControllerDouble::spawn(sites);
//! // ... write Sites, Links, ... and watch their status; dropping `double` stops it.
//! drop(double);
//! # Ok(())
//! # }
//! ```
//!
//! # Rules
//! Conditions follow upstream's `Status.SetCondition` and `setReady`
//! (`pkg/apis/skupper/v2alpha1/types.go`): a true condition has reason `Ready` and message
//! `OK`, a false one reason `Pending` or `Error`; `Ready` is the first required condition that
//! is not true (else true), and `status.status`/`status.message` mirror it;
//! `lastTransitionTime` moves only when a condition's status changes; `observedGeneration` is
//! the object's generation.
//!
//! - **Site** (`internal/kube/site/site.go`: `setDefaultIssuerInStatus`, `SetConfigured`,
//!   `SetRunning`, `SetEndpoints`): `status.defaultIssuer` is `spec.defaultIssuer` or
//!   `skupper-site-ca`; Configured and Running are true (the double pretends the router pods
//!   run); when `spec.linkAccess` is set and not `none`, Resolved is true and
//!   `status.endpoints` lists, per router group (`skupper-router`, plus `skupper-router-2` when
//!   `spec.ha`), `inter-router` on port 55671 and `edge` on port 45671 with host
//!   `<group>.<namespace>.<cluster>.sim`. Ready needs Configured, Running and (with link
//!   access) Resolved (`Site.requiredConditions`).
//! - **Certificate** (`internal/kube/certificates/mgr.go`, `internal/certs/certs.go`): when
//!   `spec.ca` is the default issuer of the namespace's Site, a Secret of the same name is
//!   created (type `kubernetes.io/tls`, keys `tls.crt`, `tls.key`, `ca.crt`: a certificate for
//!   `spec.subject` issued by the cluster's site CA), annotated
//!   `internal.skupper.io/controlled` and owned by the Certificate, and **not labelled**; once
//!   it exists the Certificate gets condition Ready true (`Certificate.SetReady`). Otherwise
//!   Ready is false with `CA "<ns>/<ca>" not found`; a Secret of that name the controller does
//!   not control gives `Secret exists but is not controlled by skupper`. When the Certificate
//!   is deleted, its Secret is deleted too (`certificateDeleted`).
//! - **Link** (`site.go`: `link`, `missingTlsCredentialsErr`, `updateLinkOperationalCondition`;
//!   `Link.SetConfigured`, `Link.SetOperational`): Configured is true when a Site exists in the
//!   namespace and the Secret named by `spec.tlsCredentials` exists (else an error: `No active
//!   site in namespace`, `TLS credentials secret "<name>" not found`). Operational is true only
//!   when, in addition, the dialed endpoint (`edge` for an edge site, else `inter-router`, else
//!   the first) names a simulated cluster that answers, whose Site in that namespace is Ready
//!   and still lists that host and port (removing link access drops the router listener, and
//!   with it the links), and whose CA issued the `ca.crt` of the credentials (a TLS handshake
//!   would fail otherwise). Then `remoteSiteName` and `remoteSiteId` name the remote Site.
//!   Pausing or killing the acceptor's API server makes the Links to it non-operational.
//! - **Connector / Listener** (`internal/kube/site/binding_status.go`, `Connector`/`Listener`
//!   `SetConfigured`, `SetHasMatchingListener`, `SetHasMatchingConnector`): Configured is true
//!   when a Site exists in the namespace (else `No active site`); a Connector has
//!   `hasMatchingListener` and condition Matched true when a Listener with the same routing key
//!   exists in any simulated cluster that answers (else Matched false, `No matching
//!   listeners`), and the reverse for a Listener (`hasMatchingConnector`; the Listener's
//!   condition is Matched, not Operational). Ready needs Configured and Matched.
//! - **AccessGrant** (`internal/kube/grants/grants.go`: `checkGrant`, `claimUrl`; `SetProcessed`,
//!   `SetResolved`): `status.url` is `https://grants.<cluster>.sim/<namespace>/<name>`,
//!   `status.code` is `spec.code` or 24 random characters, `status.ca` the cluster CA's PEM,
//!   `status.expirationTime` now plus `spec.expirationWindow` (ten minutes when unset), all
//!   set once and kept; Processed (false on an unparsable window), Resolved and Ready.
//! - **AccessToken** (`internal/kube/controller/controller.go` `checkAccessToken`,
//!   `grants/redeem.go`, `grants.go` `checkAndUpdateAccessToken`, `grants/tokens.go`): a token
//!   not yet redeemed, in a namespace with a Site, is redeemed at the cluster its URL names. The
//!   simulated grant server refuses like upstream's (`No such claim` for a missing or expired
//!   grant, `No such access granted` once `redemptionsAllowed` (0 counts as 1) are used,
//!   `Redemption of access token refused` for a wrong code, errors when the granting
//!   namespace has no Site, the Site is an edge site or has no endpoints); accepted, it counts
//!   the redemption in the grant's status, then the double creates a Secret named after the
//!   token (credentials issued by the granting cluster's CA for the local Site's UID) and one
//!   Link per router group of the granting Site, named `<token>` for one group and
//!   `<token>-1`, `<token>-2` for HA (`NewCertToken`), with `spec.cost` from `linkCost`, all
//!   owned by the local Site; the token gets `redeemed: true` and Redeemed true
//!   (`SetRedeemed`). A refusal goes into the token's status (Redeemed false, `status: Error`)
//!   and is retried every round, as upstream retries on every event.
//!
//! Status is written with a merge patch of the status subresource, only the keys that change,
//! and only when something changes, so a converged network sees no writes from the double.
//!
//! # Faults
//! [`SkupperControllerDouble::set_resolved`] takes the advertised addresses away from a
//! cluster's router access: its Sites report no endpoints and Resolved pending (not Ready),
//! while Links already made to it stay operational, since the router still listens.
//!
//! Each cluster is polled by its own task, every request under a timeout (3 s for a read, 2 s
//! for a write), so a paused or killed API server stalls only its own task. A cluster whose last
//! read failed or timed out, or that was not read for 10 s, counts as not answering for the
//! other clusters' rules: links to it turn non-operational, its connectors and listeners stop
//! matching, its grant server refuses.
//!
//! # Differences from upstream
//! No router configuration, pods, Services, RouterAccess or SecuredAccess objects are written,
//! no `skupper-site-ca` Secret (the CA lives in memory, one per cluster), no network status
//! (`sitesInNetwork`, `network`), no owner-reference garbage collection (no controller manager
//! runs), and matching does not model network partitions: any answering cluster counts.

#[cfg(test)]
mod grant_tests;
mod grants;
mod model;
mod pki;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use model::{Action, Kind, Redemption, SecretInfo, Snapshot, World};
use pki::ClusterCa;

/// Pause between two polls of one cluster.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Time budget of reading one cluster; a cluster whose last read failed does not answer.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Time budget of one write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A cluster not read successfully for this long does not answer either (its task may be
/// stuck in writes that time out one after the other).
const STALE_AFTER: Duration = Duration::from_secs(10);
/// Field manager of the double's writes.
const FIELD_MANAGER: &str = "skupper-controller-double";
const API_VERSION: &str = "skupper.io/v2alpha1";

/// One simulated cluster the double acts in.
#[derive(Clone)]
pub struct SimulatedSite {
    /// The cluster's name: what endpoint hosts and grant URLs name (use the `MemberCluster`
    /// name, so hosts read naturally).
    pub cluster: String,
    /// A client of the cluster, allowed to read and write Skupper objects and Secrets.
    pub client: Client,
}

impl std::fmt::Debug for SimulatedSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedSite")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// The running double: one polling task per cluster, stopped when this is dropped.
#[derive(Debug)]
pub struct SkupperControllerDouble {
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

struct View {
    /// When the last successful read finished.
    at: Instant,
    /// What it read; `None` once a later read failed.
    snapshot: Option<Arc<Snapshot>>,
}

struct Shared {
    clients: BTreeMap<String, Client>,
    cas: Mutex<BTreeMap<String, Arc<ClusterCa>>>,
    views: Mutex<BTreeMap<String, View>>,
    unresolved: Mutex<std::collections::BTreeSet<String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl SkupperControllerDouble {
    /// Starts polling (every ~200 ms) the given clusters and acting like Skupper's controller in
    /// each. Must be called within a Tokio runtime.
    pub fn spawn(sites: Vec<SimulatedSite>) -> Self {
        let mut cas = BTreeMap::new();
        for site in &sites {
            match ClusterCa::generate(&site.cluster) {
                Ok(ca) => {
                    cas.insert(site.cluster.clone(), Arc::new(ca));
                }
                // Certificates in that cluster then stay not ready, with the reason.
                Err(e) => warn!(cluster = %site.cluster, error = %e, "could not generate site CA"),
            }
        }
        let shared = Arc::new(Shared {
            clients: sites
                .iter()
                .map(|s| (s.cluster.clone(), s.client.clone()))
                .collect(),
            cas: Mutex::new(cas),
            views: Mutex::new(BTreeMap::new()),
            unresolved: Mutex::new(std::collections::BTreeSet::new()),
        });
        let tasks = sites
            .into_iter()
            .map(|s| tokio::spawn(run(shared.clone(), s.cluster, s.client)))
            .collect();
        Self { tasks, shared }
    }

    /// A fault: the site CA of `cluster` is replaced by a new one, as when its
    /// `skupper-site-ca` Secret is rotated. Credentials issued by the old CA no longer pass
    /// the TLS handshake with that cluster's routers, so Links using them stop being
    /// operational; grants report the new CA.
    pub fn rotate_ca(&self, cluster: &str) -> Result<(), String> {
        let ca = ClusterCa::generate(cluster).map_err(|e| e.to_string())?;
        self.shared
            .cas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cluster.to_owned(), Arc::new(ca));
        Ok(())
    }

    /// A fault: the router access of every Site in `cluster` loses (`false`) or regains
    /// (`true`) its addresses. While lost, those Sites report no `status.endpoints` and
    /// Resolved pending, as upstream does while the router's Service has no address (a
    /// LoadBalancer waiting for its IP, a router pod restarting), and Links to them stop
    /// being operational.
    pub fn set_resolved(&self, cluster: &str, resolved: bool) {
        let mut unresolved = self
            .shared
            .unresolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if resolved {
            unresolved.remove(cluster);
        } else {
            unresolved.insert(cluster.to_owned());
        }
    }
}

impl Drop for SkupperControllerDouble {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Shared {
    fn ca(&self, cluster: &str) -> Option<Arc<ClusterCa>> {
        self.cas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cluster)
            .cloned()
    }

    fn store(&self, cluster: &str, snapshot: Arc<Snapshot>) {
        let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        views.insert(
            cluster.to_owned(),
            View {
                at: Instant::now(),
                snapshot: Some(snapshot),
            },
        );
    }

    fn failed(&self, cluster: &str) {
        let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(view) = views.get_mut(cluster) {
            view.snapshot = None;
        }
    }

    fn world(&self) -> World {
        let views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        World {
            unresolved: self
                .unresolved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            clusters: self
                .clients
                .keys()
                .map(|c| {
                    let fresh = views
                        .get(c)
                        .filter(|v| v.at.elapsed() <= STALE_AFTER)
                        .and_then(|v| v.snapshot.clone());
                    (c.clone(), fresh)
                })
                .collect(),
            cas: self
                .cas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(c, ca)| (c.clone(), ca.pem().to_owned()))
                .collect(),
        }
    }
}

async fn run(shared: Arc<Shared>, cluster: String, client: Client) {
    let mut fresh_code = || {
        std::iter::repeat_with(fastrand::alphanumeric)
            .take(24)
            .collect::<String>()
    };
    loop {
        match tokio::time::timeout(READ_TIMEOUT, read(&client)).await {
            Ok(Ok(snapshot)) => {
                shared.store(&cluster, Arc::new(snapshot));
                let actions =
                    rules::plan(&cluster, &shared.world(), Timestamp::now(), &mut fresh_code);
                for action in actions {
                    execute(&shared, &cluster, &client, action).await;
                }
            }
            Ok(Err(e)) => {
                debug!(%cluster, error = %e, "skupper double: read failed");
                shared.failed(&cluster);
            }
            Err(_) => {
                debug!(%cluster, "skupper double: read timed out");
                shared.failed(&cluster);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn resource(kind: Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("skupper.io", "v2alpha1", kind.name()),
        kind.plural(),
    )
}

async fn read(client: &Client) -> Result<Snapshot, kube::Error> {
    let params = ListParams::default();
    let kinds = futures::future::try_join_all(Kind::ALL.map(|kind| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(kind));
        let params = &params;
        async move {
            let items = api.list(params).await?.items;
            let values = items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect::<Vec<Value>>();
            Ok::<_, kube::Error>((kind, values))
        }
    }));
    let secret_api = Api::<Secret>::all(client.clone());
    let secrets = secret_api.list(&params);
    let (objects, secrets) = tokio::try_join!(kinds, secrets)?;
    Ok(Snapshot {
        objects: objects.into_iter().collect(),
        secrets: secrets.items.iter().map(secret_info).collect(),
    })
}

fn secret_info(s: &Secret) -> SecretInfo {
    SecretInfo {
        namespace: s.namespace().unwrap_or_default(),
        name: s.name_any(),
        ca_crt: s
            .data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned()),
        controlled: s.annotations().contains_key(model::CONTROLLED_ANNOTATION),
        certificate_owner: s
            .owner_references()
            .iter()
            .find(|r| r.kind == "Certificate")
            .map(|r| r.name.clone()),
    }
}

/// HTTP codes that mean a write has nothing left to do: the object was deleted meanwhile
/// (404), or, for a create, it exists already (409).
const GONE: &[u16] = &[404];
const GONE_OR_EXISTS: &[u16] = &[404, 409];

/// Runs `request` under the write timeout; the `done` codes are not errors.
async fn write<T>(
    request: impl Future<Output = Result<T, kube::Error>>,
    done: &[u16],
) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(s))) if done.contains(&s.code) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {WRITE_TIMEOUT:?}")),
    }
}

/// Merge-patches the status subresource.
async fn patch_status(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    patch: Value,
) -> Result<(), String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource(kind));
    let body = json!({"status": patch});
    write(
        api.patch_status(name, &patch_params(), &Patch::Merge(&body)),
        GONE,
    )
    .await
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

async fn execute(shared: &Shared, cluster: &str, client: &Client, action: Action) {
    let result = match action {
        Action::PatchStatus {
            kind,
            namespace,
            name,
            patch,
        } => patch_status(client, kind, &namespace, &name, patch)
            .await
            .map_err(|e| format!("patch status of {} {namespace}/{name}: {e}", kind.name())),
        Action::IssueCertificateSecret {
            namespace,
            name,
            subject,
            certificate_uid,
        } => {
            issue_certificate_secret(
                shared,
                cluster,
                client,
                &namespace,
                &name,
                &subject,
                &certificate_uid,
            )
            .await
        }
        Action::DeleteSecret { namespace, name } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            write(api.delete(&name, &DeleteParams::default()), GONE)
                .await
                .map_err(|e| format!("delete Secret {namespace}/{name}: {e}"))
        }
        Action::Redeem(r) => {
            let outcome = redeem(shared, client, &r).await;
            let token = &r.token;
            let result = match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(e.as_str()),
            };
            let desired = grants::token_status(token, result);
            let Some(patch) = model::status_patch(&token["status"], desired, Timestamp::now())
            else {
                return;
            };
            let (namespace, name) = (model::namespace(token), model::name(token));
            patch_status(client, Kind::AccessToken, namespace, name, patch)
                .await
                .map_err(|e| format!("patch status of AccessToken {namespace}/{name}: {e}"))
        }
    };
    if let Err(error) = result {
        debug!(%cluster, %error, "skupper double: write failed");
    }
}

async fn issue_certificate_secret(
    shared: &Shared,
    cluster: &str,
    client: &Client,
    namespace: &str,
    name: &str,
    subject: &str,
    certificate_uid: &str,
) -> Result<(), String> {
    let ca = shared
        .ca(cluster)
        .ok_or_else(|| format!("no site CA for {cluster}"))?;
    let issued = ca.issue(subject).map_err(|e| e.to_string())?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            annotations: Some(
                [
                    (model::CONTROLLED_ANNOTATION.to_owned(), "true".to_owned()),
                    (model::CERTIFICATE_ANNOTATION.to_owned(), "true".to_owned()),
                ]
                .into(),
            ),
            owner_references: Some(vec![owner("Certificate", name, certificate_uid)]),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(tls_data(&issued, ca.pem())),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    write(api.create(&post_params(), &secret), GONE_OR_EXISTS)
        .await
        .map_err(|e| format!("create Secret {namespace}/{name}: {e}"))
}

fn owner(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        ..OwnerReference::default()
    }
}

fn tls_data(issued: &pki::Issued, ca_pem: &str) -> BTreeMap<String, ByteString> {
    [
        ("tls.crt", &issued.cert_pem),
        ("tls.key", &issued.key_pem),
        ("ca.crt", &ca_pem.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.clone().into_bytes())))
    .collect()
}

/// Redeems a token the rules accepted: counts the redemption at the grant (with the grant's
/// resourceVersion as precondition, so a stale view cannot redeem twice), then writes the
/// Secret and Links. Errors read like upstream's.
async fn redeem(shared: &Shared, client: &Client, r: &Redemption) -> Result<(), String> {
    let remote = shared.clients.get(&r.granting_cluster).ok_or_else(|| {
        format!(
            "Controller got error: {} is not simulated",
            r.granting_cluster
        )
    })?;
    let grants: Api<DynamicObject> = Api::namespaced_with(
        remote.clone(),
        &r.grant_namespace,
        &resource(Kind::AccessGrant),
    );
    let count = json!({"metadata": {"resourceVersion": r.grant_resource_version},
                       "status": {"redemptions": r.redemptions}});
    match tokio::time::timeout(
        WRITE_TIMEOUT,
        grants.patch_status(&r.grant_name, &patch_params(), &Patch::Merge(&count)),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("Controller got error: {e}")),
        Err(_) => return Err("Controller got error: grant server did not answer".to_owned()),
    }
    let ca = shared
        .ca(&r.granting_cluster)
        .ok_or_else(|| "Controller got error: grant server has no CA".to_owned())?;
    let issued = ca
        .issue(&r.site_uid)
        .map_err(|e| format!("Controller got error: {e}"))?;
    let namespace = model::namespace(&r.token);
    let token_name = model::name(&r.token);
    let site = owner("Site", &r.site_name, &r.site_uid);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(token_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            owner_references: Some(vec![site.clone()]),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(tls_data(&issued, ca.pem())),
        ..Secret::default()
    };
    let create = |e: kube::Error| e.to_string();
    tokio::time::timeout(
        WRITE_TIMEOUT,
        Api::<Secret>::namespaced(client.clone(), namespace).create(&post_params(), &secret),
    )
    .await
    .map_err(|_| "no answer".to_owned())
    .and_then(|r| r.map_err(create))
    .map_err(|e| format!("Controller could not create received secret: {e}"))?;
    let links: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource(Kind::Link));
    for (name, endpoints) in &r.links {
        let mut spec = json!({"endpoints": endpoints, "tlsCredentials": token_name});
        if let Some(cost) = r.cost {
            spec["cost"] = cost.into();
        }
        let mut link = DynamicObject::new(name, &resource(Kind::Link))
            .within(namespace)
            .data(json!({"spec": spec}));
        link.metadata.owner_references = Some(vec![site.clone()]);
        tokio::time::timeout(WRITE_TIMEOUT, links.create(&post_params(), &link))
            .await
            .map_err(|_| "no answer".to_owned())
            .and_then(|r| r.map_err(create))
            .map_err(|e| format!("Controller could not create received link: {e}"))?;
    }
    Ok(())
}

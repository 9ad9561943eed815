//! `fedctl join` and `fedctl unjoin`: registering a member on the hub with an identity that
//! may do exactly what the network's backend needs there, and removing all of it again.
//!
//! # What join writes
//! In the member (with the caller's admin credentials, which never leave the machine):
//! - the namespace `fednet-system` (if missing) and in it a ServiceAccount, annotated with
//!   the namespaces it was granted access in;
//! - in each namespace the backend works in, a Role with the backend's
//!   [`member_access`](federation_core::backend::NetworkBackend::member_access) rules and a
//!   RoleBinding to the ServiceAccount. Nothing cluster-wide: no ClusterRole, no Secret
//!   access outside those namespaces.
//!
//! Then a token for the ServiceAccount (TokenRequest, with the lifetime asked for: the API
//! server may shorten it, and the expiry it grants is what is reported), and on the hub a
//! Secret holding a self-contained kubeconfig (server, CA, token) and the `MemberCluster`.
//! Before the hub is written, the new identity is proven with `SelfSubjectAccessReview`s:
//! every needed verb allowed, and Secrets elsewhere, cluster-wide lists and RBAC or
//! namespace writes denied. A wrong answer stops join before anything reaches the hub.
//!
//! # Rotation
//! Join is idempotent: running it again mints a new token and replaces the Secret; the
//! operator picks the new kubeconfig up on its next use. The operator reports a member whose
//! token is about to expire (condition `CredentialsExpiring` on the `MemberCluster`), and
//! `fedctl doctor` says so too.

mod discover;
mod unjoin;

pub use discover::{Cidrs, is_dns_label};
pub use unjoin::{UnjoinOptions, UnjoinReport, unjoin};

use crate::access::{AccessResult, forbidden_checks, required_checks, review};
use base64::Engine as _;
use federation_core::api::{BackendKind, MemberCluster};
use federation_core::backend::{AccessRule, AccessScope};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// Field manager of everything fedctl writes.
pub const FIELD_MANAGER: &str = "fedctl";
/// Label on everything join creates, so unjoin removes exactly that.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "fedctl");
/// Label naming the member an object was created for.
pub const JOINED_AS: &str = "fednet.io/joined-as";
/// Annotation on the member's ServiceAccount: the namespaces it was granted access in.
pub const NAMESPACES_ANNOTATION: &str = "fednet.io/access-namespaces";
/// How many times the access reviews are asked before a wrong answer is believed.
const ACCESS_REVIEW_ATTEMPTS: u32 = 10;
/// The member namespace holding fednet's identity.
pub const IDENTITY_NAMESPACE: &str = "fednet-system";

/// What went wrong joining or unjoining, with what to do next.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// A kubeconfig or context could not be used.
    #[error("{which}: {message} (check --kubeconfig, --context, --member-context or $KUBECONFIG)")]
    Config {
        /// Hub or member.
        which: &'static str,
        /// What kube said.
        message: String,
    },
    /// A request failed.
    #[error("{what}: {message}")]
    Request {
        /// The request, in words.
        what: String,
        /// Why.
        message: String,
    },
    /// Input that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Namespaces the network needs do not exist in the member.
    #[error(
        "namespaces {missing:?} do not exist in member {member}; create them first (kubectl --context {member} create namespace NAME), fedctl does not create application namespaces"
    )]
    NamespacesMissing {
        /// Member.
        member: String,
        /// Missing namespaces.
        missing: Vec<String>,
    },
    /// The member's CIDRs could not be read and were not given.
    #[error("the member's CIDRs are not known; pass {missing}")]
    CidrsUnknown {
        /// Which flags to pass.
        missing: String,
    },
    /// Something of the same name exists that fedctl did not create.
    #[error("{what} exists and was not created by fedctl; not touching it ({fix})")]
    NotOurs {
        /// The object.
        what: String,
        /// What to do.
        fix: String,
    },
    /// The new identity may do more or less than least privilege wants.
    #[error(
        "the member identity's permissions are not as expected ({wrong} wrong answers, see the table); nothing was written on the hub. Undo the member side with `fedctl unjoin`"
    )]
    AccessMismatch {
        /// How many answers were wrong.
        wrong: usize,
        /// Every answer.
        results: Vec<AccessResult>,
    },
    /// Unjoin is waiting for the operator to clean the member up.
    #[error("{0}")]
    StillInUse(String),
}

fn request(what: impl Into<String>) -> impl FnOnce(kube::Error) -> JoinError {
    let what = what.into();
    move |e| JoinError::Request {
        what,
        message: federation_core::cluster::describe_client_error(&e),
    }
}

/// How to reach a cluster: a kubeconfig (else the default ones) and a context.
#[derive(Clone, Debug, Default)]
pub struct ClusterAccess {
    /// Kubeconfig file; `$KUBECONFIG` or `~/.kube/config` when `None`.
    pub kubeconfig: Option<PathBuf>,
    /// Context; the kubeconfig's current one when `None`.
    pub context: Option<String>,
}

/// A member reached with the caller's credentials, and what a kubeconfig for another
/// identity needs to reach it the same way.
pub struct MemberConnection {
    /// Client with the caller's credentials.
    pub client: Client,
    /// API server URL.
    pub server: String,
    /// The CA bundle the caller trusts for it, PEM (none: the system's roots).
    pub ca_pem: Option<String>,
}

/// Connects to a member with the caller's kubeconfig.
pub async fn connect_member(access: &ClusterAccess) -> Result<MemberConnection, JoinError> {
    let config_error = |e: &dyn std::fmt::Display| JoinError::Config {
        which: "member",
        message: e.to_string(),
    };
    let options = KubeConfigOptions {
        context: access.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kubeconfig = match &access.kubeconfig {
        Some(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || Kubeconfig::read_from(path))
                .await
                .map_err(|e| config_error(&e))?
                .map_err(|e| config_error(&e))?
        }
        None => tokio::task::spawn_blocking(Kubeconfig::read)
            .await
            .map_err(|e| config_error(&e))?
            .map_err(|e| config_error(&e))?,
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| config_error(&e))?;
    if config.accept_invalid_certs {
        return Err(JoinError::Invalid(
            "the member context skips TLS verification; fednet needs the member's CA to write a verified kubeconfig".into(),
        ));
    }
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    if !server.starts_with("https://") {
        return Err(JoinError::Invalid(format!(
            "the member's server {server} is not https://; fednet sends credentials only over verified TLS"
        )));
    }
    let ca_pem = config.root_cert.as_ref().map(|certs| {
        certs
            .iter()
            .map(|der| pem("CERTIFICATE", der))
            .collect::<String>()
    });
    let client = Client::try_from(config).map_err(|e| config_error(&e))?;
    Ok(MemberConnection {
        client,
        server,
        ca_pem,
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// What `fedctl join` is asked to do.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// `MemberCluster` name on the hub.
    pub member: String,
    /// The backend whose access to grant.
    pub backend: BackendKind,
    /// Namespaces the member's networks span.
    pub namespaces: Vec<String>,
    /// `--cluster-id`.
    pub cluster_id: Option<String>,
    /// `--pod-cidr`.
    pub pod_cidrs: Vec<String>,
    /// `--service-cidr`.
    pub service_cidrs: Vec<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--zone`.
    pub zone: Option<String>,
    /// Labels for the `MemberCluster`.
    pub labels: Vec<(String, String)>,
    /// Requested token lifetime.
    pub token_ttl: Duration,
    /// Hub namespace of the kubeconfig Secret.
    pub secret_namespace: String,
    /// ServiceAccount name in the member.
    pub service_account: String,
    /// The member's API server URL as the operator reaches it, when it differs from the
    /// one in the caller's kubeconfig (a private endpoint, say).
    pub server: Option<String>,
}

/// What join did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JoinReport {
    /// The member.
    pub member: String,
    /// Its cluster id.
    pub cluster_id: String,
    /// Pod CIDRs recorded.
    pub pod_cidrs: Vec<String>,
    /// Service CIDRs recorded.
    pub service_cidrs: Vec<String>,
    /// Where the CIDRs came from.
    pub cidr_sources: Vec<String>,
    /// When the token expires, as the API server granted it (RFC 3339).
    pub token_expires: String,
    /// The access review answers.
    pub access: Vec<AccessResult>,
    /// The hub Secret, `namespace/name`.
    pub secret: String,
}

/// The Skupper backend's rules, or those of another backend this build knows.
pub fn backend_access(kind: BackendKind) -> Result<Vec<AccessRule>, JoinError> {
    match kind {
        BackendKind::Skupper => Ok(federation_skupper::member_access()),
        BackendKind::Submariner => Ok(federation_submariner::member_access()),
        other => Err(JoinError::Invalid(format!(
            "fedctl join does not know the {other} backend's member access yet"
        ))),
    }
}

/// The Role name for a backend's access.
pub fn role_name(kind: BackendKind) -> String {
    format!("fednet-member-{}", kind.to_string().to_lowercase())
}

/// Joins a member: see the module docs. `progress` is told each step as it starts.
pub async fn join(
    hub: &Client,
    member: &MemberConnection,
    options: &JoinOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<JoinReport, JoinError> {
    if !is_dns_label(&options.member) {
        return Err(JoinError::Invalid(format!(
            "member name {:?} must be a DNS-1123 label",
            options.member
        )));
    }
    if options.namespaces.is_empty() {
        return Err(JoinError::Invalid(
            "name the namespaces the member's networks span with --namespace".into(),
        ));
    }
    let rules = backend_access(options.backend)?;
    let namespaces: BTreeSet<String> = options.namespaces.iter().cloned().collect();

    progress("checking the hub");
    check_hub(hub, options).await?;

    progress("reading the member's namespaces, CIDRs and cluster id");
    let missing = missing_namespaces(&member.client, &namespaces).await?;
    if !missing.is_empty() {
        return Err(JoinError::NamespacesMissing {
            member: options.member.clone(),
            missing,
        });
    }
    let cidrs = discover::cidrs(&member.client, &options.pod_cidrs, &options.service_cidrs).await?;
    let cluster_id = discover::cluster_id(
        &member.client,
        options.cluster_id.as_deref(),
        &options.member,
    )
    .await?;

    progress("creating the member's ServiceAccount and namespaced Roles");
    let previous = grant_access(&member.client, options, &rules, &namespaces).await?;
    revoke_stale_roles(&member.client, options, &previous, &rules, &namespaces).await?;

    progress("minting a token");
    let (token, expires) = mint_token(&member.client, options).await?;
    let server = options.server.as_deref().unwrap_or(&member.server);
    if !server.starts_with("https://") {
        return Err(JoinError::Invalid(format!(
            "--member-server {server} is not https://; fednet sends credentials only over verified TLS"
        )));
    }
    let kubeconfig = kubeconfig_yaml(
        server,
        member.ca_pem.as_deref(),
        &options.member,
        &options.service_account,
        &token,
    )?;
    let as_member = federation_core::cluster::client_from_kubeconfig(&kubeconfig)
        .await
        .map_err(|e| JoinError::Invalid(format!("the minted kubeconfig is unusable: {e}")))?;

    progress("proving the identity's permissions (SelfSubjectAccessReview)");
    let mut checks = required_checks(&rules, &namespaces);
    checks.extend(forbidden_checks(&rules, &namespaces));
    // The API server's authorizer learns new RoleBindings through its own watch: give it a
    // few seconds before calling an answer wrong.
    let mut attempts = 0;
    let access = loop {
        let access = review(&as_member, &checks).await;
        attempts += 1;
        if access.iter().all(AccessResult::as_expected) || attempts >= ACCESS_REVIEW_ATTEMPTS {
            break access;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let wrong = access.iter().filter(|r| !r.as_expected()).count();
    if wrong > 0 {
        return Err(JoinError::AccessMismatch {
            wrong,
            results: access,
        });
    }

    progress("writing the kubeconfig Secret and the MemberCluster on the hub");
    let secret_name = format!("{}-kubeconfig", options.member);
    write_hub(hub, options, &secret_name, &kubeconfig, &cluster_id, &cidrs).await?;
    Ok(JoinReport {
        member: options.member.clone(),
        cluster_id,
        pod_cidrs: cidrs.pods,
        service_cidrs: cidrs.services,
        cidr_sources: cidrs.sources,
        token_expires: expires,
        access,
        secret: format!("{}/{secret_name}", options.secret_namespace),
    })
}

fn labels(member: &str) -> serde_json::Value {
    json!({MANAGED_BY.0: MANAGED_BY.1, JOINED_AS: member})
}

/// The namespaces a ServiceAccount join made was granted access in (its annotation).
fn granted_namespaces(sa: &ServiceAccount) -> BTreeSet<String> {
    sa.annotations()
        .get(NAMESPACES_ANNOTATION)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn made_by_fedctl(labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
}

/// Refuses to overwrite a `MemberCluster` or Secret fedctl did not create.
async fn check_hub(hub: &Client, options: &JoinOptions) -> Result<(), JoinError> {
    let ns_api: Api<Namespace> = Api::all(hub.clone());
    if ns_api
        .get_opt(&options.secret_namespace)
        .await
        .map_err(request(format!(
            "reading namespace {} on the hub",
            options.secret_namespace
        )))?
        .is_none()
    {
        return Err(JoinError::Invalid(format!(
            "namespace {} does not exist on the hub: install the operator first (it lives there), or pass --secret-namespace",
            options.secret_namespace
        )));
    }
    let members: Api<MemberCluster> = Api::all(hub.clone());
    if let Some(existing) = members
        .get_opt(&options.member)
        .await
        .map_err(request(format!("reading MemberCluster {}", options.member)))?
        && !made_by_fedctl(existing.labels())
    {
        return Err(JoinError::NotOurs {
            what: format!("MemberCluster {}", options.member),
            fix: "choose another member name, or delete it first".into(),
        });
    }
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), &options.secret_namespace);
    let name = format!("{}-kubeconfig", options.member);
    if let Some(existing) = secrets
        .get_opt(&name)
        .await
        .map_err(request(format!("reading Secret {name} on the hub")))?
        && !made_by_fedctl(existing.labels())
    {
        return Err(JoinError::NotOurs {
            what: format!("Secret {}/{name} on the hub", options.secret_namespace),
            fix: "choose another member name, or delete it first".into(),
        });
    }
    Ok(())
}

async fn missing_namespaces(
    client: &Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<String>, JoinError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut missing = Vec::new();
    for ns in namespaces {
        if api
            .get_opt(ns)
            .await
            .map_err(request(format!("reading namespace {ns} in the member")))?
            .is_none()
        {
            missing.push(ns.clone());
        }
    }
    Ok(missing)
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Creates (or updates) the identity and its Roles; returns the namespaces it was granted
/// access in before, from the ServiceAccount's annotation.
async fn grant_access(
    client: &Client,
    options: &JoinOptions,
    rules: &[AccessRule],
    namespaces: &BTreeSet<String>,
) -> Result<BTreeSet<String>, JoinError> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    if ns_api
        .get_opt(IDENTITY_NAMESPACE)
        .await
        .map_err(request(format!("reading namespace {IDENTITY_NAMESPACE}")))?
        .is_none()
    {
        ns_api
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": IDENTITY_NAMESPACE, "labels": labels(&options.member)}
                }))
                .map_err(|e| JoinError::Invalid(e.to_string()))?,
            )
            .await
            .map_err(request(format!("creating namespace {IDENTITY_NAMESPACE}")))?;
    }
    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), IDENTITY_NAMESPACE);
    let previous: BTreeSet<String> =
        match sa_api
            .get_opt(&options.service_account)
            .await
            .map_err(request(format!(
                "reading ServiceAccount {}",
                options.service_account
            )))? {
            Some(sa) if !made_by_fedctl(sa.labels()) => {
                return Err(JoinError::NotOurs {
                    what: format!(
                        "ServiceAccount {IDENTITY_NAMESPACE}/{} in the member",
                        options.service_account
                    ),
                    fix: "pass --service-account with another name".into(),
                });
            }
            Some(sa) => granted_namespaces(&sa),
            None => BTreeSet::new(),
        };
    let granted: BTreeSet<String> = rules
        .iter()
        .flat_map(|r| crate::access::rule_namespaces(r, namespaces))
        .chain(previous.iter().cloned())
        .collect();
    let sa = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {
            "name": options.service_account, "namespace": IDENTITY_NAMESPACE,
            "labels": labels(&options.member),
            // Every namespace granted so far: a later join or unjoin finds the Roles here.
            "annotations": {NAMESPACES_ANNOTATION: granted.iter().cloned().collect::<Vec<_>>().join(",")}
        }
    });
    sa_api
        .patch(
            &options.service_account,
            &apply_params(),
            &Patch::Apply(&sa),
        )
        .await
        .map_err(request("applying the member's ServiceAccount"))?;
    let role = role_name(options.backend);
    for ns in rules
        .iter()
        .flat_map(|r| crate::access::rule_namespaces(r, namespaces))
        .collect::<BTreeSet<_>>()
    {
        let ns_rules: Vec<serde_json::Value> = rules
            .iter()
            .filter(|r| match &r.scope {
                AccessScope::NetworkNamespaces => namespaces.contains(&ns),
                AccessScope::Namespace(n) => *n == ns,
                AccessScope::Cluster => false,
            })
            .map(rbac_rule)
            .collect();
        let body = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": role, "namespace": ns, "labels": labels(&options.member)},
            "rules": ns_rules,
        });
        Api::<Role>::namespaced(client.clone(), &ns)
            .patch(&role, &apply_params(), &Patch::Apply(&body))
            .await
            .map_err(request(format!("applying Role {ns}/{role}")))?;
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": ns, "labels": labels(&options.member)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": options.service_account, "namespace": IDENTITY_NAMESPACE}],
        });
        Api::<RoleBinding>::namespaced(client.clone(), &ns)
            .patch(&role, &apply_params(), &Patch::Apply(&binding))
            .await
            .map_err(request(format!("applying RoleBinding {ns}/{role}")))?;
    }
    grant_cluster_access(client, options, rules).await?;
    Ok(previous)
}

fn rbac_rule(r: &AccessRule) -> serde_json::Value {
    let mut rule = json!({"apiGroups": [r.api_group], "resources": r.resources, "verbs": r.verbs});
    if !r.resource_names.is_empty() {
        rule["resourceNames"] = json!(r.resource_names);
    }
    rule
}

/// The name of the ClusterRole (and binding) for a backend's cluster-wide rules: per member
/// identity, so unjoining one hub's identity leaves another's alone.
pub fn cluster_role_name(kind: BackendKind, service_account: &str) -> String {
    format!("{}-{service_account}", role_name(kind))
}

/// A ClusterRole and ClusterRoleBinding for the rules a backend needs across the cluster, if
/// it declares any (Skupper does not).
async fn grant_cluster_access(
    client: &Client,
    options: &JoinOptions,
    rules: &[AccessRule],
) -> Result<(), JoinError> {
    let cluster_rules: Vec<serde_json::Value> = rules
        .iter()
        .filter(|r| r.scope == AccessScope::Cluster)
        .map(rbac_rule)
        .collect();
    if cluster_rules.is_empty() {
        return Ok(());
    }
    let name = cluster_role_name(options.backend, &options.service_account);
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels(&options.member)},
        "rules": cluster_rules,
    });
    Api::<ClusterRole>::all(client.clone())
        .patch(&name, &apply_params(), &Patch::Apply(&role))
        .await
        .map_err(request(format!("applying ClusterRole {name}")))?;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": labels(&options.member)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": options.service_account, "namespace": IDENTITY_NAMESPACE}],
    });
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(&name, &apply_params(), &Patch::Apply(&binding))
        .await
        .map_err(request(format!("applying ClusterRoleBinding {name}")))?;
    Ok(())
}

/// Removes the Roles of namespaces a previous join granted and this one does not, and
/// records the namespaces that remain.
async fn revoke_stale_roles(
    client: &Client,
    options: &JoinOptions,
    previous: &BTreeSet<String>,
    rules: &[AccessRule],
    namespaces: &BTreeSet<String>,
) -> Result<(), JoinError> {
    let now: BTreeSet<String> = rules
        .iter()
        .flat_map(|r| crate::access::rule_namespaces(r, namespaces))
        .collect();
    let stale: Vec<&String> = previous.difference(&now).collect();
    if previous == &now {
        return Ok(());
    }
    for ns in &stale {
        unjoin::delete_access_in(client, ns, &role_name(options.backend)).await?;
    }
    let sa = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {
            "name": options.service_account, "namespace": IDENTITY_NAMESPACE,
            "labels": labels(&options.member),
            "annotations": {NAMESPACES_ANNOTATION: now.iter().cloned().collect::<Vec<_>>().join(",")}
        }
    });
    Api::<ServiceAccount>::namespaced(client.clone(), IDENTITY_NAMESPACE)
        .patch(
            &options.service_account,
            &apply_params(),
            &Patch::Apply(&sa),
        )
        .await
        .map_err(request("recording the member's access namespaces"))?;
    Ok(())
}

async fn mint_token(client: &Client, options: &JoinOptions) -> Result<(String, String), JoinError> {
    let request_body = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(
                i64::try_from(options.token_ttl.as_secs()).unwrap_or(i64::MAX),
            ),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let status = Api::<ServiceAccount>::namespaced(client.clone(), IDENTITY_NAMESPACE)
        .create_token_request(
            &options.service_account,
            &PostParams::default(),
            &request_body,
        )
        .await
        .map_err(request(
            "requesting a token for the member's ServiceAccount",
        ))?
        .status
        .ok_or_else(|| JoinError::Invalid("the token request came back without a token".into()))?;
    let token = status
        .token
        .ok_or_else(|| JoinError::Invalid("the token request came back without a token".into()))?;
    let expires = status
        .expiration_timestamp
        .map_or_else(|| "unknown".to_owned(), |t| t.0.to_string());
    Ok((token, expires))
}

/// A self-contained kubeconfig: server, inline CA, token.
fn kubeconfig_yaml(
    server: &str,
    ca_pem: Option<&str>,
    name: &str,
    service_account: &str,
    token: &str,
) -> Result<String, JoinError> {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            base64::engine::general_purpose::STANDARD.encode(ca).into();
    }
    let user = format!("{service_account}@{name}");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    });
    serde_yaml::to_string(&kubeconfig).map_err(|e| JoinError::Invalid(e.to_string()))
}

async fn write_hub(
    hub: &Client,
    options: &JoinOptions,
    secret_name: &str,
    kubeconfig: &str,
    cluster_id: &str,
    cidrs: &Cidrs,
) -> Result<(), JoinError> {
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": options.secret_namespace, "labels": labels(&options.member)},
        "type": "Opaque",
        "data": {"kubeconfig": base64::engine::general_purpose::STANDARD.encode(kubeconfig)},
    });
    Api::<Secret>::namespaced(hub.clone(), &options.secret_namespace)
        .patch(secret_name, &apply_params(), &Patch::Apply(&secret))
        .await
        .map_err(request(format!("writing Secret {secret_name} on the hub")))?;
    let mut member_labels = labels(&options.member);
    for (k, v) in &options.labels {
        member_labels[k] = v.clone().into();
    }
    let mut spec = json!({
        "clusterId": cluster_id,
        "kubeconfigSecretRef": {"namespace": options.secret_namespace, "name": secret_name},
        "network": {"podCidrs": cidrs.pods, "serviceCidrs": cidrs.services},
    });
    if options.region.is_some() || options.zone.is_some() {
        spec["location"] = json!({"region": options.region, "zone": options.zone});
    }
    let body = json!({
        "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
        "metadata": {"name": options.member, "labels": member_labels},
        "spec": spec,
    });
    Api::<MemberCluster>::all(hub.clone())
        .patch(&options.member, &apply_params(), &Patch::Apply(&body))
        .await
        .map_err(request(format!("writing MemberCluster {}", options.member)))?;
    Ok(())
}

/// Parses a lifetime like `720h`, `30d`, `90m` or `3600s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (s, m, h or d), like 720h"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number of seconds, minutes, hours or days"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("3w").is_err());
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let text = pem("CERTIFICATE", &[7u8; 100]);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));
    }
}

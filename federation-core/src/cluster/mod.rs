//! The member registry: kube clients for member clusters, built from the kubeconfig Secrets
//! their `MemberCluster`s reference, and probes of their reachability.
//!
//! Credentials are read on every use and the client is rebuilt only when the Secret's
//! `resourceVersion` changes, so rotating a kubeconfig takes effect on the next reconcile
//! without a restart. A plain registry reads the `MemberCluster` and its Secret from the hub
//! each time; a registry made [`MemberRegistry::watched`] (the operator's) reads both from
//! watch-fed stores instead (one watch per member Secret, selected by name), and carries the
//! [`MemberCache`] of member objects the backends read, so a pass costs no request at all. Kubeconfigs are accepted only when self-contained and
//! verifiable: inline certificate data, TLS verification on, and no file paths, exec or
//! auth-provider plugins (a kubeconfig from a Secret must not make the operator read its own
//! files or run programs), and only `https://` servers without a `proxy-url` (a token must
//! not travel in clear or through a host the Secret names). No secret value appears in any
//! log or error.
//!
//! A member is unhealthy for planning only after repeated failed probes: see
//! [`member_unhealthy`] and the `health` module's rules.

mod credentials;
mod health;
mod kubeconfig;
mod member_cache;
mod probe;
mod secret_watch;

pub use credentials::{expiring, jwt_expiry, record_expiry, token_expiry};
pub use health::{
    FailurePolicy, ProbeStreak, ProbeStreaks, REASON_CREDENTIALS_UNAVAILABLE,
    REASON_INVALID_CREDENTIALS, REASON_PROBE_FAILING, REASON_PROBED, REASON_UNREACHABLE,
    member_silent, member_unhealthy,
};
pub use kubeconfig::{
    KubeconfigProblem, client_from_kubeconfig, client_from_kubeconfig_with_user_agent,
};
pub use member_cache::{CacheFeed, MemberCache, NamedObject, NotCached};
pub use probe::{
    BACKEND_API_GROUPS, FailureKind, Probe, describe_client_error, failure_kind, member_status,
    probe,
};

use crate::api::MemberCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use secret_watch::SecretWatches;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::RwLock;

/// Why a member cannot be reached. Messages name Secrets, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No `MemberCluster` of that name exists on the hub.
    #[error("member {0} has no MemberCluster on the hub")]
    MemberNotFound(String),
    /// The referenced Secret does not exist.
    #[error("kubeconfig Secret {namespace}/{name} of member {member} not found")]
    SecretNotFound {
        /// Member.
        member: String,
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The watch of the kubeconfig Secret has not listed it (yet).
    #[error("kubeconfig Secret {namespace}/{name} of member {member} cannot be read: {reason}")]
    SecretNotSynced {
        /// Member.
        member: String,
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The watch's last error, or that it has not answered.
        reason: String,
    },
    /// The Secret lacks the key.
    #[error("kubeconfig Secret {namespace}/{name} of member {member} has no key {key:?}")]
    SecretKeyMissing {
        /// Member.
        member: String,
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// The kubeconfig cannot be used.
    #[error("kubeconfig of member {member} (Secret {namespace}/{name}) is unusable: {problem}")]
    Kubeconfig {
        /// Member.
        member: String,
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// What is wrong.
        problem: KubeconfigProblem,
    },
    /// Reading from the hub failed.
    #[error("reading {what} from the hub: {source}")]
    Hub {
        /// What was read.
        what: String,
        /// Client error.
        #[source]
        source: kube::Error,
    },
    /// The member's API server did not answer properly.
    #[error("member {member} did not answer: {reason}")]
    Unreachable {
        /// Member.
        member: String,
        /// Why.
        reason: String,
    },
}

struct CachedClient {
    secret_version: String,
    client: Client,
    expires: Option<k8s_openapi::jiff::Timestamp>,
}

/// Clients for member clusters, keyed by member name.
pub struct MemberRegistry {
    hub: Client,
    cache: RwLock<HashMap<String, CachedClient>>,
    user_agent: Option<http::HeaderValue>,
    watched: Option<Watched>,
}

/// What a watched registry reads instead of the hub.
struct Watched {
    members: Store<MemberCluster>,
    secrets: SecretWatches,
    objects: Arc<MemberCache>,
}

impl MemberRegistry {
    /// A registry reading kubeconfig Secrets through `hub`.
    pub fn new(hub: Client) -> Self {
        Self {
            hub,
            cache: RwLock::new(HashMap::new()),
            user_agent: None,
            watched: None,
        }
    }

    /// Reads `MemberCluster`s from `members` (a store the caller keeps fed), kubeconfig
    /// Secrets through watches this registry starts per member, and lends `objects` to the
    /// backends (see [`MemberRegistry::member_cache`]). Must be called within a Tokio runtime
    /// (the Secret watches are tasks; they stop when the registry is dropped).
    #[must_use]
    pub fn watched(mut self, members: Store<MemberCluster>, objects: Arc<MemberCache>) -> Self {
        self.watched = Some(Watched {
            members,
            secrets: SecretWatches::new(self.hub.clone()),
            objects,
        });
        self
    }

    /// The cache of member objects backends read instead of listing, when this registry is
    /// watched.
    pub fn member_cache(&self) -> Option<&MemberCache> {
        self.watched.as_ref().map(|w| w.objects.as_ref())
    }

    /// Member clients built from now on send `user_agent` (for example one naming the
    /// operator replica, so members' audit logs tell replicas apart).
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: http::HeaderValue) -> Self {
        self.user_agent = Some(user_agent);
        self
    }

    /// The hub client.
    pub fn hub(&self) -> &Client {
        &self.hub
    }

    /// A client for `member`, rebuilt when its Secret changed since the last call.
    pub async fn client(&self, member: &MemberCluster) -> Result<Client, ClusterError> {
        let name = member.name_any();
        let r = &member.spec.kubeconfig_secret_ref;
        let not_found = || ClusterError::SecretNotFound {
            member: name.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        };
        let secret = match &self.watched {
            Some(w) => w.secrets.get(&name, &r.namespace, &r.name).await?,
            None => Api::<Secret>::namespaced(self.hub.clone(), &r.namespace)
                .get_opt(&r.name)
                .await
                .map_err(|source| ClusterError::Hub {
                    what: format!("Secret {}/{}", r.namespace, r.name),
                    source,
                })?
                .map(Arc::new),
        }
        .ok_or_else(not_found)?;
        // The version identifies both the Secret's content and which key is used.
        let version = format!(
            "{}/{}/{}",
            secret.uid().unwrap_or_default(),
            secret.resource_version().unwrap_or_default(),
            r.key_or_default()
        );
        if let Some(cached) = self
            .cache
            .read()
            .await
            .get(&name)
            .filter(|c| c.secret_version == version)
        {
            return Ok(cached.client.clone());
        }
        let key = r.key_or_default();
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| ClusterError::SecretKeyMissing {
                member: name.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                key: key.to_owned(),
            })?;
        let text = std::str::from_utf8(&bytes.0).map_err(|_| ClusterError::Kubeconfig {
            member: name.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            problem: KubeconfigProblem::NotUtf8,
        })?;
        let client = client_from_kubeconfig_with_user_agent(text, self.user_agent.as_ref())
            .await
            .map_err(|problem| ClusterError::Kubeconfig {
                member: name.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                problem,
            })?;
        tracing::info!(member = %name, "built client from kubeconfig Secret");
        self.cache.write().await.insert(
            name,
            CachedClient {
                secret_version: version,
                client: client.clone(),
                expires: token_expiry(text),
            },
        );
        Ok(client)
    }

    /// When the token of the member's current client expires, if it has a token with an
    /// expiry (read when the client was built from its Secret).
    pub async fn credential_expiry(&self, member: &str) -> Option<k8s_openapi::jiff::Timestamp> {
        self.cache.read().await.get(member).and_then(|c| c.expires)
    }

    /// A client for the member of this name (reads its `MemberCluster` from the hub, or from
    /// the store of a watched registry).
    pub async fn client_by_name(&self, member: &str) -> Result<Client, ClusterError> {
        if let Some(w) = &self.watched {
            // The controllers start only once this store holds a full list.
            let mc = w
                .members
                .get(&ObjectRef::new(member))
                .ok_or_else(|| ClusterError::MemberNotFound(member.to_owned()))?;
            return self.client(&mc).await;
        }
        let mc = Api::<MemberCluster>::all(self.hub.clone())
            .get_opt(member)
            .await
            .map_err(|source| ClusterError::Hub {
                what: format!("MemberCluster {member}"),
                source,
            })?
            .ok_or_else(|| ClusterError::MemberNotFound(member.to_owned()))?;
        self.client(&mc).await
    }

    /// Forgets the cached client of a member (its Secret or MemberCluster went away), and
    /// stops watching its Secret.
    pub async fn forget(&self, member: &str) {
        self.cache.write().await.remove(member);
        if let Some(w) = &self.watched {
            w.secrets.forget(member);
        }
    }
}

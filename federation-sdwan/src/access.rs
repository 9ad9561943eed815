//! How the backend reaches a network's controller: which adapter, which URL, which token,
//! which CAs to trust.
//!
//! The engine hands the backend only a [`Target`] and, when observing, the network; writes
//! carry object keys that name the network (see [`crate::keys`]). An [`AccessResolver`]
//! turns a network into its [`ControllerAccess`]; the operator's resolver reads the
//! `FederatedNetwork` and its credentials Secret on the hub ([`HubAccessResolver`]), so a
//! rotated token takes effect on the next call.

use async_trait::async_trait;
use federation_core::api::{FederatedNetwork, SdwanAdapter, ServiceRegistrySettings};
use federation_core::backend::{BackendError, Target};
use federation_core::plan::NetworkRef;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Default data key of the credentials Secret.
pub const DEFAULT_TOKEN_KEY: &str = "token";
/// How long one request to a controller may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A bearer token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Everything needed to talk to one network's controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerAccess {
    /// Which REST dialect.
    pub adapter: SdwanAdapter,
    /// Base URL (https only).
    pub url: String,
    /// Bearer token.
    pub token: Token,
    /// Extra CAs to trust, PEM.
    pub ca_bundle: Option<String>,
    /// Organisation (flexiManage).
    pub organization: Option<String>,
    /// The CN-WAN service registry the network publishes to, if any.
    pub service_registry: Option<ServiceRegistrySettings>,
}

impl ControllerAccess {
    /// The engine target of this controller: its URL, so that pointing a network at another
    /// controller makes the old one a leaving target.
    pub fn target(&self) -> Target {
        Target::Controller(self.url.clone())
    }
}

/// Resolves a network to its controller access.
#[async_trait]
pub trait AccessResolver: Send + Sync {
    /// The access of `network`'s controller.
    async fn access(&self, network: &NetworkRef) -> Result<ControllerAccess, BackendError>;
}

/// Reads the `FederatedNetwork`'s `spec.backend.sdwan` and its credentials Secret on the hub.
pub struct HubAccessResolver {
    hub: Client,
}

impl HubAccessResolver {
    /// A resolver reading through `hub`.
    pub fn new(hub: Client) -> Self {
        Self { hub }
    }
}

#[async_trait]
impl AccessResolver for HubAccessResolver {
    async fn access(&self, network: &NetworkRef) -> Result<ControllerAccess, BackendError> {
        let unavailable = |reason: String| BackendError::Unreachable {
            target: format!("controller of {network}"),
            reason,
        };
        let networks: Api<FederatedNetwork> = Api::namespaced(self.hub.clone(), &network.namespace);
        let fnet = networks
            .get_opt(&network.name)
            .await
            .map_err(|e| unavailable(format!("reading the FederatedNetwork: {e}")))?
            .ok_or_else(|| unavailable("the FederatedNetwork is gone from the hub".into()))?;
        let settings = fnet
            .spec
            .backend
            .sdwan
            .ok_or_else(|| unavailable("spec.backend.sdwan is not set".into()))?;
        let r = &settings.credentials_secret_ref;
        let key = r.key.as_deref().unwrap_or(DEFAULT_TOKEN_KEY);
        let secrets: Api<Secret> = Api::namespaced(self.hub.clone(), &r.namespace);
        let secret = secrets
            .get_opt(&r.name)
            .await
            .map_err(|e| unavailable(format!("reading Secret {}/{}: {e}", r.namespace, r.name)))?
            .ok_or_else(|| {
                unavailable(format!(
                    "credentials Secret {}/{} not found",
                    r.namespace, r.name
                ))
            })?;
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| {
                unavailable(format!(
                    "credentials Secret {}/{} has no key {key:?}",
                    r.namespace, r.name
                ))
            })?;
        let token = String::from_utf8(value.0.clone())
            .map_err(|_| {
                unavailable(format!(
                    "key {key:?} of Secret {}/{} is not text",
                    r.namespace, r.name
                ))
            })?
            .trim()
            .to_owned();
        Ok(ControllerAccess {
            adapter: settings.adapter,
            url: settings.controller_url,
            token: Token::new(token),
            ca_bundle: settings.ca_bundle,
            organization: settings.organization,
            service_registry: settings.service_registry,
        })
    }
}

/// A ready connection to one controller.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The target, for errors.
    pub target: String,
    /// Base URL without a trailing slash.
    pub base: String,
    /// Bearer token.
    pub token: Token,
    /// Organisation (flexiManage).
    pub organization: Option<String>,
    /// HTTP client trusting the system roots and the network's CA bundle.
    pub http: reqwest::Client,
}

impl Connection {
    /// An error for a request that did not get an answer.
    pub fn unreachable(&self, endpoint: &str, e: &reqwest::Error) -> BackendError {
        // reqwest's Display names the URL but never headers; the source chain says why
        // (refused, TLS verification failed, timed out).
        let mut reason = format!("{endpoint}: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason.push_str(&format!(": {s}"));
            source = s.source();
        }
        BackendError::Unreachable {
            target: self.target.clone(),
            reason,
        }
    }

    /// An error for an HTTP status other than success.
    pub fn status_error(&self, endpoint: &str, status: reqwest::StatusCode) -> BackendError {
        BackendError::Http {
            target: self.target.clone(),
            endpoint: endpoint.to_owned(),
            status: status.as_u16(),
        }
    }
}

/// HTTP clients by (URL, CA bundle): building one loads the system roots, so they are
/// reused across passes.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<(String, Option<String>), reqwest::Client>>,
}

impl ClientCache {
    /// A connection for `access`.
    pub fn connect(&self, access: &ControllerAccess) -> Result<Connection, BackendError> {
        let target = access.target().to_string();
        if !access.url.starts_with("https://") {
            return Err(BackendError::Other(format!(
                "{target}: the controller URL must use https"
            )));
        }
        let key = (access.url.clone(), access.ca_bundle.clone());
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let http = match clients.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = build_client(&target, access.ca_bundle.as_deref())?;
                clients.insert(key, c.clone());
                c
            }
        };
        Ok(Connection {
            target,
            base: access.url.trim_end_matches('/').to_owned(),
            token: access.token.clone(),
            organization: access.organization.clone(),
            http,
        })
    }
}

fn build_client(target: &str, ca_bundle: Option<&str>) -> Result<reqwest::Client, BackendError> {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .timeout(REQUEST_TIMEOUT)
        // A redirect could carry the bearer token to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("fednet-operator");
    if let Some(pem) = ca_bundle {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            BackendError::Other(format!("{target}: spec.backend.sdwan.caBundle: {e}"))
        })?;
        if certs.is_empty() {
            return Err(BackendError::Other(format!(
                "{target}: spec.backend.sdwan.caBundle holds no certificate"
            )));
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|e| BackendError::Other(format!("{target}: building the HTTP client: {e}")))
}

//! What the backend reads from and keeps on the hub: how the broker's API server is reached
//! (from the broker member's kubeconfig Secret), and the network's IPsec pre-shared key.

use crate::names;
use base64::Engine as _;
use federation_core::api::{FederatedNetwork, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MemberCluster};
use federation_core::backend::{BackendError, ObservedObject};
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::NetworkRef;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::BTreeMap;

/// Label on the hub's PSK Secret: the network (label value) whose key it holds.
pub const PSK_OF_LABEL: &str = "fednet.io/ipsec-psk-of";

/// Bytes of randomness in a pre-shared key (what `subctl` generates).
const PSK_BYTES: usize = 64;

/// How members reach the broker's API server.
pub struct BrokerEndpoint {
    /// `host:port`, no scheme (`brokerK8sApiServer`).
    pub api_server: String,
    /// The PEM CA bundle that verifies it.
    pub ca_pem: Vec<u8>,
}

fn hub_error(what: String) -> impl FnOnce(kube::Error) -> BackendError {
    move |source| BackendError::Kube {
        verb: "read",
        what,
        target: "hub".into(),
        source: Box::new(source),
    }
}

/// The broker's API server and CA, from the broker member's kubeconfig Secret on the hub.
/// (A network may name another address for members to use: rendering passes it along.)
pub async fn broker_endpoint(hub: &Client, broker: &str) -> Result<BrokerEndpoint, BackendError> {
    let gone = |reason: String| BackendError::Gone {
        target: format!("broker/{broker}"),
        reason,
    };
    let mc = Api::<MemberCluster>::all(hub.clone())
        .get_opt(broker)
        .await
        .map_err(hub_error(format!("MemberCluster {broker}")))?
        .ok_or_else(|| gone("no MemberCluster of that name".into()))?;
    let r = &mc.spec.kubeconfig_secret_ref;
    let secret = Api::<Secret>::namespaced(hub.clone(), &r.namespace)
        .get_opt(&r.name)
        .await
        .map_err(hub_error(format!("Secret {}/{}", r.namespace, r.name)))?
        .ok_or_else(|| BackendError::Unreachable {
            target: format!("broker/{broker}"),
            reason: format!("kubeconfig Secret {}/{} not found", r.namespace, r.name),
        })?;
    let invalid = |why: &str| BackendError::Unreachable {
        target: format!("broker/{broker}"),
        reason: format!("kubeconfig Secret {}/{}: {why}", r.namespace, r.name),
    };
    let text = secret
        .data
        .as_ref()
        .and_then(|d| d.get(r.key_or_default()))
        .and_then(|b| std::str::from_utf8(&b.0).ok())
        .ok_or_else(|| invalid("no kubeconfig text under its key"))?;
    // The parse error is dropped on purpose: it could quote credentials.
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|_| invalid("not a kubeconfig"))?;
    let context_name = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| invalid("no current context"))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| invalid("the current context names no cluster"))?;
    let server = cluster
        .server
        .as_deref()
        .ok_or_else(|| invalid("no server"))?;
    let ca_pem = cluster
        .certificate_authority_data
        .as_deref()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .ok_or_else(|| invalid("no certificate-authority-data (fednet always verifies TLS)"))?;
    let api_server = server
        .strip_prefix("https://")
        .ok_or_else(|| invalid("server is not https://"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(BrokerEndpoint { api_server, ca_pem })
}

/// The network's pre-shared key Secret on the hub, created once with a fresh random key and
/// only read after that, so every member of the network gets the same key for its life. It
/// is owned by the `FederatedNetwork`, so Kubernetes' garbage collector removes it with the
/// network. Returned as an unowned observed object: engines never delete it from a target.
pub async fn network_psk(
    hub: &Client,
    network: &NetworkRef,
) -> Result<ObservedObject, BackendError> {
    let api = Api::<Secret>::namespaced(hub.clone(), &network.namespace);
    let name = names::hub_psk(network);
    let secret = match api
        .get_opt(&name)
        .await
        .map_err(hub_error(format!("Secret {}/{name}", network.namespace)))?
    {
        Some(s) => s,
        None => create_psk(hub, &api, network, &name).await?,
    };
    let mut body = serde_json::to_value(&secret)
        .map_err(|e| BackendError::Other(format!("PSK Secret: {e}")))?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    Ok(ObservedObject {
        key: crate::kinds::key(&SECRET_KIND, &network.namespace, &name),
        body,
        owned: false,
    })
}

const SECRET_KIND: ManagedKind = crate::kinds::SECRET;

async fn create_psk(
    hub: &Client,
    api: &Api<Secret>,
    network: &NetworkRef,
    name: &str,
) -> Result<Secret, BackendError> {
    let owner = Api::<FederatedNetwork>::namespaced(hub.clone(), &network.namespace)
        .get_opt(&network.name)
        .await
        .map_err(hub_error(format!("FederatedNetwork {network}")))?
        .and_then(|n| n.controller_owner_ref(&()))
        .map(|mut o: OwnerReference| {
            o.controller = Some(false);
            o
        });
    let mut key = vec![0u8; PSK_BYTES];
    getrandom::fill(&mut key)
        .map_err(|e| BackendError::Other(format!("no randomness for the IPsec PSK: {e}")))?;
    let psk = base64::engine::general_purpose::STANDARD.encode(&key);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            // Not the network's ownership labels: the hub may also be the broker or a member,
            // and there anything carrying them that is not desired is an orphan to delete.
            labels: Some(BTreeMap::from([
                (PSK_OF_LABEL.to_owned(), network.label_value()),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            ])),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            "psk".to_owned(),
            ByteString(psk.into_bytes()),
        )])),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(s) => {
            tracing::info!(network = %network, secret = %s.name_any(), "generated the network's IPsec PSK");
            Ok(s)
        }
        // Another pass (or replica) made it first: theirs is the one.
        Err(kube::Error::Api(e)) if e.code == 409 => api
            .get(name)
            .await
            .map_err(hub_error(format!("Secret {}/{name}", network.namespace))),
        Err(e) => Err(hub_error(format!("Secret {}/{name}", network.namespace))(e)),
    }
}

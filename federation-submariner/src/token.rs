//! Minting broker tokens (effectful): a TokenRequest for a member's ServiceAccount on the
//! broker, bound to the Secret that keeps it, written into that Secret with the broker's CA,
//! API server and the token's expiry, which is what rendering copies to the member.

use crate::hub::BrokerEndpoint;
use crate::kinds::{ALL, BROKER_NAMESPACE};
use crate::names::{API_SERVER_ANNOTATION, MINT_TOKEN_ANNOTATION, TOKEN_EXPIRES_ANNOTATION};
use crate::render::TOKEN_LIFETIME_SECS;
use base64::Engine as _;
use federation_core::api::FIELD_MANAGER;
use federation_core::backend::{BackendError, DesiredObject, Target};
use federation_core::kubernetes::{apply_objects, ownership_refusal};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

/// The ServiceAccount a desired object asks a token to be minted for, if it does.
pub fn mint_request(object: &DesiredObject) -> Option<&str> {
    (object.key.kind == "Secret")
        .then(|| object.body["metadata"]["annotations"][MINT_TOKEN_ANNOTATION].as_str())
        .flatten()
}

fn kube_error(
    verb: &'static str,
    what: String,
    target: &Target,
) -> impl FnOnce(kube::Error) -> BackendError {
    let target = target.to_string();
    move |source| BackendError::Kube {
        verb,
        what,
        target,
        source: Box::new(source),
    }
}

/// Mints a token for `account` and writes it into the Secret `object` describes.
pub async fn mint(
    client: &Client,
    target: &Target,
    object: &DesiredObject,
    account: &str,
    endpoint: &BrokerEndpoint,
    now: u64,
) -> Result<(), BackendError> {
    let name = &object.key.name;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), BROKER_NAMESPACE);
    let mut body: Value = object.body.clone();
    if let Some(a) = body["metadata"]["annotations"].as_object_mut() {
        a.remove(MINT_TOKEN_ANNOTATION);
    }
    // The Secret must exist (with its uid) before a token can be bound to it. An existing
    // one is ours (checked) and keeps its old token until the new one replaces it.
    let existing = secrets.get_opt(name).await.map_err(kube_error(
        "get",
        format!("Secret {BROKER_NAMESPACE}/{name}"),
        target,
    ))?;
    let secret = match existing {
        Some(s) => {
            let labels = s.labels().clone();
            if let Some(why) = ownership_refusal(object, &labels) {
                return Err(BackendError::NotOwned {
                    target: target.to_string(),
                    what: object.key.to_string(),
                    why,
                });
            }
            s
        }
        None => {
            let placeholder = DesiredObject::new(object.key.clone(), body.clone());
            apply_objects(client, target, ALL, std::slice::from_ref(&placeholder)).await?;
            secrets.get(name).await.map_err(kube_error(
                "get",
                format!("Secret {BROKER_NAMESPACE}/{name}"),
                target,
            ))?
        }
    };
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: i64::try_from(TOKEN_LIFETIME_SECS).ok(),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
                name: Some(name.clone()),
                uid: secret.uid(),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let minted = Api::<ServiceAccount>::namespaced(client.clone(), BROKER_NAMESPACE)
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .map_err(kube_error(
            "mint a token for",
            format!("ServiceAccount {BROKER_NAMESPACE}/{account}"),
            target,
        ))?;
    let status = minted.status.ok_or_else(|| {
        BackendError::Other(format!(
            "{target}: TokenRequest for {account} returned no token"
        ))
    })?;
    // The server may shorten the lifetime; trust what it says, fall back to what was asked.
    let expires = status
        .expiration_timestamp
        .and_then(|t| u64::try_from(t.0.as_second()).ok())
        .unwrap_or(now + TOKEN_LIFETIME_SECS);
    let token = status.token.ok_or_else(|| {
        BackendError::Other(format!(
            "{target}: TokenRequest for {account} returned no token"
        ))
    })?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    body["metadata"]["annotations"][TOKEN_EXPIRES_ANNOTATION] = expires.to_string().into();
    let server = body["metadata"]["annotations"][API_SERVER_ANNOTATION]
        .as_str()
        .map_or_else(|| endpoint.api_server.clone(), str::to_owned);
    body["metadata"]["annotations"][API_SERVER_ANNOTATION] = server.into();
    body["data"] = json!({"token": b64(token.as_bytes()), "ca.crt": b64(&endpoint.ca_pem)});
    if let Some(rv) = secret.resource_version() {
        body["metadata"]["resourceVersion"] = rv.into();
    }
    secrets
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(kube_error(
            "apply",
            format!("Secret {BROKER_NAMESPACE}/{name}"),
            target,
        ))?;
    tracing::info!(%target, account, expires, "minted a broker token");
    Ok(())
}

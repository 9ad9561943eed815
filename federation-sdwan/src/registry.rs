//! Publishing shared services to a CN-WAN service registry in etcd, where SD-WAN policy tools
//! (the CN-WAN reader and adaptors) map each service's traffic profile to a path policy.
//!
//! # Layout (as the CN-WAN operator writes it)
//! ```text
//! <prefix>/namespaces/<ns>                                 {name, metadata}
//! <prefix>/namespaces/<ns>/services/<svc>                  {name, namespaceName, metadata}
//! <prefix>/namespaces/<ns>/services/<svc>/endpoints/<ep>   {name, serviceName, namespaceName,
//!                                                           address, port, metadata}
//! ```
//! Values are YAML. One endpoint per (exporter, port), named `<exporter>-<port name>`, at
//! the exporter's first gateway hint (empty when it has none); its metadata carries the
//! service's traffic profile and SLA thresholds, the network, the exporting member and edge.
//!
//! # Ownership
//! Services and endpoints carry `owner: fednet-operator` and `fednet.io/network` in their
//! metadata; only those of the network are changed or deleted, and one found at a wanted key
//! without them is refused ([`BackendError::NotOwned`]). A namespace key is shared: fednet
//! writes it (`owner: fednet-operator`, no network) when missing, and a network counts it as
//! its own only while no other network's or tool's key sits under it, so the last network
//! out removes it.
//!
//! # Writes
//! Every write is one etcd transaction through etcd's JSON gateway (`/v3/kv/txn`): a put only
//! if the key is still absent or still at the revision it was read at; a delete only at the
//! observed revision, and for a namespace only while nothing sits under it. A lost race
//! changes nothing and is retried on the next pass.

use crate::keys;
use crate::model::SdwanModel;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use federation_core::api::{MANAGED_BY_VALUE, ServiceRegistrySettings};
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, ObjectKey, Observed, ObservedObject, Target,
};
use federation_core::plan::NetworkRef;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Kind of a registry namespace object.
pub const NAMESPACE: &str = "RegistryNamespace";
/// Kind of a registry service object.
pub const SERVICE: &str = "RegistryService";
/// Kind of a registry endpoint object.
pub const ENDPOINT: &str = "RegistryEndpoint";
/// Metadata key naming who wrote an object (the CN-WAN operator's convention).
pub const OWNER: &str = "owner";
/// Metadata key naming the network of a service or endpoint.
pub const NETWORK: &str = "fednet.io/network";
/// Metadata key of the traffic profile.
pub const TRAFFIC_PROFILE: &str = "traffic-profile";

/// The engine target of a registry.
pub fn target(settings: &ServiceRegistrySettings) -> Target {
    Target::Controller(format!(
        "cnwan:{}{}",
        settings.etcd_url.trim_end_matches('/'),
        settings.prefix_or_default()
    ))
}

/// Why a registry cannot be used, if it cannot (pure).
pub fn refusal(settings: &ServiceRegistrySettings) -> Option<String> {
    let url = &settings.etcd_url;
    if url.starts_with("https://") {
        return Some("TLS to etcd is not supported yet; use an etcd on loopback".into());
    }
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', ':']).next());
    match host {
        Some("127.0.0.1" | "localhost" | "[::1]") => None,
        _ => Some(format!(
            "{url}: plain http to etcd is only allowed on loopback (TLS to etcd is not supported yet)"
        )),
    }
}

fn metadata(network: &NetworkRef, extra: &[(&str, String)]) -> Value {
    let mut m = BTreeMap::from([
        (OWNER.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (NETWORK.to_owned(), network.label_value()),
    ]);
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    json!(m)
}

/// The registry objects of a network (pure). A namespace key already there and not the
/// network's (another network's services under it, or another tool's) is used, not rendered.
pub fn render(
    network: &NetworkRef,
    model: &SdwanModel,
    observed: Option<&Observed>,
) -> Vec<DesiredObject> {
    let mut namespaces = BTreeMap::new();
    let mut services = BTreeMap::new();
    let mut endpoints = Vec::new();
    for p in &model.policies {
        let Some(site) = model.sites.get(&p.exporter) else {
            continue;
        };
        namespaces.insert(p.namespace.clone(), ());
        let mut svc_meta = vec![];
        if let Some(tp) = &p.sla.traffic_profile {
            svc_meta.push((TRAFFIC_PROFILE, tp.clone()));
        }
        if let Some(v) = p.sla.max_delay_ms {
            svc_meta.push(("max-delay-ms", v.to_string()));
        }
        if let Some(v) = p.sla.max_jitter_ms {
            svc_meta.push(("max-jitter-ms", v.to_string()));
        }
        if let Some(v) = p.sla.max_loss_percent {
            svc_meta.push(("max-loss-percent", v.to_string()));
        }
        services.insert(
            (p.namespace.clone(), p.service_name.clone()),
            json!({"name": p.service_name, "namespaceName": p.namespace,
                   "metadata": metadata(network, &svc_meta)}),
        );
        for port in &p.ports {
            let name = format!("{}-{}", p.exporter, port.name);
            let mut meta = svc_meta.clone();
            meta.push(("fednet.io/member", p.exporter.clone()));
            meta.push(("fednet.io/edge", site.edge.clone()));
            endpoints.push(DesiredObject::new(
                keys::key(
                    network,
                    ENDPOINT,
                    &format!("{}/{}/{name}", p.namespace, p.service_name),
                ),
                json!({"name": name, "serviceName": p.service_name, "namespaceName": p.namespace,
                       "address": site.address.clone().unwrap_or_default(),
                       "port": port.port, "metadata": metadata(network, &meta)}),
            ));
        }
    }
    let foreign_namespace = |ns: &str| {
        observed.is_some_and(|o| {
            o.get(&keys::key(network, NAMESPACE, ns))
                .is_some_and(|x| !x.owned)
        })
    };
    let mut out: Vec<DesiredObject> = namespaces
        .into_keys()
        .filter(|ns| !foreign_namespace(ns))
        .map(|ns| {
            DesiredObject::new(
                keys::key(network, NAMESPACE, &ns),
                json!({"name": ns, "metadata": {OWNER: MANAGED_BY_VALUE}}),
            )
        })
        .collect();
    out.extend(services.into_iter().map(|((ns, svc), body)| {
        DesiredObject::new(keys::key(network, SERVICE, &format!("{ns}/{svc}")), body)
    }));
    out.extend(endpoints);
    out
}

/// The etcd key of an object part (`ns`, `ns/svc`, `ns/svc/ep`) under `prefix`.
fn etcd_key(prefix: &str, part: &str) -> Option<String> {
    let names: Vec<&str> = part.split('/').collect();
    let key = match names[..] {
        [ns] => format!("{prefix}/namespaces/{ns}"),
        [ns, svc] => format!("{prefix}/namespaces/{ns}/services/{svc}"),
        [ns, svc, ep] => format!("{prefix}/namespaces/{ns}/services/{svc}/endpoints/{ep}"),
        _ => return None,
    };
    names.iter().all(|n| !n.is_empty()).then_some(key)
}

/// (kind, part) of an etcd key under `prefix`.
fn parse_key(prefix: &str, key: &str) -> Option<(&'static str, String)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("/namespaces/")?;
    let names: Vec<&str> = rest.split('/').collect();
    match names[..] {
        [ns] => Some((NAMESPACE, ns.to_owned())),
        [ns, "services", svc] => Some((SERVICE, format!("{ns}/{svc}"))),
        [ns, "services", svc, "endpoints", ep] => Some((ENDPOINT, format!("{ns}/{svc}/{ep}"))),
        _ => None,
    }
}

/// The end of the etcd range of every key starting with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A connection to one registry.
#[derive(Clone, Debug)]
pub struct Registry {
    target: String,
    url: String,
    prefix: String,
    http: reqwest::Client,
}

/// One key read from etcd.
struct Kv {
    key: String,
    value: Value,
    mod_revision: String,
}

impl Registry {
    /// A connection for `settings` (refused unless [`refusal`] is `None`).
    pub fn connect(settings: &ServiceRegistrySettings) -> Result<Self, BackendError> {
        let target = target(settings).to_string();
        if let Some(why) = refusal(settings) {
            return Err(BackendError::Other(format!("{target}: {why}")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BackendError::Other(format!("{target}: {e}")))?;
        Ok(Self {
            target,
            url: settings.etcd_url.trim_end_matches('/').to_owned(),
            prefix: settings.prefix_or_default().to_owned(),
            http,
        })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, BackendError> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| BackendError::Unreachable {
                target: self.target.clone(),
                reason: format!("{path}: {e}"),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(BackendError::Http {
                target: self.target.clone(),
                endpoint: path.to_owned(),
                status: status.as_u16(),
            });
        }
        response.json().await.map_err(|e| {
            BackendError::Other(format!(
                "{}: unexpected answer from {path}: {e}",
                self.target
            ))
        })
    }

    async fn range(&self, key: &[u8], end: Option<&[u8]>) -> Result<Vec<Kv>, BackendError> {
        let mut body = json!({"key": B64.encode(key)});
        if let Some(end) = end {
            body["range_end"] = json!(B64.encode(end));
        }
        let answer = self.post("/v3/kv/range", body).await?;
        let mut out = Vec::new();
        for kv in answer["kvs"].as_array().into_iter().flatten() {
            let decode = |field: &str| {
                kv[field]
                    .as_str()
                    .and_then(|s| B64.decode(s).ok())
                    .and_then(|b| String::from_utf8(b).ok())
            };
            let (Some(key), Some(text)) = (decode("key"), decode("value")) else {
                continue;
            };
            // Values that are not YAML maps are another tool's; they are listed as such.
            let value = serde_yaml::from_str::<Value>(&text).unwrap_or(Value::Null);
            out.push(Kv {
                key,
                value,
                mod_revision: kv["mod_revision"].as_str().unwrap_or("0").to_owned(),
            });
        }
        Ok(out)
    }

    async fn txn(&self, compare: Vec<Value>, success: Vec<Value>) -> Result<bool, BackendError> {
        let answer = self
            .post(
                "/v3/kv/txn",
                json!({"compare": compare, "success": success}),
            )
            .await?;
        Ok(answer["succeeded"] == Value::Bool(true))
    }

    /// Everything under the prefix, with the network's objects marked owned.
    pub async fn observe(&self, network: &NetworkRef) -> Result<Observed, BackendError> {
        let root = format!("{}/namespaces/", self.prefix);
        let kvs = self
            .range(root.as_bytes(), Some(&prefix_end(&root)))
            .await?;
        let label = network.label_value();
        let ours = |v: &Value| {
            v["metadata"][OWNER] == MANAGED_BY_VALUE && v["metadata"][NETWORK] == label.as_str()
        };
        let mut objects = Vec::new();
        for kv in &kvs {
            let Some((kind, part)) = parse_key(&self.prefix, &kv.key) else {
                continue;
            };
            let owned = if kind == NAMESPACE {
                // Shared: the network's while everything under it is the network's.
                let under = format!("{}/", kv.key);
                kv.value["metadata"][OWNER] == MANAGED_BY_VALUE
                    && kvs
                        .iter()
                        .filter(|c| c.key.starts_with(&under))
                        .all(|c| ours(&c.value))
            } else {
                ours(&kv.value)
            };
            let mut body = kv.value.clone();
            if let Value::Object(map) = &mut body {
                // The revision is the object's identity for a delete precondition.
                map.insert(
                    "metadata".into(),
                    merge_uid(map.get("metadata"), &kv.mod_revision),
                );
            }
            objects.push(ObservedObject {
                key: keys::key(network, kind, &part),
                body,
                owned,
            });
        }
        Ok(Observed::of(objects))
    }

    /// Writes one object: created if absent, replaced if it is the network's.
    pub async fn apply(&self, object: &DesiredObject) -> Result<(), BackendError> {
        let key = self.key_of(&object.key)?;
        if object.key.kind == ENDPOINT {
            self.check_parent_service(object, &key).await?;
        }
        let existing = self.range(key.as_bytes(), None).await?.into_iter().next();
        let mut compare = vec![];
        match &existing {
            None => compare.push(json!({"key": B64.encode(&key), "target": "CREATE",
                                        "result": "EQUAL", "create_revision": "0"})),
            Some(kv) => {
                let network = keys::parse(&object.key).map(|(n, _)| n.label_value());
                let meta = &kv.value["metadata"];
                let shared_namespace =
                    object.key.kind == NAMESPACE && meta[OWNER] == MANAGED_BY_VALUE;
                if shared_namespace {
                    return Ok(());
                }
                if meta[OWNER] != MANAGED_BY_VALUE
                    || network.as_deref().is_none_or(|n| meta[NETWORK] != n)
                {
                    return Err(BackendError::NotOwned {
                        target: self.target.clone(),
                        what: key,
                        why: format!(
                            "its owner is {}, network {}",
                            meta[OWNER].as_str().unwrap_or("unknown"),
                            meta[NETWORK].as_str().unwrap_or("none")
                        ),
                    });
                }
                compare.push(json!({"key": B64.encode(&key), "target": "MOD",
                                    "result": "EQUAL", "mod_revision": kv.mod_revision}));
            }
        }
        let yaml = serde_yaml::to_string(&object.body)
            .map_err(|e| BackendError::Render(format!("{}: {e}", object.key)))?;
        let put = json!({"request_put": {"key": B64.encode(&key), "value": B64.encode(yaml)}});
        if self.txn(compare, vec![put]).await? {
            Ok(())
        } else {
            Err(self.raced(&key))
        }
    }

    /// Deletes one object at the revision it was observed at; a namespace only while nothing
    /// sits under it.
    pub async fn delete(&self, deletion: &Deletion) -> Result<(), BackendError> {
        let key = self.key_of(&deletion.key)?;
        let mut compare = vec![];
        if let Some(rev) = &deletion.uid {
            compare.push(json!({"key": B64.encode(&key), "target": "MOD",
                                "result": "EQUAL", "mod_revision": rev}));
        }
        if deletion.key.kind == NAMESPACE {
            let under = format!("{key}/");
            compare.push(
                json!({"key": B64.encode(&under), "range_end": B64.encode(prefix_end(&under)),
                                "target": "VERSION", "result": "EQUAL", "version": "0"}),
            );
        }
        let delete = json!({"request_delete_range": {"key": B64.encode(&key)}});
        if self.txn(compare, vec![delete]).await? {
            return Ok(());
        }
        if self.range(key.as_bytes(), None).await?.is_empty() {
            return Ok(());
        }
        Err(self.raced(&key))
    }

    /// An endpoint goes only under a service of the same network: never into another
    /// tool's (or network's) service.
    async fn check_parent_service(
        &self,
        object: &DesiredObject,
        key: &str,
    ) -> Result<(), BackendError> {
        let Some((service_key, _)) = key.rsplit_once("/endpoints/") else {
            return Ok(());
        };
        let parent = self
            .range(service_key.as_bytes(), None)
            .await?
            .into_iter()
            .next();
        let network = keys::parse(&object.key).map(|(n, _)| n.label_value());
        match parent {
            Some(kv)
                if kv.value["metadata"][OWNER] != MANAGED_BY_VALUE
                    || network
                        .as_deref()
                        .is_none_or(|n| kv.value["metadata"][NETWORK] != n) =>
            {
                Err(BackendError::NotOwned {
                    target: self.target.clone(),
                    what: key.to_owned(),
                    why: format!(
                        "its service {service_key} is owned by {}, network {}",
                        kv.value["metadata"][OWNER].as_str().unwrap_or("unknown"),
                        kv.value["metadata"][NETWORK].as_str().unwrap_or("none")
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    fn key_of(&self, key: &ObjectKey) -> Result<String, BackendError> {
        keys::parse(key)
            .and_then(|(_, part)| etcd_key(&self.prefix, part))
            .ok_or_else(|| BackendError::Other(format!("{key} is not a registry object")))
    }

    fn raced(&self, key: &str) -> BackendError {
        BackendError::Other(format!(
            "{}: {key} changed since it was read (or gained keys under it); written again on the next pass",
            self.target
        ))
    }
}

fn merge_uid(metadata: Option<&Value>, revision: &str) -> Value {
    let mut m = metadata.cloned().unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut m {
        map.insert("uid".into(), json!(revision));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_cnwan_layout_both_ways() {
        let p = "/service-registry";
        let k = etcd_key(p, "apps/web/b-http").unwrap();
        assert_eq!(
            k,
            "/service-registry/namespaces/apps/services/web/endpoints/b-http"
        );
        assert_eq!(
            parse_key(p, &k),
            Some((ENDPOINT, "apps/web/b-http".to_owned()))
        );
        assert_eq!(
            parse_key(p, "/service-registry/namespaces/apps"),
            Some((NAMESPACE, "apps".to_owned()))
        );
        assert_eq!(
            parse_key(p, "/service-registry/namespaces/apps/other/x"),
            None
        );
        assert_eq!(etcd_key(p, "a/b/c/d"), None);
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
    }

    #[test]
    fn only_loopback_etcd_is_accepted_without_tls() {
        let s = |url: &str| ServiceRegistrySettings {
            etcd_url: url.into(),
            prefix: None,
        };
        assert_eq!(refusal(&s("http://127.0.0.1:2379")), None);
        assert_eq!(refusal(&s("http://localhost:2379")), None);
        assert!(refusal(&s("http://etcd.example:2379")).is_some());
        assert!(
            refusal(&s("https://etcd.example:2379"))
                .unwrap()
                .contains("TLS")
        );
    }
}

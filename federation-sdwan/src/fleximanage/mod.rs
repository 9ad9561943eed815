//! The flexiManage adapter, written from flexiManage's REST API (`openapi.yaml` in the
//! shared references) and contract-verified: its tests run against a stateful fake
//! controller behind Prism, which checks every request and response against that spec. It has
//! not run against a real flexiManage (that needs MongoDB and edge devices).
//!
//! # Mapping
//! - **Site** -> the member's edge device (matched by name). fednet makes one path label per
//!   network (type `Tunnel`, named `fednet-<hash>`) and adds it to the WAN interfaces of the
//!   network's devices (`PUT /devices/{id}`), so the network's tunnels run over it.
//! - **Overlay** -> tunnels made by `POST /devices/apply` with `method: tunnels`, always with
//!   an explicit `devices` map (an apply without one would act on every device of the
//!   organisation), the network's path label, `meta.topology` (`fullMesh`, or `hubAndSpoke`
//!   with `meta.hub`) and `meta.advancedOptions` (the server requires it; `ospfCost` carries
//!   the link cost). A fresh full mesh is one apply; a hub's missing spokes are one
//!   `hubAndSpoke` apply; any other missing link is a two-device apply of its own cost.
//! - The network's tunnels are those carrying its path label: that is the inventory.
//!   `deltunnels` names only tunnels from it.
//!
//! # Jobs
//! An apply answers 202 with job ids (and a `Location`); the adapter polls `GET /jobs/{id}`
//! with backoff for a few seconds. `failed` jobs fail the object (retried on the next
//! pass); `inactive` jobs wait for an offline device and are not failures (the link is
//! reported Pending: device offline); jobs still running are reported as operations in
//! flight, during which the engine writes nothing more to the controller. A 429 is waited out
//! (`Retry-After`) or left to the engine's retry, never reported as a failure.
//!
//! # Assumptions not checked against a live server
//! - `deltunnels` selects tunnels by a `tunnels` map of ids (`{"<id>": true}`), next to the
//!   explicit `devices` map; the published `DeviceCommand` schema does not describe it.
//! - A device update (`PUT /devices/{id}`) takes the device as `GET /devices` returned it,
//!   with the label object added to (or removed from) its WAN interfaces' `pathlabels`.
//! - Encryption is an organisation setting (`encryptionMethod`) fednet does not read yet, so
//!   networks that require encryption are refused.

pub mod api;

use crate::access::Connection;
use crate::adapter::{Adapter, AdapterCapabilities, HealthFigures};
use crate::keys;
use crate::model::SdwanModel;
use api::call;
use async_trait::async_trait;
use federation_core::api::{LinkPhase, SdwanAdapter, TopologyKind};
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, Health, LinkHealth, Observed, ObservedObject, Operation,
    ServiceHealth,
};
use federation_core::plan::NetworkRef;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The network's path label.
pub const PATH_LABEL: &str = "PathLabel";
/// The path label on one device's WAN interfaces.
pub const INTERFACE_LABEL: &str = "InterfaceLabel";
/// One tunnel of the network (observed; desired to keep it).
pub const TUNNEL: &str = "Tunnel";
/// A request to create tunnels that are missing (never observed).
pub const CREATE_TUNNELS: &str = "CreateTunnels";
/// A device of the organisation (read only, for health).
pub const DEVICE: &str = "Device";

/// The flexiManage adapter.
#[derive(Debug, Default)]
pub struct FlexiManageAdapter {
    /// Jobs left running by an apply, per network label: reported as operations in flight
    /// until they end. Lost on restart, which is safe: the tunnels they make are found by
    /// their path label, so nothing is applied twice.
    running: Mutex<BTreeMap<String, Vec<String>>>,
}

/// The path label name of a network.
pub fn label_name(network: &NetworkRef) -> String {
    format!("fednet-{}", network.short_hash())
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

fn pair_part((a, b): &(String, String)) -> String {
    format!("{a}~{b}")
}

/// The tunnels a model wants, by device pair, with their cost.
fn wanted_tunnels(model: &SdwanModel) -> BTreeMap<(String, String), u32> {
    model
        .overlay
        .links
        .iter()
        .filter_map(|l| {
            let a = model.sites.get(&l.a)?;
            let b = model.sites.get(&l.b)?;
            Some((pair(&a.edge, &b.edge), l.cost))
        })
        .collect()
}

/// The objects of a model given what exists (pure): the label, one interface label per edge,
/// a `Tunnel` for every wanted tunnel that exists (so it is kept, or recreated on a cost
/// change), and `CreateTunnels` requests for the missing ones.
pub fn render(
    network: &NetworkRef,
    model: &SdwanModel,
    observed: Option<&Observed>,
) -> Vec<DesiredObject> {
    let label = label_name(network);
    let mut out = vec![DesiredObject::new(
        keys::key(network, PATH_LABEL, "label"),
        json!({"name": label, "type": "Tunnel"}),
    )];
    for site in model.sites.values() {
        out.push(DesiredObject::new(
            keys::key(network, INTERFACE_LABEL, &site.edge),
            json!({"device": site.edge, "label": label}),
        ));
    }
    let wanted = wanted_tunnels(model);
    let existing: BTreeSet<String> = observed
        .into_iter()
        .flat_map(|o| o.of_kind(TUNNEL))
        .filter(|o| o.owned)
        .filter_map(|o| o.key.name.split_once(':').map(|(_, p)| p.to_owned()))
        .collect();
    let mut missing: Vec<(&(String, String), u32)> = Vec::new();
    for (p, cost) in &wanted {
        if existing.contains(&pair_part(p)) {
            out.push(DesiredObject::new(
                keys::key(network, TUNNEL, &pair_part(p)),
                json!({"a": p.0, "b": p.1, "cost": cost}),
            ));
        } else {
            missing.push((p, *cost));
        }
    }
    let edge = |m: &str| model.sites.get(m).map(|s| s.edge.clone());
    let mut request =
        |part: String, topology: &str, hub: Option<String>, devices: Vec<String>, cost: u32| {
            out.push(DesiredObject::new(
                keys::key(network, CREATE_TUNNELS, &part),
                json!({"topology": topology, "hub": hub, "devices": devices, "cost": cost}),
            ));
        };
    let all_missing = existing.is_empty() && missing.len() == wanted.len();
    let uniform = missing.iter().all(|(_, c)| *c == 1);
    match model.overlay.topology {
        TopologyKind::FullMesh if all_missing && uniform && !missing.is_empty() => {
            let devices: Vec<String> = model.sites.values().map(|s| s.edge.clone()).collect();
            request("mesh".into(), "fullMesh", None, devices, 1);
        }
        TopologyKind::HubSpoke => {
            let hubs: Vec<String> = model
                .sites
                .values()
                .filter(|s| s.hub)
                .filter_map(|s| edge(&s.member))
                .collect();
            let mut left = Vec::new();
            let mut spokes_of: BTreeMap<&str, (Vec<String>, u32)> = BTreeMap::new();
            for (p, cost) in missing {
                let hub = hubs.iter().find(|h| **h == p.0 || **h == p.1);
                let other_is_hub =
                    hub.is_some_and(|h| hubs.iter().any(|x| x != h && (*x == p.0 || *x == p.1)));
                match hub {
                    Some(h) if !other_is_hub => {
                        let spoke = if *h == p.0 { &p.1 } else { &p.0 };
                        let entry = spokes_of.entry(h.as_str()).or_insert((Vec::new(), cost));
                        entry.0.push(spoke.clone());
                        entry.1 = entry.1.max(cost);
                    }
                    _ => left.push((p, cost)),
                }
            }
            for (hub, (spokes, cost)) in spokes_of {
                let mut devices = vec![hub.to_owned()];
                devices.extend(spokes);
                request(
                    format!("hub-{hub}"),
                    "hubAndSpoke",
                    Some(hub.to_owned()),
                    devices,
                    cost,
                );
            }
            for (p, cost) in left {
                request(
                    pair_part(p),
                    "fullMesh",
                    None,
                    vec![p.0.clone(), p.1.clone()],
                    cost,
                );
            }
        }
        _ => {
            for (p, cost) in missing {
                request(
                    pair_part(p),
                    "fullMesh",
                    None,
                    vec![p.0.clone(), p.1.clone()],
                    cost,
                );
            }
        }
    }
    out
}

/// A device as the adapter needs it.
struct Device {
    id: String,
    name: String,
    connected: bool,
    body: Value,
}

fn devices_of(list: &Value) -> Vec<Device> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some(Device {
                id: d["_id"].as_str()?.to_owned(),
                name: d["name"].as_str()?.to_owned(),
                connected: d["isConnected"] == Value::Bool(true),
                body: d.clone(),
            })
        })
        .collect()
}

fn label_ids(interface: &Value) -> Vec<String> {
    interface["pathlabels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().or_else(|| l["_id"].as_str()).map(str::to_owned))
        .collect()
}

fn object_id(v: &Value) -> Option<String> {
    v.as_str().or_else(|| v["_id"].as_str()).map(str::to_owned)
}

impl FlexiManageAdapter {
    async fn devices(conn: &Connection) -> Result<Vec<Device>, BackendError> {
        Ok(devices_of(
            &call(conn, Method::GET, "/devices", None).await?.body,
        ))
    }

    async fn label_id(conn: &Connection, name: &str) -> Result<Option<String>, BackendError> {
        let labels = call(conn, Method::GET, "/pathlabels", None).await?.body;
        Ok(labels
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == name)
            .and_then(|l| l["_id"].as_str().map(str::to_owned)))
    }

    fn device<'a>(
        conn: &Connection,
        devices: &'a [Device],
        name: &str,
    ) -> Result<&'a Device, BackendError> {
        devices.iter().find(|d| d.name == name).ok_or_else(|| {
            BackendError::Other(format!(
                "{}: edge device {name} is not in the organisation; register it (or fix MemberCluster spec.network.sdwanEdge)",
                conn.target
            ))
        })
    }

    /// Sends one apply and waits for its jobs. Never without an explicit device set.
    async fn apply_command(
        &self,
        conn: &Connection,
        network: &NetworkRef,
        command: Value,
    ) -> Result<(), BackendError> {
        let devices = command["devices"]
            .as_object()
            .map_or(0, serde_json::Map::len);
        if devices == 0 {
            return Err(BackendError::Render(
                "refusing an apply without an explicit device set: the server would apply it to every device of the organisation".into(),
            ));
        }
        let answer = call(conn, Method::POST, "/devices/apply", Some(&command)).await?;
        let jobs = api::job_ids(&answer);
        let outcome = api::wait_for_jobs(conn, &jobs).await?;
        if !outcome.running.is_empty() {
            let mut running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            running
                .entry(network.label_value())
                .or_default()
                .extend(outcome.running);
        }
        if let Some((id, why)) = outcome.failed.first() {
            return Err(BackendError::Other(format!(
                "{}: job {id} ({}) failed: {why}",
                conn.target,
                command["method"].as_str().unwrap_or("apply")
            )));
        }
        Ok(())
    }

    async fn create(
        &self,
        conn: &Connection,
        network: &NetworkRef,
        body: &Value,
    ) -> Result<(), BackendError> {
        let label = Self::label_id(conn, &label_name(network))
            .await?
            .ok_or_else(|| {
                BackendError::Other(format!(
                    "{}: the network's path label does not exist yet",
                    conn.target
                ))
            })?;
        let devices = Self::devices(conn).await?;
        let mut map = serde_json::Map::new();
        for name in body["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            map.insert(
                Self::device(conn, &devices, name)?.id.clone(),
                Value::Bool(true),
            );
        }
        let mut meta = json!({
            "pathLabels": [label],
            "topology": body["topology"],
            "advancedOptions": {"ospfCost": body["cost"], "mtu": 1500, "routing": "ospf"},
        });
        if let Some(hub) = body["hub"].as_str() {
            meta["hub"] = json!(Self::device(conn, &devices, hub)?.id);
        }
        self.apply_command(
            conn,
            network,
            json!({"method": "tunnels", "devices": map, "meta": meta}),
        )
        .await
    }

    /// Deletes the network's tunnel between two devices, if it has one.
    async fn delete_tunnel(
        &self,
        conn: &Connection,
        network: &NetworkRef,
        a: &str,
        b: &str,
    ) -> Result<(), BackendError> {
        let Some(label) = Self::label_id(conn, &label_name(network)).await? else {
            return Ok(());
        };
        let devices = Self::devices(conn).await?;
        let tunnels = call(conn, Method::GET, "/tunnels", None).await?.body;
        let wanted = pair(a, b);
        let name_of = |v: &Value| {
            let id = object_id(v)?;
            devices
                .iter()
                .find(|d| d.id == id)
                .map(|d| (d.id.clone(), d.name.clone()))
        };
        for t in tunnels.as_array().into_iter().flatten() {
            if object_id(&t["pathlabel"]).as_deref() != Some(label.as_str()) {
                continue;
            }
            let (Some((ida, na)), Some((idb, nb))) =
                (name_of(&t["deviceA"]), name_of(&t["deviceB"]))
            else {
                continue;
            };
            if pair(&na, &nb) != wanted {
                continue;
            }
            let Some(id) = t["_id"].as_str() else {
                continue;
            };
            let command = json!({
                "method": "deltunnels",
                "devices": {ida: true, idb: true},
                "tunnels": {id: true},
            });
            self.apply_command(conn, network, command).await?;
        }
        Ok(())
    }

    /// Adds (or removes) the network's label on a device's WAN interfaces. Interfaces hold
    /// whole label objects (`Interface.pathlabels` is an array of `PathLabel`).
    async fn label_interfaces(
        conn: &Connection,
        network: &NetworkRef,
        device: &str,
        add: bool,
    ) -> Result<(), BackendError> {
        let labels = call(conn, Method::GET, "/pathlabels", None).await?.body;
        let name = label_name(network);
        let Some(label) = labels
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == name.as_str())
            .cloned()
        else {
            return if add {
                Err(BackendError::Other(format!(
                    "{}: the network's path label does not exist yet",
                    conn.target
                )))
            } else {
                Ok(())
            };
        };
        let label_id = object_id(&label).unwrap_or_default();
        let devices = Self::devices(conn).await?;
        let d = match Self::device(conn, &devices, device) {
            Ok(d) => d,
            // A device that is gone holds no label any more.
            Err(_) if !add => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut body = d.body.clone();
        let mut changed = false;
        for interface in body["interfaces"].as_array_mut().into_iter().flatten() {
            if interface["type"] != "WAN" {
                continue;
            }
            let has = label_ids(interface).contains(&label_id);
            let mut list = interface["pathlabels"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if add && !has {
                list.push(label.clone());
            } else if !add && has {
                list.retain(|l| object_id(l).as_deref() != Some(label_id.as_str()));
            } else {
                continue;
            }
            interface["pathlabels"] = Value::Array(list);
            changed = true;
        }
        if changed {
            call(
                conn,
                Method::PUT,
                &format!("/devices/{}", d.id),
                Some(&body),
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Adapter for FlexiManageAdapter {
    fn kind(&self) -> SdwanAdapter {
        SdwanAdapter::FlexiManage
    }

    fn capabilities(&self) -> AdapterCapabilities {
        AdapterCapabilities {
            topologies: vec![
                TopologyKind::FullMesh,
                TopologyKind::HubSpoke,
                TopologyKind::Explicit,
            ],
            link_costs: true,
            sla_policies: false,
            encryption: false,
            health: HealthFigures {
                edge_online: true,
                last_seen: false,
                tunnel_status: true,
                rtt: true,
                loss: true,
            },
        }
    }

    fn render(
        &self,
        network: &NetworkRef,
        model: &SdwanModel,
        observed: Option<&Observed>,
    ) -> Vec<DesiredObject> {
        render(network, model, observed)
    }

    fn assess(&self, model: &SdwanModel, observed: Option<&Observed>) -> Health {
        assess(model, observed)
    }

    async fn observe(
        &self,
        conn: &Connection,
        network: &NetworkRef,
    ) -> Result<Observed, BackendError> {
        let name = label_name(network);
        let mut objects = Vec::new();
        let labels = call(conn, Method::GET, "/pathlabels", None).await?.body;
        let label = labels
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == name.as_str())
            .and_then(|l| l["_id"].as_str().map(str::to_owned));
        let devices = Self::devices(conn).await?;
        for d in &devices {
            objects.push(ObservedObject {
                key: keys::key(network, DEVICE, &d.name),
                body: json!({"id": d.id, "connected": d.connected}),
                owned: false,
            });
        }
        if let Some(label) = &label {
            objects.push(ObservedObject {
                key: keys::key(network, PATH_LABEL, "label"),
                body: json!({"name": name, "type": "Tunnel", "id": label}),
                owned: true,
            });
            for d in &devices {
                let labelled = d.body["interfaces"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|i| label_ids(i).contains(label));
                if labelled {
                    objects.push(ObservedObject {
                        key: keys::key(network, INTERFACE_LABEL, &d.name),
                        body: json!({"device": d.name, "label": name}),
                        owned: true,
                    });
                }
            }
            let tunnels = call(conn, Method::GET, "/tunnels", None).await?.body;
            let by_id: BTreeMap<&str, &Device> =
                devices.iter().map(|d| (d.id.as_str(), d)).collect();
            for t in tunnels.as_array().into_iter().flatten() {
                if object_id(&t["pathlabel"]).as_deref() != Some(label.as_str()) {
                    continue;
                }
                let a = object_id(&t["deviceA"]).and_then(|id| by_id.get(id.as_str()).copied());
                let b = object_id(&t["deviceB"]).and_then(|id| by_id.get(id.as_str()).copied());
                let (Some(a), Some(b)) = (a, b) else { continue };
                let p = pair(&a.name, &b.name);
                let offline: Vec<String> = [a, b]
                    .iter()
                    .filter(|d| !d.connected)
                    .map(|d| d.name.clone())
                    .collect();
                let stats = match t["num"].as_i64() {
                    Some(num) => call(
                        conn,
                        Method::GET,
                        &format!("/devices/{}/tunnelstats?tunnelnum={num}", a.id),
                        None,
                    )
                    .await?
                    .body
                    .as_array()
                    .and_then(|s| s.last().cloned())
                    .unwrap_or(Value::Null),
                    None => Value::Null,
                };
                objects.push(ObservedObject {
                    key: keys::key(network, TUNNEL, &pair_part(&p)),
                    body: json!({
                        "a": p.0, "b": p.1,
                        "cost": t["advancedOptions"]["ospfCost"].as_u64().unwrap_or(1),
                        "status": t["tunnelStatus"], "rtt": stats["rtt"], "dropRate": stats["drop_rate"],
                        "offline": offline,
                    }),
                    owned: true,
                });
            }
        }
        // Jobs an apply left running: in flight until they end.
        let running: Vec<String> = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&network.label_value())
            .cloned()
            .unwrap_or_default();
        let mut operations = Vec::new();
        if !running.is_empty() {
            let outcome = api::wait_for_jobs(conn, &running).await?;
            for id in &outcome.running {
                operations.push(Operation {
                    id: id.clone(),
                    description: "flexiManage job".into(),
                });
            }
            let mut map = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.insert(network.label_value(), outcome.running);
        }
        Ok(Observed {
            objects,
            operations,
        })
    }

    async fn apply(&self, conn: &Connection, object: &DesiredObject) -> Result<(), BackendError> {
        let (network, part) = keys::parse(&object.key).ok_or_else(|| foreign(&object.key))?;
        match object.key.kind.as_str() {
            PATH_LABEL => {
                if Self::label_id(conn, &label_name(&network)).await?.is_none() {
                    let body = json!({"name": label_name(&network), "type": "Tunnel", "color": "#3366cc",
                                      "description": format!("fednet network {network}")});
                    call(conn, Method::POST, "/pathlabels", Some(&body)).await?;
                }
                Ok(())
            }
            INTERFACE_LABEL => Self::label_interfaces(conn, &network, part, true).await,
            CREATE_TUNNELS => self.create(conn, &network, &object.body).await,
            TUNNEL => {
                // Only a cost change lands here: the tunnel is made again with the new cost.
                let (a, b) = part.split_once('~').ok_or_else(|| foreign(&object.key))?;
                self.delete_tunnel(conn, &network, a, b).await?;
                let body =
                    json!({"topology": "fullMesh", "devices": [a, b], "cost": object.body["cost"]});
                self.create(conn, &network, &body).await
            }
            _ => Err(foreign(&object.key)),
        }
    }

    async fn delete(&self, conn: &Connection, deletion: &Deletion) -> Result<(), BackendError> {
        let (network, part) = keys::parse(&deletion.key).ok_or_else(|| foreign(&deletion.key))?;
        match deletion.key.kind.as_str() {
            TUNNEL => {
                let (a, b) = part.split_once('~').ok_or_else(|| foreign(&deletion.key))?;
                self.delete_tunnel(conn, &network, a, b).await
            }
            INTERFACE_LABEL => Self::label_interfaces(conn, &network, part, false).await,
            PATH_LABEL => {
                if let Some(id) = Self::label_id(conn, &label_name(&network)).await? {
                    call(conn, Method::DELETE, &format!("/pathlabels/{id}"), None).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn foreign(key: &federation_core::backend::ObjectKey) -> BackendError {
    BackendError::Other(format!("{key} is not an object of the flexiManage adapter"))
}

/// Health per link from tunnel status, each side's device, RTT and drop rate (pure).
pub fn assess(model: &SdwanModel, observed: Option<&Observed>) -> Health {
    let mut health = Health::default();
    let Some(obs) = observed else {
        for site in model.sites.values() {
            health.members_not_ready.insert(
                site.member.clone(),
                "the controller could not be read".into(),
            );
        }
        return health;
    };
    let devices: BTreeMap<&str, &Value> = obs
        .of_kind(DEVICE)
        .filter_map(|o| Some((o.key.name.split_once(':')?.1, &o.body)))
        .collect();
    for site in model.sites.values() {
        match devices.get(site.edge.as_str()) {
            None => {
                health.members_not_ready.insert(
                    site.member.clone(),
                    format!("edge device {} is not in the organisation", site.edge),
                );
            }
            Some(d) if d["connected"] != Value::Bool(true) => {
                health.members_not_ready.insert(
                    site.member.clone(),
                    format!("edge device {} is offline", site.edge),
                );
            }
            Some(_) => {}
        }
    }
    let tunnels: BTreeMap<String, &Value> = obs
        .of_kind(TUNNEL)
        .filter(|o| o.owned)
        .filter_map(|o| Some((o.key.name.split_once(':')?.1.to_owned(), &o.body)))
        .collect();
    let mut link_up: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for link in &model.overlay.links {
        let (Some(a), Some(b)) = (model.sites.get(&link.a), model.sites.get(&link.b)) else {
            continue;
        };
        let (phase, message) = match tunnels.get(&pair_part(&pair(&a.edge, &b.edge))) {
            None => (LinkPhase::Pending, "no tunnel yet".to_owned()),
            Some(t) => {
                let offline: Vec<&str> = t["offline"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let figures = format!(
                    "rtt {} ms, drop rate {}",
                    t["rtt"]
                        .as_f64()
                        .map_or("unknown".into(), |v| format!("{v:.1}")),
                    t["dropRate"]
                        .as_f64()
                        .map_or("unknown".into(), |v| format!("{v:.1}"))
                );
                match t["status"].as_str() {
                    Some("Connected") => (LinkPhase::Up, figures),
                    _ if !offline.is_empty() => (
                        LinkPhase::Pending,
                        format!("device offline: {}", offline.join(", ")),
                    ),
                    Some(s) => (LinkPhase::Down, format!("tunnel {s}; {figures}")),
                    None => (LinkPhase::Pending, "tunnel status unknown".into()),
                }
            }
        };
        for m in [&link.a, &link.b] {
            link_up
                .entry(m.as_str())
                .or_default()
                .push(phase == LinkPhase::Up);
        }
        for ns in &model.namespaces {
            health.links.push(LinkHealth {
                dialer: link.a.clone(),
                acceptor: link.b.clone(),
                namespace: ns.clone(),
                phase,
                message: Some(message.clone()),
            });
        }
    }
    // A consumer reaches an exporter over the overlay (through a hub when they are both
    // spokes): ready when every tunnel of both ends is up.
    let all_up = |m: &str| {
        link_up
            .get(m)
            .is_some_and(|v| !v.is_empty() && v.iter().all(|u| *u))
    };
    for p in &model.policies {
        if p.exporter_consumes {
            health.services.push(crate::headscale::local_service(p));
        }
        for c in &p.consumers {
            let ready = all_up(&p.exporter) && all_up(c);
            health.services.push(ServiceHealth {
                service: p.service.clone(),
                consumer: c.clone(),
                ready,
                message: (!ready)
                    .then(|| format!("tunnels of {} or {c} are not all up", p.exporter)),
            });
        }
    }
    health
}

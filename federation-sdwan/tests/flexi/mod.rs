//! The flexiManage contract environment: a stateful fake controller, Prism in proxy mode with
//! the real OpenAPI spec in front of it (`--errors`: a request or response the spec does not
//! allow fails the call), and a TLS front so the adapter talks https with verification, as it
//! always does.
//!
//! ```text
//! adapter --https--> TlsFront --http--> prism proxy --http--> FakeFlexiManage
//! ```
//!
//! The fake imitates what flexiManage's server does with the calls the adapter makes (devices,
//! path labels, `POST /devices/apply` creating tunnels and jobs, `GET /jobs/{id}`, tunnels and
//! their statistics); its knobs make a job fail, keep jobs of offline devices `inactive`,
//! answer 429, and it counts applies sent without an explicit device set.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, TcpStream};

pub const TOKEN: &str = "flexi-access-key-for-tests";
pub const ORG: &str = "org-fednet";

/// What the fake holds, and its knobs.
#[derive(Default)]
pub struct FakeState {
    pub devices: Vec<Value>,
    pub labels: Vec<Value>,
    pub tunnels: Vec<Value>,
    pub jobs: BTreeMap<i64, Value>,
    next_id: u64,
    next_job: i64,
    next_num: i64,
    /// Every apply body received, in order.
    pub applies: Vec<Value>,
    /// Applies refused for naming no devices (the server would have applied to all).
    pub applies_without_devices: usize,
    /// Calls without `?org=`.
    pub calls_without_org: usize,
    /// The next apply's jobs fail.
    pub fail_next_apply: bool,
    /// Answer this many next applies with 429.
    pub throttle_applies: usize,
    /// Jobs stay `active` for this many polls.
    pub job_polls_until_done: usize,
    /// Answer jobs with a string `_id` (the spec says integer): a response Prism must refuse.
    pub off_spec_jobs: bool,
    job_polls: BTreeMap<i64, usize>,
}

impl FakeState {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{:024x}", 0xfed_0000_0000u64 + self.next_id)
    }

    /// Adds a device named `name` with one WAN interface.
    pub fn add_device(&mut self, name: &str, connected: bool) -> String {
        let id = self.id();
        let interface_id = self.id();
        self.devices.push(json!({
            "_id": id, "name": name, "machineId": format!("machine-{name}"), "isApproved": true,
            "isConnected": connected, "org": ORG, "hostname": name,
            "interfaces": [{"_id": interface_id, "name": "eth0", "devId": "pci:0000:00:03.00",
                            "type": "WAN", "IPv4": "192.0.2.1", "IPv4Mask": "24",
                            "isAssigned": true, "routing": "NONE", "pathlabels": []}],
        }));
        id
    }

    pub fn set_connected(&mut self, name: &str, connected: bool) {
        for d in &mut self.devices {
            if d["name"] == name {
                d["isConnected"] = json!(connected);
            }
        }
        self.refresh_tunnels();
    }

    fn connected(&self, id: &str) -> bool {
        self.devices
            .iter()
            .any(|d| d["_id"] == id && d["isConnected"] == true)
    }

    fn device_ref(&self, id: &str) -> Value {
        let d = self.devices.iter().find(|d| d["_id"] == id).unwrap();
        json!({"_id": id, "name": d["name"]})
    }

    fn refresh_tunnels(&mut self) {
        let status: Vec<bool> = self
            .tunnels
            .iter()
            .map(|t| {
                self.connected(t["deviceA"]["_id"].as_str().unwrap())
                    && self.connected(t["deviceB"]["_id"].as_str().unwrap())
            })
            .collect();
        for (t, up) in self.tunnels.iter_mut().zip(status) {
            t["tunnelStatus"] = json!(if up { "Connected" } else { "Not Connected" });
        }
    }

    /// Tunnels as (device name, device name) pairs, sorted.
    pub fn tunnel_pairs(&self) -> BTreeSet<(String, String)> {
        self.tunnels
            .iter()
            .map(|t| {
                let a = t["deviceA"]["name"].as_str().unwrap().to_owned();
                let b = t["deviceB"]["name"].as_str().unwrap().to_owned();
                if a <= b { (a, b) } else { (b, a) }
            })
            .collect()
    }

    fn new_job(&mut self, kind: &str, device: &str, state: &str, error: Option<&str>) -> i64 {
        self.next_job += 1;
        let id = self.next_job;
        let mut job = json!({"_id": id, "type": kind, "state": state, "priority": 0,
                             "created_at": "2026-01-01T00:00:00Z", "data": {"device": device},
                             "attempts": {"max": 3, "made": 1, "remaining": 2}});
        if let Some(e) = error {
            job["error"] = json!({"message": e});
        }
        self.jobs.insert(id, job);
        id
    }
}

pub type Shared = Arc<Mutex<FakeState>>;

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "error": message }).to_string(),
    )
        .into_response()
}

fn ok(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let mut s = state.lock().unwrap();
    if !uri
        .query()
        .unwrap_or_default()
        .contains(&format!("org={ORG}"))
    {
        s.calls_without_org += 1;
    }
    let path: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method, path.as_slice()) {
        (Method::GET, ["devices"]) => ok(StatusCode::OK, json!(s.devices)),
        (Method::PUT, ["devices", id]) => {
            let Some(d) = s.devices.iter_mut().find(|d| d["_id"] == *id) else {
                return error(StatusCode::NOT_FOUND, "device not found");
            };
            let mut next = body.clone();
            next["_id"] = json!(id);
            *d = next.clone();
            ok(StatusCode::OK, next)
        }
        (Method::GET, ["pathlabels"]) => ok(StatusCode::OK, json!(s.labels)),
        (Method::POST, ["pathlabels"]) => {
            let id = s.id();
            let mut label = body.clone();
            label["_id"] = json!(id);
            s.labels.push(label.clone());
            ok(StatusCode::CREATED, label)
        }
        (Method::DELETE, ["pathlabels", id]) => {
            let used = s.tunnels.iter().any(|t| t["pathlabel"]["_id"] == *id)
                || s.devices.iter().any(|d| {
                    d["interfaces"].as_array().unwrap().iter().any(|i| {
                        i["pathlabels"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|l| l["_id"] == *id)
                    })
                });
            if used {
                return error(StatusCode::BAD_REQUEST, "Path label is in use");
            }
            s.labels.retain(|l| l["_id"] != *id);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::POST, ["devices", "apply"]) => apply(&mut s, body),
        (Method::GET, ["jobs", id]) => {
            let id: i64 = id.parse().unwrap_or(-1);
            let threshold = s.job_polls_until_done;
            let polls = {
                let p = s.job_polls.entry(id).or_default();
                *p += 1;
                *p
            };
            let Some(job) = s.jobs.get_mut(&id) else {
                return error(StatusCode::NOT_FOUND, "job not found");
            };
            if job["state"] == "active" && polls > threshold {
                job["state"] = json!("complete");
            }
            let mut answer = job.clone();
            if s.off_spec_jobs {
                answer["_id"] = json!(format!("job-{id}"));
            }
            ok(StatusCode::OK, answer)
        }
        (Method::GET, ["tunnels"]) => ok(StatusCode::OK, json!(s.tunnels)),
        (Method::GET, ["devices", _id, "tunnelstats"]) => ok(
            StatusCode::OK,
            json!([{"time": 1_700_000_000, "interface": "All", "rx_bps": 1000.0, "tx_bps": 1000.0,
                    "rx_pps": 5.0, "tx_pps": 5.0, "drop_rate": 0.5, "rtt": 12.5, "status": "up"}]),
        ),
        _ => error(StatusCode::NOT_FOUND, "not implemented by the fake"),
    }
}

fn apply(s: &mut FakeState, body: Value) -> Response {
    if s.throttle_applies > 0 {
        s.throttle_applies -= 1;
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return r;
    }
    s.applies.push(body.clone());
    let devices: Vec<String> = body["devices"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if devices.is_empty() {
        s.applies_without_devices += 1;
        return error(
            StatusCode::BAD_REQUEST,
            "no devices: would apply to the whole organisation",
        );
    }
    if devices
        .iter()
        .any(|d| !s.devices.iter().any(|x| x["_id"] == *d))
    {
        return error(StatusCode::BAD_REQUEST, "unknown device");
    }
    let fail = std::mem::take(&mut s.fail_next_apply);
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    match method.as_str() {
        "tunnels" => {
            let meta = &body["meta"];
            if !meta["advancedOptions"].is_object() {
                return error(StatusCode::BAD_REQUEST, "advancedOptions are required");
            }
            let Some(label) = meta["pathLabels"][0].as_str() else {
                return error(StatusCode::BAD_REQUEST, "a path label is required");
            };
            let Some(label_obj) = s.labels.iter().find(|l| l["_id"] == label).cloned() else {
                return error(StatusCode::BAD_REQUEST, "unknown path label");
            };
            let pairs: Vec<(String, String)> = match meta["topology"].as_str() {
                Some("fullMesh") => devices
                    .iter()
                    .enumerate()
                    .flat_map(|(i, a)| devices[i + 1..].iter().map(move |b| (a.clone(), b.clone())))
                    .collect(),
                Some("hubAndSpoke") => {
                    let Some(hub) = meta["hub"]
                        .as_str()
                        .filter(|h| devices.iter().any(|d| d == h))
                    else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "hubAndSpoke needs a hub among the devices",
                        );
                    };
                    devices
                        .iter()
                        .filter(|d| *d != hub)
                        .map(|d| (hub.to_owned(), d.clone()))
                        .collect()
                }
                _ => return error(StatusCode::BAD_REQUEST, "unknown topology"),
            };
            let mut ids = Vec::new();
            for d in &devices {
                let state = if fail {
                    "failed"
                } else if !s.connected(d) {
                    "inactive"
                } else if s.job_polls_until_done > 0 {
                    "active"
                } else {
                    "complete"
                };
                let error = fail.then_some("tunnel creation failed on the device");
                ids.push(s.new_job("tunnels", d, state, error));
            }
            if !fail {
                for (a, b) in pairs {
                    let exists = s.tunnels.iter().any(|t| {
                        t["pathlabel"]["_id"] == label
                            && ((t["deviceA"]["_id"] == a && t["deviceB"]["_id"] == b)
                                || (t["deviceA"]["_id"] == b && t["deviceB"]["_id"] == a))
                    });
                    if exists {
                        continue;
                    }
                    s.next_num += 1;
                    let id = s.id();
                    let tunnel = json!({
                        "_id": id, "num": s.next_num, "isActive": true, "deviceAconf": false, "deviceBconf": false,
                        "deviceA": s.device_ref(&a), "deviceB": s.device_ref(&b),
                        "interfaceA": {}, "interfaceB": {}, "pathlabel": label_obj,
                        "tunnelStatus": "Not Connected", "isPending": false, "pendingReason": "",
                        "advancedOptions": meta["advancedOptions"],
                    });
                    s.tunnels.push(tunnel);
                }
                s.refresh_tunnels();
            }
            accepted(&ids)
        }
        "deltunnels" => {
            let wanted: Vec<String> = body["tunnels"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            if wanted.is_empty() {
                return error(StatusCode::BAD_REQUEST, "no tunnels named");
            }
            s.tunnels
                .retain(|t| !wanted.iter().any(|w| t["_id"] == w.as_str()));
            let ids: Vec<i64> = devices
                .iter()
                .map(|d| s.new_job("deltunnels", d, "complete", None))
                .collect();
            accepted(&ids)
        }
        _ => error(StatusCode::BAD_REQUEST, "unknown method"),
    }
}

fn accepted(ids: &[i64]) -> Response {
    let mut r = ok(
        StatusCode::ACCEPTED,
        json!({"ids": ids, "status": "completed", "message": format!("{} jobs queued", ids.len())}),
    );
    let location = format!("/api/jobs/{}", ids.first().copied().unwrap_or_default());
    r.headers_mut()
        .insert("location", location.parse().unwrap());
    r
}

/// The environment of one test.
pub struct FlexiEnv {
    pub state: Shared,
    /// `https://127.0.0.1:<port>`: the API base the adapter is given.
    pub url: String,
    pub ca_pem: String,
    _prism: tokio::process::Child,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn spec_path() -> PathBuf {
    match std::env::var_os("FEDNET_FLEXIMANAGE_SPEC") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/sdwan/fleximanage/openapi.yaml"),
    }
}

fn prism_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/prism/node_modules/.bin/prism")
}

impl FlexiEnv {
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake_port = fake.local_addr().unwrap().port();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let fake_task = tokio::spawn(async move {
            axum::serve(fake, app).await.unwrap();
        });

        let prism_port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let prism = prism_path();
        assert!(
            prism.exists(),
            "{} missing: run hack/prism/install.sh (make prism)",
            prism.display()
        );
        let mut child = tokio::process::Command::new(prism)
            .args([
                "proxy",
                spec_path().to_str().unwrap(),
                &format!("http://127.0.0.1:{fake_port}"),
            ])
            .args(["--errors", "-h", "127.0.0.1", "-p", &prism_port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("Prism is listening") {
                    return;
                }
            }
            panic!("prism exited before listening");
        })
        .await
        .expect("prism started");
        // Keep draining Prism's log (its violations show with the test's output).
        let log_task = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("✖") || line.contains("error") || line.contains("Violation") {
                    eprintln!("[prism] {line}");
                }
            }
        });

        let (front_task, url, ca_pem) = tls_front(prism_port).await;
        Self {
            state,
            url,
            ca_pem,
            _prism: child,
            _tasks: vec![fake_task, log_task, front_task],
        }
    }
}

/// A TLS terminator on loopback in front of `backend_port`, with a certificate for 127.0.0.1
/// from a CA made here: the adapter verifies it against that CA.
async fn tls_front(backend_port: u16) -> (tokio::task::JoinHandle<()>, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend_port)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (task, url, ca.pem())
}

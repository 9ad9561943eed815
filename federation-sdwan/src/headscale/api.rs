//! The few calls of Headscale's REST API (`/api/v1`, bearer API key) the adapter makes.

use crate::access::Connection;
use federation_core::backend::BackendError;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A node as Headscale reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Numeric id (a string in JSON).
    pub id: String,
    /// Host name the node registered with.
    #[serde(default)]
    pub name: String,
    /// Unique name in the tailnet (what fednet matches an edge against).
    #[serde(default)]
    pub given_name: String,
    /// Whether a client is connected now.
    #[serde(default)]
    pub online: bool,
    /// When it was last seen (RFC 3339).
    #[serde(default)]
    pub last_seen: Option<String>,
    /// Routes an administrator (or fednet) approved.
    #[serde(default)]
    pub approved_routes: Vec<String>,
    /// Routes the node's client announces.
    #[serde(default)]
    pub available_routes: Vec<String>,
    /// Routes the node serves (announced, approved, and primary).
    #[serde(default)]
    pub subnet_routes: Vec<String>,
}

impl Node {
    /// Whether this node is the edge named `edge`.
    pub fn is(&self, edge: &str) -> bool {
        self.given_name == edge || (self.given_name.is_empty() && self.name == edge)
    }
}

#[derive(Deserialize)]
struct NodeList {
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct PolicyAnswer {
    #[serde(default)]
    policy: String,
}

/// All nodes.
pub async fn list_nodes(conn: &Connection) -> Result<Vec<Node>, BackendError> {
    let list: NodeList = call(conn, Method::GET, "/api/v1/node", None).await?;
    Ok(list.nodes)
}

/// The ACL policy (HuJSON), or `None` when the controller has none.
pub async fn get_policy(conn: &Connection) -> Result<Option<String>, BackendError> {
    match call::<PolicyAnswer>(conn, Method::GET, "/api/v1/policy", None).await {
        Ok(p) => Ok(Some(p.policy)),
        Err(Answer::NoPolicy) => Ok(None),
        Err(Answer::Error(e)) => Err(e),
    }
}

/// Replaces the ACL policy.
pub async fn set_policy(conn: &Connection, policy: &str) -> Result<(), BackendError> {
    call::<Value>(
        conn,
        Method::PUT,
        "/api/v1/policy",
        Some(json!({ "policy": policy })),
    )
    .await
    .map(drop)
    .map_err(Answer::into_error)
}

/// Sets the approved routes of a node (all of them: the call replaces the list).
pub async fn approve_routes(
    conn: &Connection,
    node_id: &str,
    routes: &[String],
) -> Result<(), BackendError> {
    call::<Value>(
        conn,
        Method::POST,
        &format!("/api/v1/node/{node_id}/approve_routes"),
        Some(json!({ "routes": routes })),
    )
    .await
    .map(drop)
    .map_err(Answer::into_error)
}

/// What a call can end in besides success.
enum Answer {
    /// `GET /policy` on a controller that has none (Headscale answers 500 "acl policy not
    /// found" for it).
    NoPolicy,
    Error(BackendError),
}

impl Answer {
    fn into_error(self) -> BackendError {
        match self {
            Self::NoPolicy => BackendError::Other("the controller has no ACL policy".into()),
            Self::Error(e) => e,
        }
    }
}

impl From<Answer> for BackendError {
    fn from(a: Answer) -> Self {
        a.into_error()
    }
}

async fn call<T: DeserializeOwned>(
    conn: &Connection,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<T, Answer> {
    let url = format!("{}{path}", conn.base);
    let mut request = conn
        .http
        .request(method, &url)
        .bearer_auth(conn.token.expose());
    if let Some(b) = &body {
        request = request.json(b);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Answer::Error(conn.unreachable(path, &e)))?;
    let status = response.status();
    if status.is_success() {
        return response.json::<T>().await.map_err(|e| {
            Answer::Error(BackendError::Other(format!(
                "{}: unexpected answer from {path}: {e}",
                conn.target
            )))
        });
    }
    // Headscale's error bodies are gRPC statuses (`{"code", "message"}`) naming what is wrong
    // with the request, never credentials.
    let message = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Err(classify(conn, path, status, &message))
}

fn classify(conn: &Connection, path: &str, status: StatusCode, message: &str) -> Answer {
    let target = &conn.target;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Answer::Error(BackendError::Other(format!(
            "{target}: the controller refused the API key (HTTP {} from {path}); check the credentials Secret",
            status.as_u16()
        )));
    }
    if message.contains("acl policy not found") {
        return Answer::NoPolicy;
    }
    if message.contains("policy") && status.is_server_error() {
        // A policy the controller cannot parse or apply: retrying would not change it.
        return Answer::Error(BackendError::Other(format!(
            "{target}: the controller refused the ACL policy: {message}"
        )));
    }
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        return Answer::Error(BackendError::Other(format!(
            "{target}: HTTP {} from {path}: {message}",
            status.as_u16()
        )));
    }
    Answer::Error(conn.status_error(path, status))
}

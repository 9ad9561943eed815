//! flexiManage REST calls: bearer access key, `?org=` on every call, throttling (429) waited
//! out, asynchronous jobs polled with backoff.

use crate::access::Connection;
use federation_core::backend::BackendError;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Longest wait a `Retry-After` is honoured for inside one call; longer ones are left to the
/// engine's next attempt.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long an apply waits for its jobs before leaving them to later passes.
const JOB_WAIT: Duration = Duration::from_secs(6);

/// The answer of a call: body and headers that matter.
pub struct Answer {
    /// JSON body (`Null` when empty).
    pub body: Value,
    /// `Location`, when the server sent one.
    pub location: Option<String>,
}

/// One call. A 429 is waited out once (within 2 s) and then returned as a
/// retryable error, never as a failure of the object.
pub async fn call(
    conn: &Connection,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, BackendError> {
    for attempt in 0..2 {
        let response = send(conn, method.clone(), path, body).await?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS && attempt == 0 {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(Duration::from_millis(500), Duration::from_secs);
            if wait <= MAX_RETRY_AFTER {
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    BackendError::Other(format!(
                        "{}: unexpected answer from {path}: {e}",
                        conn.target
                    ))
                })?
            };
            return Ok(Answer { body, location });
        }
        let message = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(classify(conn, path, status, &message));
    }
    Err(conn.status_error(path, StatusCode::TOO_MANY_REQUESTS))
}

async fn send(
    conn: &Connection,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<reqwest::Response, BackendError> {
    let mut request = conn
        .http
        .request(method, format!("{}{path}", conn.base))
        .bearer_auth(conn.token.expose());
    if let Some(org) = &conn.organization {
        request = request.query(&[("org", org)]);
    }
    if let Some(b) = body {
        request = request.json(b);
    }
    request.send().await.map_err(|e| conn.unreachable(path, &e))
}

fn classify(conn: &Connection, path: &str, status: StatusCode, message: &str) -> BackendError {
    let target = &conn.target;
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => BackendError::Other(format!(
            "{target}: the controller refused the access key (HTTP {} from {path}); check the credentials Secret",
            status.as_u16()
        )),
        s if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS => BackendError::Other(
            format!("{target}: HTTP {} from {path}: {message}", s.as_u16()),
        ),
        s => conn.status_error(path, s),
    }
}

/// How the jobs of one apply ended (as far as they got within the 6 s an apply waits).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JobsOutcome {
    /// Jobs still queued or running: left to later passes.
    pub running: Vec<String>,
    /// Jobs waiting for an offline device (`inactive`): not failed.
    pub inactive: Vec<String>,
    /// Jobs that failed, with the server's error.
    pub failed: Vec<(String, String)>,
}

/// The job ids of an apply: the body's `ids`, else the last segment of `Location`.
pub fn job_ids(answer: &Answer) -> Vec<String> {
    let ids: Vec<String> = answer.body["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_i64().map_or_else(|| v.to_string(), |n| n.to_string()))
        .collect();
    if !ids.is_empty() {
        return ids;
    }
    answer
        .location
        .as_deref()
        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
        .map(|id| vec![id.to_owned()])
        .unwrap_or_default()
}

/// Polls each job (`GET /jobs/{id}`) with backoff until it ends or 6 s pass.
pub async fn wait_for_jobs(conn: &Connection, ids: &[String]) -> Result<JobsOutcome, BackendError> {
    let mut outcome = JobsOutcome::default();
    let deadline = tokio::time::Instant::now() + JOB_WAIT;
    let mut pending: Vec<String> = ids.to_vec();
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let job = call(conn, Method::GET, &format!("/jobs/{id}"), None)
                .await?
                .body;
            match job["state"].as_str().unwrap_or("unknown") {
                "complete" => {}
                "failed" => {
                    let why = match &job["error"] {
                        Value::String(s) => s.clone(),
                        Value::Null => "no reason given".to_owned(),
                        other => other.to_string(),
                    };
                    outcome.failed.push((id, why));
                }
                "inactive" => outcome.inactive.push(id),
                _ => still.push(id),
            }
        }
        pending = still;
        if pending.is_empty() || tokio::time::Instant::now() + delay > deadline {
            outcome.running = pending;
            break;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
    Ok(outcome)
}

//! Simulated members: a [`NetworkBackend`] whose pure half is the real Skupper backend and
//! whose targets are in-memory maps instead of API servers. Applying an object stores it and
//! does at once what Skupper's controller would do (status on Sites, Links, Listeners and
//! Connectors; a Secret for each Certificate), so passes converge like on real members with
//! the controller double, without any I/O. It also times the pure calls of each pass
//! ([`PassClock`]) and resets the peak-memory mark between phases.

use crate::procfs::PhaseMark;
use async_trait::async_trait;
use federation_core::api::{BackendKind, NETWORK_LABEL};
use federation_core::backend::{
    AccessRule, BackendError, Capabilities, Deletion, DesiredObject, DesiredState, Health,
    NetworkBackend, ObjectKey, ObserveScope, Observed, ObservedObject, Singleton, Target,
    ValidationIssue,
};
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::NetworkPlan;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One simulated member's objects.
type Objects = BTreeMap<ObjectKey, Value>;

/// Time and peak memory of the phases of one engine pass, as seen through the backend.
#[derive(Clone, Debug, Default)]
pub struct PassClock {
    started: Option<Instant>,
    render_started: Option<Instant>,
    assess_started: Option<Instant>,
    assess_ended: Option<Instant>,
    mark: PhaseMark,
    /// (peak, rise) resident KiB while observing (from the pass start to render).
    pub observe_peak: (u64, u64),
    /// (peak, rise) resident KiB while rendering.
    pub render_peak: (u64, u64),
    /// (peak, rise) resident KiB while assessing.
    pub assess_peak: (u64, u64),
    /// Where the write phase's peak is measured from.
    pub write_mark: PhaseMark,
}

impl PassClock {
    fn between(a: Option<Instant>, b: Option<Instant>) -> Duration {
        match (a, b) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }

    /// Observing every target (from the pass start until render).
    pub fn observe(&self) -> Duration {
        Self::between(self.started, self.render_started)
    }

    /// Rendering.
    pub fn render(&self) -> Duration {
        Self::between(self.render_started, self.assess_started)
    }

    /// Assessing health.
    pub fn assess(&self) -> Duration {
        Self::between(self.assess_started, self.assess_ended)
    }

    /// From the end of assessing until `end`: diffing, applying and deleting.
    pub fn write(&self, end: Instant) -> Duration {
        Self::between(self.assess_ended, Some(end))
    }
}

/// Members held in memory; the Skupper backend's pure half renders and assesses.
pub struct SimulatedMembers {
    pure: Arc<dyn NetworkBackend>,
    members: Mutex<HashMap<Target, Arc<Mutex<Objects>>>>,
    next_uid: AtomicU64,
    clock: Mutex<PassClock>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ready(types: &[&str]) -> Value {
    let conditions: Vec<Value> = types
        .iter()
        .chain(["Ready"].iter())
        .map(|t| json!({"type": t, "status": "True", "reason": "Ready", "message": "OK"}))
        .collect();
    json!({"status": "Ready", "message": "OK", "conditions": conditions})
}

/// What Skupper's controller would have written for `body` (of kind `key.kind`) in member
/// `member`: the object's status, and any object it creates (a Certificate's Secret).
pub fn controller_effects(
    member: &str,
    key: &ObjectKey,
    body: &mut Value,
) -> Vec<(ObjectKey, Value)> {
    let ns = key.namespace.clone().unwrap_or_default();
    let mut created = Vec::new();
    match key.kind.as_str() {
        "Site" => {
            let mut status = ready(&["Configured", "Running", "Resolved"]);
            status["defaultIssuer"] = "skupper-site-ca".into();
            status["endpoints"] = json!([
                {"name": "inter-router", "host": format!("skupper-router.{ns}.{member}.sim"), "port": "55671", "group": "skupper-router"},
                {"name": "edge", "host": format!("skupper-router.{ns}.{member}.sim"), "port": "45671", "group": "skupper-router"}
            ]);
            body["status"] = status;
        }
        "Certificate" => {
            body["status"] = ready(&[]);
            let secret = ObjectKey::namespaced("v1", "Secret", &ns, &key.name);
            let pem = "c2ltdWxhdGVk"; // "simulated", base64
            created.push((
                secret,
                json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": key.name, "namespace": ns,
                                 "annotations": {"internal.skupper.io/controlled": "true"}},
                    "data": {"tls.crt": pem, "tls.key": pem, "ca.crt": pem}
                }),
            ));
        }
        "Link" => body["status"] = ready(&["Configured", "Operational"]),
        "Listener" => {
            body["status"] = ready(&["Configured", "Matched"]);
            body["status"]["hasMatchingConnector"] = true.into();
        }
        "Connector" => {
            body["status"] = ready(&["Configured", "Matched"]);
            body["status"]["hasMatchingListener"] = true.into();
        }
        _ => {}
    }
    created
}

impl SimulatedMembers {
    /// Simulated members behind the pure half of `pure`.
    pub fn new(pure: Arc<dyn NetworkBackend>) -> Self {
        Self {
            pure,
            members: Mutex::new(HashMap::new()),
            next_uid: AtomicU64::new(1),
            clock: Mutex::new(PassClock::default()),
        }
    }

    fn member(&self, target: &Target) -> Arc<Mutex<Objects>> {
        lock(&self.members)
            .entry(target.clone())
            .or_default()
            .clone()
    }

    /// Objects held by every simulated member.
    pub fn object_count(&self) -> usize {
        lock(&self.members).values().map(|m| lock(m).len()).sum()
    }

    /// Starts timing a pass (and resets the peak-memory mark).
    pub fn start_pass(&self) {
        *lock(&self.clock) = PassClock {
            mark: PhaseMark::begin(),
            started: Some(Instant::now()),
            ..PassClock::default()
        };
    }

    /// The clock of the pass started last.
    pub fn clock(&self) -> PassClock {
        lock(&self.clock).clone()
    }

    fn stored(&self, member: &str, key: &ObjectKey, mut body: Value) -> Vec<(ObjectKey, Value)> {
        let uid = self.next_uid.fetch_add(1, Ordering::Relaxed);
        body["metadata"]["uid"] = format!("sim-{uid}").into();
        body["metadata"]["resourceVersion"] = uid.to_string().into();
        let mut out = controller_effects(member, key, &mut body);
        for (_, extra) in &mut out {
            let uid = self.next_uid.fetch_add(1, Ordering::Relaxed);
            extra["metadata"]["uid"] = format!("sim-{uid}").into();
        }
        out.push((key.clone(), body));
        out
    }
}

#[async_trait]
impl NetworkBackend for SimulatedMembers {
    fn kind(&self) -> BackendKind {
        self.pure.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.pure.capabilities()
    }

    fn validate(&self, plan: &NetworkPlan) -> Vec<ValidationIssue> {
        self.pure.validate(plan)
    }

    fn targets(&self, plan: &NetworkPlan) -> BTreeSet<Target> {
        self.pure.targets(plan)
    }

    fn render(
        &self,
        plan: &NetworkPlan,
        observed: &BTreeMap<Target, Observed>,
    ) -> Result<DesiredState, BackendError> {
        {
            let mut c = lock(&self.clock);
            c.observe_peak = c.mark.end();
            c.mark = PhaseMark::begin();
            c.render_started = Some(Instant::now());
        }
        let out = self.pure.render(plan, observed);
        let mut c = lock(&self.clock);
        c.render_peak = c.mark.end();
        c.mark = PhaseMark::begin();
        c.assess_started = Some(Instant::now());
        out
    }

    fn assess(&self, plan: &NetworkPlan, observed: &BTreeMap<Target, Observed>) -> Health {
        let out = self.pure.assess(plan, observed);
        let mut c = lock(&self.clock);
        c.assess_peak = c.mark.end();
        c.write_mark = PhaseMark::begin();
        c.assess_ended = Some(Instant::now());
        out
    }

    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        let label = scope.network.label_value();
        let member = self.member(target);
        let objects = lock(&member)
            .iter()
            .filter(|(k, _)| {
                k.namespace
                    .as_ref()
                    .is_some_and(|ns| scope.namespaces.contains(ns))
            })
            .map(|(k, body)| ObservedObject {
                key: k.clone(),
                owned: body["metadata"]["labels"][NETWORK_LABEL] == label.as_str(),
                body: body.clone(),
            })
            .collect();
        Ok(Observed::of(objects))
    }

    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        let name = target.member().unwrap_or_default().to_owned();
        let member = self.member(target);
        let mut stored = lock(&member);
        for o in objects {
            for (key, body) in self.stored(&name, &o.key, o.body.clone()) {
                stored.insert(key, body);
            }
        }
        Ok(())
    }

    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        let member = self.member(target);
        let mut stored = lock(&member);
        for d in objects {
            stored.remove(&d.key);
        }
        Ok(())
    }

    fn waits_for_links(&self, key: &ObjectKey) -> bool {
        self.pure.waits_for_links(key)
    }

    fn candidate_targets(&self, member: &str) -> Vec<Target> {
        self.pure.candidate_targets(member)
    }

    fn singletons(&self, plan: &NetworkPlan) -> Vec<Singleton> {
        self.pure.singletons(plan)
    }

    fn deletion_order(&self, key: &ObjectKey) -> u8 {
        self.pure.deletion_order(key)
    }

    fn member_access(&self) -> Vec<AccessRule> {
        self.pure.member_access()
    }

    fn member_kinds(&self) -> Vec<ManagedKind> {
        self.pure.member_kinds()
    }

    fn own_namespaces(&self) -> Vec<String> {
        self.pure.own_namespaces()
    }

    fn teardown_phase(&self, target: &Target) -> u8 {
        self.pure.teardown_phase(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_controller_reports_ready_and_issues_certificate_secrets() {
        let site = ObjectKey::namespaced("skupper.io/v2alpha1", "Site", "shop", "s");
        let mut body = json!({"metadata": {"name": "s"}});
        assert!(controller_effects("east", &site, &mut body).is_empty());
        assert_eq!(body["status"]["defaultIssuer"], "skupper-site-ca");
        assert_eq!(
            body["status"]["endpoints"][0]["host"],
            "skupper-router.shop.east.sim"
        );
        assert!(
            body["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        );
        let cert = ObjectKey::namespaced("skupper.io/v2alpha1", "Certificate", "shop", "l");
        let mut body = json!({});
        let created = controller_effects("central", &cert, &mut body);
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].0.kind, "Secret");
        assert!(created[0].1["data"]["ca.crt"].is_string());
        // The Secret is Skupper's, not the network's: no ownership label.
        assert!(created[0].1["metadata"]["labels"].is_null());
    }
}

//! `fedctl doctor`: checks the hub and every member and says, for each finding, how to fix it.
//!
//! The checks read the hub with the caller's credentials and each member with the credentials
//! in its kubeconfig Secret (as the operator would), so a permission missing for the operator's
//! identity in a member shows up here even when the caller is a cluster admin there.

use crate::table::{Cell, Table, Tone};
use federation_core::api::{
    BackendKind, ConditionExt, FederatedNetwork, MemberCluster, REACHABLE, crds,
};
use federation_core::cluster::{
    MemberRegistry, REASON_CREDENTIALS_UNAVAILABLE, REASON_INVALID_CREDENTIALS, REASON_UNREACHABLE,
    describe_client_error,
};
use federation_core::kubernetes::ManagedKind;
use federation_core::plan::{PlanInput, plan};
use federation_skupper::kinds::OWNED;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The fix for CRDs missing or differing on the hub.
pub const CRD_FIX: &str = "fedctl crd | kubectl apply -f -";

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Fine.
    #[serde(rename = "OK")]
    Ok,
    /// Not checkable from here; says why. Not a problem by itself.
    #[serde(rename = "SKIP")]
    Skip,
    /// Possibly wrong, or could not be decided (e.g. the caller may not read something).
    #[serde(rename = "WARN")]
    Warn,
    /// Wrong: the fix says what to do.
    #[serde(rename = "FAIL")]
    Fail,
}

impl Verdict {
    fn cell(self) -> Cell {
        match self {
            Self::Ok => Cell::toned("OK", Tone::Good),
            Self::Skip => Cell::toned("SKIP", Tone::Dim),
            Self::Warn => Cell::toned("WARN", Tone::Warn),
            Self::Fail => Cell::toned("FAIL", Tone::Bad),
        }
    }
}

/// One finding: which check, on what, how it came out, what was seen and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Finding {
    /// The check, e.g. `hub-crd`, `member-permissions`.
    pub check: String,
    /// What it was run on, e.g. `member/east` or `crd/memberclusters.fednet.io`.
    pub subject: String,
    /// The outcome.
    pub result: Verdict,
    /// What was seen.
    pub detail: String,
    /// What to do about it (empty when OK).
    pub fix: String,
}

impl Finding {
    fn new(
        check: &str,
        subject: impl Into<String>,
        result: Verdict,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check: check.to_owned(),
            subject: subject.into(),
            result,
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    fn ok(check: &str, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, subject, Verdict::Ok, detail, "")
    }
}

/// Why doctor itself could not run (exit code 2), as opposed to problems it found.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A read of the hub that every other check depends on failed.
    #[error("{what}: {reason} (is --kubeconfig/--context the hub, and may you read it?)")]
    Hub {
        /// The request, in words.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

/// What `fedctl doctor` was asked.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Namespace of the operator's Lease.
    pub lease_namespace: String,
    /// Name of the operator's Lease.
    pub lease_name: String,
    /// How long each member may take to answer one check.
    pub member_timeout: Duration,
    /// A member token expiring within this time is a warning (the operator's default).
    pub credential_warning: Duration,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        Self {
            lease_namespace: "fednet-system".into(),
            lease_name: "fednet-operator".into(),
            member_timeout: Duration::from_secs(5),
            credential_warning: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Whether any finding is a failure (`fedctl doctor` then exits 1).
pub fn has_failures(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.result == Verdict::Fail)
}

/// The findings as a table: CHECK, SUBJECT, RESULT, DETAIL, FIX; coloured only if `colour`.
pub fn findings_text(findings: &[Finding], colour: bool) -> String {
    let mut t = Table::new(&["CHECK", "SUBJECT", "RESULT", "DETAIL", "FIX"]);
    for f in findings {
        t.row(vec![
            f.check.as_str().into(),
            f.subject.as_str().into(),
            f.result.cell(),
            f.detail.as_str().into(),
            f.fix.as_str().into(),
        ]);
    }
    t.render(colour)
}

/// Runs every check against the hub behind `hub`.
pub async fn run(hub: &Client, options: &DoctorOptions) -> Result<Vec<Finding>, DoctorError> {
    let mut findings = check_hub_crds(hub).await?;
    findings.push(check_lease(hub, options).await);
    let members = match Api::<MemberCluster>::all(hub.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        // The CRD check above has already failed and said how to install it.
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(findings),
        Err(e) => return Err(hub_error("listing MemberClusters", &e)),
    };
    let networks = match Api::<FederatedNetwork>::all(hub.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.is_not_found() => Vec::new(),
        Err(e) => return Err(hub_error("listing FederatedNetworks", &e)),
    };
    let memberships = memberships(&networks, &members);
    let registry = MemberRegistry::new(hub.clone());
    let mut members = members;
    members.sort_by_key(ResourceExt::name_any);
    // One member at a time: a hung member costs its timeouts once, and the output order is
    // stable; the checks within a member run concurrently.
    for member in &members {
        let membership = memberships
            .get(&member.name_any())
            .cloned()
            .unwrap_or_default();
        findings.extend(check_member(&registry, member, &membership, options).await);
    }
    findings.extend(check_cidrs(&networks, &members));
    Ok(findings)
}

fn hub_error(what: &str, e: &kube::Error) -> DoctorError {
    DoctorError::Hub {
        what: what.to_owned(),
        reason: describe_client_error(e),
    }
}

/// Compares the fednet CRDs on the hub with those this fedctl would install.
async fn check_hub_crds(hub: &Client) -> Result<Vec<Finding>, DoctorError> {
    let api = Api::<CustomResourceDefinition>::all(hub.clone());
    let mut out = Vec::new();
    for want in crds() {
        let name = want.name_any();
        let subject = format!("crd/{name}");
        let live = match api.get_opt(&name).await {
            Ok(live) => live,
            Err(kube::Error::Api(s)) if s.code == 403 => {
                out.push(Finding::new(
                    "hub-crd",
                    subject,
                    Verdict::Warn,
                    "not checked: you may not read CustomResourceDefinitions on the hub",
                    "run doctor with an identity that may get customresourcedefinitions",
                ));
                continue;
            }
            Err(e) => return Err(hub_error(&format!("reading CRD {name}"), &e)),
        };
        out.push(match live {
            None => Finding::new(
                "hub-crd",
                subject,
                Verdict::Fail,
                "not installed on the hub",
                CRD_FIX,
            ),
            Some(live) => match crd_difference(&want, &live) {
                None => Finding::ok("hub-crd", subject, "installed, same versions and schema"),
                Some(diff) => Finding::new("hub-crd", subject, Verdict::Fail, diff, CRD_FIX),
            },
        });
    }
    Ok(out)
}

/// How the live CRD differs from the wanted one in served versions or schema, if it does.
pub fn crd_difference(
    want: &CustomResourceDefinition,
    live: &CustomResourceDefinition,
) -> Option<String> {
    let served = |crd: &CustomResourceDefinition| -> BTreeMap<String, serde_json::Value> {
        crd.spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| {
                let schema = v
                    .schema
                    .as_ref()
                    .and_then(|s| serde_json::to_value(&s.open_api_v3_schema).ok())
                    .unwrap_or(serde_json::Value::Null);
                (v.name.clone(), schema)
            })
            .collect()
    };
    let (want, live) = (served(want), served(live));
    let want_names: Vec<&String> = want.keys().collect();
    let live_names: Vec<&String> = live.keys().collect();
    if want_names != live_names {
        return Some(format!(
            "serves versions {live_names:?}, this fedctl serves {want_names:?}"
        ));
    }
    let differing: Vec<&str> = want
        .iter()
        .filter(|(v, schema)| live.get(*v) != Some(*schema))
        .map(|(v, _)| v.as_str())
        .collect();
    (!differing.is_empty()).then(|| {
        format!(
            "schema of {} differs from this fedctl's (another fednet version?)",
            differing.join(", ")
        )
    })
}

/// Whether the operator holds a fresh Lease.
async fn check_lease(hub: &Client, options: &DoctorOptions) -> Finding {
    let subject = format!("lease/{}/{}", options.lease_namespace, options.lease_name);
    // The Deployment's name depends on the Helm release, so the fix names the namespace only.
    let not_running = format!(
        "the operator is not running or cannot renew: check its pods and logs in namespace {}",
        options.lease_namespace
    );
    let lease = match Api::<Lease>::namespaced(hub.clone(), &options.lease_namespace)
        .get_opt(&options.lease_name)
        .await
    {
        Ok(lease) => lease,
        Err(e) => {
            return Finding::new(
                "operator-lease",
                subject,
                Verdict::Warn,
                format!("not checked: {}", describe_client_error(&e)),
                "run doctor with an identity that may get leases there, or set --lease-namespace",
            );
        }
    };
    let Some(spec) = lease.and_then(|l| l.spec) else {
        return Finding::new(
            "operator-lease",
            subject,
            Verdict::Fail,
            "no Lease",
            not_running.as_str(),
        );
    };
    let holder = spec.holder_identity.filter(|h| !h.is_empty());
    let now = k8s_openapi::jiff::Timestamp::now();
    let (Some(holder), Some(renewed)) = (holder, spec.renew_time) else {
        return Finding::new(
            "operator-lease",
            subject,
            Verdict::Fail,
            "no holder, or never renewed",
            not_running.as_str(),
        );
    };
    let lasts = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let age = now.as_second() - renewed.0.as_second();
    if age > lasts {
        Finding::new(
            "operator-lease",
            subject,
            Verdict::Fail,
            format!("held by {holder}, last renewed {age}s ago, lasts {lasts}s: expired"),
            not_running,
        )
    } else {
        Finding::ok(
            "operator-lease",
            subject,
            format!("held by {holder}, renewed {age}s ago (lasts {lasts}s)"),
        )
    }
}

/// What a member takes part in: the backends of its networks and the namespaces they span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Backends of the member's networks.
    pub backends: BTreeSet<BackendKind>,
    /// Namespaces the member's networks span (where its identity needs access).
    pub namespaces: BTreeSet<String>,
}

/// What each member takes part in, from the networks' plans. Members no network could be
/// planned for are left out.
fn memberships(
    networks: &[FederatedNetwork],
    members: &[MemberCluster],
) -> BTreeMap<String, Membership> {
    let unhealthy = BTreeSet::new();
    let mut out: BTreeMap<String, Membership> = BTreeMap::new();
    for net in networks {
        let input = PlanInput {
            network: net,
            member_clusters: members,
            services: &[],
            unhealthy: &unhealthy,
        };
        if let Ok(p) = plan(input) {
            for m in &p.members {
                let entry = out.entry(m.name.clone()).or_default();
                entry.backends.insert(p.backend.kind);
                entry.namespaces.extend(p.namespaces.iter().cloned());
            }
        }
    }
    out
}

/// The checks of one member, as its kubeconfig Secret's identity.
async fn check_member(
    registry: &MemberRegistry,
    member: &MemberCluster,
    membership: &Membership,
    options: &DoctorOptions,
) -> Vec<Finding> {
    let backends = &membership.backends;
    let name = member.name_any();
    let subject = format!("member/{name}");
    let mut out = vec![reachable_condition(member, &subject)];
    let r = &member.spec.kubeconfig_secret_ref;
    let secret = format!("{}/{}", r.namespace, r.name);
    let client = match registry.client(member).await {
        Ok(c) => {
            out.push(Finding::ok(
                "member-kubeconfig",
                &subject,
                format!("Secret {secret} holds a usable kubeconfig"),
            ));
            c
        }
        Err(e) => {
            out.push(Finding::new(
                "member-kubeconfig",
                &subject,
                Verdict::Fail,
                format!("{e}; nothing else checked in this member"),
                format!(
                    "put a self-contained kubeconfig (inline CA, token or client certificate) \
                     under key {:?} of Secret {secret} on the hub",
                    r.key_or_default()
                ),
            ));
            return out;
        }
    };
    out.push(credential_expiry(registry, &name, &subject, options).await);
    let timeout = options.member_timeout;
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(info)) => out.push(Finding::ok(
            "member-reachable",
            &subject,
            format!("answered /version: {}", info.git_version),
        )),
        failed => {
            let why = match failed {
                Ok(Err(e)) => describe_client_error(&e),
                _ => format!("no answer within {timeout:?}"),
            };
            out.push(Finding::new(
                "member-reachable",
                &subject,
                Verdict::Fail,
                format!("unreachable: {why}; permissions and CRDs not checked"),
                format!(
                    "check that the member's API server runs and that the server in Secret \
                     {secret} can be reached from the hub"
                ),
            ));
            return out;
        }
    }
    let skupper = backends.is_empty() || backends.contains(&BackendKind::Skupper);
    if !skupper {
        out.push(Finding::new(
            "member-backend",
            &subject,
            Verdict::Skip,
            format!(
                "not checked: only in networks of {backends:?}, which this fedctl has no checks for"
            ),
            "",
        ));
        return out;
    }
    let (permissions, backend_crds) = futures::join!(
        check_permissions(&client, &subject, &membership.namespaces, timeout),
        check_backend_crds(&client, &subject, &name, timeout)
    );
    out.push(permissions);
    out.push(backend_crds);
    out.push(Finding::new(
        "skupper-controller",
        &subject,
        Verdict::Skip,
        "not checked: the Skupper controller runs in pods, which doctor does not read",
        "",
    ));
    out
}

/// What the member's `Reachable` condition on the hub says.
fn reachable_condition(member: &MemberCluster, subject: &str) -> Finding {
    let check = "member-condition";
    let condition = member
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(REACHABLE));
    let Some(c) = condition else {
        return Finding::new(
            check,
            subject,
            Verdict::Warn,
            "never probed by the operator",
            "check that the operator runs (see operator-lease)",
        );
    };
    let said = format!("Reachable={} ({}): {}", c.status, c.reason, c.message);
    match (c.status.as_str(), c.reason.as_str()) {
        ("True", _) => Finding::ok(check, subject, format!("Reachable=True ({})", c.reason)),
        (_, REASON_CREDENTIALS_UNAVAILABLE) => Finding::new(
            check,
            subject,
            Verdict::Fail,
            said,
            "create the kubeconfig Secret the MemberCluster references, readable by the operator",
        ),
        (_, REASON_INVALID_CREDENTIALS) => Finding::new(
            check,
            subject,
            Verdict::Fail,
            said,
            "replace the kubeconfig in the Secret with a valid, self-contained one",
        ),
        ("False", REASON_UNREACHABLE) => Finding::new(
            check,
            subject,
            Verdict::Fail,
            said,
            "the operator plans this member as unhealthy; see member-reachable",
        ),
        _ => Finding::new(
            check,
            subject,
            Verdict::Warn,
            said,
            "probes are failing; see member-reachable",
        ),
    }
}

/// `group` and `version` of a kind's `apiVersion` (`""` for the core group).
fn group_version(kind: &ManagedKind) -> (&'static str, &'static str) {
    kind.api_version
        .rsplit_once('/')
        .unwrap_or(("", kind.api_version))
}

/// `plural.group`, or `plural` for the core group: how RBAC and CRDs name a resource.
fn resource_name(kind: &ManagedKind) -> String {
    match group_version(kind).0 {
        "" => kind.plural.to_owned(),
        group => format!("{}.{group}", kind.plural),
    }
}

/// When the member's token expires, from the kubeconfig in its Secret.
async fn credential_expiry(
    registry: &MemberRegistry,
    member: &str,
    subject: &str,
    options: &DoctorOptions,
) -> Finding {
    let check = "member-credentials-expiry";
    let now = k8s_openapi::jiff::Timestamp::now();
    let window = k8s_openapi::jiff::SignedDuration::try_from(options.credential_warning)
        .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
    match registry.credential_expiry(member).await {
        None => Finding::ok(
            check,
            subject,
            "the kubeconfig's credentials carry no expiry (a client certificate or a token without exp)",
        ),
        Some(at) if at <= now => Finding::new(
            check,
            subject,
            Verdict::Fail,
            format!("the member's token expired at {at}"),
            format!(
                "mint a new one: fedctl join {member} --member-context CONTEXT --namespace ..."
            ),
        ),
        Some(at) if federation_core::cluster::expiring(at, now, window) => Finding::new(
            check,
            subject,
            Verdict::Warn,
            format!("the member's token expires at {at}"),
            format!(
                "renew it before then: fedctl join {member} --member-context CONTEXT --namespace ..."
            ),
        ),
        Some(at) => Finding::ok(
            check,
            subject,
            format!("the member's token expires at {at}"),
        ),
    }
}

/// Whether the member's identity may use every verb the backend needs on every kind it owns
/// in each namespace its networks span (the access `fedctl join` grants; see
/// `deploy/member-rbac/`).
async fn check_permissions(
    client: &Client,
    subject: &str,
    namespaces: &BTreeSet<String>,
    timeout: Duration,
) -> Finding {
    let check = "member-permissions";
    if namespaces.is_empty() {
        return Finding::new(
            check,
            subject,
            Verdict::Skip,
            "not checked: the member is in no network, so no namespace needs access yet",
            "",
        );
    }
    let checks = crate::access::required_checks(&federation_skupper::member_access(), namespaces);
    let Ok(results) = tokio::time::timeout(timeout, crate::access::review(client, &checks)).await
    else {
        return Finding::new(
            check,
            subject,
            Verdict::Warn,
            format!("not checked: no answer to the access reviews within {timeout:?}"),
            "run doctor again",
        );
    };
    if let Some(failed) = results.iter().find(|r| r.allowed.is_err()) {
        return Finding::new(
            check,
            subject,
            Verdict::Warn,
            format!(
                "not checked: access review for {} in {} failed: {}",
                failed.check.what(),
                failed.check.place(),
                failed.allowed.as_ref().err().map_or("", String::as_str)
            ),
            "run doctor again",
        );
    }
    let denied: Vec<String> = results
        .iter()
        .filter(|r| !r.as_expected())
        .map(|r| format!("{} in {}", r.check.what(), r.check.place()))
        .collect();
    let list: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    if denied.is_empty() {
        Finding::ok(
            check,
            subject,
            format!(
                "the kubeconfig's identity may do all {} verb/resource pairs in {}",
                results.len(),
                list.join(", ")
            ),
        )
    } else {
        Finding::new(
            check,
            subject,
            Verdict::Fail,
            format!("denied: {}", denied.join(", ")),
            format!(
                "grant them to the kubeconfig's identity in the member: fedctl join MEMBER --namespace {} (or kubectl apply -n NAMESPACE -f deploy/member-rbac/skupper-namespace.yaml)",
                list.join(",")
            ),
        )
    }
}

/// Whether the member serves the Skupper kinds the backend writes. Read through discovery,
/// which every authenticated identity may use, rather than the CRDs themselves, which the
/// backend's identity may not read.
async fn check_backend_crds(
    client: &Client,
    subject: &str,
    member: &str,
    timeout: Duration,
) -> Finding {
    let check = "member-backend-crds";
    let mut missing = Vec::new();
    let mut by_version: BTreeMap<&str, Vec<&ManagedKind>> = BTreeMap::new();
    for kind in OWNED.iter().filter(|k| !group_version(k).0.is_empty()) {
        by_version.entry(kind.api_version).or_default().push(kind);
    }
    for (api_version, kinds) in by_version {
        let served: BTreeSet<String> =
            match tokio::time::timeout(timeout, client.list_api_group_resources(api_version)).await
            {
                Ok(Ok(list)) => list.resources.into_iter().map(|r| r.name).collect(),
                Ok(Err(kube::Error::Api(s))) if s.is_not_found() => BTreeSet::new(),
                Ok(Err(e)) => {
                    return Finding::new(
                        check,
                        subject,
                        Verdict::Warn,
                        format!(
                            "not checked: discovery of {api_version} failed: {}",
                            describe_client_error(&e)
                        ),
                        "run doctor again",
                    );
                }
                Err(_) => {
                    return Finding::new(
                        check,
                        subject,
                        Verdict::Warn,
                        format!("not checked: no answer to discovery within {timeout:?}"),
                        "run doctor again",
                    );
                }
            };
        missing.extend(
            kinds
                .iter()
                .filter(|k| !served.contains(k.plural))
                .map(|k| resource_name(k)),
        );
    }
    if missing.is_empty() {
        Finding::ok(
            check,
            subject,
            "every Skupper kind the backend writes is served",
        )
    } else {
        Finding::new(
            check,
            subject,
            Verdict::Fail,
            format!("CRD missing in {member}: {}", missing.join(", ")),
            format!("install Skupper v2's CRDs (skupper.io/v2alpha1) in member {member}"),
        )
    }
}

/// Whether a backend connects members whose pod or service CIDRs overlap. Skupper connects
/// services, not addresses; Submariner only with Globalnet; SD-WAN routes addresses.
fn tolerates_overlap(net: &FederatedNetwork) -> bool {
    let backend = &net.spec.backend;
    match backend.kind {
        BackendKind::Skupper => federation_skupper::capabilities().overlapping_cidrs,
        BackendKind::Submariner => backend.submariner.as_ref().is_some_and(|s| s.globalnet),
        BackendKind::SdWan => false,
    }
}

/// Overlapping CIDRs between the members of each network whose backend cannot connect them.
fn check_cidrs(networks: &[FederatedNetwork], members: &[MemberCluster]) -> Vec<Finding> {
    let check = "network-cidrs";
    let unhealthy = BTreeSet::new();
    let mut out = Vec::new();
    for net in networks {
        let subject = format!(
            "network/{}/{}",
            net.namespace().unwrap_or_default(),
            net.name_any()
        );
        if tolerates_overlap(net) {
            out.push(Finding::ok(
                check,
                subject,
                format!(
                    "backend {} connects overlapping CIDRs",
                    net.spec.backend.kind
                ),
            ));
            continue;
        }
        let input = PlanInput {
            network: net,
            member_clusters: members,
            services: &[],
            unhealthy: &unhealthy,
        };
        let p = match plan(input) {
            Ok(p) => p,
            Err(e) => {
                out.push(Finding::new(
                    check,
                    subject,
                    Verdict::Warn,
                    format!("not checked: the network cannot be planned: {e}"),
                    "see fedctl status for the network's conditions",
                ));
                continue;
            }
        };
        let overlaps = p.overlapping_cidrs();
        if overlaps.is_empty() {
            out.push(Finding::ok(check, subject, "no overlapping member CIDRs"));
        } else {
            let pairs: Vec<String> = overlaps
                .iter()
                .map(|(a, b, cidr)| format!("{a} and {b} overlap in {cidr}"))
                .collect();
            out.push(Finding::new(
                check,
                subject,
                Verdict::Fail,
                pairs.join("; "),
                format!(
                    "give the members disjoint pod/service CIDRs, or use a backend that \
                     connects overlapping CIDRs (Skupper, Submariner with globalnet) instead \
                     of {}",
                    net.spec.backend.kind
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    fn member(name: &str, pods: &str) -> MemberCluster {
        serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
            "metadata": {"name": name},
            "spec": {"clusterId": name, "kubeconfigSecretRef": {"namespace": "ns", "name": name},
                     "network": {"podCidrs": [pods]}}}))
        .unwrap()
    }

    fn network(backend: serde_json::Value) -> FederatedNetwork {
        serde_json::from_value(json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "FederatedNetwork",
            "metadata": {"name": "n", "namespace": "ns"},
            "spec": {"backend": backend, "members": {"names": ["a", "b"]}, "namespaces": ["app"],
                     "topology": {"type": "FullMesh"}}}))
        .unwrap()
    }

    #[test]
    fn overlaps_fail_only_where_the_backend_cannot_connect_them() {
        let members = [member("a", "10.0.0.0/16"), member("b", "10.0.5.0/24")];
        let sub = network(json!({"type": "Submariner", "submariner": {"broker": "a"}}));
        let found = check_cidrs(&[sub], &members);
        assert_eq!(found[0].result, Verdict::Fail, "{found:?}");
        assert!(found[0].detail.contains("a and b overlap in 10.0.0.0/16"));
        let global = network(
            json!({"type": "Submariner", "submariner": {"broker": "a", "globalnet": true}}),
        );
        assert_eq!(check_cidrs(&[global], &members)[0].result, Verdict::Ok);
        let skupper = network(json!({"type": "Skupper"}));
        assert_eq!(check_cidrs(&[skupper], &members)[0].result, Verdict::Ok);
        let disjoint = [member("a", "10.0.0.0/16"), member("b", "10.1.0.0/16")];
        let sub = network(json!({"type": "Submariner", "submariner": {"broker": "a"}}));
        assert_eq!(check_cidrs(&[sub], &disjoint)[0].result, Verdict::Ok);
    }

    #[test]
    fn a_crd_differs_by_served_versions_or_schema() {
        let want = crds().remove(0);
        assert_eq!(crd_difference(&want, &want), None);
        let mut live = want.clone();
        live.spec.versions[0].name = "v1beta9".into();
        assert!(
            crd_difference(&want, &live)
                .unwrap()
                .contains("serves versions")
        );
        let mut live = want.clone();
        if let Some(s) = live.spec.versions[0].schema.as_mut() {
            s.open_api_v3_schema = Some(Default::default());
        }
        assert!(
            crd_difference(&want, &live)
                .unwrap()
                .contains("schema of v1alpha1 differs")
        );
    }

    #[test]
    fn the_table_colours_results_only_when_asked() {
        let f = [
            Finding::ok("hub-crd", "crd/x", "fine"),
            Finding::new("member-reachable", "member/e", Verdict::Fail, "down", "fix"),
        ];
        let plain = findings_text(&f, false);
        assert!(!plain.contains('\x1b'));
        assert_eq!(
            plain,
            "CHECK             SUBJECT   RESULT  DETAIL  FIX\n\
             hub-crd           crd/x     OK      fine\n\
             member-reachable  member/e  FAIL    down    fix\n"
        );
        assert!(findings_text(&f, true).contains("\x1b[31mFAIL\x1b[0m"));
        assert!(has_failures(&f) && !has_failures(&f[..1]));
    }
}

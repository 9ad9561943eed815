//! The reconciliation engine: executes a [`NetworkPlan`] through a [`NetworkBackend`].
//!
//! # Expected flow
//! One call of [`Engine::reconcile`] is one level-triggered pass:
//! 1. check the plan against the backend's capabilities and its own validation; an invalid
//!    plan returns at once with [`ReconcileReport::invalid`] set: nothing is read or written;
//! 2. observe every target the network has recorded in its inventory (the planned ones and
//!    the ones that left the plan) concurrently;
//! 3. render the desired objects from the plan and the observations (pure);
//! 4. per target, apply the objects whose fields differ from what was observed, and delete
//!    owned objects that are neither desired nor retained, in teardown-phase order;
//! 5. report per target and per object, with the health the backend read off the
//!    observations.
//!
//! Callers run passes until [`ReconcileReport::is_converged`]: multi-step protocols (a link
//! needs the peer's credentials, which exist only after the peer's certificate was issued)
//! converge over several passes.
//!
//! # Guarantees
//! - **Partial observation freezes, never deletes.** A target that cannot be read is
//!   neither written nor cleaned. What other targets hold *because of* it is kept exactly as
//!   it is: the backend puts it in [`DesiredState::retained`], and on top of that nothing
//!   link-related ([`NetworkBackend::waits_for_links`]) is removed from a target while a
//!   peer of one of its planned links could not be read (make-before-break never trusts a
//!   link's health while one end is unknown). Test: `tests/tests/engine_faults.rs`
//!   `a_paused_hub_freezes_every_spoke_link_and_ready_returns_without_recreation`.
//! - **Inventory.** The engine writes only to targets the caller says are recorded in the
//!   network's inventory (the controller records them in status before the first write);
//!   a planned target that is not recorded is reported, not written. Targets recorded but
//!   no longer planned are cleaned up, and a pass that finds one empty says so
//!   ([`ReconcileReport::released_targets`]) so the caller can forget it.
//! - **Isolation**: each target is handled under its own timeout, with at most
//!   [`EngineConfig::concurrency`] targets at once; one failing or hung target is reported
//!   as such and never blocks the others.
//! - **One bad object fails alone.** Objects are applied and deleted one by one; an object
//!   the target rejects (validation, permission, an object in the way that fednet did not
//!   make) is named in [`TargetReport::rejected`] and the target's other objects, and its
//!   orphan cleanup, go on. Only a target that stops answering stops its own writes.
//! - **Retries**: retryable errors (connection problems, 409, 429, 5xx) are retried with
//!   exponential backoff within the target's time budget; others are reported at once.
//! - **No no-op writes**: an object is applied only when a field it sets differs from the
//!   observed object, or when the object still carries a field fednet applied earlier and no
//!   longer sets (read from `managedFields`; applying removes it), so a pass over a converged
//!   network writes nothing.
//! - **Make before break**: an object the backend marks as link-related is deleted only once
//!   every planned link of its target is up and both ends were read this pass; a target that
//!   left the plan is cleaned up without waiting.
//! - **Deletes are exact**: each carries the uid it was observed with.
//! - **Order**: deletions on a target of teardown phase `p` wait while a target of a lower
//!   phase still has deletions to make or is leaving and not known empty
//!   ([`NetworkBackend::teardown_phase`]); [`Engine::teardown`] removes phase by phase.
//! - **Operations in flight**: a target reporting [`Observed::operations`] gets no writes
//!   and is reported [`TargetOutcome::InFlight`], never converged, until they finish.
//!
//! # Caveats
//! - The health in a report is read before the pass's own writes; the next pass sees them.
//! - A retained object is frozen, not repaired: drift on it waits until its dependency can
//!   be read again.

mod report;

pub use report::{
    ReconcileReport, RejectedObject, TargetOutcome, TargetReport, TeardownOutcome, TeardownReport,
};

use crate::api::{FIELD_MANAGER, LinkPhase};
use crate::backend::{
    BackendError, Deletion, DesiredObject, DesiredState, Health, NetworkBackend, ObjectKey,
    ObserveScope, Observed, Target, check_capabilities, drops_applied_fields, is_subset,
};
use crate::plan::NetworkPlan;
use backon::{ExponentialBuilder, Retryable};
use futures::{StreamExt, stream};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Tuning of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Targets handled at once.
    pub concurrency: usize,
    /// Time budget of one target for one phase (observe, or write), retries included.
    pub target_timeout: Duration,
    /// Attempts per operation, the first included.
    pub max_attempts: usize,
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            target_timeout: Duration::from_secs(20),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Executes plans through one backend.
#[derive(Clone)]
pub struct Engine {
    backend: Arc<dyn NetworkBackend>,
    config: EngineConfig,
}

enum Failure {
    Error(BackendError),
    TimedOut,
    /// Not tried: the member did not answer its last probe.
    Silent(String),
}

impl Failure {
    fn outcome(&self) -> TargetOutcome {
        match self {
            Self::Error(BackendError::Gone { reason, .. }) => TargetOutcome::Gone {
                reason: reason.clone(),
            },
            Self::Error(e) => TargetOutcome::Failed {
                error: e.to_string(),
            },
            Self::TimedOut => TargetOutcome::TimedOut,
            Self::Silent(reason) => TargetOutcome::Unreachable {
                reason: reason.clone(),
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(e) => write!(f, "{e}"),
            Self::TimedOut => f.write_str("timed out"),
            Self::Silent(reason) => f.write_str(reason),
        }
    }
}

/// What to do on one target this pass.
#[derive(Default)]
struct TargetWork {
    apply: Vec<DesiredObject>,
    delete: Vec<Deletion>,
    waiting: usize,
    retained: usize,
}

/// What writing to one target did.
#[derive(Default)]
struct WriteResult {
    applied: usize,
    deleted: usize,
    rejected: Vec<RejectedObject>,
    /// Set when the target stopped answering: the remaining writes were not attempted.
    broken: Option<Failure>,
}

impl Engine {
    /// An engine over `backend`.
    pub fn new(backend: Arc<dyn NetworkBackend>, config: EngineConfig) -> Self {
        Self { backend, config }
    }

    /// The backend this engine drives.
    pub fn backend(&self) -> &Arc<dyn NetworkBackend> {
        &self.backend
    }

    /// One pass over a network. `recorded` are the targets in the network's inventory: the
    /// only ones written to. Recorded targets that are not planned are cleaned up.
    pub async fn reconcile(
        &self,
        plan: &NetworkPlan,
        recorded: &BTreeSet<Target>,
    ) -> ReconcileReport {
        let mut invalid = check_capabilities(&self.backend.capabilities(), plan);
        invalid.extend(self.backend.validate(plan));
        if !invalid.is_empty() {
            info!(network = %plan.network, issues = invalid.len(), "plan refused by backend validation");
            return ReconcileReport {
                invalid,
                ..Default::default()
            };
        }

        let planned = self.backend.targets(plan);
        let leaving: BTreeSet<Target> = recorded.difference(&planned).cloned().collect();
        let mut report = ReconcileReport::default();
        for target in planned.difference(recorded) {
            warn!(network = %plan.network, %target, "planned target not in the inventory; not written");
            report.targets.insert(
                target.clone(),
                TargetReport::new(
                    TargetOutcome::Failed {
                        error: "not recorded in the network's inventory yet".into(),
                    },
                    false,
                ),
            );
        }
        let all: Vec<Target> = recorded.iter().cloned().collect();

        let mut observed = BTreeMap::new();
        let scope = plan.observe_scope();
        // A member that did not answer its last probe is not waited for: unreadable at once.
        let (silent, readable): (Vec<Target>, Vec<Target>) = all
            .iter()
            .cloned()
            .partition(|t| t.member().is_some_and(|m| plan.silent_members.contains(m)));
        let skipped = silent.into_iter().map(|target| {
            let failure =
                Failure::Silent("its last probe failed; not read until it answers again".into());
            (target, Err(failure))
        });
        let results = self.observe_all(&readable, &scope).await;
        for (target, result) in results.into_iter().chain(skipped) {
            match result {
                Ok(obs) => {
                    observed.insert(target, obs);
                }
                Err(failure) => {
                    let leaving = leaving.contains(&target);
                    report
                        .targets
                        .insert(target, TargetReport::new(failure.outcome(), leaving));
                }
            }
        }

        let desired = match self.backend.render(plan, &observed) {
            Ok(desired) => desired,
            Err(e) => {
                warn!(network = %plan.network, error = %e, "render failed; nothing written");
                report.render_error = Some(e.to_string());
                return report;
            }
        };
        report.health = self.backend.assess(plan, &observed);

        let unobserved: BTreeSet<&str> = all
            .iter()
            .filter(|t| !observed.contains_key(*t))
            .filter_map(Target::member)
            .collect();
        let mut work: BTreeMap<Target, TargetWork> = observed
            .iter()
            .filter(|(_, obs)| obs.operations.is_empty())
            .map(|(target, obs)| {
                let links_safe =
                    leaving.contains(target) || links_up_for(target, &report.health, &unobserved);
                (target.clone(), self.diff(target, &desired, obs, links_safe))
            })
            .collect();
        self.order_deletions(&mut work, &leaving, &observed);

        for (target, obs) in observed.iter().filter(|(_, o)| !o.operations.is_empty()) {
            let operations = obs
                .operations
                .iter()
                .map(|o| format!("{} ({})", o.description, o.id))
                .collect();
            debug!(%target, "operations in flight; nothing written");
            report.targets.insert(
                target.clone(),
                TargetReport::new(
                    TargetOutcome::InFlight { operations },
                    leaving.contains(target),
                ),
            );
        }
        let counts: BTreeMap<Target, (usize, usize)> = work
            .iter()
            .map(|(t, w)| (t.clone(), (w.waiting, w.retained)))
            .collect();
        for (target, result) in self.write_all(work).await {
            let (waiting, retained) = counts.get(&target).copied().unwrap_or_default();
            let outcome = match result.broken {
                Some(failure) => failure.outcome(),
                None if result.applied + result.deleted == 0 && !result.rejected.is_empty() => {
                    TargetOutcome::Failed {
                        error: format!("{} objects refused", result.rejected.len()),
                    }
                }
                None if result.applied + result.deleted == 0 => TargetOutcome::Converged,
                None => TargetOutcome::Changed {
                    applied: result.applied,
                    deleted: result.deleted,
                },
            };
            for r in &result.rejected {
                warn!(%target, object = %r.key, error = %r.error, "object rejected");
            }
            if let TargetOutcome::Failed { error } = &outcome {
                warn!(%target, %error, "target failed");
            }
            let leaving = leaving.contains(&target);
            report.targets.insert(
                target,
                TargetReport {
                    outcome,
                    leaving,
                    orphans_waiting: waiting,
                    retained,
                    rejected: result.rejected,
                },
            );
        }
        debug!(network = %plan.network, writes = report.writes(), "pass done");
        report
    }

    /// Removes everything the network owns from `targets`, lower teardown phases first: a
    /// phase starts only once every target of the phases before it is clean. Call again
    /// until [`TeardownReport::is_complete`]; unreachable targets are reported, not skipped;
    /// a target that is gone for good counts as done ([`TeardownOutcome::Gone`]).
    pub async fn teardown(
        &self,
        scope: &ObserveScope,
        targets: &BTreeSet<Target>,
    ) -> TeardownReport {
        let mut phases: BTreeMap<u8, Vec<Target>> = BTreeMap::new();
        for t in targets {
            phases
                .entry(self.backend.teardown_phase(t))
                .or_default()
                .push(t.clone());
        }
        let mut report = TeardownReport::default();
        let mut blocked_by: Option<u8> = None;
        for (phase, targets) in phases {
            if let Some(earlier) = blocked_by {
                for t in targets {
                    let why = format!("waiting for the targets of teardown phase {earlier}");
                    report.targets.insert(t, Err(why));
                }
                continue;
            }
            let results = self
                .for_each_target(targets, |target| self.teardown_target(target, scope))
                .await;
            for (t, r) in results {
                let r = match r {
                    Ok(outcome) => Ok(outcome),
                    Err(Failure::Error(BackendError::Gone { reason, .. })) => {
                        Ok(TeardownOutcome::Gone { reason })
                    }
                    Err(f) => Err(f.to_string()),
                };
                if r.is_err() {
                    blocked_by = Some(phase);
                }
                report.targets.insert(t, r);
            }
        }
        report
    }

    async fn teardown_target(
        &self,
        target: Target,
        scope: &ObserveScope,
    ) -> Result<TeardownOutcome, BackendError> {
        let backend = self.backend.clone();
        let obs = self.retrying(|| backend.observe(&target, scope)).await?;
        if let Some(op) = obs.operations.first() {
            return Err(BackendError::Other(format!(
                "waiting for {} ({}) to finish",
                op.description, op.id
            )));
        }
        let mut owned: Vec<Deletion> = obs
            .objects
            .iter()
            .filter(|o| o.owned)
            .map(|o| o.deletion())
            .collect();
        owned.sort_by_key(|d| backend.deletion_order(&d.key));
        if owned.is_empty() {
            return Ok(TeardownOutcome::Clean { deleted: 0 });
        }
        for d in &owned {
            self.retrying(|| backend.delete(&target, std::slice::from_ref(d)))
                .await?;
        }
        // Objects with finalizers of their own (an upstream controller's cleanup) linger:
        // only a read that finds none proves the target clean.
        let after = self.retrying(|| backend.observe(&target, scope)).await?;
        let left = after.objects.iter().filter(|o| o.owned).count();
        if left > 0 {
            return Err(BackendError::Other(format!(
                "{left} objects still being removed"
            )));
        }
        Ok(TeardownOutcome::Clean {
            deleted: owned.len(),
        })
    }

    fn diff(
        &self,
        target: &Target,
        desired: &DesiredState,
        observed: &Observed,
        links_safe: bool,
    ) -> TargetWork {
        let wanted: &[DesiredObject] = desired.targets.get(target).map_or(&[], Vec::as_slice);
        let retained = |k: &ObjectKey| desired.is_retained(target, k);
        let apply: Vec<DesiredObject> = wanted
            .iter()
            .filter(|d| !retained(&d.key))
            .filter(|d| {
                observed.get(&d.key).is_none_or(|o| {
                    !o.owned
                        || !is_subset(&d.body, &o.body)
                        || drops_applied_fields(&d.body, &o.body, FIELD_MANAGER)
                })
            })
            .cloned()
            .collect();
        let wanted_keys: BTreeSet<&ObjectKey> = wanted.iter().map(|d| &d.key).collect();
        let kept = observed
            .objects
            .iter()
            .filter(|o| o.owned && retained(&o.key))
            .count();
        let (mut delete, waiting): (Vec<Deletion>, Vec<Deletion>) = observed
            .objects
            .iter()
            .filter(|o| o.owned && !wanted_keys.contains(&o.key) && !retained(&o.key))
            .map(|o| o.deletion())
            .partition(|d| {
                links_safe
                    || !self.backend.waits_for_links(&d.key)
                    || desired.is_replaced(target, &d.key)
            });
        delete.sort_by_key(|d| self.backend.deletion_order(&d.key));
        TargetWork {
            apply,
            delete,
            waiting: waiting.len(),
            retained: kept,
        }
    }

    /// Holds back the deletions of targets whose teardown phase is later than that of a
    /// target which still has deletions to make or is leaving without having been read.
    fn order_deletions(
        &self,
        work: &mut BTreeMap<Target, TargetWork>,
        leaving: &BTreeSet<Target>,
        observed: &BTreeMap<Target, Observed>,
    ) {
        let busy_phases = work
            .iter()
            .filter(|(_, w)| !w.delete.is_empty())
            .map(|(t, _)| t)
            .chain(leaving.iter().filter(|t| {
                observed
                    .get(*t)
                    .is_none_or(|o| o.objects.iter().any(|x| x.owned))
            }))
            .map(|t| self.backend.teardown_phase(t));
        let Some(first_busy) = busy_phases.min() else {
            return;
        };
        for (target, w) in work.iter_mut() {
            if self.backend.teardown_phase(target) > first_busy && !w.delete.is_empty() {
                w.waiting += w.delete.len();
                w.delete.clear();
            }
        }
    }

    async fn write_all(&self, work: BTreeMap<Target, TargetWork>) -> Vec<(Target, WriteResult)> {
        let targets: Vec<Target> = work.keys().cloned().collect();
        let results = self
            .for_each_target(targets, |target| {
                let w = work.get(&target);
                async move {
                    let Some(w) = w else {
                        return Ok(WriteResult::default());
                    };
                    Ok(self.write_target(&target, w).await)
                }
            })
            .await;
        results
            .into_iter()
            .map(|(target, r)| {
                let r = r.unwrap_or_else(|failure| WriteResult {
                    broken: Some(failure),
                    ..WriteResult::default()
                });
                (target, r)
            })
            .collect()
    }

    /// Applies, then deletes, object by object. An object the target refuses is recorded
    /// and skipped; a target that stops answering (retries exhausted on a retryable error)
    /// ends the writes to it.
    async fn write_target(&self, target: &Target, w: &TargetWork) -> WriteResult {
        let backend = self.backend.clone();
        let mut result = WriteResult::default();
        for object in &w.apply {
            match self
                .retrying(|| backend.apply(target, std::slice::from_ref(object)))
                .await
            {
                Ok(()) => result.applied += 1,
                Err(e) if e.is_retryable() => {
                    result.broken = Some(Failure::Error(e));
                    return result;
                }
                Err(e) => result.rejected.push(RejectedObject {
                    key: object.key.clone(),
                    error: e.to_string(),
                }),
            }
        }
        for d in &w.delete {
            match self
                .retrying(|| backend.delete(target, std::slice::from_ref(d)))
                .await
            {
                Ok(()) => result.deleted += 1,
                Err(e) if e.is_retryable() => {
                    result.broken = Some(Failure::Error(e));
                    return result;
                }
                Err(e) => result.rejected.push(RejectedObject {
                    key: d.key.clone(),
                    error: e.to_string(),
                }),
            }
        }
        result
    }

    async fn observe_all(
        &self,
        targets: &[Target],
        scope: &ObserveScope,
    ) -> Vec<(Target, Result<Observed, Failure>)> {
        self.for_each_target(targets.to_vec(), |target| {
            let backend = self.backend.clone();
            async move { self.retrying(|| backend.observe(&target, scope)).await }
        })
        .await
    }

    /// Runs `op` for each target, at most `concurrency` at once, each under the timeout.
    async fn for_each_target<T, F, Fut>(
        &self,
        targets: Vec<Target>,
        op: F,
    ) -> Vec<(Target, Result<T, Failure>)>
    where
        F: Fn(Target) -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let timeout = self.config.target_timeout;
        stream::iter(targets)
            .map(|target| {
                let fut = op(target.clone());
                async move {
                    let result = match tokio::time::timeout(timeout, fut).await {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(e)) => Err(Failure::Error(e)),
                        Err(_) => {
                            warn!(%target, ?timeout, "target timed out");
                            Err(Failure::TimedOut)
                        }
                    };
                    (target, result)
                }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await
    }

    async fn retrying<T, F, Fut>(&self, op: F) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.config.initial_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_max_times(self.config.max_attempts.saturating_sub(1))
            .with_jitter();
        op.retry(policy)
            .when(BackendError::is_retryable)
            .notify(|e, after| debug!(error = %e, ?after, "retrying"))
            .await
    }
}

/// Whether every planned link involving the target's member is up, with both of its ends
/// read this pass. Targets that are not a member (a broker, a controller) wait for every
/// link.
fn links_up_for(target: &Target, health: &Health, unobserved: &BTreeSet<&str>) -> bool {
    let member = match target {
        Target::Member(m) => Some(m.as_str()),
        Target::Broker(_) | Target::Controller(_) => None,
    };
    health
        .links
        .iter()
        .filter(|l| member.is_none_or(|m| l.dialer == m || l.acceptor == m))
        .all(|l| {
            l.phase == LinkPhase::Up
                && !unobserved.contains(l.dialer.as_str())
                && !unobserved.contains(l.acceptor.as_str())
        })
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;

//! The reconciliation engine: executes a [`NetworkPlan`] through a [`NetworkBackend`].
//!
//! # Expected flow
//! One call of [`Engine::reconcile`] is one level-triggered pass:
//! 1. check the plan against the backend's capabilities and its own validation; an invalid
//!    plan returns at once with [`ReconcileReport::invalid`] set: nothing is read or written;
//! 2. observe every target (planned ones and ones that left the plan) concurrently;
//! 3. render the desired objects from the plan and the observations (pure);
//! 4. per target, apply the objects whose fields differ from what was observed, and delete
//!    owned objects that are no longer desired;
//! 5. report per target, with the health the backend read off the observations.
//!
//! Callers run passes until [`ReconcileReport::is_converged`]: multi-step protocols (a link
//! needs the peer's credentials, which exist only after the peer's certificate was issued)
//! converge over several passes.
//!
//! # Guarantees
//! - **Isolation**: each target is handled under its own timeout, with at most
//!   [`EngineConfig::concurrency`] targets at once; one failing or hung target is reported
//!   as such and never blocks the others.
//! - **Retries**: retryable errors (connection problems, 409, 429, 5xx) are retried with
//!   exponential backoff within the target's time budget; others are reported at once.
//! - **No no-op writes**: an object is applied only when a field it sets differs from the
//!   observed object, or when the object still carries a field fednet applied earlier and no
//!   longer sets (read from `managedFields`; applying removes it), so a pass over a converged
//!   network writes nothing.
//! - **Make before break**: an object the backend marks as link-related
//!   ([`NetworkBackend::waits_for_links`]) is deleted only once every planned link of its
//!   target is up; a target that left the plan is cleaned up without waiting.
//! - **Orphan cleanup by ownership**: what is deleted is found by the network's ownership
//!   label on the target, not remembered, so a lost status does not leak objects.
//!
//! # Caveats
//! - A target that cannot be observed is not rendered against: its objects are neither
//!   applied nor deleted in that pass.
//! - The health in a report is read before the pass's own writes; the next pass sees them.

mod report;

pub use report::{ReconcileReport, TargetOutcome, TargetReport, TeardownReport};

use crate::api::{FIELD_MANAGER, LinkPhase};
use crate::backend::{
    BackendError, DesiredObject, Health, NetworkBackend, ObjectKey, Observed, Target,
    check_capabilities, drops_applied_fields, is_subset,
};
use crate::plan::{NetworkPlan, NetworkRef};
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
}

impl Failure {
    fn outcome(&self) -> TargetOutcome {
        match self {
            Self::Error(e) => TargetOutcome::Failed {
                error: e.to_string(),
            },
            Self::TimedOut => TargetOutcome::TimedOut,
        }
    }
}

struct TargetWork {
    target: Target,
    apply: Vec<DesiredObject>,
    delete: Vec<ObjectKey>,
    waiting: usize,
    leaving: bool,
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

    /// One pass over a network. `known_targets` are targets the network may still own
    /// objects on (from its last status); those not in the plan are cleaned up.
    pub async fn reconcile(
        &self,
        plan: &NetworkPlan,
        known_targets: &BTreeSet<Target>,
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
        let leaving: BTreeSet<Target> = known_targets.difference(&planned).cloned().collect();
        let all: Vec<Target> = planned.union(&leaving).cloned().collect();

        let observations = self.observe_all(&all, &plan.network).await;
        let mut report = ReconcileReport::default();
        let mut observed = BTreeMap::new();
        for (target, result) in observations {
            match result {
                Ok(obs) => {
                    observed.insert(target, obs);
                }
                Err(failure) => {
                    let leaving = leaving.contains(&target);
                    report.targets.insert(
                        target,
                        TargetReport {
                            outcome: failure.outcome(),
                            leaving,
                            orphans_waiting: 0,
                        },
                    );
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

        let work: Vec<TargetWork> = observed
            .iter()
            .map(|(target, obs)| {
                let wanted: &[DesiredObject] =
                    desired.targets.get(target).map_or(&[], Vec::as_slice);
                self.diff(
                    target,
                    wanted,
                    obs,
                    leaving.contains(target),
                    &report.health,
                )
            })
            .collect();
        for (target, outcome, w) in self.write_all(work).await {
            report.targets.insert(
                target,
                TargetReport {
                    outcome,
                    leaving: w.0,
                    orphans_waiting: w.1,
                },
            );
        }
        debug!(network = %plan.network, writes = report.writes(), "pass done");
        report
    }

    /// Removes everything the network owns from `targets`. Call again until
    /// [`TeardownReport::is_complete`]; unreachable targets are reported, not skipped.
    pub async fn teardown(
        &self,
        network: &NetworkRef,
        targets: &BTreeSet<Target>,
    ) -> TeardownReport {
        let results = self
            .for_each_target(targets.iter().cloned().collect(), |target| {
                let backend = self.backend.clone();
                let network = network.clone();
                async move {
                    let obs = self.retrying(|| backend.observe(&target, &network)).await?;
                    let owned: Vec<ObjectKey> = obs
                        .objects
                        .iter()
                        .filter(|o| o.owned)
                        .map(|o| o.key.clone())
                        .collect();
                    if !owned.is_empty() {
                        self.retrying(|| backend.delete(&target, &owned)).await?;
                    }
                    Ok(owned.len())
                }
            })
            .await;
        TeardownReport {
            targets: results
                .into_iter()
                .map(|(t, r)| {
                    let r = r.map_err(|f| match f {
                        Failure::Error(e) => e.to_string(),
                        Failure::TimedOut => "timed out".to_owned(),
                    });
                    (t, r)
                })
                .collect(),
        }
    }

    fn diff(
        &self,
        target: &Target,
        wanted: &[DesiredObject],
        observed: &Observed,
        leaving: bool,
        health: &Health,
    ) -> TargetWork {
        let apply: Vec<DesiredObject> = wanted
            .iter()
            .filter(|d| {
                observed.get(&d.key).is_none_or(|o| {
                    !is_subset(&d.body, &o.body)
                        || drops_applied_fields(&d.body, &o.body, FIELD_MANAGER)
                })
            })
            .cloned()
            .collect();
        let wanted_keys: BTreeSet<&ObjectKey> = wanted.iter().map(|d| &d.key).collect();
        let orphans = observed
            .objects
            .iter()
            .filter(|o| o.owned && !wanted_keys.contains(&o.key));
        let links_up = leaving || links_up_for(target, health);
        let (delete, waiting): (Vec<ObjectKey>, Vec<ObjectKey>) = orphans
            .map(|o| o.key.clone())
            .partition(|k| links_up || !self.backend.waits_for_links(k));
        TargetWork {
            target: target.clone(),
            apply,
            delete,
            waiting: waiting.len(),
            leaving,
        }
    }

    async fn write_all(
        &self,
        work: Vec<TargetWork>,
    ) -> Vec<(Target, TargetOutcome, (bool, usize))> {
        let meta: BTreeMap<Target, (bool, usize, usize, usize)> = work
            .iter()
            .map(|w| {
                (
                    w.target.clone(),
                    (w.leaving, w.waiting, w.apply.len(), w.delete.len()),
                )
            })
            .collect();
        let by_target: BTreeMap<Target, TargetWork> =
            work.into_iter().map(|w| (w.target.clone(), w)).collect();
        let results = self
            .for_each_target(meta.keys().cloned().collect(), |target| {
                let backend = self.backend.clone();
                let w = by_target.get(&target);
                async move {
                    let Some(w) = w else { return Ok(()) };
                    if !w.apply.is_empty() {
                        self.retrying(|| backend.apply(&target, &w.apply)).await?;
                    }
                    if !w.delete.is_empty() {
                        self.retrying(|| backend.delete(&target, &w.delete)).await?;
                    }
                    Ok(())
                }
            })
            .await;
        results
            .into_iter()
            .map(|(target, result)| {
                let (leaving, waiting, applied, deleted) =
                    meta.get(&target).copied().unwrap_or_default();
                let outcome = match result {
                    Ok(()) if applied + deleted == 0 => TargetOutcome::Converged,
                    Ok(()) => TargetOutcome::Changed { applied, deleted },
                    Err(failure) => failure.outcome(),
                };
                if let TargetOutcome::Failed { error } = &outcome {
                    warn!(%target, %error, "target failed");
                }
                (target, outcome, (leaving, waiting))
            })
            .collect()
    }

    async fn observe_all(
        &self,
        targets: &[Target],
        network: &NetworkRef,
    ) -> Vec<(Target, Result<Observed, Failure>)> {
        self.for_each_target(targets.to_vec(), |target| {
            let backend = self.backend.clone();
            async move { self.retrying(|| backend.observe(&target, network)).await }
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

/// Whether every planned link involving the target's member is up. Targets that are not a
/// member (a broker, a controller) wait for every link.
fn links_up_for(target: &Target, health: &Health) -> bool {
    let member = match target {
        Target::Member(m) => Some(m.as_str()),
        Target::Broker(_) | Target::Controller(_) => None,
    };
    health
        .links
        .iter()
        .filter(|l| member.is_none_or(|m| l.dialer == m || l.acceptor == m))
        .all(|l| l.phase == LinkPhase::Up)
}

#[cfg(test)]
mod tests;

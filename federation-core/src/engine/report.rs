//! What one engine pass did, per target.

use crate::backend::{Health, ObjectKey, Target, ValidationIssue};
use serde::Serialize;
use std::collections::BTreeMap;

/// How one target fared in a pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum TargetOutcome {
    /// Observed and found matching: nothing written.
    Converged,
    /// Objects were written or deleted this pass.
    Changed {
        /// Objects created or updated.
        applied: usize,
        /// Objects deleted.
        deleted: usize,
    },
    /// An operation failed (after retries when retryable).
    Failed {
        /// What failed; never contains secret values.
        error: String,
    },
    /// The target did not answer within the per-target timeout.
    TimedOut,
    /// The target was not read because its member is known not to answer (its last probe
    /// failed): frozen, not waited for.
    Unreachable {
        /// Why it was not read.
        reason: String,
    },
    /// The target is gone for good (its `MemberCluster` was removed): nothing of the
    /// network can be reached there any more.
    Gone {
        /// Why it counts as gone.
        reason: String,
    },
    /// The target is still carrying out operations; nothing was written this pass.
    InFlight {
        /// The operations, for status.
        operations: Vec<String>,
    },
}

impl TargetOutcome {
    /// Whether the target is in trouble (failed, timed out, not answering, gone).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Self::Failed { .. } | Self::TimedOut | Self::Unreachable { .. } | Self::Gone { .. }
        )
    }
}

/// One object a target refused, and why (never with secret values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedObject {
    /// The object.
    pub key: ObjectKey,
    /// The target's answer.
    pub error: String,
}

/// The report of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// What happened.
    pub outcome: TargetOutcome,
    /// Whether the target left the plan (its objects are being removed).
    pub leaving: bool,
    /// Owned objects no longer desired, kept until the target's new links are up
    /// (make before break) or until targets of an earlier teardown phase are clean.
    pub orphans_waiting: usize,
    /// Owned objects kept exactly as they are because what they depend on could not be read.
    pub retained: usize,
    /// Objects the target refused this pass; the others were written.
    pub rejected: Vec<RejectedObject>,
}

impl TargetReport {
    /// A report with only an outcome.
    pub fn new(outcome: TargetOutcome, leaving: bool) -> Self {
        Self {
            outcome,
            leaving,
            orphans_waiting: 0,
            retained: 0,
            rejected: Vec::new(),
        }
    }

    /// Whether the target is in trouble: its outcome is an error, or it refused objects.
    pub fn is_failing(&self) -> bool {
        self.outcome.is_error() || !self.rejected.is_empty()
    }
}

/// The result of one engine pass over a network.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Why the network cannot be served; when not empty nothing was read or written.
    pub invalid: Vec<ValidationIssue>,
    /// Per-target results.
    pub targets: BTreeMap<Target, TargetReport>,
    /// Health as read off the targets this pass (before this pass's writes).
    pub health: Health,
    /// Render failure, if rendering failed (nothing was written then).
    pub render_error: Option<String>,
}

impl ReconcileReport {
    /// Number of writes (applies and deletes) made this pass.
    pub fn writes(&self) -> usize {
        self.targets
            .values()
            .map(|t| match t.outcome {
                TargetOutcome::Changed { applied, deleted } => applied + deleted,
                _ => 0,
            })
            .sum()
    }

    /// Targets that failed, timed out, are gone or refused objects.
    pub fn failing_targets(&self) -> impl Iterator<Item = (&Target, &TargetReport)> {
        self.targets.iter().filter(|(_, r)| r.is_failing())
    }

    /// Whether the pass found everything in place: valid, nothing written, nothing failing,
    /// nothing waiting for removal or kept frozen. A leaving target found empty counts as
    /// done.
    pub fn is_converged(&self) -> bool {
        self.invalid.is_empty()
            && self.render_error.is_none()
            && self.targets.values().all(|t| {
                t.outcome == TargetOutcome::Converged
                    && t.orphans_waiting == 0
                    && t.retained == 0
                    && t.rejected.is_empty()
            })
    }

    /// Targets that left the plan and hold nothing of the network any more (found empty
    /// this pass), or are gone for good: the inventory can forget them.
    pub fn released_targets(&self) -> impl Iterator<Item = &Target> {
        self.targets
            .iter()
            .filter(|(_, r)| {
                r.leaving
                    && (matches!(r.outcome, TargetOutcome::Gone { .. })
                        || (r.outcome == TargetOutcome::Converged
                            && r.orphans_waiting == 0
                            && r.rejected.is_empty()))
            })
            .map(|(t, _)| t)
    }
}

/// How tearing down one target ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum TeardownOutcome {
    /// A read found nothing of the network left; `deleted` objects were removed this call.
    Clean {
        /// Objects deleted by this call.
        deleted: usize,
    },
    /// The target is gone for good; whatever was there cannot be reached.
    Gone {
        /// Why it counts as gone.
        reason: String,
    },
}

/// The result of tearing a network down.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeardownReport {
    /// Per target: clean (or gone), or why not yet.
    pub targets: BTreeMap<Target, Result<TeardownOutcome, String>>,
}

impl TeardownReport {
    /// Whether every target is clean.
    pub fn is_complete(&self) -> bool {
        self.targets.values().all(Result::is_ok)
    }

    /// Targets still holding objects of the network, with why.
    pub fn pending(&self) -> impl Iterator<Item = (&Target, &String)> {
        self.targets
            .iter()
            .filter_map(|(t, r)| r.as_ref().err().map(|e| (t, e)))
    }

    /// Targets found gone for good, with why.
    pub fn gone(&self) -> impl Iterator<Item = (&Target, &String)> {
        self.targets.iter().filter_map(|(t, r)| match r {
            Ok(TeardownOutcome::Gone { reason }) => Some((t, reason)),
            _ => None,
        })
    }
}

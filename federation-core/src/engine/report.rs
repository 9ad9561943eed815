//! What one engine pass did, per target.

use crate::backend::{Health, Target, ValidationIssue};
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
}

impl TargetOutcome {
    /// Whether the target is in trouble (failed or timed out).
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::TimedOut)
    }
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
    /// (make before break).
    pub orphans_waiting: usize,
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

    /// Targets that failed or timed out.
    pub fn failing_targets(&self) -> impl Iterator<Item = (&Target, &TargetReport)> {
        self.targets.iter().filter(|(_, r)| r.outcome.is_error())
    }

    /// Whether the pass found everything in place: valid, nothing written, nothing failing,
    /// nothing waiting for removal. A leaving target found empty counts as done.
    pub fn is_converged(&self) -> bool {
        self.invalid.is_empty()
            && self.render_error.is_none()
            && self
                .targets
                .values()
                .all(|t| t.outcome == TargetOutcome::Converged && t.orphans_waiting == 0)
    }
}

/// The result of tearing a network down.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeardownReport {
    /// Per target: `Ok(n)` objects were deleted and none remain, or why not.
    pub targets: BTreeMap<Target, Result<usize, String>>,
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
}

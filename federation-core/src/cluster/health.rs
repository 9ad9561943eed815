//! When a member counts as unhealthy for planning, and the in-memory streaks of failed probes
//! that decide it.
//!
//! One failed probe says little: a garbage-collection pause, a rolling restart of the member's
//! API server or a lost packet all look like it. Marking a member unhealthy moves spokes
//! between hubs, so a member becomes unhealthy only after `threshold` probes in a row failed
//! **and** the first of them is at least `min_duration` old (the second guards against probes
//! that come faster than the probe interval, e.g. reconciles triggered by edits).
//!
//! What the `Reachable` condition of a `MemberCluster` says:
//!
//! | status | reason | meaning | unhealthy for planning |
//! |---|---|---|---|
//! | `True` | `Probed` | the last probe answered | no |
//! | `False` | `Unreachable` | probes failed past the threshold | **yes** |
//! | `Unknown` | `ProbeFailing` | probes fail, threshold not crossed, and no earlier verdict to keep | no |
//! | `Unknown` | `CredentialsUnavailable` | the kubeconfig Secret could not be read on the hub | no |
//! | `Unknown` | `InvalidCredentials` | the kubeconfig in the Secret is refused or unusable | no |
//!
//! Below the threshold a failing probe keeps an earlier `True`/`Probed` or
//! `False`/`Unreachable` verdict exactly as it is, so the status is not rewritten: every
//! `MemberCluster` status write re-triggers every network, and a member that fails one probe in
//! two would otherwise rewrite it on every probe. The streak itself lives only in memory (in the
//! controller's [`Context`](crate::controller::Context)); after a restart a member that was
//! `Unreachable` stays so until a probe answers, and one that was reachable needs a full new
//! streak. Credential problems say nothing about the member itself, so they neither count in
//! nor reset the streak, and never make a member unhealthy.

use crate::api::{ConditionExt, MemberCluster, REACHABLE, RESPONDING};
use k8s_openapi::jiff::Timestamp;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// `Reachable` reason: the last probe answered.
pub const REASON_PROBED: &str = "Probed";
/// `Reachable` reason: probes failed past the threshold; the only reason that makes a member
/// unhealthy for planning.
pub const REASON_UNREACHABLE: &str = "Unreachable";
/// `Reachable` reason: probes fail, the threshold is not crossed yet.
pub const REASON_PROBE_FAILING: &str = "ProbeFailing";
/// `Reachable` reason: the kubeconfig Secret could not be read on the hub.
pub const REASON_CREDENTIALS_UNAVAILABLE: &str = "CredentialsUnavailable";
/// `Reachable` reason: the kubeconfig in the Secret is refused or cannot be used.
pub const REASON_INVALID_CREDENTIALS: &str = "InvalidCredentials";

/// Whether the network planner must treat `member` as unhealthy: its `Reachable` condition is
/// `False` with reason `Unreachable`, which the member controller writes only once probes have
/// failed past the threshold. A member never probed, one whose probes fail below the threshold
/// and one whose credentials cannot be had are healthy for planning.
pub fn member_unhealthy(member: &MemberCluster) -> bool {
    member
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(REACHABLE))
        .is_some_and(|c| c.status == "False" && c.reason == REASON_UNREACHABLE)
}

/// Whether `member`'s last probe failed (its `Responding` condition is `False`), whatever
/// the threshold: a pass does not wait for such a member, and spokes of such a hub also dial
/// one that answers. Read from the status, so every replica agrees whichever one probed.
pub fn member_silent(member: &MemberCluster) -> bool {
    member
        .status
        .as_ref()
        .and_then(|s| s.conditions.condition(RESPONDING))
        .is_some_and(|c| c.status == "False")
}

/// When failing probes make a member unhealthy: both must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Consecutive failed probes needed (0 is taken as 1).
    pub threshold: u32,
    /// How long ago the first failure of the streak must be, at least.
    pub min_duration: Duration,
}

/// The current run of consecutive failed probes of one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStreak {
    /// The `MemberCluster`'s uid: a member deleted and created again under the same name starts
    /// a new streak.
    pub uid: Option<String>,
    /// Failed probes in a row.
    pub failures: u32,
    /// When the first of them failed.
    pub since: Timestamp,
}

impl ProbeStreak {
    /// Whether this streak makes the member unhealthy under `policy` at `now`.
    pub fn crossed(&self, policy: &FailurePolicy, now: Timestamp) -> bool {
        let lasted = now
            .duration_since(self.since)
            .try_into()
            .unwrap_or(Duration::ZERO);
        self.failures >= policy.threshold.max(1) && lasted >= policy.min_duration
    }
}

/// The failure streaks of all members, in memory. Shared by the member reconciles through the
/// controller context; the lock is held only to update a map entry, never across an await.
#[derive(Debug, Default)]
pub struct ProbeStreaks {
    streaks: Mutex<HashMap<String, ProbeStreak>>,
}

impl ProbeStreaks {
    /// Records a failed probe of `member` at `now` and returns the streak it extends (or
    /// starts).
    pub fn failed(&self, member: &str, uid: Option<&str>, now: Timestamp) -> ProbeStreak {
        let mut streaks = self.lock();
        let fresh = || ProbeStreak {
            uid: uid.map(str::to_owned),
            failures: 0,
            since: now,
        };
        let streak = streaks.entry(member.to_owned()).or_insert_with(fresh);
        if streak.uid.as_deref() != uid {
            *streak = fresh();
        }
        streak.failures = streak.failures.saturating_add(1);
        streak.clone()
    }

    /// Ends the streak of `member` (a probe answered, or the member is gone).
    pub fn reset(&self, member: &str) {
        self.lock().remove(member);
    }

    /// The current streak of `member`, if its last probes failed.
    pub fn get(&self, member: &str) -> Option<ProbeStreak> {
        self.lock().get(member).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProbeStreak>> {
        // The map holds plain counters: one left half-updated by a panicking holder is still
        // usable, and refusing to probe forever would be worse.
        self.streaks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MemberClusterSpec, MemberClusterStatus, SecretKeyRef};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn member(reachable: Option<(&str, &str)>) -> MemberCluster {
        let mut m = MemberCluster::new(
            "east",
            MemberClusterSpec {
                cluster_id: "east".into(),
                kubeconfig_secret_ref: SecretKeyRef {
                    namespace: "ns".into(),
                    name: "s".into(),
                    key: None,
                },
                location: None,
                network: None,
            },
        );
        m.status = reachable.map(|(status, reason)| MemberClusterStatus {
            conditions: vec![Condition {
                type_: REACHABLE.into(),
                status: status.into(),
                reason: reason.into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..Default::default()
        });
        m
    }

    #[test]
    fn only_a_confirmed_unreachable_member_is_unhealthy() {
        assert!(member_unhealthy(&member(Some((
            "False",
            REASON_UNREACHABLE
        )))));
        for healthy in [
            None,
            Some(("True", REASON_PROBED)),
            Some(("Unknown", REASON_PROBE_FAILING)),
            Some(("Unknown", REASON_CREDENTIALS_UNAVAILABLE)),
            Some(("Unknown", REASON_INVALID_CREDENTIALS)),
            // Written by earlier versions on the first failure to read credentials.
            Some(("False", "InvalidCredentials")),
            Some(("False", "HubError")),
        ] {
            assert!(!member_unhealthy(&member(healthy)), "{healthy:?}");
        }
    }

    #[test]
    fn a_streak_crosses_after_the_threshold_and_the_minimum_duration() {
        let policy = FailurePolicy {
            threshold: 3,
            min_duration: Duration::from_secs(60),
        };
        let streaks = ProbeStreaks::default();
        let first = streaks.failed("east", Some("u1"), at(0));
        assert_eq!((first.failures, first.since), (1, at(0)));
        assert!(!first.crossed(&policy, at(0)));
        let second = streaks.failed("east", Some("u1"), at(30));
        assert!(!second.crossed(&policy, at(30)));
        let third = streaks.failed("east", Some("u1"), at(59));
        assert_eq!(third.failures, 3);
        assert!(!third.crossed(&policy, at(59)), "too early");
        assert!(third.crossed(&policy, at(60)));
        // Fast probes alone do not cross it, however many fail.
        let burst = ProbeStreaks::default();
        let mut last = burst.failed("east", None, at(0));
        for _ in 0..10 {
            last = burst.failed("east", None, at(1));
        }
        assert!(!last.crossed(&policy, at(1)));
    }

    #[test]
    fn an_answer_or_a_new_member_of_the_same_name_starts_over() {
        let policy = FailurePolicy {
            threshold: 2,
            min_duration: Duration::ZERO,
        };
        let streaks = ProbeStreaks::default();
        streaks.failed("east", Some("u1"), at(0));
        assert!(
            streaks
                .failed("east", Some("u1"), at(1))
                .crossed(&policy, at(1))
        );
        streaks.reset("east");
        assert_eq!(streaks.get("east"), None);
        assert!(
            !streaks
                .failed("east", Some("u1"), at(2))
                .crossed(&policy, at(2))
        );
        let recreated = streaks.failed("east", Some("u2"), at(3));
        assert_eq!((recreated.failures, recreated.since), (1, at(3)));
        // Other members keep their own streaks.
        streaks.failed("west", None, at(3));
        assert_eq!(streaks.get("east").map(|s| s.failures), Some(1));
    }

    #[test]
    fn a_zero_threshold_means_one_failure() {
        let policy = FailurePolicy {
            threshold: 0,
            min_duration: Duration::ZERO,
        };
        let streaks = ProbeStreaks::default();
        assert!(streaks.failed("east", None, at(0)).crossed(&policy, at(0)));
    }
}

//! `metav1.Condition` handling shared by every status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition status `True`/`False` as the API spells it.
pub fn condition_status(value: bool) -> String {
    if value { "True" } else { "False" }.to_owned()
}

/// Queries on a list of conditions.
pub trait ConditionExt {
    /// The condition of the given type, if present.
    fn condition(&self, type_: &str) -> Option<&Condition>;
    /// Whether the condition of the given type is present with status `True`.
    fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }
}

impl ConditionExt for [Condition] {
    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.iter().find(|c| c.type_ == type_)
    }
}

impl ConditionExt for Vec<Condition> {
    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.as_slice().condition(type_)
    }
}

/// Merges `new` into `existing`: `lastTransitionTime` moves only when the status changes,
/// so a condition that keeps its status keeps the time it first took it. Reason, message
/// and observedGeneration always take the new values.
pub fn merge_condition(existing: &mut Vec<Condition>, mut new: Condition, now: Timestamp) {
    match existing.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            new.last_transition_time = if old.status == new.status {
                old.last_transition_time.clone()
            } else {
                Time(now)
            };
            *old = new;
        }
        None => {
            new.last_transition_time = Time(now);
            existing.push(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(status: bool, reason: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: condition_status(status),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t1 = Timestamp::from_second(1_000).unwrap();
        let t2 = Timestamp::from_second(2_000).unwrap();
        let t3 = Timestamp::from_second(3_000).unwrap();
        let mut conds = Vec::new();
        merge_condition(&mut conds, cond(false, "Progressing"), t1);
        assert_eq!(conds[0].last_transition_time.0, t1);
        merge_condition(&mut conds, cond(false, "StillProgressing"), t2);
        assert_eq!(
            conds[0].last_transition_time.0, t1,
            "same status keeps its time"
        );
        assert_eq!(conds[0].reason, "StillProgressing");
        merge_condition(&mut conds, cond(true, "Converged"), t3);
        assert_eq!(conds[0].last_transition_time.0, t3);
        assert!(conds.is_true("Ready"));
        assert_eq!(conds.len(), 1);
    }
}

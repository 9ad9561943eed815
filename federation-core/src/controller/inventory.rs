//! The network's inventory: where it has written, recorded in its status before the first
//! write there (pure helpers; the controller does the writing).
//!
//! The inventory is the engine's memory. A target leaves it only when a pass found nothing
//! of the network there, or when the member is gone for good (its `MemberCluster` removed or
//! abandoned). When the inventory itself is lost (a status wipe, a restore from a backup
//! without status), it is rebuilt from a label sweep: every registered member is recorded
//! as a candidate, the next pass reads them all, and the ones holding nothing are released.

use crate::api::{BackendKind, Inventory, InventoryTarget, MemberCluster};
use crate::backend::{NetworkBackend, Target};
use kube::ResourceExt;
use std::collections::BTreeSet;

/// The targets an inventory records.
pub fn recorded_targets(inventory: &Inventory) -> BTreeSet<Target> {
    inventory.targets.iter().map(Target::from).collect()
}

/// The member namespaces an inventory records.
pub fn recorded_namespaces(inventory: &Inventory) -> BTreeSet<String> {
    inventory.namespaces.iter().cloned().collect()
}

/// What an inventory records, as sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Targets written to.
    pub targets: BTreeSet<Target>,
    /// Per-cluster singletons held.
    pub claims: BTreeSet<String>,
    /// Member namespaces written in.
    pub namespaces: BTreeSet<String>,
}

/// An inventory of `backend` over what is `recorded`, in a stable order.
pub fn inventory_of(backend: BackendKind, recorded: &Recorded) -> Inventory {
    Inventory {
        backend,
        targets: recorded.targets.iter().map(InventoryTarget::from).collect(),
        claims: recorded.claims.iter().cloned().collect(),
        namespaces: recorded.namespaces.iter().cloned().collect(),
    }
}

/// Every target where a network of `backend` may have written on the registered members:
/// what a lost inventory is rebuilt from.
pub fn sweep_targets(backend: &dyn NetworkBackend, members: &[MemberCluster]) -> BTreeSet<Target> {
    members
        .iter()
        .flat_map(|m| backend.candidate_targets(&m.name_any()))
        .collect()
}

/// Recorded targets on members that will never answer again: their `MemberCluster` is gone,
/// or abandoned. They are forgotten without being reached; what may be left there is the
/// price of giving the member up, and is said in an Event.
pub fn unreachable_forever(
    recorded: &BTreeSet<Target>,
    members: &[MemberCluster],
) -> Vec<(Target, &'static str)> {
    recorded
        .iter()
        .filter_map(|t| {
            let name = t.member()?;
            match members.iter().find(|m| m.name_any() == name) {
                None => Some((t.clone(), "its MemberCluster is gone")),
                Some(m) if crate::plan::is_abandoned(m) => {
                    Some((t.clone(), "its member was abandoned (fednet.io/abandon)"))
                }
                Some(_) => None,
            }
        })
        .collect()
}

/// Whether a network's inventory names a member (as a member or a broker target).
pub fn inventory_uses_member(inventory: Option<&Inventory>, member: &str) -> bool {
    inventory.is_some_and(|inv| {
        inv.targets
            .iter()
            .any(|t| t.name == member && Target::from(t).member().is_some())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ABANDON_ANNOTATION, TargetKind};
    use crate::fixtures::member;

    #[test]
    fn gone_and_abandoned_members_are_found_and_controllers_never() {
        let mut abandoned = member("b");
        abandoned.metadata.annotations =
            Some([(ABANDON_ANNOTATION.to_owned(), "true".to_owned())].into());
        let members = [member("a"), abandoned];
        let recorded: BTreeSet<Target> = [
            Target::Member("a".into()),
            Target::Member("b".into()),
            Target::Broker("c".into()),
            Target::Controller("sdwan".into()),
        ]
        .into();
        let forever: Vec<Target> = unreachable_forever(&recorded, &members)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            forever,
            [Target::Member("b".into()), Target::Broker("c".into())]
        );
    }

    #[test]
    fn an_inventory_round_trips_and_names_its_members() {
        let targets: BTreeSet<Target> =
            [Target::Member("a".into()), Target::Controller("x".into())].into();
        let recorded = Recorded {
            targets: targets.clone(),
            namespaces: ["shop".to_owned()].into(),
            ..Recorded::default()
        };
        let inv = inventory_of(BackendKind::Skupper, &recorded);
        assert_eq!(recorded_targets(&inv), targets);
        assert_eq!(recorded_namespaces(&inv), recorded.namespaces);
        assert_eq!(inv.targets[1].kind, TargetKind::Controller);
        assert!(inventory_uses_member(Some(&inv), "a"));
        assert!(
            !inventory_uses_member(Some(&inv), "x"),
            "a controller is no member"
        );
        assert!(!inventory_uses_member(None, "a"));
    }
}

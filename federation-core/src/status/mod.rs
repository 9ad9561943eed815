//! Status aggregation (pure): from a plan and an engine report to the statuses users read.
//!
//! Conditions are merged with the previous ones so `lastTransitionTime` moves only on a real
//! transition, and [`changed`] tells the caller whether a status write is needed at all.

mod network;
mod service;

pub use network::{PlanFailure, network_status};
pub use service::service_status;

/// The new status when it differs from the old one, `None` when a write would change
/// nothing: the controller writes only `Some`.
pub fn changed<S: PartialEq>(old: Option<&S>, new: S) -> Option<S> {
    (old != Some(&new)).then_some(new)
}

#[cfg(test)]
mod tests;

//! # federation-core
//!
//! The technology-agnostic heart of fednet: the `fednet.io/v1alpha1` API types ([`api`]),
//! a pure topology planner ([`topology`], [`plan`]), the [`backend::NetworkBackend`] seam
//! every backend implements, the reconciliation [`engine`], status aggregation
//! ([`status`]) and the member-cluster registry ([`cluster`]).
//!
//! The flow is level-triggered and idempotent:
//! `plan` (pure) -> `render` per backend (pure) -> diff against observed -> apply per target
//! with server-side apply -> observe -> aggregate status. A converged network causes no
//! writes.

pub mod api;
pub mod backend;
pub mod cluster;
pub mod controller;
pub mod engine;
pub mod kubernetes;
pub mod plan;
pub mod status;
pub mod topology;

#[cfg(test)]
mod fixtures;

//! # federation-core
//!
//! The technology-agnostic heart of fednet: the `fednet.io/v1alpha1` API types, a pure
//! topology planner, the [`backend::NetworkBackend`] seam every backend implements, the
//! reconciliation [`engine`] and the member-cluster registry.
//!
//! The flow is level-triggered and idempotent:
//! `plan` (pure) -> `render` per backend (pure) -> diff against observed -> apply per target
//! with server-side apply -> observe -> aggregate status. A converged network causes no writes.

pub mod api;

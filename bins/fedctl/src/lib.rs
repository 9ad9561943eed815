//! # fedctl
//!
//! The library behind the `fedctl` command: everything but argument parsing and printing, so
//! the same code paths run in the binary and in tests.
//!
//! - [`manifests`]: fednet objects read from YAML files (for offline commands).
//! - [`hub`]: the hub client (`--kubeconfig`/`--context`) and reads of networks, services and
//!   members.
//! - [`report`]: what `fedctl status` shows, built from those objects (pure).
//! - [`table`] and [`status_view`]: aligned text tables, coloured only when asked.
//! - [`graph`] and [`render`]: a network as a picture (Mermaid, DOT, SVG), from live status or
//!   from a plan (pure).
//! - [`watch`]: `fedctl status --watch`, driven by kube watches.
//! - [`diff`]: `fedctl diff`, what applying manifests would change, by server-side dry-run.

pub mod access;
pub mod cli;
pub mod diff;
pub mod doctor;
pub mod error;
pub mod graph;
pub mod hub;
pub mod join;
pub mod manifests;
pub mod render;
pub mod report;
pub mod status_view;
pub mod table;
pub mod watch;

pub use error::FedctlError;

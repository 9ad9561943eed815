//! Sharded replicas (`--shards N` with N > 1): networks and member probes are split into N
//! shards, each held by one replica through its own `coordination.k8s.io/v1` Lease on the
//! hub, and every write for a network or member is fenced on its shard's Lease.
//!
//! # How it works
//! - [`hashing`]: a network (by `namespace/name`) and a member probe (by `MemberCluster`
//!   name) fall in a fixed shard; the owner each shard *should* have is chosen among the live
//!   replicas by rendezvous hashing, so a replica joining takes only the shards it wins and
//!   a replica leaving gives up only its own.
//! - Live replicas: each replica renews a heartbeat Lease (`<lease-name>-replica-<identity>`,
//!   labelled [`table::OPERATOR_LEASE_LABEL`]); every replica watches those Leases (one watch,
//!   no periodic LIST) and counts a replica as live while its heartbeat keeps changing. A
//!   replica starts its heartbeat only once its caches are synced (it can work at once), and
//!   deletes it on shutdown (the others rebalance within a round).
//! - [`table`]: acquire a shard's Lease (`<lease-name>-shard-<i>`) only as its desired owner
//!   and only when it is free or expired; renew what is held; release what another replica
//!   should now own (after shutting its fence), so shards move back after a restart without
//!   waiting for expiry.
//! - [`coordinator`]: runs the table every retry period against the hub, and publishes each
//!   shard's validity on its [`crate::fence::Fence`] and the set held on a watch channel.
//! - The controllers ([`crate::controllers`]) run in every replica (their watches are reads)
//!   and reconcile a network or probe a member only while its shard is held, through a
//!   context whose hub client and backends are fenced on that shard; a pass in progress is
//!   dropped the moment its shard's fence shuts; acquiring a shard reconciles its networks
//!   and probes its members at once.

pub mod coordinator;
pub mod hashing;
pub mod routing;
pub mod table;
#[cfg(test)]
mod table_tests;

use crate::fence::Fence;
use kube::Client;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The shards held now, each with the number of its acquisition: a shard lost and acquired
/// again between two looks is told apart from one held all along.
pub type HeldShards = BTreeMap<u32, u64>;

/// What the controllers need to follow the shards: one fence and one hub client fenced on
/// it per shard, and the set of shards held now.
#[derive(Clone)]
pub struct ShardRouting {
    /// Number of shards.
    pub count: u32,
    /// Each shard's fence.
    pub fences: Arc<[Fence]>,
    /// Each shard's hub client, its writes fenced on the shard's fence.
    pub hubs: Arc<[Client]>,
    /// The shards this replica holds now.
    pub owned: watch::Receiver<HeldShards>,
    /// The hub client of the member registry, shared by every shard, so not fenced on any
    /// one: backends write through it (the Submariner backend creates a network's IPsec key
    /// Secret on the hub). Such writes happen only inside a pass, and a pass is bound as a
    /// whole to its shard's fence, so none starts once the shard is lost.
    pub registry_hub: Client,
}

impl std::fmt::Debug for ShardRouting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRouting")
            .field("count", &self.count)
            .field("owned", &*self.owned.borrow())
            .finish_non_exhaustive()
    }
}

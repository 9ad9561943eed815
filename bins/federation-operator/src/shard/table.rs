//! The ownership state machine of one replica (pure: the caller passes the time in and
//! sends the writes it asks for).
//!
//! It knows the Leases it was shown (from the watch on the hub, and the answers to its own
//! writes), and which shards this replica holds until when. Each round [`Table::steps`]
//! says what to write:
//! - a shard this replica holds and should own (rendezvous over the live replicas):
//!   **renew** it;
//! - a shard it holds and should no longer own (a replica it outweighs joined): **release**
//!   it, so the new owner need not wait for expiry. The caller shuts the shard's fence first;
//! - a shard it should own and does not hold: **acquire** it, but only if its Lease is free,
//!   absent, held by this very identity (a previous run of this replica), or expired;
//! - anything else: nothing.
//!
//! # Expiry and validity
//! As in [`crate::leader`]: another holder's Lease is expired when its record (holder, renew
//! time) has not changed for its `leaseDurationSeconds` *as seen here*, on this replica's
//! monotonic clock. A shard this replica holds is valid until the instant its last successful
//! write was *sent* plus the renew deadline, which comes before anyone else can judge the
//! Lease expired (see [`crate::fence`]). A replica is live while its heartbeat Lease keeps
//! changing by the same rule.

use super::hashing::desired_owner;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// Label on every Lease of one sharded operator: its value is the Lease name prefix.
pub const OPERATOR_LEASE_LABEL: &str = "fednet.io/operator-lease";
/// Label saying what a Lease is for: [`ROLE_SHARD`] or [`ROLE_REPLICA`].
pub const ROLE_LABEL: &str = "fednet.io/lease-role";
/// A shard's Lease.
pub const ROLE_SHARD: &str = "shard";
/// A replica's heartbeat Lease.
pub const ROLE_REPLICA: &str = "replica";

/// Names of the Leases of one sharded operator.
#[derive(Clone, Debug)]
pub struct LeaseNames {
    /// `--lease-name`: the prefix of every name.
    pub prefix: String,
    /// The Leases' namespace.
    pub namespace: String,
}

impl LeaseNames {
    /// `<prefix>-shard-<i>`.
    pub fn shard(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.prefix)
    }

    /// The shard a Lease name is for, if it is one of ours.
    pub fn shard_of(&self, name: &str) -> Option<u32> {
        name.strip_prefix(&self.prefix)?
            .strip_prefix("-shard-")?
            .parse()
            .ok()
    }

    /// `<prefix>-replica-<identity>`, the identity made a valid name: lower case, anything
    /// but letters, digits, `-` and `.` turned into `-`, and a hash of the identity appended
    /// when that changed it (so two identities never share a heartbeat).
    pub fn replica(&self, identity: &str) -> String {
        let clean: String = identity
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' | '-' | '.' => c,
                'A'..='Z' => c.to_ascii_lowercase(),
                _ => '-',
            })
            .collect();
        let clean = clean.trim_matches(|c| c == '-' || c == '.').to_owned();
        if clean == identity {
            format!("{}-replica-{clean}", self.prefix)
        } else {
            let tag = super::hashing::network_shard("replica", identity, u32::MAX);
            format!("{}-replica-{clean}-{tag:08x}", self.prefix)
        }
    }

    /// The labels of a Lease with `role`.
    pub fn labels(&self, role: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (OPERATOR_LEASE_LABEL.to_owned(), self.prefix.clone()),
            (ROLE_LABEL.to_owned(), role.to_owned()),
        ])
    }

    /// The label selector of the watch.
    pub fn selector(&self) -> String {
        format!("{OPERATOR_LEASE_LABEL}={}", self.prefix)
    }
}

/// Timings of the Leases.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTimings {
    /// `leaseDurationSeconds` of the Leases this replica writes.
    pub duration: Duration,
    /// A held shard is valid until its last successful write was sent plus this.
    pub renew_deadline: Duration,
}

/// The last record seen of a Lease, and when it changed by this replica's clock.
#[derive(Clone, Debug)]
struct Record {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    duration: Duration,
    seen_at: Instant,
    lease: Lease,
}

impl Record {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.seen_at) >= self.duration
    }
}

/// A shard this replica holds.
#[derive(Clone, Debug)]
struct Held {
    until: Instant,
    lease: Lease,
}

/// A write the caller should send, then report with [`Table::written`] (or, for a
/// release, nothing: the shard is dropped when the step is made).
#[derive(Clone, Debug)]
pub enum Step {
    /// Create this Lease (the shard has none yet).
    Create(u32, Lease),
    /// Replace the shard's Lease with this one (its resourceVersion is the one read), to
    /// acquire it.
    Acquire(u32, Lease),
    /// Replace it to renew.
    Renew(u32, Lease),
    /// Replace it with no holder. The shard is no longer held from the moment this step
    /// is made.
    Release(u32, Lease),
}

impl Step {
    /// The shard the step is about.
    pub fn shard(&self) -> u32 {
        match self {
            Self::Create(s, _) | Self::Acquire(s, _) | Self::Renew(s, _) | Self::Release(s, _) => {
                *s
            }
        }
    }
}

/// How a write of a shard's Lease ended.
#[derive(Clone, Debug)]
pub enum Written {
    /// The server stored it: this is the stored Lease.
    Stored(Box<Lease>),
    /// Someone else changed or created it first (409), or it is gone (404).
    Lost,
    /// The outcome is unknown (timeout, transport error, 5xx): the shard stays held until
    /// its validity runs out, unless a later write succeeds.
    Unknown,
}

/// What changed for this replica in one call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Shards now held that were not.
    pub acquired: Vec<u32>,
    /// Shards no longer held (released, lost to a conflict, or expired).
    pub dropped: Vec<u32>,
}

/// Ownership of the shards as one replica sees it.
#[derive(Debug)]
pub struct Table {
    me: String,
    shards: u32,
    names: LeaseNames,
    timings: LeaseTimings,
    replicas: BTreeMap<String, Record>,
    leases: BTreeMap<u32, Record>,
    held: BTreeMap<u32, Held>,
}

impl Table {
    /// A table for replica `me` over `shards` shards, knowing no Lease yet.
    pub fn new(me: &str, shards: u32, names: LeaseNames, timings: LeaseTimings) -> Self {
        Self {
            me: me.to_owned(),
            shards,
            names,
            timings,
            replicas: BTreeMap::new(),
            leases: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }

    /// Takes note of a Lease seen on the hub (from the watch or a write's answer).
    pub fn observe(&mut self, lease: &Lease, now: Instant) {
        let name = lease.name_any();
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.filter(|h| !h.is_empty());
        let renew_time = spec.renew_time.map(|t| t.0);
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.timings.duration, Duration::from_secs);
        let fresh = |old: Option<&Record>| Record {
            seen_at: match old {
                Some(r) if r.holder == holder && r.renew_time == renew_time => r.seen_at,
                _ => now,
            },
            holder: holder.clone(),
            renew_time,
            duration,
            lease: lease.clone(),
        };
        if let Some(shard) = self.names.shard_of(&name).filter(|s| *s < self.shards) {
            let record = fresh(self.leases.get(&shard));
            self.leases.insert(shard, record);
        } else if lease.labels().get(ROLE_LABEL).map(String::as_str) == Some(ROLE_REPLICA) {
            let record = fresh(self.replicas.get(&name));
            self.replicas.insert(name, record);
        }
    }

    /// Takes note of a Lease deleted on the hub.
    pub fn forget(&mut self, name: &str) {
        match self.names.shard_of(name) {
            Some(shard) => {
                self.leases.remove(&shard);
            }
            None => {
                self.replicas.remove(name);
            }
        }
    }

    /// After a re-list: forgets every Lease not among `names` (deleted while the watch was
    /// down, so no delete event came).
    pub fn forget_all_but(&mut self, names: &BTreeSet<String>) {
        let shard_names = &self.names;
        self.leases
            .retain(|shard, _| names.contains(&shard_names.shard(*shard)));
        self.replicas.retain(|name, _| names.contains(name));
    }

    /// The live replicas: this one, and every other whose heartbeat keeps changing.
    pub fn live(&self, now: Instant) -> BTreeSet<String> {
        self.replicas
            .values()
            .filter(|r| !r.expired(now))
            .filter_map(|r| r.holder.clone())
            .chain([self.me.clone()])
            .collect()
    }

    /// Heartbeats of other replicas that have been dead for a second lease duration: the
    /// caller deletes them (with their resourceVersion as precondition), so replicas that
    /// are gone for good (a Deployment's old pods) do not pile up.
    pub fn stale_heartbeats(&self, now: Instant) -> Vec<Lease> {
        self.replicas
            .values()
            .filter(|r| r.holder.as_deref() != Some(self.me.as_str()))
            .filter(|r| now.saturating_duration_since(r.seen_at) >= r.duration * 2)
            .map(|r| r.lease.clone())
            .collect()
    }

    /// The owner `shard` should have now.
    pub fn desired(&self, shard: u32, now: Instant) -> Option<String> {
        let live = self.live(now);
        desired_owner(shard, live.iter().map(String::as_str)).map(str::to_owned)
    }

    /// Until when this replica may write for `shard`, if it holds it.
    pub fn held_until(&self, shard: u32) -> Option<Instant> {
        self.held.get(&shard).map(|h| h.until)
    }

    /// The shards held now.
    pub fn held(&self) -> BTreeSet<u32> {
        self.held.keys().copied().collect()
    }

    /// Drops held shards whose validity ran out (no successful renewal within the renew
    /// deadline).
    pub fn expire(&mut self, now: Instant) -> Changes {
        let expired: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, h)| h.until <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in &expired {
            self.held.remove(s);
        }
        Changes {
            acquired: Vec::new(),
            dropped: expired,
        }
    }

    /// The writes of this round. Releases take effect at once (the shards are dropped here);
    /// `wall` is the wall-clock time written into `renewTime` (for humans only).
    pub fn steps(&mut self, now: Instant, wall: Timestamp) -> Vec<Step> {
        let live = self.live(now);
        let mut steps = Vec::new();
        for shard in 0..self.shards {
            let desired = desired_owner(shard, live.iter().map(String::as_str));
            let mine = desired == Some(self.me.as_str());
            if let Some(held) = self.held.get(&shard) {
                if mine {
                    steps.push(Step::Renew(shard, self.renewed(&held.lease, wall)));
                } else {
                    let lease = self.released(&held.lease, wall);
                    self.held.remove(&shard);
                    steps.push(Step::Release(shard, lease));
                }
                continue;
            }
            if !mine {
                continue;
            }
            match self.leases.get(&shard) {
                None => steps.push(Step::Create(shard, self.created(shard, wall))),
                Some(r) => {
                    let free = match r.holder.as_deref() {
                        None => true,
                        // A previous run of this replica: it is dead, or this is it.
                        Some(h) if h == self.me => true,
                        Some(_) => r.expired(now),
                    };
                    if free {
                        steps.push(Step::Acquire(shard, self.acquired(&r.lease, wall)));
                    }
                }
            }
        }
        steps
    }

    /// Reports how a write of `step` ended; `sent` is when it was sent.
    pub fn written(
        &mut self,
        step: &Step,
        sent: Instant,
        outcome: Written,
        now: Instant,
    ) -> Changes {
        let shard = step.shard();
        let mut changes = Changes::default();
        match (step, outcome) {
            (Step::Release(..), Written::Stored(lease)) => self.observe(&lease, now),
            (Step::Release(..), _) => {}
            (_, Written::Stored(lease)) => {
                self.observe(&lease, now);
                let until = sent + self.timings.renew_deadline;
                if until > now {
                    if self
                        .held
                        .insert(
                            shard,
                            Held {
                                until,
                                lease: *lease,
                            },
                        )
                        .is_none()
                    {
                        changes.acquired.push(shard);
                    }
                } else if self.held.remove(&shard).is_some() {
                    // Stored, but too late to be of use: its validity already ran out.
                    changes.dropped.push(shard);
                }
            }
            (_, Written::Lost) => {
                if self.held.remove(&shard).is_some() {
                    changes.dropped.push(shard);
                }
            }
            (_, Written::Unknown) => {}
        }
        changes
    }

    /// Drops every held shard (shutdown) and returns the releases to send.
    pub fn release_all(&mut self, wall: Timestamp) -> Vec<Step> {
        let held = std::mem::take(&mut self.held);
        held.into_iter()
            .map(|(shard, h)| Step::Release(shard, self.released(&h.lease, wall)))
            .collect()
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.timings.duration.as_secs_f64().ceil() as u64)
            .unwrap_or(i32::MAX)
            .max(1)
    }

    fn created(&self, shard: u32, wall: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.names.shard(shard)),
                namespace: Some(self.names.namespace.clone()),
                labels: Some(self.names.labels(ROLE_SHARD)),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.me.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(MicroTime(wall)),
                renew_time: Some(MicroTime(wall)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    fn acquired(&self, lease: &Lease, wall: Timestamp) -> Lease {
        let mut lease = lease.clone();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.me.clone());
        spec.acquire_time = Some(MicroTime(wall));
        spec.renew_time = Some(MicroTime(wall));
        spec.lease_duration_seconds = Some(self.duration_seconds());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        lease
    }

    fn renewed(&self, lease: &Lease, wall: Timestamp) -> Lease {
        let mut lease = lease.clone();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.renew_time = Some(MicroTime(wall));
        spec.lease_duration_seconds = Some(self.duration_seconds());
        lease
    }

    fn released(&self, lease: &Lease, wall: Timestamp) -> Lease {
        let mut lease = lease.clone();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = Some(MicroTime(wall));
        spec.lease_duration_seconds = Some(1);
        lease
    }
}

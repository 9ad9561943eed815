//! The ownership state machine under virtual time: three replicas sharing twelve shards
//! through an in-memory stand-in of the hub's Lease storage (optimistic concurrency on a
//! resourceVersion, as the API server does). The real API server is exercised by
//! `tests/tests/sharding.rs`.

use super::table::*;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

const SHARDS: u32 = 12;
const RETRY: Duration = Duration::from_millis(500);
const TIMINGS: LeaseTimings = LeaseTimings {
    duration: Duration::from_secs(4),
    renew_deadline: Duration::from_secs(3),
};

fn names() -> LeaseNames {
    LeaseNames {
        prefix: "op".into(),
        namespace: "ns".into(),
    }
}

/// Lease storage with resourceVersions: a write carrying a stale one is refused.
#[derive(Default)]
struct Store {
    leases: BTreeMap<String, Lease>,
    version: u64,
}

impl Store {
    fn write(&mut self, mut lease: Lease, create: bool) -> Written {
        let name = lease.name_any();
        let current = self.leases.get(&name);
        let ok = match (create, current) {
            (true, None) => true,
            (false, Some(c)) => c.resource_version() == lease.resource_version(),
            _ => false,
        };
        if !ok {
            return Written::Lost;
        }
        self.version += 1;
        lease.metadata.resource_version = Some(self.version.to_string());
        self.leases.insert(name, lease.clone());
        Written::Stored(Box::new(lease))
    }

    fn heartbeat(&mut self, me: &str) {
        let name = names().replica(me);
        let mut lease = self.leases.get(&name).cloned().unwrap_or(Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(names().labels(ROLE_REPLICA)),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec::default()),
        });
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(me.to_owned());
        spec.lease_duration_seconds = Some(4);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.version += 1;
        lease.metadata.resource_version = Some(self.version.to_string());
        self.leases.insert(name, lease);
    }
}

struct Replica {
    table: Table,
    /// When set, this replica's writes never reach the store (cut off from the hub).
    cut_off: bool,
    moves: usize,
}

impl Replica {
    fn new(me: &str) -> Self {
        Self {
            table: Table::new(me, SHARDS, names(), TIMINGS),
            cut_off: false,
            moves: 0,
        }
    }

    /// One round: see every Lease, write what the table asks for.
    fn round(&mut self, me: &str, store: &mut Store) {
        let now = Instant::now();
        if !self.cut_off {
            store.heartbeat(me);
            for lease in store.leases.values() {
                self.table.observe(lease, now);
            }
        }
        self.moves += self.table.expire(now).dropped.len();
        for step in self.table.steps(now, Timestamp::now()) {
            if matches!(step, Step::Release(..)) {
                self.moves += 1;
            }
            let (lease, create) = match &step {
                Step::Create(_, l) => (l.clone(), true),
                Step::Acquire(_, l) | Step::Renew(_, l) | Step::Release(_, l) => (l.clone(), false),
            };
            let outcome = if self.cut_off {
                Written::Unknown
            } else {
                store.write(lease, create)
            };
            let changes = self.table.written(&step, now, outcome, now);
            self.moves += changes.acquired.len() + changes.dropped.len();
        }
    }
}

struct World {
    store: Store,
    replicas: BTreeMap<String, Replica>,
}

impl World {
    fn new(ids: &[&str]) -> Self {
        Self {
            store: Store::default(),
            replicas: ids
                .iter()
                .map(|id| ((*id).to_owned(), Replica::new(id)))
                .collect(),
        }
    }

    /// Runs rounds of every running replica for `time`, checking after each write that no
    /// shard is valid at two replicas at once.
    async fn run(&mut self, time: Duration) {
        let end = Instant::now() + time;
        while Instant::now() < end {
            let ids: Vec<String> = self.replicas.keys().cloned().collect();
            for id in ids {
                if let Some(r) = self.replicas.get_mut(&id) {
                    r.round(&id, &mut self.store);
                }
                self.check_one_writer_per_shard();
            }
            tokio::time::advance(RETRY).await;
        }
    }

    fn check_one_writer_per_shard(&self) {
        let now = Instant::now();
        for shard in 0..SHARDS {
            let holders: Vec<&String> = self
                .replicas
                .iter()
                .filter(|(_, r)| r.table.held_until(shard).is_some_and(|u| u > now))
                .map(|(id, _)| id)
                .collect();
            assert!(holders.len() <= 1, "shard {shard} valid at {holders:?}");
        }
    }

    fn owners(&self) -> BTreeMap<u32, String> {
        let now = Instant::now();
        self.replicas
            .iter()
            .flat_map(|(id, r)| {
                r.table
                    .held()
                    .into_iter()
                    .filter(move |s| r.table.held_until(*s).is_some_and(|u| u > now))
                    .map(move |s| (s, id.clone()))
            })
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn three_replicas_split_the_shards_by_rendezvous() {
    let mut world = World::new(&["a", "b", "c"]);
    world.run(Duration::from_secs(3)).await;
    let owners = world.owners();
    assert_eq!(owners.len(), SHARDS as usize, "{owners:?}");
    for (shard, owner) in &owners {
        let want = super::hashing::desired_owner(*shard, ["a", "b", "c"]);
        assert_eq!(Some(owner.as_str()), want, "shard {shard}");
    }
    // Steady state: nothing moves any more.
    let moves: usize = world.replicas.values().map(|r| r.moves).sum();
    world.run(Duration::from_secs(10)).await;
    assert_eq!(
        world.replicas.values().map(|r| r.moves).sum::<usize>(),
        moves
    );
    assert_eq!(world.owners(), owners);
}

#[tokio::test(start_paused = true)]
async fn a_dead_replicas_shards_move_within_the_lease_duration_and_come_back_on_restart() {
    let mut world = World::new(&["a", "b", "c"]);
    world.run(Duration::from_secs(3)).await;
    let before = world.owners();
    let of_c: Vec<u32> = before
        .iter()
        .filter(|(_, o)| *o == "c")
        .map(|(s, _)| *s)
        .collect();
    assert!(!of_c.is_empty(), "{before:?}");

    // c dies: no more rounds, no release.
    let dead = world.replicas.remove("c").unwrap();
    drop(dead);
    let died = Instant::now();
    while world.owners().len() < SHARDS as usize {
        assert!(
            died.elapsed() <= TIMINGS.duration + 3 * RETRY,
            "not taken over after {:?}: {:?}",
            died.elapsed(),
            world.owners()
        );
        world.run(RETRY).await;
    }
    let during = world.owners();
    for (shard, owner) in &before {
        if owner != "c" {
            assert_eq!(
                during.get(shard),
                Some(owner),
                "shard {shard} moved needlessly"
            );
        }
    }

    // c comes back (a new process, same identity): exactly its shards move back, released
    // by a and b rather than left to expire.
    world.replicas.insert("c".into(), Replica::new("c"));
    let restarted = Instant::now();
    while world.owners() != before {
        assert!(
            restarted.elapsed() <= 4 * RETRY,
            "shards not back after {:?}: {:?}",
            restarted.elapsed(),
            world.owners()
        );
        world.run(RETRY).await;
    }
    // Each of c's shards moved twice on its way back (released by one, acquired by c).
    let c_moves = world.replicas["c"].moves;
    assert_eq!(c_moves, of_c.len());
}

#[tokio::test(start_paused = true)]
async fn a_holder_cut_off_from_the_hub_stops_before_anyone_takes_over() {
    let mut world = World::new(&["a", "b"]);
    world.run(Duration::from_secs(3)).await;
    let cut = Instant::now();
    world.replicas.get_mut("a").unwrap().cut_off = true;
    // `run` asserts after every write that no shard is valid at two replicas.
    world.run(Duration::from_secs(8)).await;
    assert!(world.replicas["a"].table.held().is_empty());
    assert_eq!(world.owners().len(), SHARDS as usize);
    assert!(world.owners().values().all(|o| o == "b"));
    assert!(cut.elapsed() >= TIMINGS.duration);
}

#[test]
fn lease_names_are_valid_and_distinct() {
    let n = names();
    assert_eq!(n.shard(3), "op-shard-3");
    assert_eq!(n.shard_of("op-shard-3"), Some(3));
    assert_eq!(n.shard_of("op-replica-x"), None);
    assert_eq!(n.replica("replica-1"), "op-replica-replica-1");
    let odd = n.replica("Host_1:42");
    assert!(odd.starts_with("op-replica-host-1-42-"), "{odd}");
    assert_ne!(n.replica("Host_1:42"), n.replica("host-1-42"));
}

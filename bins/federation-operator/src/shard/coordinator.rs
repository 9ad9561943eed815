//! The replica's side of sharding on the hub: a heartbeat Lease, a watch of the operator's
//! Leases, and the shard Leases the [`Table`] says to acquire, renew or release, every retry
//! period. It publishes what it holds on each shard's [`Fence`] (which every write for that
//! shard goes through) and on a watch channel (which the controllers follow to reconcile a
//! shard's networks as soon as it is acquired).

use super::HeldShards;
use super::table::{Changes, LeaseNames, LeaseTimings, ROLE_REPLICA, Step, Table, Written};
use crate::fence::Fence;
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Where the Leases are and how they are timed.
#[derive(Clone, Debug)]
pub struct ShardSettings {
    /// Lease names and namespace.
    pub names: LeaseNames,
    /// This replica's identity (`holderIdentity`).
    pub identity: String,
    /// Number of shards.
    pub shards: u32,
    /// Lease duration and renew deadline.
    pub timings: LeaseTimings,
    /// Interval between rounds.
    pub retry_period: Duration,
}

/// Holds this replica's share of the shards.
pub struct Coordinator {
    api: Api<Lease>,
    settings: ShardSettings,
    table: Table,
    fences: Vec<Fence>,
    owned: watch::Sender<HeldShards>,
    acquisitions: u64,
    metrics: Metrics,
    heartbeat: Option<Lease>,
}

impl Coordinator {
    /// A coordinator writing through `client` (which must not be fenced: renewing is what
    /// keeps the fences open), publishing on `fences` (one per shard) and `owned`.
    pub fn new(
        client: Client,
        settings: ShardSettings,
        fences: Vec<Fence>,
        owned: watch::Sender<HeldShards>,
        metrics: Metrics,
    ) -> Self {
        let table = Table::new(
            &settings.identity,
            settings.shards,
            settings.names.clone(),
            settings.timings,
        );
        Self {
            api: Api::namespaced(client, &settings.names.namespace),
            settings,
            table,
            fences,
            owned,
            acquisitions: 0,
            metrics,
            heartbeat: None,
        }
    }

    /// Heartbeats and holds shards until `shutdown` is cancelled; then shuts every fence,
    /// releases the shards and deletes the heartbeat, so the other replicas take over within
    /// one round instead of a lease duration.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let s = self.settings.clone();
        info!(namespace = %s.names.namespace, prefix = %s.names.prefix, shards = s.shards, identity = %s.identity, "joining the shard ring");
        let watch = watcher(
            self.api.clone(),
            watcher::Config::default().labels(&s.names.selector()),
        )
        .default_backoff();
        let mut watch = std::pin::pin!(watch);
        // Names seen during a re-list: what is not among them was deleted meanwhile.
        let mut relisting: Option<BTreeSet<String>> = None;
        let mut synced = false;
        let mut next_round = Instant::now();
        loop {
            tokio::select! {
                // The round before the watch: a busy watch must never hold renewals back.
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(next_round) => {
                    // Nothing is decided before the first full list: an unseen Lease would
                    // look free.
                    if synced {
                        let started = Instant::now();
                        self.round().await;
                        debug!(took = ?started.elapsed(), held = ?self.table.held(), "shard round");
                    }
                    next_round = Instant::now() + crate::leader::jittered(s.retry_period);
                }
                event = watch.next() => match event {
                    Some(Ok(watcher::Event::Apply(lease))) => self.table.observe(&lease, Instant::now()),
                    Some(Ok(watcher::Event::Delete(lease))) => self.table.forget(&lease.name_any()),
                    Some(Ok(watcher::Event::Init)) => relisting = Some(BTreeSet::new()),
                    Some(Ok(watcher::Event::InitApply(lease))) => {
                        if let Some(seen) = relisting.as_mut() {
                            seen.insert(lease.name_any());
                        }
                        self.table.observe(&lease, Instant::now());
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = relisting.take() {
                            self.table.forget_all_but(&seen);
                        }
                        synced = true;
                    }
                    Some(Err(e)) => warn!(error = %e, "watching the operator's Leases"),
                    None => break,
                },
            }
        }
        self.leave().await;
    }

    /// One round: drop what expired, then the heartbeat and what the table asks for, sent
    /// together (a slow heartbeat must not delay the renewals).
    async fn round(&mut self) {
        let now = Instant::now();
        let expired = self.table.expire(now);
        self.report(&expired, "lost (not renewed within the renew deadline)");
        let steps = self.table.steps(now, Timestamp::now());
        let released: Vec<u32> = steps
            .iter()
            .filter(|s| matches!(s, Step::Release(..)))
            .map(Step::shard)
            .collect();
        if !released.is_empty() {
            info!(shards = ?released, "releasing shards another replica should own");
            self.metrics.count_shard_moves("released", released.len());
        }
        // Fences of released (and expired) shards shut before any Lease write is sent.
        self.publish();
        let beat = self.beat();
        let writes = steps.iter().map(|step| {
            let api = self.api.clone();
            let budget = self.budget(step);
            async move {
                let sent = Instant::now();
                let outcome = match tokio::time::timeout(budget, send(&api, step)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Written::Unknown,
                };
                (sent, outcome)
            }
        });
        let (beat, outcomes) = futures::future::join(beat, futures::future::join_all(writes)).await;
        self.beaten(beat);
        let mut changes = Changes::default();
        for (step, (sent, outcome)) in steps.iter().zip(outcomes) {
            let c = self.table.written(step, sent, outcome, Instant::now());
            changes.acquired.extend(c.acquired);
            changes.dropped.extend(c.dropped);
        }
        if !changes.acquired.is_empty() {
            info!(shards = ?changes.acquired, "acquired shards");
            self.metrics
                .count_shard_moves("acquired", changes.acquired.len());
        }
        self.report(&changes, "lost (the Lease changed under this replica)");
        self.publish();
        self.sweep().await;
    }

    fn report(&self, changes: &Changes, why: &str) {
        if !changes.dropped.is_empty() {
            warn!(shards = ?changes.dropped, "{why}; stopping their writes");
            self.metrics
                .count_shard_moves("lost", changes.dropped.len());
        }
    }

    /// How long one Lease write may take: a renewal no longer than the shard stays valid.
    fn budget(&self, step: &Step) -> Duration {
        match step {
            Step::Renew(shard, _) => self.table.held_until(*shard).map_or(Duration::ZERO, |u| {
                u.saturating_duration_since(Instant::now())
            }),
            Step::Release(..) => self.settings.retry_period,
            Step::Create(..) | Step::Acquire(..) => self.settings.timings.renew_deadline,
        }
    }

    /// Opens the fences of held shards until their validity, shuts the others, and tells
    /// the controllers what is held.
    fn publish(&mut self) {
        for (shard, fence) in (0u32..).zip(&self.fences) {
            match self.table.held_until(shard) {
                Some(until) => fence.lead_until(until),
                None => fence.close(),
            }
        }
        let held = self.table.held();
        self.metrics
            .shards_held
            .set(i64::try_from(held.len()).unwrap_or(i64::MAX));
        let mut count = self.acquisitions;
        self.owned.send_if_modified(|owned| {
            let before = owned.clone();
            owned.retain(|shard, _| held.contains(shard));
            for shard in &held {
                owned.entry(*shard).or_insert_with(|| {
                    count += 1;
                    count
                });
            }
            *owned != before
        });
        self.acquisitions = count;
    }

    /// Creates or renews this replica's heartbeat Lease (the answer goes to
    /// [`Self::beaten`]). Its budget is the renew deadline, like a shard's.
    fn beat(&mut self) -> impl std::future::Future<Output = Option<Lease>> + use<> {
        let s = &self.settings;
        let name = s.names.replica(&s.identity);
        let seconds = i32::try_from(s.timings.duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let api = self.api.clone();
        let previous = self.heartbeat.take();
        let identity = s.identity.clone();
        let labels = s.names.labels(ROLE_REPLICA);
        let namespace = s.names.namespace.clone();
        let budget = s.timings.renew_deadline;
        let attempt = async move {
            let current = match previous {
                Some(lease) => Some(lease),
                None => api.get_opt(&name).await?,
            };
            let renew = |mut lease: Lease| {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(identity.clone());
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(MicroTime(Timestamp::now()));
                lease
            };
            match current {
                Some(lease) => {
                    api.replace(&name, &PostParams::default(), &renew(lease))
                        .await
                }
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(namespace),
                            labels: Some(labels),
                            ..ObjectMeta::default()
                        },
                        spec: Some(LeaseSpec {
                            acquire_time: Some(MicroTime(Timestamp::now())),
                            ..LeaseSpec::default()
                        }),
                    };
                    api.create(&PostParams::default(), &renew(lease)).await
                }
            }
        };
        async move {
            match tokio::time::timeout(budget, attempt).await {
                Ok(Ok(lease)) => Some(lease),
                Ok(Err(e)) => {
                    warn!(error = %e, "could not renew this replica's heartbeat");
                    None
                }
                Err(_) => {
                    warn!("renewing this replica's heartbeat timed out");
                    None
                }
            }
        }
    }

    /// Takes the heartbeat's answer: without one, the next beat reads the Lease first.
    fn beaten(&mut self, lease: Option<Lease>) {
        if let Some(lease) = &lease {
            self.table.observe(lease, Instant::now());
        }
        self.heartbeat = lease;
    }

    /// Deletes the heartbeats of replicas gone for good (a resourceVersion precondition makes
    /// sure a heartbeat that came back to life is not deleted).
    async fn sweep(&mut self) {
        for lease in self.table.stale_heartbeats(Instant::now()) {
            let name = lease.name_any();
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: lease.uid(),
                    resource_version: lease.resource_version(),
                }),
                ..DeleteParams::default()
            };
            match tokio::time::timeout(self.settings.retry_period, self.api.delete(&name, &params))
                .await
            {
                Ok(Ok(_)) => {
                    info!(lease = %name, "deleted the heartbeat of a replica gone for good");
                    self.table.forget(&name);
                }
                Ok(Err(e)) => {
                    debug!(lease = %name, error = %e, "could not delete a stale heartbeat")
                }
                Err(_) => debug!(lease = %name, "deleting a stale heartbeat timed out"),
            }
        }
    }

    /// Shuts every fence, releases every held shard and deletes the heartbeat.
    async fn leave(&mut self) {
        let releases = self.table.release_all(Timestamp::now());
        self.publish();
        let period = self.settings.retry_period;
        let sends = releases.iter().map(|step| {
            let api = self.api.clone();
            async move { tokio::time::timeout(period, send(&api, step)).await }
        });
        let released = futures::future::join_all(sends).await;
        let done = released
            .iter()
            .filter(|r| matches!(r, Ok(Written::Stored(_))))
            .count();
        info!(released = done, of = releases.len(), "released the shards");
        if !releases.is_empty() {
            self.metrics.count_shard_moves("released", releases.len());
        }
        let name = self.settings.names.replica(&self.settings.identity);
        match tokio::time::timeout(period, self.api.delete(&name, &DeleteParams::default())).await {
            Ok(Ok(_)) => info!("left the shard ring"),
            Ok(Err(e)) => warn!(error = %e, "could not delete this replica's heartbeat"),
            Err(_) => warn!("deleting this replica's heartbeat timed out"),
        }
    }
}

/// Sends one Lease write.
async fn send(api: &Api<Lease>, step: &Step) -> Written {
    let result = match step {
        Step::Create(_, lease) => api.create(&PostParams::default(), lease).await,
        Step::Acquire(_, lease) | Step::Renew(_, lease) | Step::Release(_, lease) => {
            api.replace(&lease.name_any(), &PostParams::default(), lease)
                .await
        }
    };
    match result {
        Ok(lease) => Written::Stored(Box::new(lease)),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Written::Lost,
        Err(e) => {
            warn!(shard = step.shard(), error = %e, "writing a shard's Lease");
            Written::Unknown
        }
    }
}

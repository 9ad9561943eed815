//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! # Expected flow
//! Every replica runs [`LeaderElector::run`]. Every `retry_period` it reads the Lease:
//! - no Lease, or one without a holder, or one whose record has not changed for
//!   `leaseDurationSeconds` *as observed locally*: it writes itself in as the holder;
//! - held by itself: it renews (`renewTime`);
//! - held by another replica whose record keeps changing: it writes nothing and waits.
//!
//! Every write is an update carrying the `resourceVersion` that was read (optimistic
//! concurrency), so of two replicas racing for a free Lease exactly one wins; the other gets
//! 409 Conflict and stays a candidate.
//!
//! # Guarantees
//! - **One writer**: a leader that has not renewed successfully for `renew_deadline`
//!   publishes `false` (and the operator stops its controllers at once) before any other
//!   replica can consider the Lease expired, because `renew_deadline < lease_duration` and
//!   candidates measure expiry from when *they* last saw the record change.
//! - **Clock skew does not matter**: `renewTime` is written for humans; expiry is judged on
//!   the candidate's monotonic clock, as client-go does.
//! - **Prompt hand-over on shutdown**: [`LeaderElector::run`] releases the Lease (clears the
//!   holder) when cancelled, so a standby takes over within one `retry_period`.
//! - **Writes are fenced**: after each successful renewal the elector opens the [`Fence`]
//!   until the instant the renewal was *sent* plus `renew_deadline`, and shuts it when it
//!   steps down, so writes stop at that instant even before the controllers are aborted
//!   (see [`crate::fence`]).
//!
//! # Why not a crate
//! `kube-leader-election` 0.44 depends on kube 4. `kube-lease-manager` 0.13 builds against
//! kube 5, but its watch channel keeps reporting leadership while renewals fail (it only
//! logs and backs off), so a leader cut off from the hub would not step down before another
//! replica takes over; the renew deadline here is the point of the module.

use crate::fence::Fence;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Where and how to hold the Lease.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity (`holderIdentity`).
    pub identity: String,
    /// How long the Lease is valid after a renewal.
    pub duration: Duration,
    /// A leader that could not renew for this long steps down. Less than `duration`.
    pub renew_deadline: Duration,
    /// Interval between attempts.
    pub retry_period: Duration,
}

/// The last Lease record seen, and when this replica saw it change.
#[derive(Debug)]
struct SeenRecord {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    seen_at: Instant,
}

/// Campaigns for, holds and releases the Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    seen: Option<SeenRecord>,
}

impl LeaderElector {
    /// An elector for the Lease described by `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            seen: None,
        }
    }

    fn duration_seconds(&self) -> i32 {
        let secs = self.settings.duration.as_secs_f64().ceil();
        // Bounded by the check in `Config::validate` and any sane value; saturate otherwise.
        if secs >= f64::from(i32::MAX) {
            i32::MAX
        } else {
            (secs as i32).max(1)
        }
    }

    /// One attempt: `Ok(true)` when this replica holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let identity = self.settings.identity.clone();
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(identity),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.remember(&created);
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        self.remember(&lease);
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(identity.as_str());
        if !mine && holder.is_some() && !self.expired(&spec) {
            return Ok(false);
        }
        let mut new_spec = spec.clone();
        if !mine {
            new_spec.acquire_time = Some(MicroTime(now));
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            info!(previous = ?holder, "taking over the lease");
        }
        new_spec.holder_identity = Some(identity);
        new_spec.renew_time = Some(MicroTime(now));
        new_spec.lease_duration_seconds = Some(self.duration_seconds());
        lease.spec = Some(new_spec);
        // `replace` sends the resourceVersion that was read: a concurrent writer makes it fail
        // with 409 instead of both believing they lead.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.remember(&updated);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records the Lease's holder and renew time, noting when they changed.
    fn remember(&mut self, lease: &Lease) {
        let spec = lease.spec.as_ref();
        let holder = spec.and_then(|s| s.holder_identity.clone());
        let renew_time = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
        let same = self
            .seen
            .as_ref()
            .is_some_and(|s| s.holder == holder && s.renew_time == renew_time);
        if !same {
            self.seen = Some(SeenRecord {
                holder,
                renew_time,
                seen_at: Instant::now(),
            });
        }
    }

    /// Whether the holder's record has stood still for its whole duration, by our clock.
    fn expired(&self, spec: &LeaseSpec) -> bool {
        let secs = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(self.settings.duration.as_secs());
        self.seen
            .as_ref()
            .is_none_or(|s| s.seen_at.elapsed() >= Duration::from_secs(secs))
    }

    /// Clears the holder if it is this replica, so a standby can take over at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await?;
        info!("released the lease");
        Ok(())
    }

    /// Campaigns until `shutdown` is cancelled, publishing on `leading` whether this replica
    /// holds the Lease and on `fence` until when it may write; releases the Lease on the way
    /// out. The fence is opened before `leading` turns true and shut before it turns false.
    pub async fn run(
        mut self,
        leading: watch::Sender<bool>,
        fence: Fence,
        shutdown: CancellationToken,
    ) {
        let s = self.settings.clone();
        info!(lease = %format!("{}/{}", s.namespace, s.name), identity = %s.identity, "campaigning for the lease");
        // When the last successful renewal was *sent*: standbys count the Lease's expiry from
        // a later instant (when they see the record change), so counting from here keeps
        // this replica's deadline ahead of any takeover whatever the round trip took.
        let mut last_renewal: Option<Instant> = None;
        loop {
            let is_leader = *leading.borrow();
            // A leader's attempt may not outlast its renew deadline.
            let budget = match last_renewal.filter(|_| is_leader) {
                Some(at) => (at + s.renew_deadline).saturating_duration_since(Instant::now()),
                None => s.renew_deadline,
            };
            let sent = Instant::now();
            let attempt = tokio::select! {
                () = shutdown.cancelled() => break,
                r = tokio::time::timeout(budget, self.try_acquire_or_renew()) => r,
            };
            match attempt {
                Ok(Ok(true)) => {
                    last_renewal = Some(sent);
                    fence.lead_until(sent + s.renew_deadline);
                    if !is_leader {
                        info!(identity = %s.identity, "became the leader");
                        leading.send_replace(true);
                    }
                }
                Ok(Ok(false)) => {
                    last_renewal = None;
                    if is_leader {
                        warn!(holder = ?self.seen.as_ref().and_then(|r| r.holder.clone()), "lost the lease; stopping writes");
                        fence.close();
                        leading.send_replace(false);
                    }
                }
                Ok(Err(e)) => debug!(error = %e, "lease attempt failed"),
                Err(_) => debug!(?budget, "lease attempt timed out"),
            }
            if is_leader
                && last_renewal.is_none_or(|at| at.elapsed() >= s.renew_deadline)
                && *leading.borrow()
            {
                warn!(deadline = ?s.renew_deadline, "could not renew the lease in time; stopping writes");
                fence.close();
                leading.send_replace(false);
                last_renewal = None;
            }
            let pause = match last_renewal.filter(|_| *leading.borrow()) {
                Some(at) => s
                    .retry_period
                    .min((at + s.renew_deadline).saturating_duration_since(Instant::now())),
                None => jittered(s.retry_period),
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        fence.close();
        if leading.send_replace(false) {
            match tokio::time::timeout(s.retry_period, self.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "could not release the lease"),
                Err(_) => warn!("releasing the lease timed out"),
            }
        }
    }
}

/// The retry period plus up to 20 % (as client-go's jitter), so candidates do not
/// move in lockstep.
pub(crate) fn jittered(period: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = f64::from(nanos % 1000) / 1000.0 * 0.2;
    period.mul_f64(1.0 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(2));
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2400));
        }
    }
}

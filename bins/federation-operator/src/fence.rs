//! Fencing writes on leadership.
//!
//! The elector ([`crate::leader`]) publishes on a [`Fence`] until when this replica's
//! leadership is valid: the instant the last *successful* renewal was **sent**, plus the renew
//! deadline. Every write the controllers send goes through the fence:
//!
//! - to members, through [`crate::fenced_backend::FencedBackend`], which wraps the
//!   `NetworkBackend`'s `apply` and `delete`;
//! - to the hub (status writes, finalizers, Events), through [`FenceLayer`] in the
//!   controllers' hub client. The elector has its own client without this layer: renewing the
//!   Lease is how the fence moves forward.
//!
//! A fenced write is refused before it starts when the instant has passed (or the replica
//! does not lead), and a write that is running is cut when the instant passes: the fence is
//! checked before *every* poll of the write, so no request of it can be started in a poll that
//! begins after the deadline, even if the controllers task has not been aborted yet (the abort
//! on step-down takes effect only at the task's next await point, and only once the elector's
//! and the operator's tasks have been scheduled).
//!
//! # Why the deadline counts from when the renewal was sent
//! A standby judges the Lease expired `leaseDurationSeconds` after *it saw the record
//! change*, which is after the API server stored the renewal, which is after this replica sent
//! it. So `sent + renew_deadline` is reached before any standby can take over, by at least
//! `lease_duration - renew_deadline`, whatever the renewal's round trip took.
//!
//! # Limits
//! - A request already handed to the connection before the deadline cannot be recalled: it
//!   may reach the server, and be recorded there, a little after the deadline (the time a
//!   request spends between the fence check and the socket: microseconds to milliseconds, more
//!   if a new TCP/TLS connection has to be opened first). Dropping the write at the deadline
//!   drops the response, not the request.
//! - The margin `lease_duration - renew_deadline` (5 s by default, 1 s with the tests' fast
//!   timings) is what keeps such a request ahead of a new leader's first write; it also
//!   absorbs different clock rates between replicas (clocks are never compared: each side
//!   measures on its own monotonic clock).
//! - Reads are not fenced: a stale read changes nothing anywhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Whether, and until when, this replica may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Leader election is off: this replica is the only writer by configuration.
    Unfenced,
    /// This replica leads; it may write until this instant.
    Until(Instant),
    /// This replica does not lead.
    Closed,
}

/// Why a write was refused. Never worth retrying on this replica: only a renewal of the
/// Lease reopens the fence, and the controllers are stopped before that matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    /// The replica does not hold the Lease.
    #[error("write refused: this replica does not hold the lease")]
    NotLeader,
    /// The replica's leadership ran out (no successful renewal within the renew deadline).
    #[error("write refused: leadership expired {0:?} ago (renew deadline passed)")]
    Expired(Duration),
}

/// The shared validity of this replica's leadership: written by the elector, read by every
/// write. Cheap to clone (one shared handle).
#[derive(Clone, Debug)]
pub struct Fence {
    state: Arc<watch::Sender<Validity>>,
}

impl Fence {
    /// A fence that refuses everything until the elector opens it.
    pub fn closed() -> Self {
        Self::with(Validity::Closed)
    }

    /// A fence that lets every write through (leader election off).
    pub fn unfenced() -> Self {
        Self::with(Validity::Unfenced)
    }

    fn with(validity: Validity) -> Self {
        let (tx, _) = watch::channel(validity);
        Self {
            state: Arc::new(tx),
        }
    }

    /// Allows writes until `until` (called by the elector after each successful renewal).
    pub fn lead_until(&self, until: Instant) {
        self.state.send_replace(Validity::Until(until));
    }

    /// Refuses every write from now on (lost or released leadership).
    pub fn close(&self) {
        self.state.send_replace(Validity::Closed);
    }

    /// The current validity.
    pub fn validity(&self) -> Validity {
        *self.state.borrow()
    }

    /// `Ok(Some(deadline))` while leading, `Ok(None)` when unfenced, else why not.
    pub fn check(&self) -> Result<Option<Instant>, Fenced> {
        match self.validity() {
            Validity::Unfenced => Ok(None),
            Validity::Closed => Err(Fenced::NotLeader),
            Validity::Until(until) => {
                let now = Instant::now();
                if now < until {
                    Ok(Some(until))
                } else {
                    Err(Fenced::Expired(now - until))
                }
            }
        }
    }

    /// Runs a write under the fence: refused if the fence is shut now, cut when it shuts
    /// (deadline reached or leadership lost), and never polled once it is shut (see the
    /// module docs for why that bounds when its requests can start).
    pub async fn bound<F: Future>(&self, write: F) -> Result<F::Output, Fenced> {
        let mut changes = self.state.subscribe();
        let mut write = std::pin::pin!(write);
        loop {
            let deadline = self.check()?;
            let expiry = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let changed = async {
                // The sender lives in `self`, so this errs only if it is dropped: then
                // nothing changes any more.
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let guarded = std::future::poll_fn(|cx| {
                // Checked before every poll, not only at the start: a request the write
                // would start in this poll starts before the deadline.
                if let Err(e) = self.check() {
                    return Poll::Ready(Err(e));
                }
                write.as_mut().poll(cx).map(Ok)
            });
            tokio::select! {
                biased;
                result = guarded => return result,
                // Renewed (a later deadline) or closed: check again.
                () = changed => {}
                // The timer may fire a moment early or late; `check` decides.
                () = expiry => {}
            }
        }
    }
}

/// Whether an HTTP method writes.
fn writes(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// A layer for the controllers' hub client: write requests (POST, PUT, PATCH, DELETE) are
/// refused once the fence is shut and cut when it shuts; reads pass.
#[derive(Clone, Debug)]
pub struct FenceLayer {
    fence: Fence,
}

impl FenceLayer {
    /// Fences writes on `fence`.
    pub fn new(fence: Fence) -> Self {
        Self { fence }
    }
}

impl<S> Layer<S> for FenceLayer {
    type Service = FencedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FencedService {
            inner,
            fence: self.fence.clone(),
        }
    }
}

/// The service [`FenceLayer`] wraps around kube's stack.
#[derive(Clone, Debug)]
pub struct FencedService<S> {
    inner: S,
    fence: Fence,
}

/// The response future of [`FencedService`].
pub type FencedFuture<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, B> Service<http::Request<B>> for FencedService<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = FencedFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !writes(request.method()) {
            let response = self.inner.call(request);
            return Box::pin(async move { response.await.map_err(Into::into) });
        }
        // Refused here, before the inner stack has seen the request.
        if let Err(e) = self.fence.check() {
            return Box::pin(std::future::ready(Err(BoxError::from(e))));
        }
        let fence = self.fence.clone();
        // Lazy: hyper sends the request when this future is first polled, under the fence.
        let response = self.inner.call(request);
        Box::pin(async move {
            match fence.bound(response).await {
                Ok(result) => result.map_err(Into::into),
                Err(e) => Err(BoxError::from(e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_closed_or_expired_fence_refuses_and_an_open_one_passes() {
        let fence = Fence::closed();
        assert_eq!(fence.bound(async { 1 }).await, Err(Fenced::NotLeader));
        fence.lead_until(Instant::now() + SECOND);
        assert_eq!(fence.bound(async { 1 }).await, Ok(1));
        tokio::time::advance(SECOND).await;
        assert!(matches!(
            fence.bound(async { 1 }).await,
            Err(Fenced::Expired(_))
        ));
        assert_eq!(Fence::unfenced().bound(async { 1 }).await, Ok(1));
    }

    /// A write of two requests separated by a wait: the second would start after the
    /// deadline, so it must never start.
    #[tokio::test(start_paused = true)]
    async fn no_request_starts_after_the_deadline() {
        let fence = Fence::closed();
        fence.lead_until(Instant::now() + SECOND);
        let started = AtomicUsize::new(0);
        let write = async {
            started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(2 * SECOND).await;
            started.fetch_add(1, Ordering::SeqCst);
        };
        let result = fence.bound(write).await;
        assert!(matches!(result, Err(Fenced::Expired(_))), "{result:?}");
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    /// The deadline passing is noticed by the clock, not only by the write waking up.
    #[tokio::test(start_paused = true)]
    async fn a_running_write_is_cut_at_the_deadline() {
        let fence = Fence::closed();
        let t0 = Instant::now();
        fence.lead_until(t0 + SECOND);
        let result = fence.bound(std::future::pending::<()>()).await;
        assert!(matches!(result, Err(Fenced::Expired(_))));
        assert_eq!(Instant::now() - t0, SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_extend_a_running_write_and_closing_cuts_it() {
        let fence = Fence::closed();
        let t0 = Instant::now();
        fence.lead_until(t0 + SECOND);
        let renewer = {
            let fence = fence.clone();
            async move {
                tokio::time::sleep(SECOND / 2).await;
                fence.lead_until(t0 + 3 * SECOND);
            }
        };
        let (result, ()) = tokio::join!(fence.bound(tokio::time::sleep(2 * SECOND)), renewer);
        assert_eq!(result, Ok(()));
        let closer = {
            let fence = fence.clone();
            async move {
                tokio::time::sleep(SECOND / 4).await;
                fence.close();
            }
        };
        let started = Instant::now();
        let (result, ()) = tokio::join!(fence.bound(std::future::pending::<()>()), closer);
        assert_eq!(result, Err(Fenced::NotLeader));
        assert_eq!(Instant::now() - started, SECOND / 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_hub_layer_fences_writes_only() {
        let fence = Fence::closed();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let inner = tower::service_fn(move |_: http::Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>("done") }
        });
        let service = FenceLayer::new(fence.clone()).layer(inner);
        let request = |method: http::Method| {
            http::Request::builder()
                .method(method)
                .uri("/apis/fednet.io/v1alpha1/namespaces/x/federatednetworks/shop/status")
                .body(())
                .unwrap()
        };
        let read = service.clone().oneshot(request(http::Method::GET)).await;
        assert_eq!(read.unwrap(), "done");
        let write = service.clone().oneshot(request(http::Method::PATCH)).await;
        assert_eq!(
            write.unwrap_err().downcast_ref::<Fenced>(),
            Some(&Fenced::NotLeader)
        );
        // The refused write never reached the inner stack.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        fence.lead_until(Instant::now() + SECOND);
        let write = service.clone().oneshot(request(http::Method::PATCH)).await;
        assert_eq!(write.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

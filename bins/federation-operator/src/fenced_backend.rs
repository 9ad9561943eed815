//! A [`NetworkBackend`] decorator that fences writes to targets on leadership: `apply` and
//! `delete` run under the [`Fence`] (refused once this replica's leadership has run out, cut
//! when it runs out; see [`crate::fence`] for the guarantee and its limits). Everything else
//! passes through: pure calls write nothing, and `observe` only reads.
//!
//! A refused write is a non-retryable [`BackendError::Fenced`] carrying the [`Fenced`]
//! message: retrying on this replica could not help (only a renewal reopens the fence).
//!
//! Every method of the trait is passed through, defaults included: a decorator that left a
//! default in place would replace the backend's answer (its singletons, its teardown order)
//! with the default one.

use crate::fence::{Fence, Fenced};
use async_trait::async_trait;
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, NetworkBackend, ObserveScope, Observed, Target,
};
use std::sync::Arc;

/// Wraps a backend; writes run under the fence, the rest delegates.
pub struct FencedBackend {
    inner: Arc<dyn NetworkBackend>,
    fence: Fence,
}

impl FencedBackend {
    /// Fences the writes of `inner` on `fence`.
    pub fn new(inner: Arc<dyn NetworkBackend>, fence: Fence) -> Self {
        Self { inner, fence }
    }
}

fn refused(target: &Target, fenced: Fenced) -> BackendError {
    BackendError::Fenced {
        target: target.to_string(),
        reason: fenced.to_string(),
    }
}

#[async_trait]
impl NetworkBackend for FencedBackend {
    federation_core::delegate_pure_backend_methods!(inner);

    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        self.inner.observe(target, scope).await
    }

    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        self.fence
            .bound(self.inner.apply(target, objects))
            .await
            .unwrap_or_else(|e| Err(refused(target, e)))
    }

    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        self.fence
            .bound(self.inner.delete(target, objects))
            .await
            .unwrap_or_else(|e| Err(refused(target, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use federation_core::backend::MockNetworkBackend;
    use federation_core::backend::ObjectKey;
    use std::time::Duration;
    use tokio::time::Instant;

    fn object() -> DesiredObject {
        DesiredObject::new(
            ObjectKey::namespaced("v1", "Secret", "ns", "a"),
            serde_json::json!({}),
        )
    }

    fn deletion() -> Deletion {
        Deletion {
            key: object().key,
            uid: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_after_the_deadline_never_reach_the_backend() {
        let mut mock = MockNetworkBackend::new();
        // `times(0)`: the mock fails the test if a fenced write gets through.
        mock.expect_apply().times(0);
        mock.expect_delete().times(0);
        let fence = Fence::closed();
        fence.lead_until(Instant::now() + Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        let backend = FencedBackend::new(Arc::new(mock), fence);
        let target = Target::Member("east".into());
        let err = backend.apply(&target, &[object()]).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains("leadership expired"), "{err}");
        let err = backend.delete(&target, &[deletion()]).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn writes_while_leading_pass_through() {
        let mut mock = MockNetworkBackend::new();
        mock.expect_apply().times(1).returning(|_, _| Ok(()));
        mock.expect_observe()
            .times(1)
            .returning(|_, _| Ok(Observed::default()));
        let fence = Fence::closed();
        fence.lead_until(Instant::now() + Duration::from_secs(1));
        let backend = FencedBackend::new(Arc::new(mock), fence.clone());
        let target = Target::Member("east".into());
        backend.apply(&target, &[object()]).await.unwrap();
        // Reads are not fenced.
        fence.close();
        backend
            .observe(
                &target,
                &ObserveScope::new(federation_core::plan::NetworkRef::new("ns", "n"), ["x"]),
            )
            .await
            .unwrap();
    }

    #[test]
    fn defaults_of_the_seam_are_passed_through_not_replaced() {
        let mut mock = MockNetworkBackend::new();
        mock.expect_teardown_phase().returning(|_| 7);
        mock.expect_deletion_order().returning(|_| 5);
        mock.expect_candidate_targets()
            .returning(|m| vec![Target::Broker(m.to_owned())]);
        let backend = FencedBackend::new(Arc::new(mock), Fence::closed());
        assert_eq!(backend.teardown_phase(&Target::Member("a".into())), 7);
        assert_eq!(backend.deletion_order(&object().key), 5);
        assert_eq!(
            backend.candidate_targets("east"),
            [Target::Broker("east".into())]
        );
    }
}

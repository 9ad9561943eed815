//! A [`NetworkBackend`] decorator that counts the effectful calls and the objects written,
//! so each replica's `/metrics` says what it did to member clusters.

use crate::metrics::{BackendLabels, Metrics};
use async_trait::async_trait;
use federation_core::backend::{
    BackendError, Deletion, DesiredObject, NetworkBackend, ObserveScope, Observed, Target,
};
use std::sync::Arc;
use std::time::Instant;
use tracing::debug;

/// Wraps a backend; pure calls pass through, effectful ones are counted.
pub struct MeasuredBackend {
    inner: Arc<dyn NetworkBackend>,
    metrics: Metrics,
}

impl MeasuredBackend {
    /// Measures `inner` into `metrics`.
    pub fn new(inner: Arc<dyn NetworkBackend>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(
        &self,
        target: &Target,
        operation: &str,
        objects: usize,
        started: Instant,
        result: &Result<T, BackendError>,
    ) {
        let backend = self.inner.kind().to_string();
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.metric_label(),
        };
        // Per-target durations for `make bench-e2e`'s critical path.
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        debug!(on = %target, operation, objects, elapsed_ms, outcome, "backend call");
        self.metrics
            .backend_operations
            .get_or_create(&BackendLabels {
                backend: backend.clone(),
                operation: operation.to_owned(),
                result: outcome.to_owned(),
            })
            .inc();
        if result.is_ok() && objects > 0 {
            self.metrics
                .backend_objects
                .get_or_create(&BackendLabels {
                    backend,
                    operation: operation.to_owned(),
                    result: outcome.to_owned(),
                })
                .inc_by(u64::try_from(objects).unwrap_or(u64::MAX));
        }
    }
}

#[async_trait]
impl NetworkBackend for MeasuredBackend {
    federation_core::delegate_pure_backend_methods!(inner);

    async fn observe(
        &self,
        target: &Target,
        scope: &ObserveScope,
    ) -> Result<Observed, BackendError> {
        let started = Instant::now();
        let result = self.inner.observe(target, scope).await;
        self.count(target, "observe", 0, started, &result);
        result
    }

    async fn apply(&self, target: &Target, objects: &[DesiredObject]) -> Result<(), BackendError> {
        let started = Instant::now();
        let result = self.inner.apply(target, objects).await;
        self.count(target, "apply", objects.len(), started, &result);
        result
    }

    async fn delete(&self, target: &Target, objects: &[Deletion]) -> Result<(), BackendError> {
        let started = Instant::now();
        let result = self.inner.delete(target, objects).await;
        self.count(target, "delete", objects.len(), started, &result);
        result
    }

    // Every method with a default must be passed through too, or the decorator would
    // silently replace the backend's answer with the default.
}

#[cfg(test)]
mod tests {
    use super::*;
    use federation_core::api::BackendKind;
    use federation_core::backend::MockNetworkBackend;
    use federation_core::backend::ObjectKey;

    #[tokio::test]
    async fn counts_calls_and_objects() {
        let mut mock = MockNetworkBackend::new();
        mock.expect_kind().return_const(BackendKind::Skupper);
        mock.expect_apply().returning(|_, _| Ok(()));
        mock.expect_delete().returning(|t, _| {
            Err(BackendError::Unreachable {
                target: t.to_string(),
                reason: "down".into(),
            })
        });
        let metrics = Metrics::new();
        let backend = MeasuredBackend::new(Arc::new(mock), metrics.clone());
        let target = Target::Member("east".into());
        let object = DesiredObject::new(
            ObjectKey::namespaced("v1", "Secret", "ns", "a"),
            serde_json::json!({}),
        );
        backend
            .apply(&target, &[object.clone(), object.clone()])
            .await
            .unwrap();
        let deletion = Deletion {
            key: object.key,
            uid: None,
        };
        assert!(backend.delete(&target, &[deletion]).await.is_err());
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"fednet_backend_objects_total{backend="Skupper",operation="apply",result="ok"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"fednet_backend_operations_total{backend="Skupper",operation="delete",result="unreachable"} 1"#
        ));
    }

    #[test]
    fn defaults_of_the_seam_are_passed_through_not_replaced() {
        let mut mock = MockNetworkBackend::new();
        mock.expect_teardown_phase().returning(|_| 7);
        mock.expect_deletion_order().returning(|_| 5);
        mock.expect_candidate_targets()
            .returning(|m| vec![Target::Broker(m.to_owned())]);
        let backend = MeasuredBackend::new(Arc::new(mock), Metrics::new());
        let key = ObjectKey::namespaced("v1", "Secret", "ns", "a");
        assert_eq!(backend.teardown_phase(&Target::Member("a".into())), 7);
        assert_eq!(backend.deletion_order(&key), 5);
        assert_eq!(
            backend.candidate_targets("east"),
            [Target::Broker("east".into())]
        );
    }
}

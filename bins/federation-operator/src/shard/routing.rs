//! How the controllers follow the shards (see [`crate::shard`]): one core context per shard,
//! the route of each reconcile to its shard's context (or nowhere), and the triggers that
//! reconcile a shard's objects as soon as it is acquired. Kept out of
//! [`crate::controllers`], which only calls in here.

use super::{HeldShards, ShardRouting};
use crate::controllers::{
    ControllerSettings, OperatorContext, fenced_engines, measured_backends, recorder,
};
use crate::fence::Fence;
use crate::metrics::Metrics;
use federation_core::controller::{Context, ControllerError};
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::debug;

/// One core context per shard: the same registry, probe streaks and timings as the base
/// context, but the shard's fenced hub client, Event recorder and backends.
pub struct ShardContexts {
    pub(crate) routing: ShardRouting,
    cores: Vec<Arc<Context>>,
}

/// Where a reconcile goes.
pub(crate) enum Route {
    /// Not sharded: the one context, fenced on leadership.
    Whole(Arc<Context>),
    /// The context of a shard this replica holds, and that shard's fence.
    Shard(Arc<Context>, Fence),
    /// Another replica's shard: nothing to do here.
    Elsewhere,
}

impl OperatorContext {
    pub(crate) fn route(&self, shard_of: impl FnOnce(u32) -> u32) -> Route {
        let Some(shards) = &self.shards else {
            return Route::Whole(self.core.clone());
        };
        let shard = shard_of(shards.routing.count);
        let index = usize::try_from(shard).unwrap_or(usize::MAX);
        match (shards.cores.get(index), shards.routing.fences.get(index)) {
            (Some(core), Some(fence)) if fence.check().is_ok() => {
                Route::Shard(core.clone(), fence.clone())
            }
            _ => Route::Elsewhere,
        }
    }
}

/// Runs a reconcile where [`OperatorContext::route`] says: in a shard, the whole pass is
/// bound to the shard's fence, so it is dropped (not only its writes refused) the moment
/// the shard is lost.
pub(crate) async fn routed<F, Fut>(route: Route, reconcile: F) -> Result<Action, ControllerError>
where
    F: FnOnce(Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, ControllerError>>,
{
    match route {
        Route::Whole(core) => reconcile(core).await,
        // Acquiring the shard triggers it again.
        Route::Elsewhere => Ok(Action::await_change()),
        Route::Shard(core, fence) => {
            let retry = core.timing.progressing;
            match fence.bound(reconcile(core)).await {
                Ok(result) => result,
                // Looked at again soon: skipped if the shard is someone else's by then.
                Err(fenced) => {
                    debug!(%fenced, "shard lost during a pass; dropped it");
                    Ok(Action::requeue(retry))
                }
            }
        }
    }
}

/// The per-shard contexts: `base` with each shard's hub client, recorder and engines.
pub(crate) fn shard_contexts(
    base: &Context,
    routing: ShardRouting,
    settings: &ControllerSettings,
    metrics: &Metrics,
) -> ShardContexts {
    let backends = measured_backends(&base.hub, &base.registry, metrics);
    let cores = routing
        .hubs
        .iter()
        .zip(routing.fences.iter())
        .map(|(hub, fence)| {
            Arc::new(Context {
                hub: hub.clone(),
                engines: fenced_engines(&backends, fence, &settings.tuning),
                recorder: Some(recorder(hub, settings)),
                ..base.clone()
            })
        })
        .collect();
    ShardContexts { routing, cores }
}

/// Triggers, when shards are acquired, for every object of those shards in `store`.
pub(crate) fn on_acquired<K>(
    owned: watch::Receiver<HeldShards>,
    store: Store<K>,
    shard_of: impl Fn(&K) -> u32 + Send + 'static,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let held = owned.borrow().clone();
    futures::stream::unfold((owned, held), |(mut owned, before)| async move {
        owned.changed().await.ok()?;
        let now = owned.borrow_and_update().clone();
        // New shards, and shards lost and acquired again since the last look.
        let gained: BTreeSet<u32> = now
            .iter()
            .filter(|(shard, n)| before.get(shard) != Some(n))
            .map(|(shard, _)| *shard)
            .collect();
        Some((gained, (owned, now)))
    })
    .flat_map(move |gained| {
        let refs: Vec<ObjectRef<K>> = store
            .state()
            .iter()
            .filter(|o| gained.contains(&shard_of(o)))
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect();
        futures::stream::iter(refs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use federation_core::api::MemberCluster;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn member(name: &str) -> MemberCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fednet.io/v1alpha1", "kind": "MemberCluster",
            "metadata": {"name": name},
            "spec": {"clusterId": name, "kubeconfigSecretRef": {"namespace": "ns", "name": name}}
        }))
        .unwrap()
    }

    async fn next(
        stream: &mut (impl futures::Stream<Item = ObjectRef<MemberCluster>> + Unpin),
    ) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(1), stream.next())
            .await
            .expect("a trigger")
            .expect("the stream goes on")
            .name
    }

    /// A shard lost and acquired again before the controllers looked is still a new
    /// acquisition: its objects are triggered again (a watch channel only keeps the last
    /// value, so the set of shards alone would look unchanged).
    #[tokio::test]
    async fn acquiring_a_shard_triggers_its_objects_even_after_a_loss_nobody_saw() {
        let (store, mut writer) = reflector::store::<MemberCluster>();
        for name in ["a", "b"] {
            writer.apply_watcher_event(&Event::Apply(member(name)));
        }
        let (held, owned) = watch::channel(HeldShards::new());
        let shard_of = |m: &MemberCluster| u32::from(m.metadata.name.as_deref() == Some("b"));
        let mut triggers = Box::pin(on_acquired(owned, store, shard_of));

        held.send_replace(HeldShards::from([(1, 1)]));
        assert_eq!(next(&mut triggers).await, "b");
        // Lost and acquired again, faster than anyone looked: only the number differs.
        held.send_replace(HeldShards::new());
        held.send_replace(HeldShards::from([(1, 2)]));
        assert_eq!(next(&mut triggers).await, "b");
        // Another shard joins: only its objects.
        held.send_replace(HeldShards::from([(0, 3), (1, 2)]));
        assert_eq!(next(&mut triggers).await, "a");
        // Nothing new: no trigger.
        held.send_replace(HeldShards::from([(0, 3), (1, 2)]));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(100), triggers.next())
                .await
                .is_err()
        );
    }
}

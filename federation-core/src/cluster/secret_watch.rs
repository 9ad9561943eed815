//! Kubeconfig Secrets read through watches, one per member, each selecting its Secret by
//! name: the operator holds only the Secrets members reference, and reading one costs no
//! request once its watch has listed.

use super::ClusterError;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the first read of a member's Secret waits for its watch to list.
const FIRST_SYNC: Duration = Duration::from_secs(5);

struct SecretWatch {
    namespace: String,
    name: String,
    store: Store<Secret>,
    last_error: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl Drop for SecretWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The running Secret watches, by member.
pub(super) struct SecretWatches {
    hub: Client,
    watches: Mutex<HashMap<String, SecretWatch>>,
}

impl SecretWatches {
    pub(super) fn new(hub: Client) -> Self {
        Self {
            hub,
            watches: Mutex::new(HashMap::new()),
        }
    }

    /// The Secret `namespace/name` of `member`, as its watch last saw it; starts the watch on
    /// first use (or when the member now references another Secret).
    pub(super) async fn get(
        &self,
        member: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, ClusterError> {
        let (store, last_error) = {
            let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
            let current = watches
                .get(member)
                .filter(|w| w.namespace == namespace && w.name == name);
            match current {
                Some(w) => (w.store.clone(), w.last_error.clone()),
                None => {
                    let w = self.start(namespace, name);
                    let handles = (w.store.clone(), w.last_error.clone());
                    watches.insert(member.to_owned(), w);
                    handles
                }
            }
        };
        if tokio::time::timeout(FIRST_SYNC, store.wait_until_ready())
            .await
            .is_err()
        {
            let reason = last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| format!("no answer within {FIRST_SYNC:?}"));
            return Err(ClusterError::SecretNotSynced {
                member: member.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                reason,
            });
        }
        Ok(store.state().into_iter().next())
    }

    /// Stops watching the Secret of `member`.
    pub(super) fn forget(&self, member: &str) {
        self.watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(member);
    }

    fn start(&self, namespace: &str, name: &str) -> SecretWatch {
        let (store, writer) = reflector::store();
        let last_error = Arc::new(Mutex::new(None));
        let api: Api<Secret> = Api::namespaced(self.hub.clone(), namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let errors = last_error.clone();
        let stream = reflector::reflector(writer, watcher::watcher(api, config)).default_backoff();
        let task = tokio::spawn(stream.for_each(move |event| {
            // The error names the Secret and the API's answer, never the data.
            let mut last = errors.lock().unwrap_or_else(PoisonError::into_inner);
            *last = event.err().map(|e| e.to_string());
            futures::future::ready(())
        }));
        SecretWatch {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            store,
            last_error,
            task,
        }
    }
}

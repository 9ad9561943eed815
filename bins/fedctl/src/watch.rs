//! `fedctl status --watch`: kube watches (not polling) of the networks, their services and the
//! members feed local stores; every change that alters what would be shown yields a new view.

use crate::report::{StatusReport, SummaryRow};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use futures::stream::{BoxStream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One network.
    Network {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Every network of a namespace, or of all namespaces when `None`.
    Networks(Option<String>),
}

/// One state to show.
#[derive(Clone, Debug, PartialEq)]
pub enum View {
    /// The watched network.
    Network(Box<StatusReport>),
    /// The watched network does not exist (yet, or any more).
    Gone {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// One line per network.
    Summary(Vec<SummaryRow>),
}

/// What a watch sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// A new state, different from the previous one.
    View(View),
    /// A watch failed; it is retried with backoff, and the last view stays valid meanwhile.
    Trouble(String),
}

/// Which watch an event came from, and whether it completed a (re)list.
struct Tick {
    source: usize,
    settled: bool,
}

/// Watches `scope` and sends a [`View`] after the initial lists and then after every change
/// that alters it. Runs until `updates` is closed.
pub async fn watch(client: Client, scope: Scope, updates: mpsc::Sender<Update>) {
    let (ns, name) = match &scope {
        Scope::Network { namespace, name } => (Some(namespace.clone()), Some(name.clone())),
        Scope::Networks(ns) => (ns.clone(), None),
    };
    let mut network_config = watcher::Config::default();
    if let Some(name) = &name {
        network_config = network_config.fields(&format!("metadata.name={name}"));
    }
    let (networks, networks_stream) = watched(
        api::<FederatedNetwork>(&client, ns.as_deref()),
        network_config,
        0,
    );
    let (services, services_stream) = watched(
        api::<FederatedService>(&client, ns.as_deref()),
        watcher::Config::default(),
        1,
    );
    let mut streams = vec![networks_stream, services_stream];
    // Member status (reachable, version) is shown only for one network.
    let members = name.as_ref().map(|_| {
        let (store, stream) = watched(
            Api::<MemberCluster>::all(client.clone()),
            watcher::Config::default(),
            2,
        );
        streams.push(stream);
        store
    });
    let mut settled = vec![false; streams.len()];
    let mut events = futures::stream::select_all(streams);
    let mut last: Option<View> = None;
    while let Some(tick) = events.next().await {
        let tick = match tick {
            Ok(t) => t,
            Err(message) => {
                if updates.send(Update::Trouble(message)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if tick.settled
            && let Some(s) = settled.get_mut(tick.source)
        {
            *s = true;
        }
        if !settled.iter().all(|s| *s) {
            continue;
        }
        let services = owned(&services);
        let view = match (&scope, &members) {
            (Scope::Network { namespace, name }, Some(members)) => {
                match networks
                    .state()
                    .iter()
                    .find(|n| n.metadata.name.as_ref() == Some(name))
                {
                    Some(n) => {
                        View::Network(Box::new(StatusReport::build(n, &services, &owned(members))))
                    }
                    None => View::Gone {
                        namespace: namespace.clone(),
                        name: name.clone(),
                    },
                }
            }
            _ => View::Summary(SummaryRow::build_all(&owned(&networks), &services)),
        };
        if last.as_ref() == Some(&view) {
            continue;
        }
        if updates.send(Update::View(view.clone())).await.is_err() {
            return;
        }
        last = Some(view);
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

type Ticks = BoxStream<'static, Result<Tick, String>>;

/// A store fed by a watch of `api`, and the watch's events as ticks from `source`.
fn watched<K>(api: Api<K>, config: watcher::Config, source: usize) -> (Store<K>, Ticks)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let what = K::kind(&()).into_owned();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .filter_map(move |event| {
            let tick = match event {
                // The store swaps in a relisted state only when the list is complete, so the
                // view is rebuilt then, never from half a list.
                Ok(watcher::Event::InitDone) => Some(Ok(Tick {
                    source,
                    settled: true,
                })),
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => Some(Ok(Tick {
                    source,
                    settled: false,
                })),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(e) => Some(Err(format!("watching {what}s: {e}"))),
            };
            std::future::ready(tick)
        })
        .boxed();
    (store, stream)
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .iter()
        .map(|o: &Arc<K>| (**o).clone())
        .collect()
}

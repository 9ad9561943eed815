//! The hub clients: kube's default stack plus a layer that counts requests by method, so
//! every replica reports what it sent (a standby sends only Lease reads), and a User-Agent
//! naming the replica, so the hub's (and members') audit logs tell replicas apart.
//!
//! Two clients share one configuration: the elector's, and the controllers', whose writes
//! are fenced on leadership ([`crate::fence::FenceLayer`]). They are separate so that the
//! Lease renewals, which move the fence forward, are never themselves fenced.

use crate::config::Config;
use crate::fence::{Fence, FenceLayer};
use crate::metrics::{Metrics, RequestLabels};
use http::HeaderValue;
use kube::client::ClientBuilder;
use kube::config::KubeConfigOptions;
use kube::{Client, Config as KubeConfig};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The hub's client configuration from `--kubeconfig`/`--context`, else the usual inference
/// (`$KUBECONFIG`, `~/.kube/config`, in-cluster).
pub async fn hub_config(config: &Config) -> anyhow::Result<KubeConfig> {
    let options = KubeConfigOptions {
        context: config.context.clone(),
        ..KubeConfigOptions::default()
    };
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("reading kubeconfig {}: {e}", path.display()))?;
            KubeConfig::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if config.context.is_some() => KubeConfig::from_kubeconfig(&options).await?,
        None => KubeConfig::infer().await?,
    };
    Ok(kube_config)
}

/// `fednet-operator/<version> (<identity>)`; without the identity if it cannot be a header
/// value (it comes from a flag or the pod name, which are visible ASCII in practice).
pub fn user_agent(identity: &str) -> HeaderValue {
    let version = env!("CARGO_PKG_VERSION");
    HeaderValue::from_str(&format!("fednet-operator/{version} ({identity})"))
        .or_else(|_| HeaderValue::from_str(&format!("fednet-operator/{version}")))
        .unwrap_or(HeaderValue::from_static("fednet-operator"))
}

/// A hub client from `kube_config` that counts its requests into `metrics`, sends
/// `user_agent`, and fences its writes on `fence` when one is given.
pub fn hub_client(
    kube_config: &KubeConfig,
    user_agent: &HeaderValue,
    metrics: &Metrics,
    fence: Option<&Fence>,
) -> anyhow::Result<Client> {
    let mut kube_config = kube_config.clone();
    kube_config
        .headers
        .retain(|(name, _)| name != http::header::USER_AGENT);
    kube_config
        .headers
        .push((http::header::USER_AGENT, user_agent.clone()));
    let counted = ClientBuilder::try_from(kube_config)?.with_layer(&CountRequests {
        requests: metrics.hub_requests.clone(),
    });
    // The fence goes outside the counter: a refused write is never sent, so not counted.
    Ok(match fence {
        Some(fence) => counted.with_layer(&FenceLayer::new(fence.clone())).build(),
        None => counted.build(),
    })
}

/// A client that sends through `base` (its connections, its request counting, its
/// User-Agent) with its writes fenced on `fence`. Sharded replicas have one per shard; they
/// share `base`'s connections instead of opening their own.
pub fn fenced_view(base: &Client, fence: &Fence) -> Client {
    let service = FenceLayer::new(fence.clone()).layer(Through(base.clone()));
    Client::new(service, base.default_namespace().to_owned())
}

/// A client as a `tower` service: requests go out through it. Its future is lazy (nothing
/// is sent before the first poll), which [`FenceLayer`] relies on.
#[derive(Clone)]
struct Through(Client);

impl Service<http::Request<kube::client::Body>> for Through {
    type Response = http::Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(request).await })
    }
}

/// The resource a request path addresses (`leases`, `federatednetworks`, ...), with
/// subresources as `<resource>/<subresource>` (`federatednetworks/status`); `""` for paths
/// that are not resources (discovery, `/version`). Names never appear: they are unbounded.
pub fn resource_of(path: &str) -> String {
    let rest = if let Some(rest) = path.strip_prefix("/api/v1/") {
        rest
    } else if let Some(rest) = path.strip_prefix("/apis/") {
        // Skip `<group>/<version>/`.
        match rest.splitn(3, '/').nth(2) {
            Some(rest) => rest,
            None => return String::new(),
        }
    } else {
        return String::new();
    };
    let rest = match rest.strip_prefix("namespaces/") {
        Some(after) => match after.split_once('/') {
            Some((_namespace, resource)) => resource,
            None => return "namespaces".to_owned(),
        },
        None => rest,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [resource, _name, sub, ..] => format!("{resource}/{sub}"),
        [resource, ..] => (*resource).to_owned(),
        [] => String::new(),
    }
}

/// Counts requests by HTTP method and resource.
#[derive(Clone)]
pub struct CountRequests {
    requests: Family<RequestLabels, Counter>,
}

impl<S> Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            requests: self.requests.clone(),
        }
    }
}

/// The service [`CountRequests`] wraps around kube's stack.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    requests: Family<RequestLabels, Counter>,
}

impl<S, B> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.requests
            .get_or_create(&RequestLabels {
                method: request.method().as_str().to_owned(),
                resource: resource_of(request.uri().path()),
            })
            .inc();
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::resource_of;

    #[test]
    fn request_paths_map_to_resources() {
        let cases = [
            (
                "/apis/coordination.k8s.io/v1/namespaces/x/leases/op",
                "leases",
            ),
            (
                "/apis/fednet.io/v1alpha1/namespaces/x/federatednetworks",
                "federatednetworks",
            ),
            (
                "/apis/fednet.io/v1alpha1/namespaces/x/federatednetworks/shop/status",
                "federatednetworks/status",
            ),
            (
                "/apis/fednet.io/v1alpha1/memberclusters/east/status",
                "memberclusters/status",
            ),
            ("/api/v1/namespaces/x/secrets/east-kubeconfig", "secrets"),
            ("/api/v1/namespaces/x", "namespaces"),
            ("/apis/events.k8s.io/v1/namespaces/x/events", "events"),
            ("/version", ""),
            ("/apis", ""),
        ];
        for (path, want) in cases {
            assert_eq!(resource_of(path), want, "{path}");
        }
    }
}

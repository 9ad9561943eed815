//! Loading CustomResourceDefinitions from YAML and installing them into a test API server.
//!
//! Installing means more than creating: a CRD that was just created is not served yet. The kit
//! waits until the CRD's `Established` condition is true *and* discovery lists its plural for every
//! served version, because clients that build their requests from discovery (kube's
//! `Discovery`, kubectl) see the resource only then.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize as _;

use crate::error::{Error, Result};

/// Environment variable overriding the folder of upstream CRDs.
pub const ENV_UPSTREAM_CRDS: &str = "FEDNET_UPSTREAM_CRDS";

/// Field manager the kit applies CRDs with.
const FIELD_MANAGER: &str = "federation-testkit";
/// Pause between discovery polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// An upstream project whose CRDs live in a subfolder of [`upstream_crds_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Upstream {
    /// Skupper v2 (`skupper.io/v2alpha1`).
    Skupper,
    /// Submariner operator (`submariner.io/v1alpha1`) and dataplane (`submariner.io/v1`) CRDs.
    Submariner,
    /// Multi-Cluster Services API (`multicluster.x-k8s.io`).
    McsApi,
    /// About API, ClusterProperty (`about.k8s.io`).
    AboutApi,
}

impl Upstream {
    /// Every upstream project with CRDs in the reference folder.
    pub const ALL: [Self; 4] = [
        Self::Skupper,
        Self::Submariner,
        Self::McsApi,
        Self::AboutApi,
    ];

    /// The subfolder of [`upstream_crds_dir`] holding this project's CRDs.
    pub fn folder(self) -> &'static str {
        match self {
            Self::Skupper => "skupper",
            Self::Submariner => "submariner",
            Self::McsApi => "mcs-api",
            Self::AboutApi => "about-api",
        }
    }
}

/// The folder of upstream CRDs: `$FEDNET_UPSTREAM_CRDS` if set, otherwise
/// `../shared/reference/crds` relative to the workspace root.
pub fn upstream_crds_dir() -> PathBuf {
    match std::env::var_os(ENV_UPSTREAM_CRDS) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // This crate sits one level below the workspace root.
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/crds"),
    }
}

/// Loads the CRDs of the given upstream projects from [`upstream_crds_dir`].
///
/// One fix-up is applied, the one upstream's own install applies: CRDs in a protected group
/// (`*.k8s.io`, `*.kubernetes.io`, which includes about-api's `about.k8s.io`) without an
/// `api-approved.kubernetes.io` annotation get one starting with `unapproved`. The API server
/// refuses such CRDs otherwise; about-api adds the annotation with a kustomize patch that its
/// published YAML lacks (kubernetes-sigs/about-api#17).
///
/// # Errors
/// A missing folder or an unparsable file, named in the error.
pub fn upstream_crds(projects: &[Upstream]) -> Result<Vec<CustomResourceDefinition>> {
    let root = upstream_crds_dir();
    let mut crds = Vec::new();
    for project in projects {
        crds.extend(load_crds(root.join(project.folder()))?);
    }
    for crd in &mut crds {
        annotate_protected_group(crd);
    }
    Ok(crds)
}

/// The annotation the API server requires on CRDs in Kubernetes-owned groups.
const API_APPROVED_ANNOTATION: &str = "api-approved.kubernetes.io";

fn annotate_protected_group(crd: &mut CustomResourceDefinition) {
    let group = crd.spec.group.as_str();
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|owned| group == *owned || group.ends_with(&format!(".{owned}")));
    if protected {
        crd.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .entry(API_APPROVED_ANNOTATION.to_owned())
            .or_insert_with(|| {
                "unapproved, upstream YAML published without its kustomize patch".to_owned()
            });
    }
}

/// Loads every CRD from a YAML file, or from all `*.yaml`/`*.yml` files below a folder (recursively,
/// in name order). Files may hold several documents; empty documents are skipped.
///
/// # Errors
/// An unreadable path, invalid YAML, or a document that is not a `CustomResourceDefinition`.
pub fn load_crds(path: impl AsRef<Path>) -> Result<Vec<CustomResourceDefinition>> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if meta.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        return parse_crds(&text, path);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io("list", path, e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io("list", path, e))?;
    entries.sort();
    let mut crds = Vec::new();
    for entry in entries {
        let is_yaml = entry
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if entry.is_dir() || is_yaml {
            crds.extend(load_crds(&entry)?);
        }
    }
    Ok(crds)
}

/// Parses a (multi-document) YAML text of CRDs; `origin` only names the source in errors.
///
/// # Errors
/// Invalid YAML or a document of another kind.
pub fn parse_crds(yaml: &str, origin: &Path) -> Result<Vec<CustomResourceDefinition>> {
    let yaml_error = |source| Error::Yaml {
        path: origin.to_owned(),
        source,
    };
    let mut crds = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(document).map_err(yaml_error)?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(serde_yaml::Value::as_str);
        if kind != Some("CustomResourceDefinition") {
            return Err(Error::InvalidDocument {
                path: origin.to_owned(),
                reason: format!("expected kind CustomResourceDefinition, found {kind:?}"),
            });
        }
        crds.push(serde_yaml::from_value(value).map_err(yaml_error)?);
    }
    Ok(crds)
}

/// Applies `crds` (server-side apply, so installing twice is harmless) and waits until each is
/// established and listed by discovery.
pub(crate) async fn install(
    client: &Client,
    cluster: &str,
    crds: &[CustomResourceDefinition],
    timeout: Duration,
) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    try_join_all(crds.iter().map(|crd| {
        let (api, params) = (&api, &params);
        async move {
            let name = crd_name(crd)?;
            api.patch(name, params, &Patch::Apply(crd))
                .await
                .map_err(|e| Error::kube(format!("{cluster}: apply CRD {name}"), e))?;
            wait_served(client, api, cluster, crd, timeout).await
        }
    }))
    .await?;
    Ok(())
}

fn crd_name(crd: &CustomResourceDefinition) -> Result<&str> {
    crd.metadata
        .name
        .as_deref()
        .ok_or_else(|| Error::InvalidArgument("a CustomResourceDefinition has no name".to_owned()))
}

async fn wait_served(
    client: &Client,
    api: &Api<CustomResourceDefinition>,
    cluster: &str,
    crd: &CustomResourceDefinition,
    timeout: Duration,
) -> Result<()> {
    let name = crd_name(crd)?;
    let start = Instant::now();
    loop {
        let last_error = match served_state(client, api, crd, name).await? {
            None => return Ok(()),
            Some(not_yet) => not_yet,
        };
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!("{cluster}: CRD {name}"),
                waited: start.elapsed(),
                last_error,
                log: PathBuf::from("(see the kube-apiserver log of this cluster)"),
                tail: String::new(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `None` when the CRD is established and discoverable, otherwise why not yet. Conditions that
/// will not resolve by waiting (a name conflict) are errors.
async fn served_state(
    client: &Client,
    api: &Api<CustomResourceDefinition>,
    crd: &CustomResourceDefinition,
    name: &str,
) -> Result<Option<String>> {
    let current = match api.get(name).await {
        Ok(current) => current,
        Err(e) => return Ok(Some(format!("get CRD: {e}"))),
    };
    let conditions = current
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    if let Some(rejected) = conditions
        .iter()
        .find(|c| c.type_ == "NamesAccepted" && c.status == "False")
    {
        return Err(Error::InvalidArgument(format!(
            "CRD {name} names not accepted: {}",
            rejected.message.as_deref().unwrap_or("no message")
        )));
    }
    let established = conditions
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    if !established {
        return Ok(Some("not Established yet".to_owned()));
    }
    let plural = &crd.spec.names.plural;
    for version in crd.spec.versions.iter().filter(|v| v.served) {
        let group_version = format!("{}/{}", crd.spec.group, version.name);
        match client.list_api_group_resources(&group_version).await {
            Ok(list) if list.resources.iter().any(|r| &r.name == plural) => {}
            Ok(_) => {
                return Ok(Some(format!(
                    "{plural} not in discovery of {group_version}"
                )));
            }
            Err(e) => return Ok(Some(format!("discovery of {group_version}: {e}"))),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_upstream_crd() {
        let crds = upstream_crds(&Upstream::ALL).unwrap();
        let names: Vec<&str> = crds
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .collect();
        for expected in [
            "sites.skupper.io",
            "links.skupper.io",
            "submariners.submariner.io",
            "clusters.submariner.io",
            "serviceexports.multicluster.x-k8s.io",
            "clusterproperties.about.k8s.io",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        // 12 Skupper, 12 Submariner, 2 MCS, 1 about-api.
        assert_eq!(crds.len(), 27, "{names:?}");
        let about = crds
            .iter()
            .find(|c| c.spec.group == "about.k8s.io")
            .unwrap();
        let annotations = about.metadata.annotations.as_ref().unwrap();
        assert!(annotations[API_APPROVED_ANNOTATION].starts_with("unapproved"));
        let skupper = crds.iter().find(|c| c.spec.group == "skupper.io").unwrap();
        let untouched = skupper.metadata.annotations.as_ref();
        assert!(untouched.is_none_or(|a| !a.contains_key(API_APPROVED_ANNOTATION)));
    }

    #[test]
    fn skips_empty_documents_and_rejects_other_kinds() {
        let origin = Path::new("inline.yaml");
        assert!(parse_crds("---\n---\n", origin).unwrap().is_empty());
        let err = parse_crds("apiVersion: v1\nkind: ConfigMap\n", origin).unwrap_err();
        assert!(err.to_string().contains("inline.yaml"), "{err}");
    }
}

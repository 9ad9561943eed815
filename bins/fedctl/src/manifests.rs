//! Reading fednet manifests from files, for the offline commands (`plan`, `topology -f`).

use anyhow::{Context, Result, bail};
use federation_core::api::{FederatedNetwork, FederatedService, MemberCluster};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The fednet objects found in a set of files.
#[derive(Default)]
pub struct Manifests {
    /// The networks.
    pub networks: Vec<FederatedNetwork>,
    /// The member clusters.
    pub members: Vec<MemberCluster>,
    /// The shared services.
    pub services: Vec<FederatedService>,
}

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

impl Manifests {
    /// Reads every `.yaml`/`.yml` file given, descending into folders.
    pub fn load(paths: &[PathBuf]) -> Result<Self> {
        let mut out = Self::default();
        for path in paths {
            for file in files_under(path)? {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                out.add_documents(&text)
                    .with_context(|| format!("in {}", file.display()))?;
            }
        }
        Ok(out)
    }

    fn add_documents(&mut self, text: &str) -> Result<()> {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = serde_yaml::Value::deserialize(doc)
                .with_context(|| format!("document {}", i + 1))?;
            if value.is_null() {
                continue;
            }
            let meta: TypeMeta = serde_yaml::from_value(value.clone())
                .with_context(|| format!("document {}", i + 1))?;
            if meta.api_version != "fednet.io/v1alpha1" {
                continue;
            }
            let what = || format!("document {} ({})", i + 1, meta.kind);
            match meta.kind.as_str() {
                "FederatedNetwork" => {
                    let mut n: FederatedNetwork =
                        serde_yaml::from_value(value).with_context(what)?;
                    n.metadata.namespace.get_or_insert_with(|| "default".into());
                    self.networks.push(n);
                }
                "FederatedService" => {
                    let mut s: FederatedService =
                        serde_yaml::from_value(value).with_context(what)?;
                    s.metadata.namespace.get_or_insert_with(|| "default".into());
                    self.services.push(s);
                }
                "MemberCluster" => self
                    .members
                    .push(serde_yaml::from_value(value).with_context(what)?),
                other => bail!("document {}: unknown fednet.io kind {other}", i + 1),
            }
        }
        Ok(())
    }
}

fn files_under(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
    for entry in entries {
        let p = entry?.path();
        if p.is_dir() {
            files.extend(files_under(&p)?);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

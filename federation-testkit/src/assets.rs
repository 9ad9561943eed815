//! Finding the `kube-apiserver` and `etcd` binaries.
//!
//! The lookup order is the one controller-runtime's envtest uses, so that a developer who already
//! has envtest assets reuses them:
//!
//! 1. `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD`: the binary itself (if set, it must exist);
//! 2. `KUBEBUILDER_ASSETS`: a folder holding both (skipped if it lacks them);
//! 3. the setup-envtest store, `${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest/k8s/<version>-linux-amd64/`,
//!    which is where `hack/envtest/assets.sh` builds them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Kubernetes version `hack/envtest/assets.sh` builds (see `hack/envtest/versions.env`).
pub const KUBERNETES_VERSION: &str = "1.37.2";

/// Environment variable naming the `kube-apiserver` binary.
pub const ENV_KUBE_APISERVER: &str = "TEST_ASSET_KUBE_APISERVER";
/// Environment variable naming the `etcd` binary.
pub const ENV_ETCD: &str = "TEST_ASSET_ETCD";
/// Environment variable naming a folder that holds both binaries.
pub const ENV_KUBEBUILDER_ASSETS: &str = "KUBEBUILDER_ASSETS";

/// The two binaries a control plane needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    /// Path of `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// Path of `etcd`.
    pub etcd: PathBuf,
}

impl Assets {
    /// Resolves both binaries from the environment (see the module documentation for the order).
    ///
    /// # Errors
    /// [`Error::AssetNotFound`] naming every place that was tried and `hack/envtest/assets.sh`.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            kube_apiserver: resolve("kube-apiserver", ENV_KUBE_APISERVER)?,
            etcd: resolve("etcd", ENV_ETCD)?,
        })
    }
}

/// The setup-envtest store folder for [`KUBERNETES_VERSION`], whether or not it exists.
///
/// Returns `None` only when neither `XDG_DATA_HOME` nor `HOME` is set.
pub fn envtest_store_dir() -> Option<PathBuf> {
    let data_home = data_home()?;
    Some(
        data_home
            .join("kubebuilder-envtest/k8s")
            .join(format!("{KUBERNETES_VERSION}-linux-amd64")),
    )
}

/// `XDG_DATA_HOME`, else `$HOME/.local/share`.
pub(crate) fn data_home() -> Option<PathBuf> {
    non_empty_env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|home| Path::new(&home).join(".local/share")))
}

fn resolve(binary: &'static str, env_var: &'static str) -> Result<PathBuf> {
    // A binary named explicitly is used or refused, never silently replaced by another one.
    if let Some(direct) = non_empty_env(env_var) {
        let direct = PathBuf::from(direct);
        return if is_executable(&direct) {
            Ok(direct)
        } else {
            Err(Error::AssetNotFound {
                binary,
                env_var,
                searched: vec![direct],
            })
        };
    }
    // KUBEBUILDER_ASSETS falls through to the store, as in hack/envtest/assets.sh.
    let mut candidates = Vec::new();
    if let Some(folder) = non_empty_env(ENV_KUBEBUILDER_ASSETS) {
        candidates.push(Path::new(&folder).join(binary));
    }
    if let Some(store) = envtest_store_dir() {
        candidates.push(store.join(binary));
    }
    match candidates.iter().find(|path| is_executable(path)) {
        Some(found) => Ok(found.clone()),
        None => Err(Error::AssetNotFound {
            binary,
            env_var,
            searched: candidates,
        }),
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_error_names_the_build_script() {
        let err = Error::AssetNotFound {
            binary: "etcd",
            env_var: ENV_ETCD,
            searched: vec![PathBuf::from("/nowhere/etcd")],
        };
        let text = err.to_string();
        assert!(text.contains("hack/envtest/assets.sh"), "{text}");
        assert!(text.contains("/nowhere/etcd"), "{text}");
        assert!(text.contains(ENV_ETCD), "{text}");
    }

    #[test]
    fn executable_check_rejects_folders_and_missing_files() {
        assert!(!is_executable(Path::new("/")));
        assert!(!is_executable(Path::new("/definitely/not/here")));
        assert!(is_executable(Path::new("/bin/sh")));
    }
}

//! The test PKI: one CA, a serving certificate for loopback, an admin client certificate and a
//! service-account signing key.
//!
//! One PKI serves every cluster of a [`ControlPlanes`](crate::ControlPlanes): all API servers
//! listen on 127.0.0.1 (only the port differs, and certificates do not name ports), and a test that
//! needs clusters to distrust each other's service-account tokens already gets that from the
//! distinct `--service-account-issuer` URLs. Generating ECDSA P-256 keys takes microseconds, so the
//! PKI is made fresh for every kit and never cached on disk across runs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};

use crate::error::{Error, Result};

/// The user name of the admin client certificate.
pub const ADMIN_USER: &str = "admin";
/// The group of the admin client certificate; bound to `cluster-admin` by the API server itself.
pub const ADMIN_GROUP: &str = "system:masters";

/// PEM texts of the generated PKI and the files they were written to.
#[derive(Debug, Clone)]
pub(crate) struct Pki {
    pub ca_cert_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    pub files: PkiFiles,
}

/// Paths of the PKI files handed to kube-apiserver.
#[derive(Debug, Clone)]
pub(crate) struct PkiFiles {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
}

impl Pki {
    /// Generates the PKI and writes the files kube-apiserver reads into `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("fednet-testkit-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut ca_params);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

        // Both spellings of loopback: clients use the IP, humans reading a kubeconfig may not.
        let serving_key = KeyPair::generate()?;
        let mut serving_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        serving_params.distinguished_name = name("kube-apiserver", None);
        serving_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut serving_params);
        let serving_cert = serving_params.signed_by(&serving_key, &ca)?;

        // kube-apiserver maps CN to the user name and O to groups for client certificates.
        let admin_key = KeyPair::generate()?;
        let mut admin_params = CertificateParams::default();
        admin_params.distinguished_name = name(ADMIN_USER, Some(ADMIN_GROUP));
        admin_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        admin_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut admin_params);
        let admin_cert = admin_params.signed_by(&admin_key, &ca)?;

        // ECDSA keys are accepted for service-account tokens (ES256); PKCS#8 PEM is parsed by
        // kube-apiserver's keyutil.
        let sa_key = KeyPair::generate()?;

        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            service_account_key: dir.join("sa.key"),
            service_account_public_key: dir.join("sa.pub"),
        };
        write(&files.ca_cert, &ca.pem())?;
        write(&files.serving_cert, &serving_cert.pem())?;
        write(&files.serving_key, &serving_key.serialize_pem())?;
        write(&files.service_account_key, &sa_key.serialize_pem())?;
        write(&files.service_account_public_key, &sa_key.public_key_pem())?;

        Ok(Self {
            ca_cert_pem: ca.pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            files,
        })
    }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

/// A fixed, generous window: test certificates must never expire during a run, and a fixed
/// `not_before` in the past tolerates clock differences without reading the clock.
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_all_files() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        for path in [
            &pki.files.ca_cert,
            &pki.files.serving_cert,
            &pki.files.serving_key,
            &pki.files.service_account_key,
            &pki.files.service_account_public_key,
        ] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}", path.display());
        }
        assert!(pki.admin_cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(pki.admin_key_pem.contains("PRIVATE KEY"));
    }
}

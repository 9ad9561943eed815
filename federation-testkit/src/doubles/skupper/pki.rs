//! One site CA per simulated cluster, and the certificates it issues.
//!
//! Upstream keeps a CA per site namespace (the `skupper-site-ca` Secret the site controller
//! generates); the double keeps one per cluster, in memory, which is enough to tell which
//! cluster issued a set of link credentials.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};

/// A cluster's site CA.
pub(crate) struct ClusterCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: String,
}

/// PEM texts of an issued certificate.
pub(crate) struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A fixed, generous window, as the kit's own PKI: nothing expires during a run.
fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
}

impl ClusterCa {
    pub(crate) fn generate(cluster: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(&format!("skupper-site-ca {cluster}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let pem = issuer.pem();
        Ok(Self { issuer, pem })
    }

    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `subject` usable for both ends of a TLS connection, like upstream's
    /// `certs.GenerateSecret`.
    pub(crate) fn issue(&self, subject: &str) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(subject);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut params);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

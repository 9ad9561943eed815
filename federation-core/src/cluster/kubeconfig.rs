//! Turning a kubeconfig from a Secret into a client, safely.

use http::HeaderValue;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// What is wrong with a kubeconfig. Never carries its content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KubeconfigProblem {
    /// Not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// Not kubeconfig YAML.
    #[error("not a kubeconfig (YAML parse failed)")]
    NotYaml,
    /// TLS verification is switched off.
    #[error(
        "insecure-skip-tls-verify is set; fednet always verifies TLS: give certificate-authority-data instead"
    )]
    InsecureSkipTlsVerify,
    /// The server is not an `https://` URL: a token or client key would travel unencrypted
    /// (or over a transport fednet cannot verify).
    #[error(
        "server is not an https:// URL; fednet sends member credentials only over verified TLS"
    )]
    NotHttps,
    /// A proxy is set: credentials would go through a host the member did not vouch for.
    #[error("proxy-url is set; member credentials are not sent through proxies named in a Secret")]
    ProxyUrl,
    /// It points at files on the operator's file system.
    #[error(
        "{0} refers to a file; only inline data (*-data fields, token) is accepted from a Secret"
    )]
    FileReference(&'static str),
    /// It runs a program or an auth provider.
    #[error("{0} plugins are not accepted from a Secret; use a token or client certificate")]
    Plugin(&'static str),
    /// Names, contexts or URLs do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// The client could not be built.
    #[error("client could not be built: {0}")]
    Client(String),
}

/// Builds a client from kubeconfig text, refusing anything that is not self-contained and
/// TLS-verified.
pub async fn client_from_kubeconfig(text: &str) -> Result<Client, KubeconfigProblem> {
    client_from_kubeconfig_with_user_agent(text, None).await
}

/// As [`client_from_kubeconfig`], and every request carries `user_agent` (so the member's
/// API server, its audit log and its flow control can tell this client's requests apart).
pub async fn client_from_kubeconfig_with_user_agent(
    text: &str,
    user_agent: Option<&HeaderValue>,
) -> Result<Client, KubeconfigProblem> {
    // The parse error is dropped on purpose: serde errors can quote the offending value.
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|_| KubeconfigProblem::NotYaml)?;
    check_self_contained(&kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeconfigProblem::Invalid(sanitize(&e)))?;
    if config.accept_invalid_certs {
        return Err(KubeconfigProblem::InsecureSkipTlsVerify);
    }
    let mut config = config;
    if let Some(agent) = user_agent {
        config
            .headers
            .push((http::header::USER_AGENT, agent.clone()));
    }
    Client::try_from(config).map_err(|e| KubeconfigProblem::Client(e.to_string()))
}

fn check_self_contained(kc: &Kubeconfig) -> Result<(), KubeconfigProblem> {
    for named in &kc.clusters {
        if let Some(c) = &named.cluster {
            if c.insecure_skip_tls_verify == Some(true) {
                return Err(KubeconfigProblem::InsecureSkipTlsVerify);
            }
            if c.certificate_authority.is_some() {
                return Err(KubeconfigProblem::FileReference("certificate-authority"));
            }
            // The URL itself is never echoed: it may carry user info or a token-bearing query.
            if !c.server.as_deref().is_some_and(is_https_url) {
                return Err(KubeconfigProblem::NotHttps);
            }
            if c.proxy_url.is_some() {
                return Err(KubeconfigProblem::ProxyUrl);
            }
        }
    }
    for named in &kc.auth_infos {
        if let Some(a) = &named.auth_info {
            if a.client_certificate.is_some() {
                return Err(KubeconfigProblem::FileReference("client-certificate"));
            }
            if a.client_key.is_some() {
                return Err(KubeconfigProblem::FileReference("client-key"));
            }
            if a.token_file.is_some() {
                return Err(KubeconfigProblem::FileReference("tokenFile"));
            }
            if a.exec.is_some() {
                return Err(KubeconfigProblem::Plugin("exec"));
            }
            if a.auth_provider.is_some() {
                return Err(KubeconfigProblem::Plugin("auth-provider"));
            }
        }
    }
    Ok(())
}

/// Whether `server` names the `https` scheme (case-insensitive, as URL schemes are).
fn is_https_url(server: &str) -> bool {
    server
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Kubeconfig errors other than YAML ones name contexts, clusters and URLs, not secrets;
/// those that wrap decoding errors of key material are reduced to their kind.
fn sanitize(e: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match e {
        E::Parse(_) => "not valid kubeconfig YAML".into(),
        E::ParseCertificates(_) => "certificate data is not valid PEM".into(),
        E::LoadClientKey(_) => "client key could not be loaded".into(),
        E::LoadClientCertificate(_) => "client certificate could not be loaded".into(),
        E::LoadCertificateAuthority(_) => "certificate authority could not be loaded".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
apiVersion: v1
kind: Config
current-context: m
contexts: [{name: m, context: {cluster: m, user: m}}]
clusters: [{name: m, cluster: {server: "https://127.0.0.1:6443", CLUSTER}}]
users: [{name: m, user: {USER}}]
"#;

    fn kubeconfig(cluster: &str, user: &str) -> String {
        BASE.replace("CLUSTER", cluster).replace("USER", user)
    }

    #[tokio::test]
    async fn refuses_insecure_file_and_plugin_kubeconfigs() {
        let cases = [
            (
                kubeconfig("insecure-skip-tls-verify: true", "token: abc"),
                KubeconfigProblem::InsecureSkipTlsVerify,
            ),
            (
                kubeconfig("certificate-authority: /etc/ca.crt", "token: abc"),
                KubeconfigProblem::FileReference("certificate-authority"),
            ),
            (
                kubeconfig(
                    "certificate-authority-data: eA==",
                    "tokenFile: /var/run/secrets/token",
                ),
                KubeconfigProblem::FileReference("tokenFile"),
            ),
            (
                kubeconfig("certificate-authority-data: eA==", "client-key: /k"),
                KubeconfigProblem::FileReference("client-key"),
            ),
            (
                kubeconfig(
                    "certificate-authority-data: eA==",
                    "exec: {apiVersion: client.authentication.k8s.io/v1, command: sh}",
                ),
                KubeconfigProblem::Plugin("exec"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(client_from_kubeconfig(&text).await.err(), Some(want));
        }
    }

    fn with_server(server: &str, extra: &str) -> String {
        kubeconfig(
            &format!("certificate-authority-data: eA==, {extra}"),
            "token: s3cr3t-token",
        )
        .replace("https://127.0.0.1:6443", server)
    }

    #[tokio::test]
    async fn refuses_servers_that_are_not_https_without_echoing_them() {
        for server in [
            "http://user:s3cr3t-pass@127.0.0.1:6443",
            "HTTP://127.0.0.1:6443",
            "unix:///var/run/s3cr3t.sock",
            "127.0.0.1:6443",
            "httpsx://127.0.0.1:6443",
        ] {
            let err = client_from_kubeconfig(&with_server(server, "x: 1"))
                .await
                .err();
            assert_eq!(err, Some(KubeconfigProblem::NotHttps), "{server}");
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                !text.contains("s3cr3t") && !text.contains("127.0.0.1"),
                "{text}"
            );
        }
        let no_server = kubeconfig("certificate-authority-data: eA==", "token: abc")
            .replace("server: \"https://127.0.0.1:6443\", ", "");
        assert_eq!(
            client_from_kubeconfig(&no_server).await.err(),
            Some(KubeconfigProblem::NotHttps)
        );
    }

    #[tokio::test]
    async fn refuses_proxy_urls_without_echoing_them() {
        let text = with_server(
            "https://127.0.0.1:6443",
            "proxy-url: \"http://user:s3cr3t-pass@proxy.example:3128\"",
        );
        let err = client_from_kubeconfig(&text).await.err();
        assert_eq!(err, Some(KubeconfigProblem::ProxyUrl));
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            !text.contains("s3cr3t") && !text.contains("proxy.example"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn accepts_an_https_server_in_any_case() {
        // Upper case scheme is still https; only the scheme decides. The CA data is not a
        // valid certificate, so the refusal that follows is about PEM, not about the URL.
        let err = client_from_kubeconfig(&with_server("HTTPS://127.0.0.1:6443", "x: 1"))
            .await
            .err();
        assert!(
            !matches!(
                err,
                Some(KubeconfigProblem::NotHttps | KubeconfigProblem::ProxyUrl)
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn parse_errors_do_not_echo_content() {
        let secretish = "users: [{name: m, user: {token: s3cr3t-value}}]\nclusters: 12";
        let err = client_from_kubeconfig(secretish).await.err().unwrap();
        assert!(matches!(err, KubeconfigProblem::NotYaml));
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}

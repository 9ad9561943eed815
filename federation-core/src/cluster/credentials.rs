//! When a member's credentials stop working: the `exp` claim of a kubeconfig's bearer token
//! (ServiceAccount tokens from a TokenRequest are JWTs that carry it). Read without
//! verifying the signature, which only the member's API server can do: the date is used to
//! warn, never to trust.

use base64::Engine as _;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::config::Kubeconfig;

/// When the kubeconfig's token expires, if it has a token with an `exp` claim. Client
/// certificates and tokens without expiry give `None`.
pub fn token_expiry(kubeconfig: &str) -> Option<Timestamp> {
    let kc = Kubeconfig::from_yaml(kubeconfig).ok()?;
    let context_name = kc.current_context.clone()?;
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)?
        .context
        .as_ref()?;
    let user = context.user.as_deref()?;
    let auth = kc
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .as_ref()?;
    let token = auth.token.as_ref()?;
    jwt_expiry(secrecy_str(token))
}

fn secrecy_str(token: &secrecy::SecretString) -> &str {
    use secrecy::ExposeSecret as _;
    token.expose_secret()
}

/// The `exp` claim of a JWT.
pub fn jwt_expiry(token: &str) -> Option<Timestamp> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Timestamp::from_second(claims["exp"].as_i64()?).ok()
}

/// Whether credentials expiring at `expiry` should be reported at `now`: within `window`,
/// or already expired.
pub fn expiring(expiry: Timestamp, now: Timestamp, window: SignedDuration) -> bool {
    expiry.duration_since(now) < window
}

/// Records the credential expiry in a member's status: `credentialsExpireAt` and the
/// `CredentialsExpiring` condition (True within `window` of the expiry, saying how to renew).
pub fn record_expiry(
    status: &mut crate::api::MemberClusterStatus,
    member: &str,
    expiry: Option<Timestamp>,
    now: Timestamp,
    window: SignedDuration,
) {
    use crate::api::CREDENTIALS_EXPIRING;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    let Some(expiry) = expiry else {
        status.credentials_expire_at = None;
        status
            .conditions
            .retain(|c| c.type_ != CREDENTIALS_EXPIRING);
        return;
    };
    status.credentials_expire_at = Some(expiry.to_string());
    let (value, reason, message) = if expiry <= now {
        (
            "True",
            "Expired",
            format!("the member's token expired at {expiry}; renew it: fedctl join {member} ..."),
        )
    } else if expiring(expiry, now, window) {
        (
            "True",
            "ExpiresSoon",
            format!(
                "the member's token expires at {expiry}; renew it before then: fedctl join {member} ..."
            ),
        )
    } else {
        (
            "False",
            "Valid",
            format!("the member's token expires at {expiry}"),
        )
    };
    let condition = Condition {
        type_: CREDENTIALS_EXPIRING.into(),
        status: value.into(),
        reason: reason.into(),
        message,
        observed_generation: status.observed_generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    };
    crate::api::merge_condition(&mut status.conditions, condition, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", enc(r#"{"alg":"RS256"}"#), enc(claims))
    }

    #[test]
    fn the_exp_claim_of_the_current_users_token() {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: m\nclusters: [{{name: m, cluster: {{server: 'https://m:6443'}}}}]\nusers: [{{name: u, user: {{token: '{}'}}}}]\ncontexts: [{{name: m, context: {{cluster: m, user: u}}}}]\n",
            jwt(
                r#"{"exp":2000000000,"sub":"system:serviceaccount:fednet-system:fednet-operator"}"#
            )
        );
        assert_eq!(
            token_expiry(&kubeconfig),
            Timestamp::from_second(2_000_000_000).ok()
        );
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"x"}"#)), None);
    }

    #[test]
    fn expiring_within_the_window_or_already() {
        let now = Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let day = SignedDuration::from_hours(24);
        assert!(expiring(now + day, now, day * 7));
        assert!(!expiring(now + day * 8, now, day * 7));
        assert!(expiring(now - day, now, day * 7));
    }
}

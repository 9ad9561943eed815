//! `Debug` and `Serialize` of desired and observed state without key material.
//!
//! Desired and observed objects carry whole bodies, and some bodies are credentials: the
//! `data` of a Secret holding a `tls.key` copied between members, a grant's redemption code.
//! Whatever prints or serializes these types (a `?desired` in a log line, a test failure,
//! `fedctl plan -o yaml`) shows such values as [`REDACTED`]; the keys stay, so one can still
//! see which entries are there. Only the representations change: the engine applies
//! `object.body` itself, which is never redacted.
//!
//! The impls destructure each struct completely, so adding a field is a compile error here
//! until the field is given its line in both impls (plain fields are shown as they are;
//! fields holding bodies go through [`Shown`]).

use super::{DesiredObject, DesiredState, ObjectKey, Observed, ObservedObject, Target};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";

/// Fields of other kinds known to hold credentials, as (kind, path to the field). Skupper's
/// AccessGrant publishes its redemption code in its status and the AccessToken made from it
/// carries it in its spec: whoever holds the code can link a site to the network.
// The table lives in core, not behind the backend trait, because `Debug` and `Serialize` of
// an object have no backend at hand, and a redaction that depends on the caller passing the
// right backend would be skipped exactly where it matters (a stray `?object` in a log line).
// A backend whose objects carry credentials outside Secrets adds its fields here.
const CREDENTIAL_FIELDS: &[(&str, &[&str])] = &[
    ("AccessGrant", &["status", "code"]),
    ("AccessToken", &["spec", "code"]),
    // Submariner accepts the broker token and the IPsec PSK inline too; fednet puts them in
    // Secrets, but an observed resource someone else edited may carry them.
    ("Submariner", &["spec", "brokerK8sApiServerToken"]),
    ("Submariner", &["spec", "ceIPSecPSK"]),
];

/// The body of the object `key` as it may be shown: for a Secret, every value of `data` and
/// `stringData` replaced by [`REDACTED`] (keys kept); for the kinds of [`CREDENTIAL_FIELDS`],
/// those fields replaced. Other bodies are returned as they are, without a copy.
pub fn redacted_body<'a>(key: &ObjectKey, body: &'a Value) -> Cow<'a, Value> {
    // Either naming the kind is enough: a body is never trusted to be what its key says.
    let body_kind = body.get("kind").and_then(Value::as_str);
    let is = |wanted: &str| key.kind == wanted || body_kind == Some(wanted);
    let mut shown: Option<Value> = None;
    if is("Secret") {
        let copy = shown.get_or_insert_with(|| body.clone());
        for field in ["data", "stringData"] {
            if let Some(values) = copy.get_mut(field) {
                redact_values(values);
            }
        }
    }
    for (credential_kind, path) in CREDENTIAL_FIELDS {
        if is(credential_kind) && pointer(body, path).is_some() {
            let copy = shown.get_or_insert_with(|| body.clone());
            if let Some(value) = pointer_mut(copy, path) {
                *value = Value::String(REDACTED.to_owned());
            }
        }
    }
    match shown {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(body),
    }
}

/// Replaces every value of a `data` map; anything that is not a map (malformed, or `null`
/// written by hand) is replaced whole unless it is `null`, since its shape is unknown.
fn redact_values(values: &mut Value) {
    match values {
        Value::Object(map) => {
            for v in map.values_mut() {
                *v = Value::String(REDACTED.to_owned());
            }
        }
        Value::Null => {}
        other => *other = Value::String(REDACTED.to_owned()),
    }
}

fn pointer<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, p| v.get(p))
}

fn pointer_mut<'a>(value: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, p| v.get_mut(p))
}

/// A body shown through [`redacted_body`], in `Debug` and in `Serialize`.
struct Shown<'a> {
    key: &'a ObjectKey,
    body: &'a Value,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redacted_body(self.key, self.body), f)
    }
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        redacted_body(self.key, self.body).serialize(serializer)
    }
}

impl fmt::Debug for DesiredObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key, body, adopt } = self;
        f.debug_struct("DesiredObject")
            .field("key", key)
            .field("body", &Shown { key, body })
            .field("adopt", adopt)
            .finish()
    }
}

impl Serialize for DesiredObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Self { key, body, adopt } = self;
        let mut s = serializer.serialize_struct("DesiredObject", 3)?;
        s.serialize_field("key", key)?;
        s.serialize_field("body", &Shown { key, body })?;
        if *adopt {
            s.serialize_field("adopt", adopt)?;
        } else {
            s.skip_field("adopt")?;
        }
        s.end()
    }
}

impl fmt::Debug for ObservedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { key, body, owned } = self;
        f.debug_struct("ObservedObject")
            .field("key", key)
            .field("body", &Shown { key, body })
            .field("owned", owned)
            .finish()
    }
}

impl Serialize for ObservedObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Self { key, body, owned } = self;
        let mut s = serializer.serialize_struct("ObservedObject", 3)?;
        s.serialize_field("key", key)?;
        s.serialize_field("body", &Shown { key, body })?;
        s.serialize_field("owned", owned)?;
        s.end()
    }
}

// The containers hold bodies only through the objects above, whose impls redact; they are
// written out (not derived) so that a field added to them is looked at here too.

impl fmt::Debug for DesiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            targets,
            retained,
            replaced,
        } = self;
        f.debug_struct("DesiredState")
            .field("targets", targets)
            .field("retained", retained)
            .field("replaced", replaced)
            .finish()
    }
}

impl Serialize for DesiredState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Self {
            targets,
            retained,
            replaced,
        } = self;
        let mut s = serializer.serialize_struct("DesiredState", 3)?;
        s.serialize_field("targets", &ByName(targets))?;
        for (field, keys) in [("retained", retained), ("replaced", replaced)] {
            if keys.is_empty() {
                s.skip_field(field)?;
            } else {
                let by_name: BTreeMap<String, &BTreeSet<ObjectKey>> =
                    keys.iter().map(|(t, k)| (t.to_string(), k)).collect();
                s.serialize_field(field, &by_name)?;
            }
        }
        s.end()
    }
}

/// Targets keyed by their name (`member/east`): a `Target` itself serializes as a map, which
/// JSON does not accept as a key (`fedctl plan -o json` failed on it).
struct ByName<'a>(&'a BTreeMap<Target, Vec<DesiredObject>>);

impl Serialize for ByName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(t, objects)| (t.to_string(), objects)))
    }
}

impl fmt::Debug for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            objects,
            operations,
        } = self;
        f.debug_struct("Observed")
            .field("objects", objects)
            .field("operations", operations)
            .finish()
    }
}

impl Serialize for Observed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Self {
            objects,
            operations,
        } = self;
        let mut s = serializer.serialize_struct("Observed", 2)?;
        s.serialize_field("objects", objects)?;
        if operations.is_empty() {
            s.skip_field("operations")?;
        } else {
            s.serialize_field("operations", operations)?;
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIL0s3cr3t\n";
    const KEY_B64: &str = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1DNHMzY3IzdA==";

    fn secret() -> DesiredObject {
        DesiredObject {
            key: ObjectKey::namespaced("v1", "Secret", "shop", "link-east-central"),
            body: json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "link-east-central", "labels": {"fednet.io/network": "ns.shop"}},
                "type": "kubernetes.io/tls",
                "data": {"tls.key": KEY_B64, "tls.crt": "Y2VydA==", "ca.crt": "Y2E="},
                "stringData": {"token": "s3cr3t-token"}
            }),
            adopt: false,
        }
    }

    fn site() -> DesiredObject {
        DesiredObject {
            key: ObjectKey::namespaced("skupper.io/v2alpha1", "Site", "shop", "site"),
            body: json!({"kind": "Site", "spec": {"linkAccess": "default"}, "data": {"kept": "x"}}),
            adopt: false,
        }
    }

    fn assert_clean(text: &str) {
        for secret in [KEY_B64, KEY_PEM, "s3cr3t", "Y2VydA==", "Y2E="] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }

    #[test]
    fn secret_values_are_redacted_in_every_representation_keys_kept() {
        let desired = secret();
        let observed = ObservedObject {
            key: desired.key.clone(),
            body: desired.body.clone(),
            owned: true,
        };
        let mut state = DesiredState::default();
        state.push(Target::Member("east".into()), desired.clone());
        let observed_all = Observed::of(vec![observed.clone()]);
        let texts = [
            format!("{desired:?}"),
            format!("{desired:#?}"),
            format!("{observed:?}"),
            format!("{state:?}"),
            format!("{observed_all:#?}"),
            serde_json::to_string(&desired).unwrap_or_default(),
            serde_json::to_string(&observed_all).unwrap_or_default(),
            serde_yaml::to_string(&state).unwrap_or_default(),
            serde_json::to_string(&state).unwrap_or_default(),
        ];
        for text in &texts {
            assert_clean(text);
            for key in [
                "tls.key",
                "tls.crt",
                "ca.crt",
                "token",
                REDACTED,
                "link-east-central",
            ] {
                assert!(text.contains(key), "{key} missing from {text}");
            }
        }
        // The body itself, which is what is applied, is untouched.
        assert_eq!(desired.body["data"]["tls.key"], KEY_B64);
        assert_eq!(state.targets[&Target::Member("east".into())][0], desired);
    }

    #[test]
    fn serialized_shape_keeps_the_fields_replaces_values_and_names_targets() {
        let value = serde_json::to_value(secret()).unwrap_or_default();
        assert_eq!(value["key"]["kind"], "Secret");
        assert_eq!(value["key"]["namespace"], "shop");
        assert_eq!(value["body"]["type"], "kubernetes.io/tls");
        assert_eq!(value["body"]["data"]["tls.key"], REDACTED);
        assert_eq!(value["body"]["stringData"]["token"], REDACTED);
        let observed = serde_json::to_value(ObservedObject {
            key: site().key,
            body: site().body,
            owned: false,
        })
        .unwrap_or_default();
        assert_eq!(observed["owned"], false);
        let mut state = DesiredState::default();
        state.push(Target::Member("east".into()), site());
        let yaml = serde_yaml::to_string(&state).unwrap_or_default();
        assert!(yaml.contains("linkAccess: default"), "{yaml}");
        let json = serde_json::to_value(&state).unwrap_or_default();
        assert_eq!(json["targets"]["member/east"][0]["key"]["kind"], "Site");
    }

    #[test]
    fn other_kinds_are_shown_whole_and_unusual_secrets_are_still_redacted() {
        let site = site();
        assert!(matches!(
            redacted_body(&site.key, &site.body),
            Cow::Borrowed(_)
        ));
        assert!(format!("{site:?}").contains("kept"));

        // The body says Secret although the key does not, and data is not a map.
        let odd = ObjectKey::namespaced("v1", "Thing", "shop", "x");
        let body = json!({"kind": "Secret", "data": "s3cr3t-flat", "stringData": null});
        let shown = redacted_body(&odd, &body);
        assert_eq!(shown["data"], REDACTED);
        assert_eq!(shown["stringData"], Value::Null);
    }

    #[test]
    fn grant_codes_are_redacted() {
        let grant = ObservedObject {
            key: ObjectKey::namespaced("skupper.io/v2alpha1", "AccessGrant", "shop", "g"),
            body: json!({"kind": "AccessGrant", "status": {"code": "s3cr3t-code", "url": "https://x"}}),
            owned: true,
        };
        let token = DesiredObject {
            key: ObjectKey::namespaced("skupper.io/v2alpha1", "AccessToken", "shop", "g"),
            body: json!({"kind": "AccessToken", "spec": {"code": "s3cr3t-code", "url": "https://x"}}),
            adopt: false,
        };
        for text in [format!("{grant:?}"), format!("{token:?}")] {
            assert_clean(&text);
            assert!(text.contains("https://x"), "{text}");
        }
        // Without the field, nothing is copied.
        let empty = json!({"kind": "AccessGrant", "status": {}});
        assert!(matches!(
            redacted_body(&grant.key, &empty),
            Cow::Borrowed(_)
        ));
    }
}

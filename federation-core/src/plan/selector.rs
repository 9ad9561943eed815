//! Label selector evaluation over hub objects (`metav1.LabelSelector` semantics).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// A selector that cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// An operator other than In, NotIn, Exists, DoesNotExist.
    #[error("unknown operator {0:?} (use In, NotIn, Exists or DoesNotExist)")]
    UnknownOperator(String),
    /// In/NotIn without values, or Exists/DoesNotExist with values.
    #[error("operator {operator} on key {key} {problem}")]
    BadValues {
        /// The key.
        key: String,
        /// The operator.
        operator: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Whether `labels` match `selector`. An empty selector matches everything, as in Kubernetes.
pub fn matches_selector(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, SelectorError> {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let mut expressions_ok = true;
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.as_deref().unwrap_or_default();
        let bad = |problem| SelectorError::BadValues {
            key: expr.key.clone(),
            operator: expr.operator.clone(),
            problem,
        };
        let value = labels.get(&expr.key);
        let ok = match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => return Err(bad("needs values")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(bad("takes no values")),
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => return Err(SelectorError::UnknownOperator(other.to_owned())),
        };
        expressions_ok &= ok;
    }
    Ok(labels_ok && expressions_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).into()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("env", "prod")])),
            match_expressions: Some(vec![
                expr("region", "In", &["eu", "us"]),
                expr("legacy", "DoesNotExist", &[]),
            ]),
        };
        assert!(
            matches_selector(&sel, Some(&labels(&[("env", "prod"), ("region", "eu")]))).unwrap()
        );
        assert!(
            !matches_selector(&sel, Some(&labels(&[("env", "prod"), ("region", "ap")]))).unwrap()
        );
        assert!(
            !matches_selector(
                &sel,
                Some(&labels(&[
                    ("env", "prod"),
                    ("region", "eu"),
                    ("legacy", "1")
                ]))
            )
            .unwrap()
        );
        assert!(!matches_selector(&sel, None).unwrap());
        assert!(matches_selector(&LabelSelector::default(), None).unwrap());
    }

    #[test]
    fn malformed_selectors_are_errors() {
        let sel = LabelSelector {
            match_expressions: Some(vec![expr("a", "Like", &["x"])]),
            ..Default::default()
        };
        assert_eq!(
            matches_selector(&sel, None),
            Err(SelectorError::UnknownOperator("Like".into()))
        );
        let sel = LabelSelector {
            match_expressions: Some(vec![expr("a", "In", &[])]),
            ..Default::default()
        };
        assert!(matches!(
            matches_selector(&sel, None),
            Err(SelectorError::BadValues { .. })
        ));
    }
}

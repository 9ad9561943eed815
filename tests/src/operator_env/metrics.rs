//! Reading Prometheus text: the operator's `/metrics` and the API servers' `/metrics`.

use federation_testkit::Cluster;

/// One sample: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name (with `_total`, `_bucket`, ... suffixes as exposed).
    pub name: String,
    /// Labels in exposition order.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the Prometheus/OpenMetrics text format (comments skipped; escapes in label values
/// are kept as written, which is enough for the values compared here).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, rest) = if line.contains('{') {
        let close = line.rfind('}')?;
        (&line[..close + 1], &line[close + 1..])
    } else {
        line.split_once(' ')?
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, body)) => (name, parse_labels(body.trim_end_matches('}'))),
        None => (series, Vec::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut end = 0;
        let bytes = after.as_bytes();
        while end < bytes.len() && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\')) {
            end += 1;
        }
        out.push((
            key.trim_start_matches(',').trim().to_owned(),
            after[..end].to_owned(),
        ));
        rest = after.get(end + 1..).unwrap_or_default();
    }
    out
}

/// Sum of the samples named `name` whose labels include every `(key, value)` of `filter`.
pub fn sum(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| filter.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

/// An API server's `/metrics`, read with the kit's admin client.
pub async fn apiserver_metrics(cluster: &Cluster) -> anyhow::Result<Vec<Sample>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = cluster.client().request_text(request).await?;
    Ok(parse(&text))
}

/// Requests the operator sent to a member so far, counted by the member's API server.
///
/// `apiserver_request_total` has no user or user-agent label, but API Priority and Fairness
/// classifies every request by who sent it, and in this environment the operator is the only
/// client authenticating as a service account: its requests, and only its, fall under the
/// `service-accounts` flow schema. (Requests of the kit's admin and of the Skupper double are
/// `system:masters`, flow schema `exempt`.)
pub async fn operator_requests_on(cluster: &Cluster) -> anyhow::Result<f64> {
    let samples = apiserver_metrics(cluster).await?;
    Ok(sum(
        &samples,
        "apiserver_flowcontrol_dispatched_requests_total",
        &[("flow_schema", "service-accounts")],
    ))
}

/// All resource requests an API server has answered, by everyone (for comparison).
pub async fn all_requests_on(cluster: &Cluster) -> anyhow::Result<f64> {
    let samples = apiserver_metrics(cluster).await?;
    Ok(sum(&samples, "apiserver_request_total", &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_values() {
        let text = "# HELP x y\nfoo_total{a=\"1\",b=\"x,y\"} 3\nbar 2.5\nbaz{} 1 1700000000\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].label("b"), Some("x,y"));
        assert!((sum(&s, "foo_total", &[("a", "1")]) - 3.0).abs() < f64::EPSILON);
        assert!((sum(&s, "bar", &[]) - 2.5).abs() < f64::EPSILON);
        assert!(sum(&s, "foo_total", &[("a", "2")]).abs() < f64::EPSILON);
    }
}

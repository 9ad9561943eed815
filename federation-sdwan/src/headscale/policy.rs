//! fednet's part of a Headscale ACL policy (HuJSON), edited without touching the rest.
//!
//! The policy is one document shared with its administrators. fednet writes each network's
//! rules as one block of lines in the `acls` array, between marker comments, and leaves every
//! other byte as it was (their rules, comments, formatting):
//!
//! ```text
//!   "acls": [
//!     // fednet:begin fednet-system/edge (written by fednet; edits inside are overwritten)
//!     // fednet:route node-a 10.1.0.0/16 10.101.0.0/16
//!     {"action":"accept","src":["10.1.0.0/16"],"dst":["10.2.0.0/16:*"]}, // fednet:rule site/a
//!     // fednet:end fednet-system/edge
//!     {"action": "accept", "src": ["group:admins"], "dst": ["*:*"]},
//!   ],
//! ```
//!
//! The `fednet:route` lines are the ledger of the routes fednet approved on an edge node: the
//! controller keeps no record of who approved a route, and without one fednet could neither
//! find its approvals after a restart nor tell them from an administrator's. A prefix written
//! `=10.1.0.0/16` was already approved when fednet came: it counts as the edge's (so the
//! edge compares converged) but fednet never withdraws it.

use federation_core::plan::NetworkRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const BEGIN: &str = "// fednet:begin ";
const END: &str = "// fednet:end ";
const ROUTE: &str = "// fednet:route ";
const RULE: &str = "// fednet:rule ";
const INDENT: &str = "    ";

/// One ACL rule fednet writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRule {
    /// Stable identity within the network (`site/<member>`, `service/<svc>/<exporter>`).
    pub id: String,
    /// Sources (prefixes).
    pub src: Vec<String>,
    /// Destinations (`prefix:ports`).
    pub dst: Vec<String>,
}

/// A network's block: its rules and its route ledger.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Block {
    /// Routes of each edge node: fednet's own approvals, and (prefixed `=`) those it found
    /// approved already and will not withdraw.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Rules, in the order written.
    pub rules: Vec<AclRule>,
}

impl Block {
    /// Whether the block holds nothing (and is removed from the policy).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.rules.is_empty()
    }
}

/// Why a policy cannot be edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The controller has no policy: writing one would turn its default allow-all into
    /// fednet's rules alone, cutting every other connection of the tailnet.
    #[error(
        "the controller has no ACL policy; fednet only adds its rules to an existing one (an administrator must set one, e.g. with the rules the tailnet needs besides fednet's)"
    )]
    NoPolicy,
    /// The document is not an object with an `acls` array fednet can find.
    #[error("the ACL policy is not a HuJSON object fednet can edit: {0}")]
    Unreadable(String),
    /// A line of the network's block was changed by hand beyond recognition.
    #[error("fednet's block of network {network} in the ACL policy is damaged: {line}")]
    DamagedBlock {
        /// The network.
        network: String,
        /// The line.
        line: String,
    },
}

fn network_id(network: &NetworkRef) -> String {
    format!("{}/{}", network.namespace, network.name)
}

/// Whether `line` (trimmed) is the marker `marker` of exactly this network.
fn is_marker(line: &str, marker: &str, id: &str) -> bool {
    line.trim()
        .strip_prefix(marker)
        .and_then(|rest| rest.strip_prefix(id))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// Line indexes of the network's begin and end markers.
fn find_block(lines: &[&str], id: &str) -> Option<(usize, usize)> {
    let begin = lines.iter().position(|l| is_marker(l, BEGIN, id))?;
    let end = lines[begin..]
        .iter()
        .position(|l| is_marker(l, END, id))
        .map(|i| begin + i)?;
    Some((begin, end))
}

/// The network's block in `policy`, if it has one.
pub fn read_block(policy: &str, network: &NetworkRef) -> Result<Option<Block>, PolicyError> {
    let id = network_id(network);
    let lines: Vec<&str> = policy.lines().collect();
    let Some((begin, end)) = find_block(&lines, &id) else {
        return Ok(None);
    };
    let damaged = |line: &str| PolicyError::DamagedBlock {
        network: id.clone(),
        line: line.trim().to_owned(),
    };
    let mut block = Block::default();
    for line in &lines[begin + 1..end] {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(rest) = t.strip_prefix(ROUTE) {
            let mut words = rest.split_whitespace();
            let edge = words.next().ok_or_else(|| damaged(t))?;
            block
                .routes
                .insert(edge.to_owned(), words.map(str::to_owned).collect());
            continue;
        }
        let (json, rule_id) = t.rsplit_once(RULE).ok_or_else(|| damaged(t))?;
        let json = json.trim().trim_end_matches(',');
        #[derive(Deserialize)]
        struct Raw {
            src: Vec<String>,
            dst: Vec<String>,
        }
        let raw: Raw = serde_json::from_str(json).map_err(|_| damaged(t))?;
        block.rules.push(AclRule {
            id: rule_id.trim().to_owned(),
            src: raw.src,
            dst: raw.dst,
        });
    }
    Ok(Some(block))
}

/// The block's lines, markers included.
fn render_block(id: &str, block: &Block) -> Vec<String> {
    let mut out = vec![format!(
        "{INDENT}{BEGIN}{id} (written by fednet; edits inside are overwritten)"
    )];
    for (edge, routes) in &block.routes {
        out.push(format!("{INDENT}{ROUTE}{edge} {}", routes.join(" ")));
    }
    for r in &block.rules {
        let json = serde_json::json!({"action": "accept", "src": r.src, "dst": r.dst});
        out.push(format!("{INDENT}{json}, {RULE}{}", r.id));
    }
    out.push(format!("{INDENT}{END}{id}"));
    out
}

/// `policy` with the network's block replaced by `block` (removed when it is empty),
/// everything else kept byte for byte.
pub fn write_block(
    policy: &str,
    network: &NetworkRef,
    block: &Block,
) -> Result<String, PolicyError> {
    if policy.trim().is_empty() {
        return Err(PolicyError::NoPolicy);
    }
    let id = network_id(network);
    let lines: Vec<&str> = policy.lines().collect();
    let rendered = if block.is_empty() {
        Vec::new()
    } else {
        render_block(&id, block)
    };
    let trailing_newline = policy.ends_with('\n');
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + rendered.len());
    if let Some((begin, end)) = find_block(&lines, &id) {
        out.extend(lines[..begin].iter().map(|l| (*l).to_owned()));
        out.extend(rendered);
        out.extend(lines[end + 1..].iter().map(|l| (*l).to_owned()));
    } else if rendered.is_empty() {
        return Ok(policy.to_owned());
    } else {
        let at = acls_insert_point(policy)?;
        let (head, tail) = policy.split_at(at);
        // The block goes on lines of its own right after `[` (or `"acls": [`); HuJSON allows
        // the trailing comma after its last rule whatever follows.
        let mut text = String::with_capacity(policy.len() + 512);
        text.push_str(head);
        text.push('\n');
        text.push_str(&rendered.join("\n"));
        if !tail.starts_with('\n') {
            text.push('\n');
        }
        text.push_str(tail);
        return Ok(text);
    }
    let mut text = out.join("\n");
    if trailing_newline {
        text.push('\n');
    }
    Ok(text)
}

/// Byte offset right after the `[` of the top-level `acls` array. Comments and strings are
/// skipped, so an `"acls": [` inside either is not taken for it.
fn acls_insert_point(policy: &str) -> Result<usize, PolicyError> {
    let bytes = policy.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    let mut last_string_at_depth1: Option<(usize, usize)> = None;
    let mut expect_array_for_acls = false;
    let mut top_open: Option<usize> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let rest = &policy[i + 2..];
                let close = rest
                    .find("*/")
                    .ok_or_else(|| PolicyError::Unreadable("unterminated comment".into()))?;
                i += close + 4;
                continue;
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(PolicyError::Unreadable("unterminated string".into()));
                }
                if depth == 1 {
                    last_string_at_depth1 = Some((start, i));
                }
            }
            b':' if depth == 1 => {
                expect_array_for_acls =
                    last_string_at_depth1.is_some_and(|(s, e)| &policy[s..e] == "acls");
            }
            b'{' | b'[' => {
                if depth == 0 {
                    if bytes[i] != b'{' {
                        return Err(PolicyError::Unreadable(
                            "the document is not an object".into(),
                        ));
                    }
                    top_open = Some(i);
                } else if depth == 1 && expect_array_for_acls {
                    if bytes[i] != b'[' {
                        return Err(PolicyError::Unreadable("\"acls\" is not an array".into()));
                    }
                    return Ok(i + 1);
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
            }
            b',' if depth == 1 => {
                expect_array_for_acls = false;
                last_string_at_depth1 = None;
            }
            _ => {}
        }
        i += 1;
    }
    match top_open {
        Some(_) => Err(PolicyError::Unreadable(
            "the policy has no \"acls\" array; add `\"acls\": []` for fednet to write into".into(),
        )),
        None => Err(PolicyError::Unreadable(
            "the document is not an object".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NetworkRef {
        NetworkRef::new("fednet-system", "edge")
    }

    fn block() -> Block {
        Block {
            routes: BTreeMap::from([(
                "node-a".to_owned(),
                vec!["10.1.0.0/16".to_owned(), "10.101.0.0/16".to_owned()],
            )]),
            rules: vec![AclRule {
                id: "site/a".into(),
                src: vec!["10.1.0.0/16".into()],
                dst: vec!["10.2.0.0/16:*".into()],
            }],
        }
    }

    const ADMIN: &str = r#"// the administrators' policy
{
  "groups": {"group:admins": ["alice@"]},
  /* a block comment with "acls": [ inside */
  "acls": [
    // admins reach everything
    {"action": "accept", "src": ["group:admins"], "dst": ["*:*"]},
  ],
}
"#;

    #[test]
    fn a_block_is_added_read_back_and_removed_leaving_the_rest_byte_for_byte() {
        let with = write_block(ADMIN, &net(), &block()).unwrap();
        assert!(with.contains("// admins reach everything"));
        assert!(with.contains("/* a block comment with \"acls\": [ inside */"));
        assert_eq!(read_block(&with, &net()).unwrap(), Some(block()));
        // Another network's block is its own.
        let other = NetworkRef::new("fednet-system", "edge2");
        assert_eq!(read_block(&with, &other).unwrap(), None);
        let both = write_block(&with, &other, &block()).unwrap();
        assert_eq!(read_block(&both, &net()).unwrap(), Some(block()));
        assert_eq!(read_block(&both, &other).unwrap(), Some(block()));
        // Rewriting is stable, and removing gives back the original exactly.
        assert_eq!(write_block(&with, &net(), &block()).unwrap(), with);
        let without = write_block(&both, &other, &Block::default()).unwrap();
        assert_eq!(without, with);
        assert_eq!(
            write_block(&with, &net(), &Block::default()).unwrap(),
            ADMIN
        );
    }

    #[test]
    fn the_block_lands_in_the_acls_array_and_stays_valid_json_after_comments_are_stripped() {
        let with = write_block(ADMIN, &net(), &block()).unwrap();
        let acls_at = with.find("\"acls\": [").unwrap();
        let begin_at = with.find(BEGIN).unwrap();
        let admin_rule_at = with.find("group:admins\"], \"dst\"").unwrap();
        assert!(acls_at < begin_at && begin_at < admin_rule_at);
        let compact = "{\"acls\": []}";
        let with = write_block(compact, &net(), &block()).unwrap();
        assert!(with.starts_with("{\"acls\": [\n"));
        assert_eq!(read_block(&with, &net()).unwrap(), Some(block()));
    }

    #[test]
    fn no_policy_is_refused_and_a_policy_without_acls_is_named() {
        assert_eq!(
            write_block("  \n", &net(), &block()),
            Err(PolicyError::NoPolicy)
        );
        let err = write_block("{\"groups\": {}}", &net(), &block()).unwrap_err();
        assert!(err.to_string().contains("no \"acls\" array"), "{err}");
        // A key named acls inside another object is not the top-level one.
        let nested = r#"{"tagOwners": {"acls": []}, "acls": [
]}"#;
        let with = write_block(nested, &net(), &block()).unwrap();
        assert!(with.contains("\"tagOwners\": {\"acls\": []}"));
        assert_eq!(read_block(&with, &net()).unwrap(), Some(block()));
    }

    #[test]
    fn a_network_name_that_prefixes_another_is_not_confused() {
        let short = NetworkRef::new("ns", "a");
        let long = NetworkRef::new("ns", "ab");
        let with = write_block("{\"acls\": []}", &long, &block()).unwrap();
        assert_eq!(read_block(&with, &short).unwrap(), None);
    }

    #[test]
    fn a_hand_damaged_block_is_reported_not_guessed() {
        let with = write_block(ADMIN, &net(), &block()).unwrap();
        let damaged = with.replace("// fednet:rule site/a", "// someone edited this");
        let err = read_block(&damaged, &net()).unwrap_err();
        assert!(matches!(err, PolicyError::DamagedBlock { .. }), "{err}");
    }
}

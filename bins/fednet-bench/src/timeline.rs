//! Where the time of a convergence goes, read off the operator's JSON log (`--log-format
//! json`, `federation_operator=debug`): its `network pass` lines (duration and next requeue
//! of every pass), `backend call` lines (duration of every observe, apply and delete on a
//! target) and `member change` lines (a member watch saw one of the network's objects change,
//! here mostly Skupper's controller, stood in for by the double, writing status).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use std::time::Duration;

/// One network pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Pass {
    /// When it ended.
    pub end: Timestamp,
    /// How long it took.
    pub elapsed: Duration,
    /// The requeue it asked for (e.g. `3s`), or `error`.
    pub next: String,
}

impl Pass {
    /// When it started.
    pub fn start(&self) -> Timestamp {
        self.end - SignedDuration::try_from(self.elapsed).unwrap_or(SignedDuration::ZERO)
    }
}

/// One backend call on one target.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// When it ended.
    pub end: Timestamp,
    /// `Member(east)`, ...
    pub target: String,
    /// `observe`, `apply` or `delete`.
    pub operation: String,
    /// Objects written.
    pub objects: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// What the operator's log says happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// Network passes, in log order.
    pub passes: Vec<Pass>,
    /// Backend calls, in log order.
    pub calls: Vec<Call>,
    /// When member watches saw an object of the network change.
    pub member_changes: Vec<Timestamp>,
}

fn millis(v: &Value) -> Duration {
    Duration::from_millis(v.as_u64().unwrap_or(0))
}

/// `Action { requeue_after: Some(3s) }` -> `3s`; `None` -> `none`.
fn requeue(action: &str) -> String {
    action
        .split_once("Some(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or_else(|| "none".to_owned(), |(d, _)| d.to_owned())
}

/// Parses the JSON lines of an operator log (other lines are skipped).
pub fn parse(log: &str) -> Timeline {
    let mut out = Timeline::default();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(at) = v["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
        else {
            continue;
        };
        match v["message"].as_str().unwrap_or_default() {
            "network pass" => out.passes.push(Pass {
                end: at,
                elapsed: millis(&v["elapsed_ms"]),
                next: requeue(v["next"].as_str().unwrap_or_default()),
            }),
            "network pass failed" => out.passes.push(Pass {
                end: at,
                elapsed: millis(&v["elapsed_ms"]),
                next: "error".to_owned(),
            }),
            "backend call" => out.calls.push(Call {
                end: at,
                target: v["on"].as_str().unwrap_or_default().to_owned(),
                operation: v["operation"].as_str().unwrap_or_default().to_owned(),
                objects: v["objects"].as_u64().unwrap_or(0),
                elapsed: millis(&v["elapsed_ms"]),
            }),
            "member change" => out.member_changes.push(at),
            _ => {}
        }
    }
    out
}

/// The critical path from applying a network until its Ready status was seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CriticalPath {
    /// Passes that ended within the window.
    pub passes: usize,
    /// From applying to the first pass's start (watch delivery and debounce).
    pub to_first_pass: Duration,
    /// Time inside passes.
    pub in_passes: Duration,
    /// The longest pass.
    pub longest_pass: Duration,
    /// Gaps between passes during which a member watch saw a change (the pass that ended
    /// the gap was triggered by, or came after, Skupper's controller writing status).
    pub waiting_on_members: Duration,
    /// Gaps without a member change: a requeue timer or a hub change started the next pass.
    pub waiting_on_requeue: Duration,
    /// From the last pass's end until Ready was seen (status write and the bench's polling).
    pub after_last_pass: Duration,
    /// The slowest single backend call: (operation, target, duration).
    pub slowest_call: Option<(String, String, Duration)>,
    /// The target that spent longest in writes within one pass (objects are written one by
    /// one per target): (target, objects, time in apply and delete calls).
    pub busiest_target: Option<(String, u64, Duration)>,
    /// Objects written (applied or deleted).
    pub objects_written: u64,
    /// The requeues the passes asked for, distinct, in order of first appearance.
    pub requeues: Vec<String>,
}

fn span(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

impl Timeline {
    /// The critical path between `applied` and `ready`.
    pub fn critical_path(&self, applied: Timestamp, ready: Timestamp) -> CriticalPath {
        let passes: Vec<&Pass> = self
            .passes
            .iter()
            .filter(|p| p.end > applied && p.end <= ready)
            .collect();
        let mut out = CriticalPath {
            passes: passes.len(),
            ..CriticalPath::default()
        };
        let Some(first) = passes.first() else {
            out.after_last_pass = span(applied, ready);
            return out;
        };
        out.to_first_pass = span(applied, first.start());
        for p in &passes {
            out.in_passes += p.elapsed;
            out.longest_pass = out.longest_pass.max(p.elapsed);
            if !out.requeues.contains(&p.next) {
                out.requeues.push(p.next.clone());
            }
        }
        for pair in passes.windows(2) {
            let (from, to) = (pair[0].end, pair[1].start());
            let gap = span(from, to);
            if self.member_changes.iter().any(|t| *t > from && *t <= to) {
                out.waiting_on_members += gap;
            } else {
                out.waiting_on_requeue += gap;
            }
        }
        if let Some(last) = passes.last() {
            out.after_last_pass = span(last.end, ready);
        }
        for p in &passes {
            let mut per_target: std::collections::BTreeMap<&str, (u64, Duration)> =
                std::collections::BTreeMap::new();
            for c in self
                .calls
                .iter()
                .filter(|c| c.operation != "observe" && c.end >= p.start() && c.end <= p.end)
            {
                let entry = per_target.entry(c.target.as_str()).or_default();
                entry.0 += c.objects;
                entry.1 += c.elapsed;
            }
            for (target, (objects, time)) in per_target {
                if out
                    .busiest_target
                    .as_ref()
                    .is_none_or(|(_, _, d)| time > *d)
                {
                    out.busiest_target = Some((target.to_owned(), objects, time));
                }
            }
        }
        let window_start = first.start();
        for c in self
            .calls
            .iter()
            .filter(|c| c.end >= window_start && c.end <= ready)
        {
            if c.operation != "observe" {
                out.objects_written += c.objects;
            }
            if out
                .slowest_call
                .as_ref()
                .is_none_or(|(_, _, d)| c.elapsed > *d)
            {
                out.slowest_call = Some((c.operation.clone(), c.target.clone(), c.elapsed));
            }
        }
        out
    }
}

impl CriticalPath {
    /// One line for the report.
    pub fn summary(&self) -> String {
        let s = |d: Duration| format!("{:.1} s", d.as_secs_f64());
        let slowest = self
            .slowest_call
            .as_ref()
            .map_or_else(String::new, |(op, t, d)| {
                format!("; slowest call {op} {t} {}", s(*d))
            });
        let busiest = self
            .busiest_target
            .as_ref()
            .map_or_else(String::new, |(t, n, d)| {
                format!(
                    "; busiest target in one pass {t}: {n} objects written in {}",
                    s(*d)
                )
            });
        format!(
            "{} passes, {} in passes (longest {}), {} to the first pass, {} between passes \
             waiting on member status, {} on requeue timers, {} after the last pass; requeues {}; \
             {} objects written{slowest}{busiest}",
            self.passes,
            s(self.in_passes),
            s(self.longest_pass),
            s(self.to_first_pass),
            s(self.waiting_on_members),
            s(self.waiting_on_requeue),
            s(self.after_last_pass),
            self.requeues.join("/"),
            self.objects_written,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, message: &str, fields: Value) -> String {
        let mut v = serde_json::json!({"timestamp": at, "level": "DEBUG", "message": message});
        if let (Some(o), Some(f)) = (v.as_object_mut(), fields.as_object()) {
            o.extend(f.clone());
        }
        v.to_string()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn log() -> String {
        let pass = |at, ms| {
            line(
                at,
                "network pass",
                serde_json::json!({"elapsed_ms": ms, "next": "Action { requeue_after: Some(3s) }", "network": "fednet-system/shop"}),
            )
        };
        [
            "not json: the operator's text before logging starts".to_owned(),
            pass("2026-01-01T00:00:01.000Z", 500),
            line(
                "2026-01-01T00:00:00.900Z",
                "backend call",
                serde_json::json!({"on": "Member(east)", "operation": "apply", "objects": 3, "elapsed_ms": 300}),
            ),
            line(
                "2026-01-01T00:00:00.700Z",
                "backend call",
                serde_json::json!({"on": "Member(west)", "operation": "observe", "objects": 0, "elapsed_ms": 100}),
            ),
            // A member change at 1.5 s: the gap until the second pass waited on members.
            line(
                "2026-01-01T00:00:01.500Z",
                "member change",
                serde_json::json!({"member": "east"}),
            ),
            pass("2026-01-01T00:00:02.500Z", 1000),
            // No member change before the third pass: a requeue timer.
            pass("2026-01-01T00:00:06.000Z", 500),
            line(
                "2026-01-01T00:00:06.000Z",
                "network pass failed",
                serde_json::json!({"elapsed_ms": 0, "error": "x"}),
            ),
        ]
        .join("\n")
    }

    #[test]
    fn parses_passes_calls_and_member_changes() {
        let t = parse(&log());
        assert_eq!(t.passes.len(), 4);
        assert_eq!(t.passes[0].next, "3s");
        assert_eq!(t.passes[0].start(), ts("2026-01-01T00:00:00.500Z"));
        assert_eq!(t.passes[3].next, "error");
        assert_eq!(t.calls.len(), 2);
        assert_eq!(t.calls[0].objects, 3);
        assert_eq!(t.member_changes, vec![ts("2026-01-01T00:00:01.500Z")]);
    }

    #[test]
    fn splits_the_time_between_passes_member_waits_and_requeues() {
        let t = parse(&log());
        let cp = t.critical_path(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T00:00:06.200Z"));
        assert_eq!(cp.passes, 4);
        assert_eq!(cp.to_first_pass, Duration::from_millis(500));
        assert_eq!(cp.in_passes, Duration::from_millis(2000));
        assert_eq!(cp.longest_pass, Duration::from_secs(1));
        // Pass 1 ends at 1.0, pass 2 starts at 1.5 (member change in between).
        assert_eq!(cp.waiting_on_members, Duration::from_millis(500));
        // Pass 2 ends at 2.5, pass 3 starts at 5.5; pass 4 (failed) starts when pass 3 ends.
        assert_eq!(cp.waiting_on_requeue, Duration::from_secs(3));
        assert_eq!(cp.after_last_pass, Duration::from_millis(200));
        assert_eq!(cp.objects_written, 3);
        assert_eq!(
            cp.slowest_call,
            Some((
                "apply".into(),
                "Member(east)".into(),
                Duration::from_millis(300)
            ))
        );
        assert_eq!(cp.requeues, vec!["3s".to_owned(), "error".to_owned()]);
        // The apply on east ended within the first pass (0.5 s to 1.0 s).
        assert_eq!(
            cp.busiest_target,
            Some(("Member(east)".into(), 3, Duration::from_millis(300)))
        );
        assert!(cp.summary().starts_with("4 passes, 2.0 s in passes"));
    }

    #[test]
    fn no_pass_in_the_window_leaves_everything_after_it() {
        let t = parse(&log());
        let cp = t.critical_path(ts("2026-01-01T00:00:10Z"), ts("2026-01-01T00:00:12Z"));
        assert_eq!(cp.passes, 0);
        assert_eq!(cp.after_last_pass, Duration::from_secs(2));
    }
}

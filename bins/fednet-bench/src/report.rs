//! Turning results into the report's tables, printing them and writing the markdown.

use crate::audit_count::{Requests, per_minute};
use crate::converge::{SizeResult, load_average};
use crate::memory::{ManyServices, Replicas};
use crate::settings::Settings;
use crate::simulate::{PHASES, Simulation, Size};
use crate::table::{Table, mib, secs};
use federation_tests::operator_env::operator_binary;
use std::path::PathBuf;
use std::time::Duration;

/// The report being built.
pub struct Report {
    out: PathBuf,
    header: Vec<String>,
    tables: Vec<Table>,
}

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "timed out".to_owned(), secs)
}

/// `a / b` with two decimals.
pub fn ratio(a: Duration, b: Duration) -> Option<f64> {
    (b > Duration::ZERO).then(|| a.as_secs_f64() / b.as_secs_f64())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!("{cpus} CPUs, {mem_gib:.0} GiB")
}

impl Report {
    /// A report written to `settings.out`; finds (or builds) the operator binary first.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        use crate::settings::Part;
        let e2e = [Part::Converge, Part::Rest, Part::Failover, Part::Memory]
            .iter()
            .any(|p| settings.runs(*p));
        // The simulation alone needs no operator binary (and must not build one).
        let operator = if e2e {
            let bin = operator_binary()?;
            let profile = if bin.components().any(|c| c.as_os_str() == "release") {
                "release build"
            } else {
                "debug build (set FEDNET_OPERATOR_BIN to a release build for figures to publish)"
            };
            format!("operator binary: {} ({profile})", bin.display())
        } else {
            "operator binary: not used (simulation only)".to_owned()
        };
        let bench_env: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("BENCH_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let header = vec![
            format!(
                "fednet-bench, {} UTC, {}, load average at start {:.2}",
                k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M"),
                machine(),
                load_average()
            ),
            operator,
            format!(
                "command: {} {}",
                bench_env.join(" "),
                std::env::args().collect::<Vec<_>>().join(" ")
            ),
            format!(
                "settings: sizes {:?}, services {}, rest window {} s, failover at {:?} members, \
                 simulated {} members / {} services / {} networks / {} shards",
                settings.sizes,
                settings.services,
                settings.rest_secs,
                settings.failover_size(),
                settings.sim_members,
                settings.sim_services,
                settings.sim_networks,
                settings.sim_shards
            ),
        ];
        Ok(Self {
            out: settings.out.clone(),
            header,
            tables: Vec::new(),
        })
    }

    /// Prints what runs where.
    pub fn print_header(&self) {
        for line in &self.header {
            println!("{line}");
        }
        println!();
    }

    /// Adds a table and prints it at once.
    pub fn add(&mut self, table: Table) {
        println!("{}", table.text());
        self.tables.push(table);
    }

    /// Writes the markdown file.
    pub fn finish(self) -> anyhow::Result<()> {
        let mut md = String::from("## fednet-bench\n\n");
        for line in &self.header {
            md.push_str(&format!("- {line}\n"));
        }
        md.push('\n');
        for t in &self.tables {
            md.push_str(&t.markdown());
            md.push('\n');
        }
        if let Some(dir) = self.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&self.out, md)?;
        println!("written to {}", self.out.display());
        Ok(())
    }
}

/// Convergence per size, the 32/3 ratio and where the time went.
pub fn convergence(results: &[SizeResult]) -> Table {
    let mut t = Table::new(
        "Applying a two-hub network to Ready (production timings)",
        &[
            "members",
            "services",
            "clusters start",
            "apply -> Ready",
            "passes",
            "in passes (longest)",
            "waiting on member status",
            "requeue timers",
            "to first pass",
            "busiest target in a pass",
            "objects written",
            "operator VmHWM / VmRSS",
            "load 1 min (before/after)",
        ],
    );
    for r in results {
        let cp = &r.critical_path;
        t.row(vec![
            r.members.to_string(),
            r.services.to_string(),
            secs(r.started_in),
            opt_secs(r.to_ready),
            cp.passes.to_string(),
            format!("{} ({})", secs(cp.in_passes), secs(cp.longest_pass)),
            secs(cp.waiting_on_members),
            secs(cp.waiting_on_requeue),
            secs(cp.to_first_pass),
            cp.busiest_target.as_ref().map_or_else(
                || "-".to_owned(),
                |(target, n, d)| format!("{target}: {n} objects, {}", secs(*d)),
            ),
            cp.objects_written.to_string(),
            format!("{} / {}", mib(r.memory.hwm_kib), mib(r.memory.rss_kib)),
            format!("{:.2} / {:.2}", r.load.0, r.load.1),
        ]);
    }
    let timed: Vec<(usize, Duration)> = results
        .iter()
        .filter_map(|r| r.to_ready.map(|d| (r.members, d)))
        .collect();
    if let (Some(small), Some(large)) = (timed.first(), timed.last())
        && small.0 != large.0
        && let Some(x) = ratio(large.1, small.1)
    {
        t.note(format!(
            "ratio {}/{} members: {x:.2} (members are handled concurrently, 8 at a time)",
            large.0, small.0
        ));
    }
    for r in results {
        t.note(format!(
            "{} members, critical path: {} (log: {})",
            r.members,
            r.critical_path.summary(),
            r.log.display()
        ));
    }
    t.note(
        "Real: kube-apiserver v1.37 + etcd per cluster, the operator binary, RBAC, CRD validation. \
         Stood in for: Skupper's controller (the test double polls every 200 ms and writes \
         status and Certificate Secrets). Production timings: requeue 3 s while progressing, \
         debounce 500 ms, 8 members at once, 20 s per target.",
    );
    t.note(
        "'waiting on member status': gaps between passes in which a member watch saw a change \
         (the double writing status); 'requeue timers': gaps without one.",
    );
    t
}

fn rest_row(server: &str, r: &Requests, window: f64) -> Vec<String> {
    let pm = |n: u64| format!("{:.1}", per_minute(n, window));
    vec![
        server.to_owned(),
        pm(r.reads),
        pm(r.watches),
        pm(r.non_resource),
        pm(r.writes),
        pm(r.lease),
    ]
}

/// Requests per minute at rest, per API server.
pub fn rest(results: &[SizeResult]) -> Table {
    let mut t = Table::new(
        "Requests per minute at rest, per API server (operator's user agent, audit logs)",
        &[
            "API server",
            "get+list",
            "watch starts",
            "non-resource (probe)",
            "writes",
            "Lease",
            "network passes in window",
        ],
    );
    for r in results {
        let Some(rest) = &r.rest else { continue };
        let window = rest.window.as_secs_f64();
        let mut hub = rest_row(&format!("hub ({} members)", r.members), &rest.hub, window);
        hub.push(rest.passes.to_string());
        t.row(hub);
        let mut total = Requests::default();
        for m in &rest.members {
            total.add(m);
        }
        let n = rest.members.len().max(1) as u64;
        let mean = Requests {
            reads: total.reads / n,
            watches: total.watches / n,
            non_resource: total.non_resource / n,
            writes: total.writes / n,
            lease: total.lease / n,
        };
        t.row(rest_row(
            &format!("each member, mean of {}", rest.members.len()),
            &mean,
            window,
        ));
        if let Some(busiest) = rest.members.iter().max_by_key(|m| m.total()) {
            t.row(rest_row("busiest member", busiest, window));
        }
    }
    t.note(
        "Counted from each API server's audit log (every request, Metadata level) over the \
         window (starting 10 s after Ready), requests whose User-Agent starts with \
         fednet-operator/; the Skupper double keeps running (the passes column shows \
         whether anything triggered the operator). Watches that stay open are not \
         requests; a watch re-established in the window counts once.",
    );
    t
}

/// Failover.
pub fn failover(results: &[SizeResult]) -> Table {
    let mut t = Table::new(
        "Failover: the hub most spokes dial paused (SIGSTOP), production timings",
        &[
            "members",
            "paused hub",
            "its spokes",
            "until all Up through the other hub",
            "Ready again after SIGCONT",
        ],
    );
    for r in results {
        if let Some(f) = &r.failover {
            t.row(vec![
                r.members.to_string(),
                format!("{} (survivor {})", f.paused, f.survivor),
                f.spokes.to_string(),
                opt_secs(f.took),
                opt_secs(f.ready_again),
            ]);
        }
    }
    t.note(
        "Production timings: probes every 30 s with a 5 s timeout; a member is planned as \
         unhealthy (spokes move) after 3 failed probes in a row, the first at least 60 s old. \
         Read off the network's status links, polled every 200 ms.",
    );
    t
}

/// Operator memory.
pub fn memory(many: &ManyServices, replicas: &Replicas) -> Table {
    let mut t = Table::new(
        "Operator memory (VmHWM peak / VmRSS now, from /proc/<pid>/status)",
        &["scenario", "to Ready", "VmHWM", "VmRSS"],
    );
    t.row(vec![
        format!(
            "1 replica, {} members, {} services (at Ready)",
            many.members, many.services
        ),
        opt_secs(many.to_ready),
        mib(many.at_ready.hwm_kib),
        mib(many.at_ready.rss_kib),
    ]);
    t.row(vec![
        "same, 30 s later at rest".to_owned(),
        String::new(),
        mib(many.at_rest.hwm_kib),
        mib(many.at_rest.rss_kib),
    ]);
    for r in &replicas.replicas {
        t.row(vec![
            format!(
                "{} of {} replicas, {} networks x {} members{}",
                r.identity,
                replicas.replicas.len(),
                replicas.networks,
                replicas.members,
                if r.leader {
                    " (Lease holder)"
                } else {
                    " (standby)"
                }
            ),
            opt_secs(replicas.to_ready),
            mib(r.memory.hwm_kib),
            mib(r.memory.rss_kib),
        ]);
    }
    t.note(format!(
        "Replica flags besides the defaults: {:?} (BENCH_REPLICA_ARGS; today one replica \
         leads and the others stand by). Load average when the many-services run was Ready: \
         {:.2}.",
        replicas.flags, many.load
    ));
    t
}

/// The simulated run.
pub fn simulation(size: Size, sim: &Simulation) -> Table {
    let mut t = Table::new(
        &format!(
            "SIMULATED members: {} members, {} services, {} networks over {} shards \
             (real planner, engine and Skupper rendering; members are in-memory maps)",
            size.members, size.services, size.networks, size.shards
        ),
        &[
            "phase",
            "first pass, all networks",
            "converged pass, all networks",
            "converged pass, per shard (mean)",
            "slowest network: first / converged",
            "peak RSS in phase (rise in phase)",
        ],
    );
    let mut first = crate::simulate::Phases::default();
    let mut converged = crate::simulate::Phases::default();
    for s in &sim.shards {
        first.add(&s.first);
        converged.add(&s.converged);
    }
    let shards = sim.shards.len().max(1) as u32;
    for (i, phase) in PHASES.iter().enumerate() {
        t.row(vec![
            (*phase).to_owned(),
            secs3(first.time[i]),
            secs3(converged.time[i]),
            secs3(converged.time[i] / shards),
            format!(
                "{} / {}",
                secs3(sim.slowest_first.time[i]),
                secs3(sim.slowest_network.time[i])
            ),
            format!(
                "{} ({})",
                mib(Some(first.peak_kib[i].max(converged.peak_kib[i]))),
                mib(Some(first.rise_kib[i].max(converged.rise_kib[i])))
            ),
        ]);
    }
    t.row(vec![
        "total".to_owned(),
        secs3(first.total()),
        secs3(converged.total()),
        secs3(converged.total() / shards),
        format!(
            "{} / {}",
            secs3(sim.slowest_first.total()),
            secs3(sim.slowest_network.total())
        ),
        String::new(),
    ]);
    let objects: usize = sim.shards.iter().map(|s| s.objects).sum();
    let passes: usize = sim.shards.iter().map(|s| s.passes).sum();
    let unconverged: usize = sim.shards.iter().map(|s| s.unconverged).sum();
    t.note(format!(
        "Members are SIMULATED: in-memory maps stand in for the member API servers and \
         Skupper's controller (status written on apply), so observe and write cost no I/O here. \
         {objects} objects held by the simulated members once converged; {passes} passes in all; \
         {unconverged} networks did not converge within 6 passes."
    ));
    t.note(format!(
        "Hub objects ({} MemberClusters, {} FederatedServices, {} networks) built in {}; \
         resident then {}. Networks run one after another in one process; a shard's figures \
         are what its replica would spend.",
        size.members,
        size.services,
        size.networks,
        secs3(sim.hub_build),
        mib(sim.hub_rss_kib)
    ));
    for (i, s) in sim.shards.iter().enumerate() {
        t.note(format!(
            "shard {i}: {} networks, {} members, {} services, {} objects; first passes {}, converged passes {}",
            s.networks,
            s.members,
            s.services,
            s.objects,
            secs3(s.first.total()),
            secs3(s.converged.total())
        ));
    }
    t
}

fn secs3(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_durations() {
        let r = ratio(Duration::from_secs(9), Duration::from_secs(6)).unwrap();
        assert!((r - 1.5).abs() < 1e-9);
        assert!(ratio(Duration::from_secs(1), Duration::ZERO).is_none());
    }
}

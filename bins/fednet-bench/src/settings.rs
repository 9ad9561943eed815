//! What to run: flags, each with a `BENCH_*` environment fallback so `make bench-e2e` can be
//! limited without editing anything (`BENCH_SIZES=3,8 BENCH_SKIP=simulate make bench-e2e`).

use clap::Parser;
use std::path::PathBuf;

/// The parts of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Part {
    /// Applying a two-hub network with services to Ready, per size, and where the time went.
    Converge,
    /// Requests per minute at rest per API server (after each convergence).
    Rest,
    /// Pausing the hub most spokes dial until they are Up through the other hub.
    Failover,
    /// Operator memory: many services; several replicas sharing networks.
    Memory,
    /// Core planner and engine over simulated in-memory members, at 10,000 members.
    Simulate,
}

/// `fednet-bench`: end-to-end figures of the operator binary on real control planes, and a
/// simulated run of the core at 10,000 members.
#[derive(Parser, Debug, Clone)]
#[command(name = "fednet-bench", version, about)]
pub struct Settings {
    /// Member counts of the convergence runs (the hub cluster comes on top).
    #[arg(
        long,
        env = "BENCH_SIZES",
        value_delimiter = ',',
        default_value = "3,8,16,32"
    )]
    pub sizes: Vec<usize>,
    /// Parts to run (default all).
    #[arg(long, env = "BENCH_PARTS", value_enum, value_delimiter = ',')]
    pub parts: Vec<Part>,
    /// Parts to leave out.
    #[arg(long, env = "BENCH_SKIP", value_enum, value_delimiter = ',')]
    pub skip: Vec<Part>,
    /// FederatedServices of the convergence runs.
    #[arg(long, env = "BENCH_SERVICES", default_value_t = 100)]
    pub services: usize,
    /// Length of the at-rest window, after each convergence.
    #[arg(long, env = "BENCH_REST_SECS", default_value_t = 60)]
    pub rest_secs: u64,
    /// Member count of the run the failover is measured in (one of the sizes; when that size
    /// is not run, the largest size run is used).
    #[arg(long, env = "BENCH_FAILOVER_MEMBERS", default_value_t = 8)]
    pub failover_members: usize,
    /// Members of the memory run with many services.
    #[arg(long, env = "BENCH_MEMORY_MEMBERS", default_value_t = 16)]
    pub memory_members: usize,
    /// Services of the memory run with many services.
    #[arg(long, env = "BENCH_MEMORY_SERVICES", default_value_t = 1000)]
    pub memory_services: usize,
    /// Operator replicas of the replica memory run.
    #[arg(long, env = "BENCH_REPLICAS", default_value_t = 3)]
    pub replicas: usize,
    /// Networks the replicas share.
    #[arg(long, env = "BENCH_REPLICA_NETWORKS", default_value_t = 12)]
    pub replica_networks: usize,
    /// Extra flags of every replica of the replica run, split on whitespace (e.g.
    /// `--shards 3` once sharded replicas exist).
    #[arg(
        long,
        env = "BENCH_REPLICA_ARGS",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub replica_args: String,
    /// Simulated members.
    #[arg(long, env = "BENCH_SIM_MEMBERS", default_value_t = 10_000)]
    pub sim_members: usize,
    /// Simulated services.
    #[arg(long, env = "BENCH_SIM_SERVICES", default_value_t = 100_000)]
    pub sim_services: usize,
    /// Shards the simulated networks are spread over.
    #[arg(long, env = "BENCH_SIM_SHARDS", default_value_t = 8)]
    pub sim_shards: usize,
    /// Simulated networks (each member in one; services spread evenly). A network's service
    /// statuses cost (services x members) squared today, so fewer, larger networks take far
    /// longer (50 members and 500 services: about 2 s per pass on its own).
    #[arg(long, env = "BENCH_SIM_NETWORKS", default_value_t = 1000)]
    pub sim_networks: usize,
    /// How long any network may take to become Ready (or a failover to complete).
    #[arg(long, env = "BENCH_TIMEOUT_SECS", default_value_t = 600)]
    pub timeout_secs: u64,
    /// Where the markdown report is written.
    #[arg(long, env = "BENCH_OUT", default_value = "target/bench-e2e.md")]
    pub out: PathBuf,
}

impl Settings {
    /// Whether a part runs: listed in `--parts` (or none listed) and not in `--skip`.
    pub fn runs(&self, part: Part) -> bool {
        (self.parts.is_empty() || self.parts.contains(&part)) && !self.skip.contains(&part)
    }

    /// The size the failover is measured at: `--failover-members` if it is run, else the
    /// largest size run.
    pub fn failover_size(&self) -> Option<usize> {
        if self.sizes.contains(&self.failover_members) {
            Some(self.failover_members)
        } else {
            self.sizes.iter().copied().max()
        }
    }

    /// Whether an environment of `members` members is started by the convergence runs.
    pub fn runs_size(&self, members: usize) -> bool {
        self.runs(Part::Converge) && self.sizes.contains(&members)
            || self.runs(Part::Rest) && self.sizes.contains(&members)
            || self.runs(Part::Failover) && self.failover_size() == Some(members)
    }

    /// The extra flags of every replica of the replica run.
    pub fn replica_flags(&self) -> Vec<String> {
        self.replica_args
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Settings {
        Settings::try_parse_from(std::iter::once("fednet-bench").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn everything_runs_by_default() {
        let s = parse(&[]);
        assert_eq!(s.sizes, vec![3, 8, 16, 32]);
        assert!(
            [
                Part::Converge,
                Part::Rest,
                Part::Failover,
                Part::Memory,
                Part::Simulate
            ]
            .iter()
            .all(|p| s.runs(*p))
        );
        assert_eq!(s.failover_size(), Some(8));
        assert!(s.replica_flags().is_empty());
    }

    #[test]
    fn parts_can_be_chosen_and_skipped() {
        let s = parse(&["--sizes", "3", "--skip", "simulate,memory"]);
        assert!(s.runs(Part::Converge) && s.runs(Part::Rest) && s.runs(Part::Failover));
        assert!(!s.runs(Part::Simulate) && !s.runs(Part::Memory));
        // 8 is not run, so the failover takes the largest size run.
        assert_eq!(s.failover_size(), Some(3));
        assert!(s.runs_size(3) && !s.runs_size(8));
        let only = parse(&["--parts", "simulate"]);
        assert!(only.runs(Part::Simulate) && !only.runs(Part::Converge));
        assert!(!only.runs_size(3));
    }

    #[test]
    fn replica_flags_are_split_on_whitespace() {
        let s = parse(&["--replica-args", "--shards 3  --x=y"]);
        assert_eq!(s.replica_flags(), vec!["--shards", "3", "--x=y"]);
    }
}

//! Configuration: flags, each with an environment fallback.

use clap::{ArgAction, Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The operator's configuration.
#[derive(Clone, Debug, Parser)]
#[command(name = "federation-operator", version, about)]
pub struct Config {
    /// Kubeconfig of the hub cluster. Without it: `$KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account, in that order.
    #[arg(long, env = "FEDNET_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Context of the kubeconfig to use (its current context when omitted).
    #[arg(long, env = "FEDNET_CONTEXT")]
    pub context: Option<String>,

    /// Namespace whose FederatedNetworks and FederatedServices are served; all when omitted.
    #[arg(long, env = "FEDNET_WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, env = "FEDNET_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,

    /// Address of `/healthz` and `/readyz` (may equal the metrics address).
    #[arg(long, env = "FEDNET_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,

    /// Elect a leader on a Lease so that only one replica writes (`--leader-election=false`
    /// for a single replica run by hand).
    #[arg(long, env = "FEDNET_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set)]
    pub leader_election: bool,

    /// Name of the `coordination.k8s.io/v1` Lease.
    #[arg(long, env = "FEDNET_LEASE_NAME", default_value = "fednet-operator")]
    pub lease_name: String,

    /// Number of shards networks and member probes are split into. 1 (the default): one
    /// replica leads on the Lease `--lease-name` and does everything. More: every replica
    /// works, each on the shards it holds through the Leases `<lease-name>-shard-<i>` (see
    /// the README, "Sharded replicas"). Fixed for the life of a deployment: changing it
    /// moves most networks to another shard at once.
    #[arg(long, env = "FEDNET_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,

    /// Namespace of the Lease: `$POD_NAMESPACE` in a pod, else `fednet-system`.
    #[arg(long, env = "FEDNET_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Identity of this replica in the Lease and in Events: `$POD_NAME` in a pod, else
    /// `<hostname>-<pid>` (unique per process, so two local replicas never share one).
    #[arg(long, env = "FEDNET_IDENTITY")]
    pub identity: Option<String>,

    /// Log format.
    #[arg(long, env = "FEDNET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Tuning; the defaults suit production.
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Timings and limits. Tests and the demo shorten them; production keeps the defaults.
#[derive(Clone, Debug, clap::Args)]
pub struct Tuning {
    /// Requeue delay after a pass that wrote or found something still moving.
    #[arg(long, env = "FEDNET_REQUEUE_PROGRESSING", default_value = "3s", value_parser = parse_duration)]
    pub requeue_progressing: Duration,

    /// Requeue delay after a pass that found the network converged (watches catch drift sooner).
    #[arg(long, env = "FEDNET_REQUEUE_CONVERGED", default_value = "5m", value_parser = parse_duration)]
    pub requeue_converged: Duration,

    /// Interval between member probes.
    #[arg(long, env = "FEDNET_PROBE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub probe_interval: Duration,

    /// Time budget of one member probe.
    #[arg(long, env = "FEDNET_PROBE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub probe_timeout: Duration,

    /// Failed member probes in a row before the member is reported Unreachable and planned
    /// as unhealthy (spokes move off it). Fewer failures change nothing.
    #[arg(long, env = "FEDNET_PROBE_FAILURE_THRESHOLD", default_value_t = 3)]
    pub probe_failure_threshold: u32,

    /// How long a member's probes must have been failing, at least, before it is reported
    /// Unreachable (both this and the threshold must be reached).
    #[arg(long, env = "FEDNET_PROBE_FAILURE_MIN_DURATION", default_value = "60s", value_parser = parse_duration)]
    pub probe_failure_min_duration: Duration,

    /// A member whose token expires within this time is reported (condition
    /// `CredentialsExpiring` on its MemberCluster; renew with `fedctl join`).
    #[arg(long, env = "FEDNET_CREDENTIAL_WARNING", default_value = "168h", value_parser = parse_duration)]
    pub credential_warning: Duration,

    /// Time budget of one member for one engine phase (observe, or write), retries included.
    #[arg(long, env = "FEDNET_TARGET_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub target_timeout: Duration,

    /// Members handled at once within one network pass.
    #[arg(long, env = "FEDNET_MEMBER_CONCURRENCY", default_value_t = 8)]
    pub member_concurrency: usize,

    /// Networks reconciled at once.
    #[arg(long, env = "FEDNET_NETWORK_CONCURRENCY", default_value_t = 4)]
    pub network_concurrency: u16,

    /// Quiet time a network's triggers are batched over before it is reconciled.
    #[arg(long, env = "FEDNET_DEBOUNCE", default_value = "500ms", value_parser = parse_duration)]
    pub debounce: Duration,

    /// How long a Lease is valid after its last renewal.
    #[arg(long, env = "FEDNET_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// A leader that could not renew for this long stops writing (less than the duration).
    #[arg(long, env = "FEDNET_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,

    /// Interval between attempts to acquire or renew the Lease.
    #[arg(long, env = "FEDNET_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,

    /// On SIGTERM, how long running reconciles may take to finish before they are cut.
    #[arg(long, env = "FEDNET_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The identity of this replica (see `--identity`).
    pub fn identity(&self) -> String {
        if let Some(id) = self.identity.clone().filter(|s| !s.is_empty()) {
            return id;
        }
        if let Some(pod) = std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()) {
            return pod;
        }
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "fednet-operator".to_owned());
        format!("{host}-{}", std::process::id())
    }

    /// The namespace of the Lease (see `--lease-namespace`).
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "fednet-system".to_owned())
    }

    /// Checks what clap cannot: the Lease timings must leave a safety margin.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.tuning;
        if t.lease_renew_deadline >= t.lease_duration {
            return Err(format!(
                "--lease-renew-deadline ({:?}) must be shorter than --lease-duration ({:?})",
                t.lease_renew_deadline, t.lease_duration
            ));
        }
        if t.lease_retry_period >= t.lease_renew_deadline {
            return Err(format!(
                "--lease-retry-period ({:?}) must be shorter than --lease-renew-deadline ({:?})",
                t.lease_retry_period, t.lease_renew_deadline
            ));
        }
        if self.shards > 1 && !self.leader_election {
            return Err(
                "--shards greater than 1 needs the Leases: leave --leader-election on".to_owned(),
            );
        }
        if t.lease_duration < Duration::from_secs(1) {
            return Err("--lease-duration must be at least 1s".to_owned());
        }
        Ok(())
    }
}

/// Parses `250ms`, `3s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 3s, 5m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn flags_have_defaults_and_lease_timings_are_checked() {
        let config = Config::try_parse_from(["federation-operator"]).unwrap();
        assert!(config.leader_election);
        assert_eq!(config.lease_name, "fednet-operator");
        assert!(config.validate().is_ok());
        let off =
            Config::try_parse_from(["x", "--leader-election=false", "--identity", "a"]).unwrap();
        assert!(!off.leader_election);
        assert_eq!(off.identity(), "a");
        let bad = Config::try_parse_from(["x", "--lease-duration", "5s"]).unwrap();
        assert!(bad.validate().is_err());
        assert_eq!(config.shards, 1);
        let sharded = Config::try_parse_from(["x", "--shards=8"]).unwrap();
        assert_eq!(sharded.shards, 8);
        assert!(sharded.validate().is_ok());
        let unleased =
            Config::try_parse_from(["x", "--shards=8", "--leader-election=false"]).unwrap();
        assert!(unleased.validate().is_err());
        assert!(Config::try_parse_from(["x", "--shards=0"]).is_err());
    }

    #[test]
    fn probe_failure_knobs_default_to_the_core_defaults_and_can_be_set() {
        let core = federation_core::controller::Timing::default();
        let config = Config::try_parse_from(["x"]).unwrap();
        assert_eq!(
            config.tuning.probe_failure_threshold,
            core.probe_failure_threshold
        );
        assert_eq!(
            config.tuning.probe_failure_min_duration,
            core.probe_failure_min_duration
        );
        let set = Config::try_parse_from([
            "x",
            "--probe-failure-threshold=5",
            "--probe-failure-min-duration=2m",
        ])
        .unwrap();
        assert_eq!(set.tuning.probe_failure_threshold, 5);
        assert_eq!(
            set.tuning.probe_failure_min_duration,
            Duration::from_secs(120)
        );
    }
}

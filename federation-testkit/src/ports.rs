//! Loopback ports for the kit's servers, and recognising a server that lost its port.
//!
//! A port is chosen by binding it and releasing it; the server binds it a moment later. Two
//! things can take it in between, and both were seen to fail starts of 17 clusters:
//! - another kit in the same test process whose `bind(127.0.0.1:0)` got the same port back from
//!   the kernel: ruled out by one registry per process that never hands a port out twice;
//! - an outgoing connection: `connect()` takes its local port from the kernel's ephemeral range
//!   (`/proc/sys/net/ipv4/ip_local_port_range`), the same range `bind(…:0)` draws from, and 33
//!   API servers open hundreds of connections to etcd while the others start. Ruled out by
//!   handing out ports from outside that range.
//!
//! What remains, another process binding the same port in that moment (a parallel test binary,
//! say), is caught after the fact: the server exits with `bind: address already in use`, which
//! [`port_in_use`] recognises in its log, and the kit starts it again on fresh ports.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::error::{Error, Result};

/// Lowest port handed out: below it sit the registered ports of services a developer machine
/// may run (databases, proxies), which would only cost failed probes.
const LOWEST_PORT: u16 = 10_000;
/// Linux's default ephemeral range, assumed when `/proc` cannot be read.
const DEFAULT_EPHEMERAL: RangeInclusive<u16> = 32_768..=60_999;
/// Fewer ports than this outside the ephemeral range (a machine configured with a huge ephemeral
/// range) and the kit lets the kernel choose instead, accepting the race with connections.
const MIN_POOL: usize = 1_000;
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// How often a server is started on fresh ports after losing its port. Each lost port means
/// another process bound it in the moment between our probe and the server's bind; five in a row
/// means something binds ports systematically, and retrying further would only hide it.
pub(crate) const START_ATTEMPTS: usize = 5;

/// The process-wide registry: every kit in the process draws from it, so no two servers started
/// by this process are ever given the same port, also not a port a killed server held (its
/// cluster may [`restart`](crate::Cluster::restart) on it).
fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Mutex::new(Registry::new(read_ephemeral_range())))
        // The registry is consistent after every statement; a panicking test must not stop
        // the other tests of its binary from starting clusters.
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Where the registry takes ports from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pool {
    /// These ports, in this order from a random starting point.
    Ranges(Vec<RangeInclusive<u16>>),
    /// Whatever `bind(127.0.0.1:0)` returns.
    Kernel,
}

impl Pool {
    /// The ports below and above the ephemeral range, or [`Pool::Kernel`] if too few.
    fn outside(ephemeral: &RangeInclusive<u16>) -> Self {
        let mut ranges = Vec::new();
        let below_end = ephemeral.start().saturating_sub(1);
        if below_end >= LOWEST_PORT {
            ranges.push(LOWEST_PORT..=below_end);
        }
        if let Some(above_start) = ephemeral.end().checked_add(1) {
            ranges.push(above_start.max(LOWEST_PORT)..=u16::MAX);
        }
        let size: usize = ranges.iter().map(|r| r.clone().count()).sum();
        if size < MIN_POOL {
            Self::Kernel
        } else {
            Self::Ranges(ranges)
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Ranges(ranges) => ranges.iter().map(|r| r.clone().count()).sum(),
            // Bounded so that a kernel that keeps returning handed-out ports cannot loop forever.
            Self::Kernel => usize::from(u16::MAX),
        }
    }

    /// The `index`-th port of the pool (`None` for [`Pool::Kernel`]: ask the kernel).
    fn nth(&self, mut index: usize) -> Option<u16> {
        let Self::Ranges(ranges) = self else {
            return None;
        };
        for range in ranges {
            let len = range.clone().count();
            if index < len {
                return range.clone().nth(index);
            }
            index -= len;
        }
        None
    }
}

#[derive(Debug)]
struct Registry {
    pool: Pool,
    /// Next index into the pool. It starts at a random place so that kits in other processes,
    /// which have their own registries, are unlikely to probe the same ports at the same time.
    cursor: usize,
    handed_out: HashSet<u16>,
}

impl Registry {
    fn new(ephemeral: RangeInclusive<u16>) -> Self {
        let pool = Pool::outside(&ephemeral);
        let cursor = fastrand::usize(..pool.len().max(1));
        Self {
            pool,
            cursor,
            handed_out: HashSet::new(),
        }
    }

    /// One port that is free now and was never handed out before by this registry.
    fn take(&mut self) -> Result<u16> {
        let len = self.pool.len();
        for _ in 0..len {
            let candidate = self.pool.nth(self.cursor % len);
            self.cursor = self.cursor.wrapping_add(1);
            if candidate.is_some_and(|port| self.handed_out.contains(&port)) {
                continue;
            }
            // Bound only to see that nobody listens there now; released when the probe returns.
            let Some(port) = probe(candidate.unwrap_or(0)) else {
                continue;
            };
            if self.handed_out.insert(port) {
                return Ok(port);
            }
        }
        Err(Error::NoFreePort {
            handed_out: self.handed_out.len(),
        })
    }
}

/// The port if `127.0.0.1:port` can be bound now (`0`: the kernel's choice).
fn probe(port: u16) -> Option<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    listener.local_addr().ok().map(|a| a.port())
}

fn read_ephemeral_range() -> RangeInclusive<u16> {
    std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| parse_ephemeral_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL)
}

fn parse_ephemeral_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    let (Some(Ok(low)), Some(Ok(high))) = (fields.next(), fields.next()) else {
        return None;
    };
    (low <= high).then_some(low..=high)
}

/// The ports of one kit. Draws from the process-wide registry; a test can plant ports that are
/// handed out first, e.g. one it holds itself, to make a start collide on purpose.
#[derive(Debug, Default)]
pub(crate) struct Ports {
    planted: Mutex<VecDeque<u16>>,
}

impl Ports {
    /// Hands out `planted` first (in order), then ports from the registry.
    pub(crate) fn with_planted(planted: impl IntoIterator<Item = u16>) -> Self {
        Self {
            planted: Mutex::new(planted.into_iter().collect()),
        }
    }

    /// `count` ports, distinct from each other and from every port handed out before.
    ///
    /// # Errors
    /// [`Error::NoFreePort`] when none of the pool's ports is left.
    pub(crate) fn take(&self, count: usize) -> Result<Vec<u16>> {
        let mut planted = self.planted.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ports = Vec::with_capacity(count);
        while ports.len() < count {
            match planted.pop_front() {
                Some(port) => ports.push(port),
                None => ports.push(registry().take()?),
            }
        }
        Ok(ports)
    }
}

/// Which of `ports` the server's log says it could not bind because something else held it.
///
/// Both etcd and kube-apiserver report it as Go's net error, e.g.
/// `listen tcp 127.0.0.1:41234: bind: address already in use`.
pub(crate) fn port_in_use(log: &str, ports: &[u16]) -> Option<u16> {
    log.lines()
        .filter(|line| line.contains("address already in use"))
        .find_map(|line| {
            ports
                .iter()
                .copied()
                .find(|port| mentions_port(line, *port))
        })
}

/// Whether `line` contains `127.0.0.1:<port>` not followed by another digit (so that port 4123
/// does not match a line about 41234).
fn mentions_port(line: &str, port: u16) -> bool {
    let needle = format!("127.0.0.1:{port}");
    line.match_indices(&needle).any(|(at, _)| {
        !line[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// [`port_in_use`] for a log file; an unreadable log counts as no collision.
async fn port_in_use_in_file(log: &Path, ports: &[u16]) -> Option<u16> {
    let bytes = tokio::fs::read(log).await.ok()?;
    port_in_use(&String::from_utf8_lossy(&bytes), ports)
}

/// Where the log of a failed attempt is kept: `kube-apiserver.log` → `kube-apiserver.attempt-1.log`.
fn attempt_log(log: &Path, attempt: usize) -> PathBuf {
    log.with_extension(format!("attempt-{attempt}.log"))
}

/// Starts a server with `count` fresh ports from `ports` until it does not lose one of them.
///
/// `start` spawns the server on the given ports, writing to `log`, and waits until it is ready.
/// When it fails because the process exited and `log` says one of its ports was taken, its log is
/// kept as `<name>.attempt-<n>.log` and the server is started again on fresh ports, at most
/// [`START_ATTEMPTS`] times in all. Every other failure is returned as it is.
///
/// # Errors
/// [`Error::PortsTaken`] when every attempt lost a port; the error of `start` otherwise.
pub(crate) async fn start_with_fresh_ports<T, F, Fut>(
    name: &str,
    log: &Path,
    ports: &Ports,
    count: usize,
    mut start: F,
) -> Result<T>
where
    F: FnMut(Vec<u16>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut taken = Vec::new();
    let mut logs = Vec::new();
    for attempt in 1..=START_ATTEMPTS {
        let chosen = ports.take(count)?;
        let error = match start(chosen.clone()).await {
            Ok(server) => return Ok(server),
            Err(error @ Error::ProcessExited { .. }) => error,
            Err(error) => return Err(error),
        };
        let Some(port) = port_in_use_in_file(log, &chosen).await else {
            return Err(error);
        };
        let kept = attempt_log(log, attempt);
        tokio::fs::rename(log, &kept)
            .await
            .map_err(|e| Error::io("keep the log of a failed start as", &kept, e))?;
        tracing::warn!(
            name,
            port,
            attempt,
            log = %kept.display(),
            "another process took the port; starting again on fresh ports"
        );
        taken.push(port);
        logs.push(kept);
    }
    Err(Error::PortsTaken {
        name: name.to_owned(),
        attempts: START_ATTEMPTS,
        ports: taken,
        logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_never_hands_out_a_port_twice_even_from_many_threads() {
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| Ports::default().take(50).unwrap()))
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            all.extend(thread.join().unwrap());
        }
        let distinct: HashSet<u16> = all.iter().copied().collect();
        assert_eq!(distinct.len(), 400);
    }

    #[test]
    fn a_released_port_is_not_handed_out_again() {
        // A kernel-chosen port is what another kit might be given back; the registry must refuse
        // a port once it handed it out, whether or not anyone listens on it now.
        let ports = Ports::default();
        let first = ports.take(20).unwrap();
        let second = ports.take(20).unwrap();
        assert!(first.iter().all(|p| !second.contains(p)));
    }

    #[test]
    fn ports_come_from_outside_the_ephemeral_range() {
        let ephemeral = read_ephemeral_range();
        let ports = Ports::default().take(20).unwrap();
        if Pool::outside(&ephemeral) != Pool::Kernel {
            assert!(
                ports
                    .iter()
                    .all(|p| !ephemeral.contains(p) && *p >= LOWEST_PORT),
                "{ports:?} vs ephemeral {ephemeral:?}"
            );
        }
    }

    #[test]
    fn a_port_someone_listens_on_is_skipped() {
        let mut registry = Registry::new(DEFAULT_EPHEMERAL);
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let held_port = held.local_addr().unwrap().port();
        registry.pool = Pool::Ranges(vec![held_port..=held_port, LOWEST_PORT..=u16::MAX]);
        registry.cursor = 0;
        let port = registry.take().unwrap();
        assert_ne!(port, held_port);
    }

    #[test]
    fn pool_is_what_lies_outside_the_ephemeral_range() {
        assert_eq!(
            Pool::outside(&(32_768..=60_999)),
            Pool::Ranges(vec![10_000..=32_767, 61_000..=65_535])
        );
        assert_eq!(
            Pool::outside(&(1_024..=65_535)),
            Pool::Kernel,
            "no room outside a range that covers everything"
        );
        assert_eq!(
            Pool::outside(&(20_000..=65_535)),
            Pool::Ranges(vec![10_000..=19_999])
        );
        let pool = Pool::outside(&(32_768..=60_999));
        assert_eq!(pool.nth(0), Some(10_000));
        assert_eq!(pool.nth(22_767), Some(32_767));
        assert_eq!(pool.nth(22_768), Some(61_000));
        assert_eq!(pool.nth(pool.len()), None);
    }

    #[test]
    fn parses_the_kernel_range() {
        assert_eq!(
            parse_ephemeral_range("32768\t60999\n"),
            Some(32_768..=60_999)
        );
        assert_eq!(parse_ephemeral_range("garbage"), None);
        assert_eq!(parse_ephemeral_range("5 4"), None);
    }

    #[test]
    fn planted_ports_come_first() {
        let ports = Ports::with_planted([7, 8]);
        assert_eq!(ports.take(1).unwrap(), vec![7]);
        let next = ports.take(2).unwrap();
        assert_eq!(next[0], 8);
        assert_ne!(next[1], 7);
    }

    #[test]
    fn recognises_the_bind_errors_of_etcd_and_kube_apiserver() {
        // Copied from etcd v3.7.3 and kube-apiserver v1.37.2 started on a port held by another
        // listener.
        let etcd = r#"{"level":"fatal","ts":"2026-11-30T08:13:26.881810Z","caller":"etcdmain/etcd.go:157","msg":"discovery failed","error":"listen tcp 127.0.0.1:23456: bind: address already in use"}"#;
        let apiserver = r#"E1130 08:13:29.297377    3610 run.go:72] "command failed" err="failed to create listener: failed to listen on 127.0.0.1:23456: listen tcp 127.0.0.1:23456: bind: address already in use""#;
        for log in [etcd, apiserver] {
            let log = format!("I1130 starting\n{log}\n");
            assert_eq!(port_in_use(&log, &[1, 23456]), Some(23456));
            assert_eq!(port_in_use(&log, &[2345]), None, "a prefix is another port");
            assert_eq!(port_in_use(&log, &[23457]), None);
        }
        assert_eq!(
            port_in_use("dial tcp 127.0.0.1:23456: connection refused", &[23456]),
            None,
            "only a failed bind is a collision"
        );
    }
}

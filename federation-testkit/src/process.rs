//! Child processes (etcd, kube-apiserver): spawning with a log file, signals, restart, teardown.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::error::{Error, Result};

/// How long teardown waits for a SIGKILLed child to be reaped before giving up on it.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one readiness probe may take before it counts as a failed attempt.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between readiness probes: short, because startup time is what tests wait for.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// What a process is in the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProcessRole {
    /// An etcd server.
    Etcd,
    /// A kube-apiserver.
    KubeApiserver,
    /// A Headscale server (the SD-WAN backend's overlay controller).
    Headscale,
    /// A Tailscale client (an edge node of a Headscale tailnet).
    Tailscaled,
}

impl fmt::Display for ProcessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Etcd => "etcd",
            Self::KubeApiserver => "kube-apiserver",
            Self::Headscale => "headscale",
            Self::Tailscaled => "tailscaled",
        })
    }
}

/// A snapshot of one child process, for diagnostics and measurements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// What the process is.
    pub role: ProcessRole,
    /// Its name in the kit, e.g. `cluster-1/kube-apiserver` or `etcd-shared`.
    pub name: String,
    /// Its pid, or `None` when it is not running (killed and not restarted).
    pub pid: Option<u32>,
    /// Its log file (stdout and stderr, appended across restarts).
    pub log: PathBuf,
}

/// Signals the fault handles send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    Stop,
    Cont,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Stop => "STOP",
            Self::Cont => "CONT",
        }
    }
}

/// How to (re)start a process.
#[derive(Debug, Clone)]
pub(crate) struct ProcessSpec {
    pub role: ProcessRole,
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A child process the kit owns. Dropping it kills and reaps the child.
#[derive(Debug)]
pub(crate) struct ManagedProcess {
    spec: ProcessSpec,
    child: Mutex<Option<Child>>,
}

impl ManagedProcess {
    /// Starts the process, appending its output to the spec's log file.
    pub(crate) fn spawn(spec: ProcessSpec) -> Result<Self> {
        let child = spawn_child(&spec)?;
        Ok(Self {
            spec,
            child: Mutex::new(Some(child)),
        })
    }

    pub(crate) fn log(&self) -> &Path {
        &self.spec.log
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        ProcessInfo {
            role: self.spec.role,
            name: self.spec.name.clone(),
            pid: self.pid(),
            log: self.spec.log.clone(),
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.lock().as_ref().and_then(Child::id)
    }

    /// Fails with the log's tail if the process has exited.
    pub(crate) fn check_running(&self) -> Result<()> {
        let mut guard = self.lock();
        let Some(child) = guard.as_mut() else {
            return Err(Error::NotRunning {
                name: self.spec.name.clone(),
            });
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                *guard = None;
                Err(self.exited(status.to_string()))
            }
            Err(e) => Err(Error::io("check status of", &self.spec.program, e)),
        }
    }

    /// Sends a signal with `kill(1)`: the workspace forbids `unsafe`, and the `kill` binary is on
    /// every machine that can run kube-apiserver.
    pub(crate) fn signal(&self, signal: Signal) -> Result<()> {
        self.check_running()?;
        let pid = self.pid().ok_or_else(|| Error::NotRunning {
            name: self.spec.name.clone(),
        })?;
        let output = std::process::Command::new("kill")
            .args(["-s", signal.name(), &pid.to_string()])
            .output()
            .map_err(|e| Error::Signal {
                signal: signal.name(),
                name: self.spec.name.clone(),
                pid,
                detail: e.to_string(),
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Signal {
                signal: signal.name(),
                name: self.spec.name.clone(),
                pid,
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// SIGKILLs the process and waits until it is reaped. Killing a stopped (SIGSTOPped) process
    /// works too: SIGKILL is delivered to stopped processes.
    pub(crate) async fn kill(&self) -> Result<()> {
        let taken = self.lock().take();
        match taken {
            Some(mut child) => child
                .kill()
                .await
                .map_err(|e| Error::io("kill", &self.spec.program, e)),
            None => Ok(()),
        }
    }

    /// Starts the process again with the same arguments (same port, same data). Kills the old one
    /// first if it still runs.
    pub(crate) async fn respawn(&self) -> Result<()> {
        self.kill().await?;
        let child = spawn_child(&self.spec)?;
        *self.lock() = Some(child);
        Ok(())
    }

    /// Synchronous kill-and-reap for `Drop`, where nothing can be awaited.
    pub(crate) fn kill_blocking(&self) {
        let Some(mut child) = self.lock().take() else {
            return;
        };
        if let Err(e) = child.start_kill() {
            tracing::warn!(name = %self.spec.name, error = %e, "could not kill child process");
        }
        let deadline = Instant::now() + REAP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => {
                    tracing::warn!(name = %self.spec.name, "child process not reaped in time");
                    return;
                }
                Err(e) => {
                    tracing::warn!(name = %self.spec.name, error = %e, "could not reap child process");
                    return;
                }
            }
        }
    }

    /// Polls `probe` until it succeeds, failing early (with the log's tail) if the process exits.
    pub(crate) async fn wait_ready<F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<(), String>>,
    {
        let start = Instant::now();
        loop {
            self.check_running()?;
            let last_error = match tokio::time::timeout(PROBE_TIMEOUT, probe()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => format!("probe took longer than {PROBE_TIMEOUT:?}"),
            };
            if start.elapsed() >= timeout {
                return Err(Error::Timeout {
                    what: format!("{} ({what})", self.spec.name),
                    waited: start.elapsed(),
                    last_error,
                    log: self.spec.log.clone(),
                    tail: format!(
                        "--- last lines of the log ---\n{}",
                        log_tail(&self.spec.log, 20)
                    ),
                });
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    fn exited(&self, status: String) -> Error {
        Error::ProcessExited {
            name: self.spec.name.clone(),
            status,
            log: self.spec.log.clone(),
            tail: log_tail(&self.spec.log, 20),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock leaves the Option intact; teardown must still run.
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill_blocking();
    }
}

fn spawn_child(spec: &ProcessSpec) -> Result<Child> {
    let spawn_error = |source| Error::Spawn {
        name: spec.name.clone(),
        program: spec.program.clone(),
        log: spec.log.clone(),
        source,
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|e| Error::io("open log file", &spec.log, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io("open log file", &spec.log, e))?;
    tracing::debug!(name = %spec.name, program = %spec.program.display(), args = ?spec.args, "starting");
    Command::new(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        // Backstop for paths that drop a Child without going through kill_blocking.
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)
}

/// The last `lines` lines of a log file (or why it could not be read).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(log unreadable: {e})"),
    }
}

/// Resident memory (`VmRSS` from `/proc/<pid>/status`) of a process, in KiB.
///
/// Returns `None` when the process does not exist or the field cannot be read.
pub fn resident_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether a process with this pid exists (zombies count: they are not reaped yet).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_resident_memory() {
        let rss = resident_memory_kib(std::process::id()).unwrap();
        assert!(rss > 0);
    }

    #[tokio::test]
    async fn kill_blocking_reaps_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let process = ManagedProcess::spawn(ProcessSpec {
            role: ProcessRole::Etcd,
            name: "sleeper".into(),
            program: "/bin/sleep".into(),
            args: vec!["60".into()],
            log: dir.path().join("sleep.log"),
            env: Vec::new(),
        })
        .unwrap();
        let pid = process.pid().unwrap();
        process.signal(Signal::Stop).unwrap();
        drop(process);
        assert!(!process_exists(pid));
    }

    #[tokio::test]
    async fn exited_process_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("false.log");
        std::fs::write(&log, "first\nboom\n").unwrap();
        let process = ManagedProcess::spawn(ProcessSpec {
            role: ProcessRole::Etcd,
            name: "failing".into(),
            program: "/bin/false".into(),
            args: vec![],
            log: log.clone(),
            env: Vec::new(),
        })
        .unwrap();
        let err = process
            .wait_ready("never", Duration::from_secs(10), || async {
                Err("not yet".to_owned())
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("boom"), "{text}");
        assert!(text.contains("false.log"), "{text}");
    }
}

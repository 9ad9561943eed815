//! Resident memory from `/proc/<pid>/status`: `VmRSS` (now) and `VmHWM` (peak), and the
//! reset of the peak through `/proc/self/clear_refs` so a phase's own peak can be read.

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: Option<u64>,
    /// `VmHWM`: the peak resident size (since start or the last reset).
    pub hwm_kib: Option<u64>,
}

/// Reads `VmRSS` and `VmHWM` out of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Memory {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// The memory of process `pid` (both `None` when it cannot be read).
pub fn memory(pid: u32) -> Memory {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|t| parse_status(&t))
        .unwrap_or_default()
}

/// The memory of this process.
pub fn own_memory() -> Memory {
    memory(std::process::id())
}

/// Resets this process's `VmHWM` to its current `VmRSS` (Linux: writing `5` to
/// `/proc/self/clear_refs`). Returns whether the kernel took it; when it did not, peaks
/// read afterwards are peaks since start.
pub fn reset_own_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The start of a phase whose peak memory is wanted: the peak mark is reset and the
/// resident size noted.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseMark {
    start_rss_kib: u64,
}

impl PhaseMark {
    /// Resets this process's peak and notes its resident size.
    pub fn begin() -> Self {
        reset_own_peak();
        Self {
            start_rss_kib: own_memory().rss_kib.unwrap_or(0),
        }
    }

    /// The peak resident KiB since [`Self::begin`], and how far it rose above the resident
    /// size at the start (memory freed earlier and kept by the allocator is reused first, so
    /// the rise is what the phase needed beyond it).
    pub fn end(&self) -> (u64, u64) {
        let peak = own_memory().hwm_kib.unwrap_or(0);
        (peak, peak.saturating_sub(self.start_rss_kib))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak() {
        let text = "Name:\tfederation-oper\nVmPeak:\t  900000 kB\nVmHWM:\t   31744 kB\nVmRSS:\t   30720 kB\n";
        assert_eq!(
            parse_status(text),
            Memory {
                rss_kib: Some(30720),
                hwm_kib: Some(31744)
            }
        );
        assert_eq!(parse_status("Name: x\n"), Memory::default());
    }

    #[test]
    fn own_memory_is_readable_and_the_peak_is_at_least_the_current_size() {
        reset_own_peak();
        let now = own_memory();
        let (rss, hwm) = (now.rss_kib.unwrap(), now.hwm_kib.unwrap());
        assert!(rss > 0 && hwm >= rss, "{now:?}");
    }

    #[test]
    fn a_phase_that_allocates_shows_its_rise() {
        let mark = PhaseMark::begin();
        // 64 MiB, touched so it is resident.
        let block = vec![1u8; 64 << 20];
        let (peak, rise) = mark.end();
        assert!(
            std::hint::black_box(&block)
                .iter()
                .step_by(4096)
                .all(|b| *b == 1)
        );
        assert!(rise >= 60 << 10, "peak {peak} KiB, rise {rise} KiB");
        assert!(peak >= rise);
    }
}

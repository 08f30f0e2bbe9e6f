//! What a child process has used, from `/proc` (Linux): for the benchmarks.

use std::process::Child;
use std::time::Duration;

/// Its peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(child: &Child) -> u64 {
    status_kib(child, "VmHWM:")
}

/// Its resident memory now (`VmRSS`), in KiB.
pub fn rss_kib(child: &Child) -> u64 {
    status_kib(child, "VmRSS:")
}

/// A memory figure of `/proc/<pid>/status`, in KiB (0 once the process is gone).
fn status_kib(child: &Child, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Its user + system CPU time so far (all its threads).
pub fn cpu_time(child: &Child) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    // The numeric fields after the command name (which ends with ')') and the state letter start
    // at the parent's pid: utime and stime are the 11th and 12th of them.
    let fields: Vec<u64> =
        stat.rsplit(')').next().unwrap_or_default().split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    // Linux reports in USER_HZ, 100 a second on every architecture Lambda runs.
    Duration::from_millis(ticks * 10)
}

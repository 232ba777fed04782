//! What a run measures besides the operations: the machine, peak memory, latency summaries.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The machine a result was measured on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// The compiler that built the harness (`rustc --version`).
    pub rustc: String,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Total memory in bytes, from `/proc/meminfo` (0 if unknown).
    pub memory_bytes: u64,
}

impl Machine {
    /// This machine.
    pub fn current() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = kib_field(&meminfo, "MemTotal:").unwrap_or(0) * 1024;
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rustc: env!("BYPASS_RUSTC_VERSION").to_string(),
            cpu,
            memory_bytes,
        }
    }
}

fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resets the kernel's peak-RSS mark, so that the next [`peak_rss_bytes`] is this run's.
pub(crate) fn reset_peak_rss() {
    // Linux ≥ 4.0: writing 5 resets VmHWM. Elsewhere the peak is the process's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set size of the process, in bytes (0 if unknown).
pub(crate) fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    kib_field(&status, "VmHWM:").unwrap_or(0) * 1024
}

/// Latency percentiles of one kind of operation, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Operations measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The kinds of operation whose latency a run reports.
pub const OP_KINDS: [&str; 3] = ["register", "unregister", "lookup"];

/// One histogram per kind of operation; each thread has its own, merged after the run.
#[derive(Debug)]
pub(crate) struct Latencies(pub(crate) [Histogram<u64>; 3]);

impl Latencies {
    pub(crate) fn new() -> Latencies {
        // 1 ns to 100 s at 2 significant digits (1% resolution): ~25 KiB a histogram, so
        // that 1,024 threads with one each per kind stay under 100 MiB. 3 digits would take
        // ten times that.
        let h = || Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("valid bounds");
        Latencies([h(), h(), h()])
    }

    pub(crate) fn record(&mut self, kind: usize, ns: u64) {
        self.0[kind].saturating_record(ns.max(1));
    }

    pub(crate) fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.add(b).expect("histograms of equal bounds");
        }
    }

    pub(crate) fn summary(&self) -> BTreeMap<String, Percentiles> {
        OP_KINDS
            .iter()
            .zip(&self.0)
            .filter(|(_, h)| !h.is_empty())
            .map(|(k, h)| (k.to_string(), Percentiles::of(h)))
            .collect()
    }
}

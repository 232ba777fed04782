//! What a run measures besides the operations: the machine, peak memory, latency summaries.

use std::collections::BTreeMap;

use bypass_reports::schema::{Machine, Operation, Percentiles};
use hdrhistogram::Histogram;

/// This machine.
pub fn machine() -> Machine {
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

/// The percentiles of `h`.
pub(crate) fn percentiles(h: &Histogram<u64>) -> Percentiles {
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// One histogram per kind of operation, indexed as [`Operation::ALL`], made on its first
/// record (a run makes only its registry's kinds); each thread has its own, merged after the
/// run.
#[derive(Debug)]
pub(crate) struct Latencies([Option<Histogram<u64>>; Operation::ALL.len()]);

impl Latencies {
    pub(crate) fn new() -> Latencies {
        Latencies(std::array::from_fn(|_| None))
    }

    /// With the histograms of `kinds` made now, so that recording one later allocates
    /// nothing.
    pub(crate) fn with(kinds: &[Operation]) -> Latencies {
        let mut latencies = Latencies::new();
        for &kind in kinds {
            latencies.histogram(kind);
        }
        latencies
    }

    fn histogram(&mut self, kind: Operation) -> &mut Histogram<u64> {
        // 1 ns to 100 s at 2 significant digits (1% resolution): ~25 KiB a histogram, so
        // that 1,024 threads with one each per kind stay under 100 MiB. 3 digits would take
        // ten times that.
        self.0[kind as usize].get_or_insert_with(|| {
            Histogram::new_with_bounds(1, 100_000_000_000, 2).expect("valid bounds")
        })
    }

    pub(crate) fn record(&mut self, kind: Operation, ns: u64) {
        self.histogram(kind).saturating_record(ns.max(1));
    }

    /// Operations recorded, of every kind.
    pub(crate) fn count(&self) -> u64 {
        self.0.iter().flatten().map(Histogram::len).sum()
    }

    pub(crate) fn merge(&mut self, other: &Latencies) {
        for (&kind, b) in Operation::ALL.iter().zip(&other.0) {
            if let Some(b) = b {
                self.histogram(kind)
                    .add(b)
                    .expect("histograms of equal bounds");
            }
        }
    }

    pub(crate) fn summary(&self) -> BTreeMap<Operation, Percentiles> {
        Operation::ALL
            .iter()
            .zip(&self.0)
            .filter_map(|(&kind, h)| Some((kind, h.as_ref()?)))
            .filter(|(_, h)| !h.is_empty())
            .map(|(kind, h)| (kind, percentiles(h)))
            .collect()
    }
}

//! Prometheus' text exposition format, written into a `String`: the one way the server's crates
//! write the series that `/metrics` shows. It owns the format (the HELP and TYPE lines, label
//! syntax, a histogram's cumulative buckets, `_sum` and `_count`) and knows nothing of what is
//! counted: names, help texts, labels and values come from the caller.

use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a series is, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A total that never goes down while the process runs.
    Counter,
    /// A value read at each scrape, which may go up and down.
    Gauge,
    Histogram,
}

/// The `# HELP` and `# TYPE` lines of `name`: the series' lines follow, written by the caller.
pub fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A counter with no label.
pub fn counter(out: &mut String, name: &str, help: &str, value: impl Display) {
    header(out, name, help, Kind::Counter);
    let _ = writeln!(out, "{name} {value}");
}

/// A gauge with no label.
pub fn gauge(out: &mut String, name: &str, help: &str, value: impl Display) {
    header(out, name, help, Kind::Gauge);
    let _ = writeln!(out, "{name} {value}");
}

/// Durations counted in fixed buckets, in microseconds, from any thread without a lock. Each
/// bucket's bound is inclusive (a time equal to it falls in it), as Prometheus' `le` says.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, rising; `+Inf` follows.
    bounds_us: &'static [u64],
    /// Per bucket (not cumulative), the last one above every bound.
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds_us` (rising upper bounds in microseconds).
    pub fn new(bounds_us: &'static [u64]) -> Self {
        debug_assert!(bounds_us.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds_us,
            counts: (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    fn bucket(&self, us: u64) -> usize {
        self.bounds_us.partition_point(|b| *b < us)
    }

    /// Counts one duration.
    pub fn observe(&self, us: u64) {
        self.counts[self.bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts many durations at once (one atomic add per bucket touched, not per duration).
    pub fn record(&self, times_us: impl IntoIterator<Item = u64>) {
        let mut counts = vec![0u64; self.counts.len()];
        let mut sum: u64 = 0;
        for t in times_us {
            counts[self.bucket(t)] += 1;
            // Wraps as the atomic sum does, instead of overflowing on an absurd time.
            sum = sum.wrapping_add(t);
        }
        for (to, n) in self.counts.iter().zip(counts) {
            if n > 0 {
                to.fetch_add(n, Ordering::Relaxed);
            }
        }
        if sum > 0 {
            self.sum_us.fetch_add(sum, Ordering::Relaxed);
        }
    }

    /// How many durations it has counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The series of `name` in seconds: `name_bucket` (cumulative, `+Inf` last), `name_sum` and
    /// `name_count`, each with `labels` (e.g. `route="booking"`, or empty). The header is the
    /// caller's (`header(.., Kind::Histogram)`): one for all the label values of a name.
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, n) in self.counts.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            match self.bounds_us.get(i) {
                Some(b) => {
                    let le = *b as f64 / 1e6;
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
                    );
                }
            }
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_sum{braces} {sum}\n{name}_count{braces} {cumulative}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_carry_their_help_and_type() {
        let mut out = String::new();
        counter(&mut out, "a_total", "As seen", 3);
        gauge(&mut out, "b", "Bs now", 0.5);
        assert_eq!(
            out,
            "# HELP a_total As seen\n# TYPE a_total counter\na_total 3\n\
             # HELP b Bs now\n# TYPE b gauge\nb 0.5\n"
        );
    }

    #[test]
    fn a_histogram_counts_each_time_in_the_first_bucket_whose_bound_it_does_not_pass() {
        static BOUNDS: [u64; 3] = [100, 1_000, 2_500_000];
        let h = Histogram::new(&BOUNDS);
        h.observe(100); // on a bound: in it
        h.record([101, 1_000, 0]);
        h.record([]);
        h.observe(3_000_000); // above every bound
        assert_eq!(h.count(), 5);
        let mut out = String::new();
        h.write(&mut out, "t_seconds", "route=\"x\"");
        assert_eq!(
            out,
            "t_seconds_bucket{route=\"x\",le=\"0.0001\"} 2\n\
             t_seconds_bucket{route=\"x\",le=\"0.001\"} 4\n\
             t_seconds_bucket{route=\"x\",le=\"2.5\"} 4\n\
             t_seconds_bucket{route=\"x\",le=\"+Inf\"} 5\n\
             t_seconds_sum{route=\"x\"} 3.001201\n\
             t_seconds_count{route=\"x\"} 5\n"
        );
        let mut out = String::new();
        Histogram::new(&BOUNDS).write(&mut out, "t_seconds", "");
        assert!(
            out.starts_with("t_seconds_bucket{le=\"0.0001\"} 0\n"),
            "{out}"
        );
        assert!(
            out.ends_with("t_seconds_sum 0\nt_seconds_count 0\n"),
            "{out}"
        );
    }
}

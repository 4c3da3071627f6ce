//! Run sizes and the statistics every figure goes through (medians, nearest-rank percentiles).

use std::time::Duration;

/// How much each section does. `full` is what BENCHMARKS.md shows; `smoke` only proves that every
/// section still produces numbers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sizes {
    pub name: &'static str,
    /// `linkguard serve` cold starts (and Python import runs), median reported.
    pub cold_starts: usize,
    /// Invocations served before the peak RSS is read.
    pub rss_invocations: usize,
    /// Invocations per (event kind, concurrency) configuration and run.
    pub invocations: usize,
    /// Timed runs per configuration; the table shows the median of each figure.
    pub invocation_runs: usize,
    pub concurrency: Vec<usize>,
    /// Registries of the audit-scale estates.
    pub audit_sizes: Vec<usize>,
    pub audit_runs: usize,
    pub connections_per_registry: usize,
    /// Registries of the side-by-side estate with the SDK loop.
    pub sdk_registries: usize,
    pub sdk_runs: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            name: "all",
            cold_starts: 5,
            rss_invocations: 1_000,
            invocations: 1_000,
            invocation_runs: 3,
            concurrency: vec![1, 16, 64],
            audit_sizes: vec![100, 1_000, 10_000],
            audit_runs: 3,
            connections_per_registry: 4,
            sdk_registries: 1_000,
            sdk_runs: 3,
        }
    }

    pub fn smoke() -> Self {
        Self {
            name: "smoke",
            cold_starts: 2,
            rss_invocations: 40,
            invocations: 24,
            invocation_runs: 2,
            concurrency: vec![1, 16, 64],
            audit_sizes: vec![20, 60],
            audit_runs: 1,
            connections_per_registry: 4,
            sdk_registries: 12,
            sdk_runs: 1,
        }
    }
}

/// Median of the values (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let hi = v.get(n / 2).copied().unwrap_or(0.0);
    if n % 2 == 1 {
        hi
    } else {
        let lo = v.get(n / 2 - 1).copied().unwrap_or(hi);
        (lo + hi) / 2.0
    }
}

pub fn median_u64(values: &[u64]) -> u64 {
    // Figures like counts and KiB: the median of integers, rounded.
    median(&values.iter().map(|&v| v as f64).collect::<Vec<_>>()).round() as u64
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p`% at or below it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied().unwrap_or(Duration::ZERO)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median_u64(&[10, 30, 20]), 20);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        let few = [Duration::from_millis(1), Duration::from_millis(9)];
        assert_eq!(percentile(&few, 99.0), Duration::from_millis(9));
        assert_eq!(percentile(&few, 50.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}

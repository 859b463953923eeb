//! A latency histogram with bounded memory: log-linear buckets, 128 per
//! power of two, so a reported percentile is at most 0.8% off the true
//! value (exact below 256 µs, and for the maximum). A flood answered `busy` at once can bring
//! millions of replies a minute; keeping each latency would cost more memory
//! than the nodes under test.

/// Sub-buckets per power of two, as a power of two.
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Enough buckets for any u64 value.
const BUCKET_COUNT: usize = (64 - SUB_BUCKET_BITS as usize) * SUB_BUCKETS + SUB_BUCKETS;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: vec![0; BUCKET_COUNT], total: 0, max_us: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, value_us: u64) {
        self.counts[bucket_of(value_us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(value_us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The smallest recorded value v (to bucket precision) such that at
    /// least `fraction` of the samples are at most v; 0 when empty.
    pub fn percentile_us(&self, fraction: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((fraction * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                // The top bucket holds the maximum, which is known exactly.
                return if seen == self.total { self.max_us } else { lowest_value_of(bucket) };
            }
        }
        self.max_us
    }

    pub fn max_us(&self) -> u64 {
        self.max_us
    }
}

/// Values below 256 have a bucket each; above, a power of two [2^e, 2^(e+1))
/// is split into 128 equal buckets.
fn bucket_of(value: u64) -> usize {
    let exponent = 63 - (value | 1).leading_zeros();
    let shift = exponent.saturating_sub(SUB_BUCKET_BITS);
    ((shift as usize) << SUB_BUCKET_BITS) + (value >> shift) as usize
}

fn lowest_value_of(bucket: usize) -> u64 {
    let shift = (bucket >> SUB_BUCKET_BITS).saturating_sub(1);
    let mantissa = bucket - (shift << SUB_BUCKET_BITS);
    (mantissa as u64) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_256_and_within_one_percent_above() {
        for value in 0..256 {
            assert_eq!(lowest_value_of(bucket_of(value)), value);
        }
        for value in [256, 257, 1_000, 65_535, 1_000_000, 123_456_789, u64::MAX] {
            let lowest = lowest_value_of(bucket_of(value));
            assert!(lowest <= value && (value - lowest) as f64 <= value as f64 * 0.008, "{value} -> {lowest}");
        }
        assert!(bucket_of(u64::MAX) < BUCKET_COUNT);
    }

    #[test]
    fn percentiles_follow_the_ranks() {
        let mut histogram = Histogram::default();
        for value in 1..=100 {
            histogram.record(value);
        }
        assert_eq!(histogram.percentile_us(0.50), 50);
        assert_eq!(histogram.percentile_us(0.99), 99);
        assert_eq!(histogram.percentile_us(1.0), 100);
        let mut other = Histogram::default();
        other.record(10_000);
        histogram.merge(&other);
        assert_eq!(histogram.total(), 101);
        assert_eq!(histogram.max_us(), 10_000);
        assert_eq!(histogram.percentile_us(1.0), 10_000);
        assert_eq!(Histogram::default().percentile_us(0.5), 0);
    }
}

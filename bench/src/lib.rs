//! What the benchmark drivers share.

use std::time::Duration;

/// The `p` quantile (0..=1) of sorted latencies, in milliseconds; NaN when
/// there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}
pub mod tcp;

//! Per-object exponential backoff after failed reconciles: the first
//! retry after [`Policy::first`], doubling up to [`Policy::max`]; an object
//! that settles ([`crate::Next::Done`]) starts from the beginning again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

impl Policy {
    /// The delay before retry number `failures` (from 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// Consecutive failures per object.
#[derive(Default)]
pub struct Failures {
    counts: Mutex<HashMap<String, u32>>,
}

impl Failures {
    /// Records a failure of `key`; returns how long to wait before retrying.
    pub fn failed(&self, key: &str, policy: &Policy) -> Duration {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        policy.delay(*count)
    }

    pub fn reset(&self, key: &str) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    #[cfg(test)]
    fn count(&self, key: &str) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_object_up_to_the_cap_and_resets() {
        let policy = Policy::default();
        let failures = Failures::default();
        let delays: Vec<u64> = (0..8)
            .map(|_| failures.failed("a", &policy).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(failures.failed("b", &policy).as_secs(), 5, "per object");
        failures.reset("a");
        assert_eq!(failures.count("a"), 0);
        assert_eq!(failures.failed("a", &policy).as_secs(), 5);
    }
}

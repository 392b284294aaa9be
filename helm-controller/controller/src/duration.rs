//! `spec.timeout` is a Go duration ("300s", "5m", "1h30m", "1.5h").

use std::time::Duration;

pub use k3r_reconciler::duration::DurationError;
use k3r_reconciler::duration::parse_go_duration;

/// Helm's default --timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// `spec.timeout`, or Helm's default when unset.
pub fn timeout(spec: Option<&str>) -> Result<Duration, DurationError> {
    match spec.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => parse_go_duration(text),
        None => Ok(DEFAULT_TIMEOUT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_default_to_helms() {
        assert_eq!(timeout(None), Ok(DEFAULT_TIMEOUT));
        assert_eq!(timeout(Some(" ")), Ok(DEFAULT_TIMEOUT));
        assert_eq!(timeout(Some("10s")), Ok(Duration::from_secs(10)));
    }
}

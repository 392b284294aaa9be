//! Polling until something holds, with a deadline: what the server and
//! agents do while kube-apiserver, the node's pod CIDR or Ready come.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Error;

const POLL: Duration = Duration::from_millis(250);

/// Calls `check` every 250 ms until it returns Some or `timeout` passes;
/// the error names `what` and points at the component logs.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "timed out after {timeout:?} waiting for {what} (see the logs dir)"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_what_was_found_or_names_what_timed_out() {
        let mut calls = 0;
        let found = until("three calls", Duration::from_secs(5), || {
            calls += 1;
            let done = calls == 3;
            async move { done.then_some(calls) }
        })
        .await
        .expect("found");
        assert_eq!(found, 3);
        let err = until("nothing", Duration::from_millis(300), || async {
            None::<()>
        })
        .await
        .expect_err("times out");
        assert!(err.to_string().contains("waiting for nothing"), "{err}");
    }
}

//! Waiting for kube-proxy's first full sync before the node's pods may
//! start (k3r writes the CNI config, without which no pod starts, only
//! after it). A pod that connects to a Service before kube-proxy has
//! written its rules leaves a conntrack entry without the Service's DNAT,
//! and the SYNs it retransmits keep matching that entry — the connection
//! hangs for the two minutes an unanswered entry lives. That is what a node
//! whose stop removed kube-proxy's rules would otherwise meet at every
//! start.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// kube-proxy's metrics (k3r passes `--metrics-bind-address` so).
const METRICS: &str = "127.0.0.1:10249";
/// Set only at the end of a successful sync of the proxy rules.
const SYNCED: &str = "kubeproxy_sync_proxy_rules_last_timestamp_seconds";

/// Waits up to `timeout` for kube-proxy to have synced its rules once;
/// whether it did.
pub async fn wait_synced(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(text) = metrics().await
            && synced_in(&text)
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn metrics() -> Option<String> {
    let fetch = async {
        let mut stream = TcpStream::connect(METRICS).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.ok()?;
        Some(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}

/// Whether a metrics page reports a successful sync (a positive timestamp
/// for some IP family).
fn synced_in(text: &str) -> bool {
    text.lines()
        .filter(|l| l.starts_with(SYNCED))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .any(|v| v > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_is_a_positive_timestamp_of_the_sync_metric() {
        let before = "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds ...\n\
                      # TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge\n\
                      kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family=\"IPv4\"} 1.7e+09\n";
        assert!(!synced_in(before));
        let after = format!(
            "{before}kubeproxy_sync_proxy_rules_last_timestamp_seconds{{ip_family=\"IPv4\"}} 1.7646e+09\n"
        );
        assert!(synced_in(&after));
    }
}

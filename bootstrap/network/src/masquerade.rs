//! What flannel's iptables manager keeps: pod traffic leaving the cluster
//! CIDR is masqueraded, traffic inside it is not, and the FORWARD chain
//! accepts the cluster's traffic whatever its policy. Traffic from outside
//! the cluster to this node's own pods keeps its source (a NodePort or
//! LoadBalancer Service with `externalTrafficPolicy: Local` promises the
//! client's address); only traffic from outside bound for another node's
//! pods is masqueraded, so their replies come back this way. The rules live in
//! k3r's own chains (K3R-POSTRTG, K3R-FWD), rewritten whole each time, so
//! `k3r killall` can remove them by name.

use ipnet::Ipv4Net;

use crate::Error;

pub const NAT_CHAIN: &str = "K3R-POSTRTG";
pub const FORWARD_CHAIN: &str = "K3R-FWD";

/// The iptables-restore input for the cluster CIDR and this node's pod CIDR.
pub fn restore_input(cluster: Ipv4Net, node_pods: Ipv4Net) -> String {
    format!(
        "*nat
:{NAT_CHAIN} - [0:0]
-A {NAT_CHAIN} -m mark --mark 0x4000/0x4000 -m comment --comment \"kube-proxy masquerades what it marked\" -j RETURN
-A {NAT_CHAIN} -s {cluster} -d {cluster} -m comment --comment \"pod to pod: keep the source\" -j RETURN
-A {NAT_CHAIN} -s {cluster} ! -d 224.0.0.0/4 -m comment --comment \"pods leaving the cluster\" -j MASQUERADE --random-fully
-A {NAT_CHAIN} ! -s {cluster} -d {node_pods} -m comment --comment \"into this node's pods: keep the client's address\" -j RETURN
-A {NAT_CHAIN} ! -s {cluster} -d {cluster} -m comment --comment \"into pods from outside the cluster\" -j MASQUERADE --random-fully
COMMIT
*filter
:{FORWARD_CHAIN} - [0:0]
-A {FORWARD_CHAIN} -s {cluster} -m comment --comment \"from pods\" -j ACCEPT
-A {FORWARD_CHAIN} -d {cluster} -m comment --comment \"to pods\" -j ACCEPT
COMMIT
"
    )
}

/// `program` found on `search_path` (k3r's own PATH where that is empty).
fn command(program: &str, search_path: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    if !search_path.is_empty() {
        command.env("PATH", search_path);
    }
    command
}

async fn iptables(search_path: &str, args: &[&str]) -> Result<bool, Error> {
    let output = command("iptables", search_path)
        .arg("-w")
        .args(args)
        .output()
        .await
        .map_err(|e| Error::Iptables(format!("iptables: {e}")))?;
    Ok(output.status.success())
}

/// Writes the chains and makes POSTROUTING and FORWARD jump to them.
pub async fn ensure(cluster: Ipv4Net, node_pods: Ipv4Net, search_path: &str) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let mut child = command("iptables-restore", search_path)
        .args(["-w", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Iptables(format!("iptables-restore: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(restore_input(cluster, node_pods).as_bytes())
            .await
            .map_err(|e| Error::Iptables(format!("iptables-restore: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Iptables(format!("iptables-restore: {e}")))?;
    if !output.status.success() {
        return Err(Error::Iptables(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    for (table, chain, target) in [
        ("nat", "POSTROUTING", NAT_CHAIN),
        ("filter", "FORWARD", FORWARD_CHAIN),
    ] {
        if !iptables(search_path, &["-t", table, "-C", chain, "-j", target]).await?
            && !iptables(search_path, &["-t", table, "-I", chain, "1", "-j", target]).await?
        {
            return Err(Error::Iptables(format!(
                "cannot add the jump from {table}/{chain} to {target}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_masqueraded_only_when_leaving_the_cluster() {
        let input = restore_input(
            "10.42.0.0/16".parse().expect("cidr"),
            "10.42.3.0/24".parse().expect("cidr"),
        );
        assert!(input.contains(
            "-A K3R-POSTRTG -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment \"pod to pod: keep the source\" -j RETURN"
        ));
        assert!(input.contains("-s 10.42.0.0/16 ! -d 224.0.0.0/4"));
        // From outside: this node's pods see the client, others' do not.
        let keep = input
            .find("! -s 10.42.0.0/16 -d 10.42.3.0/24")
            .expect("external traffic to local pods returns");
        let masquerade = input
            .find("! -s 10.42.0.0/16 -d 10.42.0.0/16")
            .expect("external traffic to other nodes' pods is masqueraded");
        assert!(keep < masquerade, "{input}");
        assert!(input.contains("-A K3R-FWD -d 10.42.0.0/16"));
        assert_eq!(input.matches("COMMIT").count(), 2);
    }
}

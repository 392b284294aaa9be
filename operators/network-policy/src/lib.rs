//! NetworkPolicy enforcement, run on every node (the per-node mode of the
//! operators host, in the host's network namespace with CAP_NET_ADMIN):
//!
//! - [`compile`]: policies, pods and namespaces → the node's nftables
//!   ruleset (one `inet k3r` table: a chain per isolated pod, a set per
//!   peer selector);
//! - [`controller`]: recompiles whenever a policy, pod or namespace
//!   changes and replaces the table atomically when the result differs;
//! - [`remove`]: with `--disable-network-policy`, removes the table.
//!
//! Why nftables rather than iptables + ipset (kube-router's way, which
//! k3s embeds): one table replaced in one kernel transaction means a node
//! never runs half a policy; sets are part of the same transaction (ipset
//! is a separate tool whose updates race the rules); and k3r speaks
//! netlink itself (`k3r-nftables`), so the image needs no `iptables`,
//! `ipset` or `nft` binary.

mod cidr;
pub mod compile;
pub mod controller;

use std::time::Duration;

use k3r_nftables::Ruleset;

pub use compile::TABLE;
pub use controller::NAME;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("programming nftables: {0}")]
    Nftables(#[from] k3r_nftables::Error),
    #[error("the nftables worker stopped: {0}")]
    Worker(String),
}

/// Where rulesets go: the kernel, or a recorder in tests.
pub trait Firewall: Send + Sync + 'static {
    fn replace(&self, ruleset: &Ruleset) -> Result<(), Error>;
    fn exists(&self) -> Result<bool, Error>;
    fn remove(&self) -> Result<(), Error>;
}

/// The kernel of the network namespace this process runs in.
pub struct Kernel;

impl Firewall for Kernel {
    fn replace(&self, ruleset: &Ruleset) -> Result<(), Error> {
        k3r_nftables::replace(ruleset)?;
        Ok(())
    }

    fn exists(&self) -> Result<bool, Error> {
        Ok(k3r_nftables::table_exists(TABLE)?)
    }

    fn remove(&self) -> Result<(), Error> {
        Ok(k3r_nftables::delete_table(TABLE)?)
    }
}

/// Name of the removal task in the operators host.
pub const REMOVAL_NAME: &str = "network-policy-removal";

/// `--disable-network-policy`: removes the table this controller made
/// (retrying until the kernel agrees), then idles.
pub async fn remove(firewall: impl Firewall) {
    let firewall = std::sync::Arc::new(firewall);
    let mut delay = Duration::from_secs(1);
    loop {
        let worker = std::sync::Arc::clone(&firewall);
        match tokio::task::spawn_blocking(move || worker.remove()).await {
            Ok(Ok(())) => {
                tracing::info!("network policy is disabled; its nftables table is removed");
                break;
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot remove the network policy table"),
            Err(err) => tracing::warn!(error = %err, "cannot remove the network policy table"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
    std::future::pending::<()>().await;
}

use anyhow::Context;
use clap::Args;
use k3r_servicelb_forward::{Config, listen_addresses, run as forward};

/// Configured by the environment klipper-lb reads (SRC_PORT, SRC_RANGES,
/// DEST_PROTO, DEST_PORT, DEST_IPS), which the servicelb controller sets.
#[derive(Args, Debug)]
pub struct SvclbArgs {}

pub fn run(_: SvclbArgs) -> anyhow::Result<()> {
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        forward(
            config.clone(),
            &listen_addresses(config.src_port),
            super::wait_for_signal(),
        )
        .await
    })?;
    Ok(())
}

//! Build step: appends the runtime payload to a k3r executable.
//!   k3r-pack --exe target/release/k3r --tree STAGING --out target/release/k3r [--level N]

use std::path::PathBuf;

use anyhow::{Context, bail};

const USAGE: &str = "usage: k3r-pack --exe K3R --tree DIR --out FILE [--level N]";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut exe, mut tree, mut out, mut level) = (None, None, None, 9);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--exe" => exe = Some(PathBuf::from(value)),
            "--tree" => tree = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--level" => level = value.parse().context("--level")?,
            other => bail!("unknown flag {other}"),
        }
    }
    let (Some(exe), Some(tree), Some(out)) = (exe, tree, out) else {
        bail!("{USAGE}");
    };
    let started = std::time::Instant::now();
    let size = k3r_payload::pack(&exe, &tree, &out, level)?;
    eprintln!(
        "packed {} into {} ({} MB payload, zstd level {level}, {:.1} s)",
        tree.display(),
        out.display(),
        size / (1 << 20),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

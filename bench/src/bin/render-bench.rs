//! Renders a chart directory like `helm install --dry-run` N times and
//! prints the mean and median milliseconds per render (load included).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use k3r_helm_render::chart::load_dir;
use k3r_helm_render::engine::{Capabilities, ReleaseInfo};
use k3r_helm_render::manifest::template;
use k3r_helm_render::values::parse_yaml;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    chart: PathBuf,
    #[arg(long, default_value_t = 200)]
    iterations: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let capabilities = Capabilities {
        kube_version: "v1.36.0".into(),
        api_versions: vec!["v1".into(), "apps/v1".into()],
        helm_version: "v4.2".into(),
        lookup: None,
    };
    let release = ReleaseInfo {
        name: "bench".into(),
        namespace: "default".into(),
        revision: 1,
        is_install: true,
        is_upgrade: false,
    };
    let user = parse_yaml("").context("empty values")?;
    let mut times = Vec::with_capacity(args.iterations);
    let mut bytes = 0;
    for _ in 0..args.iterations {
        let started = Instant::now();
        let chart = load_dir(&args.chart).context("loading the chart")?;
        let rendered = template(&chart, &user, &release, &capabilities).context("rendering")?;
        bytes = rendered.manifest().len();
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1000.0 / times.len() as f64;
    let median = times[times.len() / 2].as_secs_f64() * 1000.0;
    println!("{mean:.3} {median:.3} {bytes}");
    Ok(())
}

//! Renders a chart directory like `helm install --dry-run` N times and
//! prints the mean and median milliseconds per render (load included) and
//! the manifest's size; optionally with user values, Helm's default API
//! versions (one per line) and the manifest written to a file.

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
    /// User values (YAML), as `helm install -f`.
    #[arg(long)]
    values: Option<PathBuf>,
    /// `.Capabilities.APIVersions`, one per line (default: v1, apps/v1).
    #[arg(long)]
    api_versions: Option<PathBuf>,
    /// Where to write the manifest of the last render.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let api_versions = match &args.api_versions {
        Some(path) => std::fs::read_to_string(path)
            .context("reading the API versions")?
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => vec!["v1".into(), "apps/v1".into()],
    };
    let capabilities = Capabilities {
        kube_version: "v1.36.0".into(),
        api_versions,
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
    let values_text = match &args.values {
        Some(path) => std::fs::read_to_string(path).context("reading the values")?,
        None => String::new(),
    };
    let user = parse_yaml(&values_text).map_err(anyhow::Error::msg)?;
    let mut times = Vec::with_capacity(args.iterations);
    let mut manifest = String::new();
    for _ in 0..args.iterations {
        let started = Instant::now();
        let chart = load_dir(&args.chart).context("loading the chart")?;
        let rendered = template(&chart, &user, &release, &capabilities).context("rendering")?;
        manifest = rendered.manifest();
        times.push(started.elapsed());
    }
    let bytes = manifest.len();
    if let Some(out) = &args.out {
        std::fs::write(out, &manifest).context("writing the manifest")?;
    }
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1000.0 / times.len() as f64;
    let median = times[times.len() / 2].as_secs_f64() * 1000.0;
    println!("{mean:.3} {median:.3} {bytes}");
    Ok(())
}

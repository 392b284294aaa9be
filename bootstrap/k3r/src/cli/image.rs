use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use k3r_images::{File, ImageSpec, Layer, write_image};

#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Pack files into an OCI image tarball for `ctr images import` or agent/images
    Pack(PackArgs),
    /// Build k3r's upgrade image (k3s-upgrade's counterpart): `k3r
    /// upgrade-node` with the k3r and k3r-kube to install, for Plans
    Upgrade(UpgradeArgs),
}

#[derive(Args, Debug)]
struct UpgradeArgs {
    /// Output tarball
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Image reference (default: docker.io/k3r/k3r-upgrade:<version>)
    #[arg(long)]
    name: Option<String>,
    /// The k3r to install (default: this one)
    #[arg(long)]
    payload_k3r: Option<PathBuf>,
    /// The k3r-kube to install (default: the one this k3r runs)
    #[arg(long)]
    payload_kube: Option<PathBuf>,
    /// The payload's version (default: what `<payload k3r> --version` says)
    #[arg(long)]
    version: Option<String>,
    /// Stamp the payload k3r with this version (a release stamp without
    /// rebuilding: the same code, reporting this version)
    #[arg(long, conflicts_with = "version")]
    stamp_version: Option<String>,
}

#[derive(Args, Debug)]
struct PackArgs {
    /// Image reference, e.g. docker.io/library/busybox:k3r
    #[arg(long)]
    name: String,
    /// HOST_PATH:IMAGE_PATH to add (repeatable)
    #[arg(long = "add")]
    files: Vec<String>,
    /// IMAGE_PATH=TARGET symlink to add (repeatable)
    #[arg(long = "symlink")]
    symlinks: Vec<String>,
    /// Entrypoint, one argument per use
    #[arg(long)]
    entrypoint: Vec<String>,
    /// Default arguments, one per use
    #[arg(long)]
    cmd: Vec<String>,
    /// User the image's processes run as (USER; e.g. 1234 or 1234:1234)
    #[arg(long)]
    user: Option<String>,
    /// Output tarball
    #[arg(long, short = 'o')]
    output: PathBuf,
}

pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let pack = match args.command {
        ImageCommand::Pack(pack) => pack,
        ImageCommand::Upgrade(upgrade) => return super::upgrade_image::build(upgrade.into()),
    };
    let mut files = Vec::new();
    for spec in &pack.files {
        let Some((host, inside)) = spec.split_once(':') else {
            bail!("--add {spec:?}: expected HOST_PATH:IMAGE_PATH")
        };
        let contents = std::fs::read(host).with_context(|| format!("--add {host}"))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(host)?.permissions())
            & 0o7777;
        files.push(File::new(inside, contents, mode));
    }
    for spec in &pack.symlinks {
        let Some((inside, target)) = spec.split_once('=') else {
            bail!("--symlink {spec:?}: expected IMAGE_PATH=TARGET")
        };
        files.push(File::symlink(inside, target));
    }
    let spec = ImageSpec {
        reference: pack.name,
        layers: vec![Layer { files }],
        entrypoint: pack.entrypoint,
        cmd: pack.cmd,
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        user: pack.user.unwrap_or_default(),
        ..ImageSpec::default()
    };
    let digest = write_image(&spec, &pack.output)?;
    println!("{} {digest}", pack.output.display());
    Ok(())
}

impl From<UpgradeArgs> for super::upgrade_image::Options {
    fn from(args: UpgradeArgs) -> Self {
        Self {
            output: args.output,
            name: args.name,
            payload_k3r: args.payload_k3r,
            payload_kube: args.payload_kube,
            version: args.version,
            stamp_version: args.stamp_version,
        }
    }
}

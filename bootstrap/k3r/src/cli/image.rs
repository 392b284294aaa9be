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
    /// Output tarball
    #[arg(long, short = 'o')]
    output: PathBuf,
}

pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let ImageCommand::Pack(pack) = args.command;
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
        ..ImageSpec::default()
    };
    let digest = write_image(&spec, &pack.output)?;
    println!("{} {digest}", pack.output.display());
    Ok(())
}

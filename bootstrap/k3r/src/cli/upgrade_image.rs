//! k3r's upgrade image: the installer (`k3r upgrade-node`, this k3r
//! with its shared libraries) and the payload it installs — `/payload/k3r`
//! (stripped of debug symbols, its runtime payload kept) and
//! `/payload/version`; `/payload/k3r-kube` too for a k3r that carries no
//! runtime (`--payload-kube`). It runs as root (it replaces host binaries from
//! /host). The installer and the payload are the same k3r unless told
//! otherwise (a test's broken payload, say); `--stamp-version` stamps the
//! payload k3r with a version without rebuilding it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use k3r_images::{File, write_image};

pub struct Options {
    pub output: PathBuf,
    pub name: Option<String>,
    pub payload_k3r: Option<PathBuf>,
    pub payload_kube: Option<PathBuf>,
    pub version: Option<String>,
    pub stamp_version: Option<String>,
}

/// `k3r --version` of `binary`: its last word.
fn version_of(binary: &Path) -> anyhow::Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().last() {
        Some(v) if out.status.success() => Ok(v.to_string()),
        _ => bail!(
            "{} --version gave no version: pass --version",
            binary.display()
        ),
    }
}

/// `binary` without debug symbols (a copy in `work`), or as is when
/// `strip` is not there.
fn stripped(binary: &Path, work: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let out = work.join(name);
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    let read = if ok { &out } else { binary };
    let bytes = std::fs::read(read).with_context(|| format!("reading {}", read.display()))?;
    let _ = std::fs::remove_file(&out);
    Ok(bytes)
}

/// `binary` stripped of debug symbols with its runtime payload (which
/// `strip` would drop) appended again, and stamped with `stamp`.
fn installable(binary: &Path, work: &Path, stamp: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let whole = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let (program, payload) = k3r_payload::split(&whole);
    let bare = work.join("k3r.bare");
    std::fs::write(&bare, program).context("writing a scratch copy")?;
    let mut k3r = stripped(&bare, work, "k3r")?;
    if let Some(stamp) = stamp {
        k3r_version::stamp(&mut k3r, stamp)
            .with_context(|| format!("stamping {}", binary.display()))?;
    }
    k3r.extend_from_slice(payload.unwrap_or_default());
    Ok(k3r)
}

pub fn build(options: Options) -> anyhow::Result<()> {
    let this = std::env::current_exe().context("locating this k3r")?;
    let payload_k3r = options.payload_k3r.clone().unwrap_or_else(|| this.clone());
    let carries_runtime = matches!(
        k3r_node::programs::Source::of(&payload_k3r)?,
        k3r_node::programs::Source::Payload(_)
    );
    if !carries_runtime && options.payload_kube.is_none() {
        bail!(
            "{} carries no runtime payload: pass --payload-kube (or build k3r with scripts/build)",
            payload_k3r.display()
        );
    }
    let version = match (&options.stamp_version, &options.version) {
        (Some(v), _) | (None, Some(v)) => v.clone(),
        (None, None) if payload_k3r == this => k3r_version::tag(),
        (None, None) => version_of(&payload_k3r)?,
    };
    let version = k3r_version::Release::parse(&version)
        .with_context(|| format!("payload version {version:?}"))?
        .to_string();
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("docker.io/k3r/k3r-upgrade:{version}"));
    let work = tempfile::tempdir().context("scratch dir")?;
    let mut spec = k3r_images::own_image(&this, &name, work.path())?;
    let files = &mut spec.layers[0].files;
    let k3r = installable(&payload_k3r, work.path(), options.stamp_version.as_deref())?;
    files.push(File::new("payload/k3r", k3r, 0o755));
    if let Some(kube) = &options.payload_kube {
        files.push(File::new(
            "payload/k3r-kube",
            stripped(kube, work.path(), "k3r-kube")?,
            0o755,
        ));
    }
    files.push(File::new(
        "payload/version",
        format!("{version}\n").into_bytes(),
        0o644,
    ));
    spec.cmd = vec!["upgrade-node".into()];
    spec.user = "0:0".into();
    let digest = write_image(&spec, &options.output)?;
    println!("{} {name} {digest}", options.output.display());
    Ok(())
}

//! The operators image: k3r's own binary, stripped, with the shared
//! libraries it links (as `ldd` lists them), so the in-cluster operators
//! run exactly the code of the node that imported the image.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oci::File;
use crate::{Error, ImageSpec, Layer, Result};

/// Where the binary sits inside the image.
pub const BINARY_PATH: &str = "usr/local/bin/k3r";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shared libraries of `exe` (including the dynamic loader), by the path
/// the loader looks them up at.
pub fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd").arg(exe).output().map_err(io(exe))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim().split(' ').next().unwrap_or_default(),
            None => line.split(' ').next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        } else if line.contains("not found") {
            return Err(Error::Invalid(format!("{}: {line}", exe.display())));
        }
    }
    Ok(libs)
}

/// The image spec for `exe`, stripped into `work` first when `strip` exists.
pub fn own_image(exe: &Path, reference: &str, work: &Path) -> Result<ImageSpec> {
    std::fs::create_dir_all(work).map_err(io(work))?;
    let stripped = work.join("k3r.stripped");
    let stripped_ok = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(exe)
        .status()
        .is_ok_and(|s| s.success());
    let binary = if stripped_ok {
        stripped.clone()
    } else {
        exe.to_path_buf()
    };
    let mut files = vec![File::new(
        BINARY_PATH,
        std::fs::read(&binary).map_err(io(&binary))?,
        0o755,
    )];
    let _ = std::fs::remove_file(&stripped);
    for lib in shared_libraries(exe)? {
        let contents = std::fs::read(&lib).map_err(io(&lib))?;
        files.push(File::new(&lib.to_string_lossy(), contents, 0o755));
    }
    Ok(ImageSpec {
        reference: reference.to_string(),
        layers: vec![Layer { files }],
        entrypoint: vec![format!("/{BINARY_PATH}")],
        user: "65534:65534".into(),
        ..ImageSpec::default()
    })
}

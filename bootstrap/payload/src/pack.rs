//! Packing: a tree of files compressed and appended to an executable.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, MAGIC, split};

/// Writes `out`: `exe` (without any payload it already had) followed by
/// `tree` as a zstd tar at `level` and the trailer. Returns the payload's
/// size. Entries carry no times or owners, so the same files give the same
/// payload hash and a rebuilt k3r reuses an extracted dir.
pub fn pack(exe: &Path, tree: &Path, out: &Path, level: i32) -> Result<u64, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Error::Io(path, e)
    };
    let bytes = std::fs::read(exe).map_err(io(exe))?;
    let (program, _) = split(&bytes);
    let mut encoder = zstd::Encoder::new(Vec::new(), level).map_err(io(tree))?;
    // Both cores: the payload is a few hundred MB.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    encoder.multithread(threads).map_err(io(tree))?;
    let mut builder = tar::Builder::new(encoder);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", tree).map_err(io(tree))?;
    let encoder = builder.into_inner().map_err(io(tree))?;
    let payload = encoder.finish().map_err(io(tree))?;
    let sha256 = Sha256::digest(&payload);
    let tmp = out.with_extension("packing");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(program)?;
        file.write_all(&payload)?;
        file.write_all(MAGIC)?;
        file.write_all(&(payload.len() as u64).to_le_bytes())?;
        file.write_all(&sha256)?;
        file.sync_all()?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, out)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(out.to_path_buf(), e)
    })?;
    Ok(payload.len() as u64)
}

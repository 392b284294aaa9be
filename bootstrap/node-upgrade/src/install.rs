//! The binary swap: the new file is written beside the old one and
//! renamed over it (atomic; a running process keeps its old inode), after
//! the old one is hard-linked to `<name>.prev`. Restoring renames
//! `.prev` back.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}", path = .0.display(), source = .1)]
pub struct InstallError(pub PathBuf, #[source] pub std::io::Error);

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |e| InstallError(path.to_path_buf(), e)
}

/// `<dest>.prev`.
pub fn previous(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".prev");
    PathBuf::from(name)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Swapped {
    /// `dest` already had the payload's contents.
    Unchanged,
    /// `dest` now has them; the old file is `<dest>.prev`.
    Replaced,
}

/// Puts `payload`'s contents at `dest`, keeping the old file as
/// `<dest>.prev`.
pub fn replace(dest: &Path, payload: &Path) -> Result<Swapped, InstallError> {
    let new = std::fs::read(payload).map_err(err(payload))?;
    if std::fs::read(dest).map_err(err(dest))? == new {
        return Ok(Swapped::Unchanged);
    }
    let mut staged = dest.as_os_str().to_owned();
    staged.push(".k3r-new");
    let staged = PathBuf::from(staged);
    {
        let mut file = std::fs::File::create(&staged).map_err(err(&staged))?;
        file.write_all(&new).map_err(err(&staged))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(err(&staged))?;
        file.sync_all().map_err(err(&staged))?;
    }
    let prev = previous(dest);
    match std::fs::remove_file(&prev) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(InstallError(prev, e)),
    }
    std::fs::hard_link(dest, &prev).map_err(err(&prev))?;
    std::fs::rename(&staged, dest).map_err(err(dest))?;
    Ok(Swapped::Replaced)
}

/// Puts `<dest>.prev` back at `dest`; false when there is none.
pub fn restore(dest: &Path) -> Result<bool, InstallError> {
    let prev = previous(dest);
    if !prev.exists() {
        return Ok(false);
    }
    std::fs::rename(&prev, dest).map_err(err(dest))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_previous_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("k3r");
        let payload = dir.path().join("payload");
        std::fs::write(&dest, b"old").expect("old");
        std::fs::write(&payload, b"new").expect("new");
        // A running process's view: the old inode stays readable.
        let running = std::fs::File::open(&dest).expect("open");
        assert_eq!(replace(&dest, &payload).expect("swap"), Swapped::Replaced);
        assert_eq!(std::fs::read(&dest).expect("dest"), b"new");
        assert_eq!(std::fs::read(previous(&dest)).expect("prev"), b"old");
        let mode = std::fs::metadata(&dest).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        drop(running);
        assert_eq!(replace(&dest, &payload).expect("again"), Swapped::Unchanged);
        assert!(restore(&dest).expect("restore"));
        assert_eq!(std::fs::read(&dest).expect("dest"), b"old");
        assert!(!restore(&dest).expect("nothing left to restore"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".k3r-new")), "{names:?}");
    }

    #[test]
    fn a_missing_destination_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let payload = dir.path().join("payload");
        std::fs::write(&payload, b"new").expect("new");
        let err = replace(&dir.path().join("absent"), &payload).expect_err("absent");
        assert!(err.to_string().contains("absent"), "{err}");
    }
}

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One manifest file and what the directory says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: PathBuf,
    /// The Addon name: the basename up to its first '.'.
    pub addon: String,
    /// A `<file>.skip` exists: leave the Addon as it is.
    pub skipped: bool,
    /// Named by `--disable` (basename or a parent directory): delete it.
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    #[error("{path}: {reason}")]
    InvalidName { path: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

fn is_manifest(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && (lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json"))
}

fn valid_addon_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Lists the manifests under `dir` (recursively), sorted by path. Files
/// with names that cannot be Addon names are reported, not skipped silently.
pub fn scan(
    dir: &Path,
    disabled: &[String],
) -> Result<(Vec<ManifestFile>, Vec<ScanError>), ScanError> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    walk(dir, dir, disabled, &mut files, &mut problems)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, problems))
}

fn walk(
    root: &Path,
    dir: &Path,
    disabled: &[String],
    files: &mut Vec<ManifestFile>,
    problems: &mut Vec<ScanError>,
) -> Result<(), ScanError> {
    let io = |e: std::io::Error| ScanError::Io {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        if path.is_dir() {
            if !name.starts_with('.') {
                walk(root, &path, disabled, files, problems)?;
            }
            continue;
        }
        if !is_manifest(&name) {
            continue;
        }
        let addon = name.split('.').next().unwrap_or_default().to_string();
        if !valid_addon_name(&addon) {
            problems.push(ScanError::InvalidName {
                path: path.display().to_string(),
                reason: format!(
                    "{addon:?} is not a valid Addon name (lowercase letters, digits and '-')"
                ),
            });
            continue;
        }
        let skipped = PathBuf::from(format!("{}.skip", path.display())).exists();
        let is_disabled = is_disabled(root, &path, &addon, disabled);
        files.push(ManifestFile {
            path,
            addon,
            skipped,
            disabled: is_disabled,
        });
    }
    Ok(())
}

/// Whether `--disable` names this manifest: by its Addon name or by a
/// directory between `root` and the file (k3s matches both).
pub fn is_disabled(root: &Path, path: &Path, addon: &str, disabled: &[String]) -> bool {
    let parents: Vec<String> = path
        .strip_prefix(root)
        .ok()
        .and_then(Path::parent)
        .map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    disabled.iter().any(|d| d == addon || parents.contains(d))
}

/// SHA-256 of a file's bytes, hex (the Addon's `spec.checksum`).
pub fn checksum(contents: &[u8]) -> String {
    Sha256::digest(contents)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, rel: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "x: 1\n").expect("write");
    }

    #[test]
    fn k3s_rules_for_which_files_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "coredns.yaml",
            "rbac.YML",
            "extra.json",
            "notes.txt",
            ".hidden.yaml",
            "traefik.yaml",
            "traefik.yaml.skip",
            "metrics-server/aggregated.yaml",
            "Bad_Name.yaml",
            "a.b.yaml",
        ] {
            touch(dir.path(), f);
        }
        let (files, problems) = scan(dir.path(), &["metrics-server".to_string()]).expect("scan");
        let summary: Vec<(String, bool, bool)> = files
            .iter()
            .map(|f| (f.addon.clone(), f.skipped, f.disabled))
            .collect();
        assert_eq!(
            summary,
            [
                ("a".into(), false, false),
                ("coredns".into(), false, false),
                ("extra".into(), false, false),
                ("aggregated".into(), false, true),
                ("rbac".into(), false, false),
                ("traefik".into(), true, false),
            ]
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("Bad_Name.yaml"));
        assert_eq!(
            checksum(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

#[cfg(test)]
mod disabled_tests {
    use super::*;

    #[test]
    fn disabled_by_name_or_by_directory_below_the_root() {
        let root = Path::new("/var/lib/k3r/server/manifests");
        let off = ["traefik".to_string()];
        assert!(is_disabled(
            root,
            &root.join("traefik.yaml"),
            "traefik",
            &off
        ));
        assert!(is_disabled(
            root,
            &root.join("traefik/crd.yaml"),
            "crd",
            &off
        ));
        assert!(!is_disabled(
            root,
            &root.join("other/crd.yaml"),
            "crd",
            &off
        ));
        // Directories above the root do not count.
        let nested = Path::new("/srv/traefik/manifests");
        assert!(!is_disabled(nested, &nested.join("crd.yaml"), "crd", &off));
    }
}

use std::io::Write;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A file inside an image layer.
#[derive(Clone, Debug)]
pub struct File {
    /// Path inside the image, without the leading slash.
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
    /// Symlink target instead of contents.
    pub link: Option<String>,
}

impl File {
    pub fn new(path: &str, contents: Vec<u8>, mode: u32) -> Self {
        Self {
            path: path.trim_start_matches('/').to_string(),
            contents,
            mode,
            link: None,
        }
    }

    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.trim_start_matches('/').to_string(),
            contents: Vec::new(),
            mode: 0o777,
            link: Some(target.into()),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub files: Vec<File>,
}

#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    /// Full reference, e.g. `docker.io/library/busybox:k3r`.
    pub reference: String,
    pub layers: Vec<Layer>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tar_header(path: &str, size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    let _ = header.set_path(path);
    header.set_cksum();
    header
}

fn layer_tar(layer: &Layer) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::Invalid(format!("building layer: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    // Parent directories first, each once, in order.
    let mut dirs: Vec<String> = Vec::new();
    for file in &layer.files {
        let mut parent = String::new();
        let parts: Vec<&str> = file.path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            parent.push_str(part);
            parent.push('/');
            if !dirs.contains(&parent) {
                dirs.push(parent.clone());
            }
        }
    }
    for dir in &dirs {
        let mut header = tar_header(dir, 0, 0o755, tar::EntryType::Directory);
        builder
            .append_data(&mut header, dir, std::io::empty())
            .map_err(io)?;
    }
    for file in &layer.files {
        if file.path.is_empty() {
            return Err(Error::Invalid("a file in an image needs a path".into()));
        }
        match &file.link {
            Some(target) => {
                let mut header = tar_header(&file.path, 0, file.mode, tar::EntryType::Symlink);
                builder
                    .append_link(&mut header, &file.path, target)
                    .map_err(io)?;
            }
            None => {
                let mut header = tar_header(
                    &file.path,
                    file.contents.len() as u64,
                    file.mode,
                    tar::EntryType::Regular,
                );
                builder
                    .append_data(&mut header, &file.path, file.contents.as_slice())
                    .map_err(io)?;
            }
        }
    }
    builder.into_inner().map_err(io)
}

/// Writes `spec` as an OCI image layout tarball at `path`. Returns the
/// manifest digest.
pub fn write_image(spec: &ImageSpec, path: &Path) -> Result<String> {
    if spec.reference.is_empty() || !spec.reference.contains(':') {
        return Err(Error::Invalid(format!(
            "image reference {:?} needs a name and a tag",
            spec.reference
        )));
    }
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &spec.layers {
        let tar = layer_tar(layer)?;
        let digest = format!("sha256:{}", sha256_hex(&tar));
        layer_descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest,
            "size": tar.len(),
        }));
        diff_ids.push(digest);
        blobs.push((sha256_hex(&tar), tar));
    }
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let image_config = &mut config["config"];
    if !spec.entrypoint.is_empty() {
        image_config["Entrypoint"] = json!(spec.entrypoint);
    }
    if !spec.cmd.is_empty() {
        image_config["Cmd"] = json!(spec.cmd);
    }
    if !spec.env.is_empty() {
        image_config["Env"] = json!(spec.env);
    }
    if !spec.user.is_empty() {
        image_config["User"] = json!(spec.user);
    }
    if !spec.working_dir.is_empty() {
        image_config["WorkingDir"] = json!(spec.working_dir);
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| Error::Invalid(e.to_string()))?;
    let config_digest = sha256_hex(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_bytes.len(),
        },
        "layers": layer_descriptors,
    });
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    let manifest_digest = sha256_hex(&manifest_bytes);
    let tag = spec.reference.rsplit(':').next().unwrap_or_default();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_bytes.len(),
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": {
                "io.containerd.image.name": spec.reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    blobs.push((config_digest, config_bytes));
    blobs.push((manifest_digest.clone(), manifest_bytes));
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar_header(name, data.len() as u64, 0o644, tar::EntryType::Regular);
        out.append_data(&mut header, name, data)
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
    add(
        "index.json",
        &serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?,
    )
    .map_err(io)?;
    for (digest, data) in &blobs {
        add(&format!("blobs/sha256/{digest}"), data).map_err(io)?;
    }
    let bytes = out.into_inner().map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(format!("sha256:{manifest_digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_and_well_formed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = crate::pause_image();
        let a = write_image(&spec, &dir.path().join("a.tar")).expect("write a");
        let b = write_image(&spec, &dir.path().join("b.tar")).expect("write b");
        assert_eq!(a, b, "same input, same digest");
        let file = std::fs::File::open(dir.path().join("a.tar")).expect("open");
        let mut archive = tar::Archive::new(file);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names[..2],
            ["oci-layout".to_string(), "index.json".to_string()]
        );
        assert!(names.contains(&format!("blobs/sha256/{}", a.trim_start_matches("sha256:"))));
        assert!(crate::PAUSE_BINARY.len() > 1000 && &crate::PAUSE_BINARY[1..4] == b"ELF");
        let bad = ImageSpec {
            reference: "untagged".into(),
            ..ImageSpec::default()
        };
        assert!(write_image(&bad, &dir.path().join("c.tar")).is_err());
    }

    /// The conformance images need both: a setuid root program
    /// (nonewprivs) and an image user (nonroot).
    #[test]
    fn file_modes_and_the_user_survive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = ImageSpec {
            reference: "registry.example/nnp:1".into(),
            layers: vec![Layer {
                files: vec![File::new("usr/local/bin/nnp", b"#!".to_vec(), 0o4755)],
            }],
            user: "1234".into(),
            ..ImageSpec::default()
        };
        write_image(&spec, &dir.path().join("i.tar")).expect("write");
        let file = std::fs::File::open(dir.path().join("i.tar")).expect("open");
        let (mut user, mut mode) = (None, None);
        for entry in tar::Archive::new(file).entries().expect("entries") {
            let mut blob = Vec::new();
            std::io::Read::read_to_end(&mut entry.expect("entry"), &mut blob).expect("read");
            if let Ok(config) = serde_json::from_slice::<serde_json::Value>(&blob) {
                if let Some(u) = config.pointer("/config/User") {
                    user = u.as_str().map(str::to_string);
                }
            } else if let Ok(entries) = tar::Archive::new(blob.as_slice()).entries() {
                for layer_entry in entries.flatten() {
                    if layer_entry.path().ok().as_deref() == Some(Path::new("usr/local/bin/nnp")) {
                        mode = layer_entry.header().mode().ok();
                    }
                }
            }
        }
        assert_eq!(user.as_deref(), Some("1234"));
        assert_eq!(mode, Some(0o4755));
    }
}

//! Extraction: once per payload into `<data>/<sha256>/`, atomically.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::{Error, Payload, hex};

const CURRENT: &str = "current";
const PREVIOUS: &str = "previous";
const TMP_PREFIX: &str = ".tmp-";

/// An extracted payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// `<data>/<sha256>`.
    pub dir: PathBuf,
    /// Where its programs are: `<dir>/bin`.
    pub bin: PathBuf,
    /// Whether this start extracted it (rather than finding it there).
    pub fresh: bool,
}

/// `<data>/current/bin`: the programs of the payload last started, for
/// users and tools (`crictl`, `ctr`) that do not run k3r itself.
pub fn current_bin(data: &Path) -> PathBuf {
    data.join(CURRENT).join("bin")
}

/// Reads what it is given while hashing it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Payload {
    fn reader(&self) -> Result<std::io::Take<File>, Error> {
        let io = |e| Error::Io(self.exe.clone(), e);
        let mut file = File::open(&self.exe).map_err(io)?;
        file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        Ok(file.take(self.len))
    }

    /// Whether the payload's bytes hash to what its trailer says.
    fn verify(&self) -> Result<(), Error> {
        let mut hashing = Hashing {
            inner: self.reader()?,
            hasher: Sha256::new(),
        };
        std::io::copy(&mut hashing, &mut std::io::sink())
            .map_err(|e| Error::Io(self.exe.clone(), e))?;
        self.check(hashing.hasher.finalize().as_slice())
    }

    fn check(&self, found: &[u8]) -> Result<(), Error> {
        if found == self.sha256 {
            return Ok(());
        }
        Err(Error::Corrupted {
            exe: self.exe.clone(),
            expected: self.hash(),
            found: hex(found),
        })
    }

    /// The payload's programs under `data` (`<data-dir>/data`): extracted
    /// now into a scratch dir renamed into place once complete and
    /// verified, or found there from an earlier start. `data/current`
    /// then names it (and `data/previous` the one before).
    pub fn extract(&self, data: &Path) -> Result<Extracted, Error> {
        let dir = data.join(self.hash());
        let bin = dir.join("bin");
        let fresh = !bin.is_dir();
        if fresh {
            std::fs::create_dir_all(data).map_err(|e| Error::Io(data.to_path_buf(), e))?;
            remove_scratch(data);
            let started = Instant::now();
            tracing::info!(
                size_mb = self.len / (1 << 20),
                dir = %dir.display(),
                "extracting k3r's runtime payload"
            );
            let scratch = data.join(format!("{TMP_PREFIX}{}", self.hash()));
            let unpacked = self.unpack(&scratch).and_then(|()| {
                std::fs::rename(&scratch, &dir).map_err(|e| Error::Extract {
                    exe: self.exe.clone(),
                    dir: dir.clone(),
                    source: e,
                })
            });
            if let Err(e) = unpacked {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
            tracing::info!(
                seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                "payload extracted"
            );
        }
        point(data, &self.hash()).map_err(|e| Error::Io(data.join(CURRENT), e))?;
        Ok(Extracted { dir, bin, fresh })
    }

    fn unpack(&self, scratch: &Path) -> Result<(), Error> {
        let failed = |source: std::io::Error| {
            // A damaged payload shows as a decoding error: name it as such.
            match self.verify() {
                Err(corrupt @ Error::Corrupted { .. }) => corrupt,
                _ => Error::Extract {
                    exe: self.exe.clone(),
                    dir: scratch.to_path_buf(),
                    source,
                },
            }
        };
        std::fs::create_dir_all(scratch).map_err(failed)?;
        let hashing = Hashing {
            inner: self.reader()?,
            hasher: Sha256::new(),
        };
        let decoder = zstd::Decoder::new(hashing).map_err(failed)?;
        let mut archive = tar::Archive::new(decoder);
        archive.set_preserve_permissions(true);
        archive.unpack(scratch).map_err(failed)?;
        // The tar ends before the compressed stream does: hash the rest.
        let mut rest = archive.into_inner().finish();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(failed)?;
        self.check(rest.get_ref().hasher.clone().finalize().as_slice())?;
        sync_files(&scratch.join("bin")).map_err(failed)?;
        Ok(())
    }
}

/// Flushes the extracted programs to disk before the rename makes them
/// the ones in use: a crash must never leave a complete-looking dir with
/// empty files.
fn sync_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_file() {
            File::open(entry.path())?.sync_all()?;
        } else if kind.is_dir() {
            sync_files(&entry.path())?;
        }
    }
    File::open(dir)?.sync_all()
}

/// Scratch dirs of extractions cut short (one k3r per data dir, so none is
/// in progress).
fn remove_scratch(data: &Path) {
    for entry in std::fs::read_dir(data).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn link_target(data: &Path, name: &str) -> Option<String> {
    std::fs::read_link(data.join(name))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Points `current` at `hash`, and `previous` at what `current` was.
pub(crate) fn point(data: &Path, hash: &str) -> std::io::Result<()> {
    let was = link_target(data, CURRENT);
    if was.as_deref() == Some(hash) {
        return Ok(());
    }
    if let Some(was) = was {
        replace_link(data, PREVIOUS, &was)?;
    }
    replace_link(data, CURRENT, hash)
}

fn replace_link(data: &Path, name: &str, target: &str) -> std::io::Result<()> {
    let tmp = data.join(format!("{TMP_PREFIX}{name}"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, data.join(name))
}

/// Removes extracted payloads other than `current` and `previous` (kept
/// for a rollback): called once a start has succeeded.
pub fn clean_up(data: &Path) -> Vec<PathBuf> {
    let keep = [link_target(data, CURRENT), link_target(data, PREVIOUS)];
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(data).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_payload = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if is_payload
            && !keep.iter().flatten().any(|k| *k == name)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

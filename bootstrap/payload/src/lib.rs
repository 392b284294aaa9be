//! The runtime k3r carries in its own file, as k3s does: upstream
//! Kubernetes (k3r-kube), containerd, its shim, runc, the CNI plugins and
//! crictl, as a zstd-compressed tar appended to the k3r executable and
//! found through a fixed trailer at its very end:
//!
//! ```text
//! [k3r ELF][tar.zst payload][magic "K3RPAYLD"][payload length, u64 LE][sha256 of payload]
//! ```
//!
//! Appending keeps the ELF untouched (the kernel never reads past its
//! segments) and keeps the Rust build independent of the Go one. At start
//! k3r extracts the payload once into `<data-dir>/data/<sha256>/bin`
//! ([`Payload::extract`]); another k3r version extracts beside it.

mod extract;
mod pack;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use extract::{Extracted, clean_up, current_bin};
pub use pack::pack;

pub const MAGIC: &[u8; 8] = b"K3RPAYLD";
/// Magic, payload length and SHA-256.
pub const TRAILER_LEN: usize = 8 + 8 + 32;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(
        "the payload of {exe} is corrupted (sha256 {found}, expected {expected}): reinstall k3r"
    )]
    Corrupted {
        exe: PathBuf,
        expected: String,
        found: String,
    },
    #[error("the payload of {exe} is truncated or unreadable ({reason}): reinstall k3r")]
    Unreadable { exe: PathBuf, reason: String },
    #[error("extracting the payload of {exe} into {dir}: {source}")]
    Extract {
        exe: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Where a payload sits inside an executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub exe: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub sha256: [u8; 32],
}

impl Payload {
    /// The payload appended to `exe`, or None when `exe` carries none (a
    /// plain `cargo build`, or a file cut short before its trailer).
    pub fn find(exe: &Path) -> Result<Option<Payload>, Error> {
        let io = |e| Error::Io(exe.to_path_buf(), e);
        let mut file = File::open(exe).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let Some(trailer_at) = size.checked_sub(TRAILER_LEN as u64) else {
            return Ok(None);
        };
        let mut trailer = [0u8; TRAILER_LEN];
        file.seek(SeekFrom::Start(trailer_at)).map_err(io)?;
        file.read_exact(&mut trailer).map_err(io)?;
        Ok(
            parse_trailer(&trailer, trailer_at).map(|(offset, len, sha256)| Payload {
                exe: exe.to_path_buf(),
                offset,
                len,
                sha256,
            }),
        )
    }

    /// The payload's SHA-256 in hex: the name of its extracted dir.
    pub fn hash(&self) -> String {
        hex(&self.sha256)
    }
}

/// (offset, length, sha256) from a trailer found at `trailer_at`.
fn parse_trailer(trailer: &[u8; TRAILER_LEN], trailer_at: u64) -> Option<(u64, u64, [u8; 32])> {
    if &trailer[..8] != MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(trailer[8..16].try_into().ok()?);
    let sha256: [u8; 32] = trailer[16..].try_into().ok()?;
    let offset = trailer_at.checked_sub(len)?;
    Some((offset, len, sha256))
}

/// `bytes` (a whole executable) split into the executable proper and its
/// payload with trailer, when it has one: what must be kept apart when
/// the executable is rewritten (stripped, stamped).
pub fn split(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    let Some(trailer_at) = bytes.len().checked_sub(TRAILER_LEN) else {
        return (bytes, None);
    };
    let Ok(trailer) = <&[u8; TRAILER_LEN]>::try_from(&bytes[trailer_at..]) else {
        return (bytes, None);
    };
    match parse_trailer(trailer, trailer_at as u64) {
        Some((offset, _, _)) => {
            let at = usize::try_from(offset).unwrap_or(0);
            (&bytes[..at], Some(&bytes[at..]))
        }
        None => (bytes, None),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;

//! k3r's version. A build stamps it with `K3R_VERSION` (e.g.
//! `K3R_VERSION=0.2.0 scripts/build`); without it, the workspace's crate
//! version. Versions compare as releases: `[v]MAJOR.MINOR.PATCH`, with an
//! optional `-pre` (before the release) and `+build` (ignored), as semver.

use std::cmp::Ordering;

/// The version this build was compiled with, without a leading `v`.
pub const BUILT: &str = match option_env!("K3R_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// A slot a built binary can be stamped in afterwards ([`stamp`]): the
/// marker, then the version, NUL-padded. Unstamped, it is all NULs after
/// the marker and [`BUILT`] stands.
static STAMP: [u8; STAMP_LEN] = *b"k3r-version-stamp:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
const MARKER_LEN: usize = 18;
const STAMP_LEN: usize = 64;

/// This binary's version, without a leading `v`: its stamp, else
/// [`BUILT`].
pub fn version() -> &'static str {
    // Opaque to the optimizer: the bytes are read from the binary as it
    // is on disk, stamped or not.
    let slot: &'static [u8; STAMP_LEN] = std::hint::black_box(&STAMP);
    let value = &slot[MARKER_LEN..];
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    match std::str::from_utf8(&value[..end]) {
        Ok(stamped) if !stamped.is_empty() => stamped.trim_start_matches('v'),
        _ => BUILT.trim_start_matches('v'),
    }
}

/// This binary's version as tags and labels show it: `v0.1.0`.
pub fn tag() -> String {
    format!("v{}", version())
}

/// The variable through which k3r tells the upstream components it starts
/// (k3r-kube) which k3r they run under.
pub const KUBE_BUILD_METADATA_ENV: &str = "K3R_KUBE_BUILD_METADATA";

/// What k3r-kube appends to the Kubernetes version as semver build
/// metadata, as k3s's `v1.35.8+k3s1`: `k3r-v0.2.0`, so a node's
/// kubeletVersion reads `v1.35.8+k3r-v0.2.0`.
pub fn kube_build_metadata() -> String {
    build_metadata_of(&tag())
}

fn build_metadata_of(tag: &str) -> String {
    // Build metadata is dot-separated [0-9A-Za-z-]: a version's own `+`
    // becomes a dot.
    let text: String = format!("k3r-{tag}")
        .chars()
        .map(|c| match c {
            '+' => '.',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '.' => c,
            _ => '-',
        })
        .collect();
    text.trim_end_matches('.').to_string()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StampError {
    #[error("{0}")]
    Version(#[from] NotARelease),
    #[error("version {0:?} is longer than the stamp slot ({1} bytes)")]
    TooLong(String, usize),
    #[error("the binary has {0} version stamp slots (one expected): not a k3r binary?")]
    Slots(usize),
}

/// `binary` (a k3r executable's bytes) stamped with `version`.
pub fn stamp(binary: &mut [u8], version: &str) -> Result<(), StampError> {
    let release = Release::parse(version)?;
    let text = release.to_string();
    let text = text.trim_start_matches('v');
    let room = STAMP_LEN - MARKER_LEN;
    if text.len() >= room {
        return Err(StampError::TooLong(text.into(), room - 1));
    }
    let marker = &STAMP[..MARKER_LEN];
    let slots: Vec<usize> = binary
        .windows(MARKER_LEN)
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i)
        .filter(|i| binary.len() >= i + STAMP_LEN)
        .collect();
    let [at] = slots[..] else {
        return Err(StampError::Slots(slots.len()));
    };
    let value = &mut binary[at + MARKER_LEN..at + STAMP_LEN];
    value.fill(0);
    value[..text.len()].copy_from_slice(text.as_bytes());
    Ok(())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a release version (expected [v]MAJOR.MINOR.PATCH[-pre][+build])")]
pub struct NotARelease(pub String);

/// A parsed release version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated pre-release identifiers; empty for a release.
    pub pre: Vec<String>,
}

impl Release {
    pub fn parse(text: &str) -> Result<Self, NotARelease> {
        let bad = || NotARelease(text.to_string());
        let core_and_pre = text.trim().trim_start_matches('v');
        let core_and_pre = core_and_pre.split('+').next().unwrap_or_default();
        let (core, pre) = match core_and_pre.split_once('-') {
            Some((_, "")) => return Err(bad()),
            Some((core, pre)) => (core, pre),
            None => (core_and_pre, ""),
        };
        let numbers: Vec<u64> = core
            .split('.')
            .map(|n| {
                if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
                    return Err(bad());
                }
                n.parse().map_err(|_| bad())
            })
            .collect::<Result<_, _>>()?;
        let [major, minor, patch] = numbers[..] else {
            return Err(bad());
        };
        let pre: Vec<String> = if pre.is_empty() {
            Vec::new()
        } else {
            pre.split('.').map(String::from).collect()
        };
        if pre
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(bad());
        }
        Ok(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// This binary's version.
    pub fn current() -> Result<Self, NotARelease> {
        Self::parse(version())
    }

    /// How many minor versions `later` is ahead of `self` (0 across
    /// patches; None when `later` is on an older minor or another major).
    pub fn minors_to(&self, later: &Self) -> Option<u64> {
        if self.major != later.major {
            return None;
        }
        later.minor.checked_sub(self.minor)
    }
}

fn compare_pre(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl PartialOrd for Release {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Release {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(&self.pre, &other.pre))
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Release {
        Release::parse(text).expect(text)
    }

    #[test]
    fn kube_build_metadata_is_valid_semver_metadata() {
        assert_eq!(build_metadata_of("v0.2.0"), "k3r-v0.2.0");
        assert_eq!(
            build_metadata_of("v0.3.0-rc.1+g1a2b"),
            "k3r-v0.3.0-rc.1.g1a2b"
        );
        assert_eq!(build_metadata_of("v1.0.0+x_y/z+"), "k3r-v1.0.0.x-y-z");
        assert!(kube_build_metadata().starts_with("k3r-v"));
    }

    #[test]
    fn releases_order_as_semver() {
        let ordered = [
            "0.9.9",
            "v1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("v1.2.3+k3r1"), v("1.2.3"));
        assert_eq!(v("1.2.3-rc.1").to_string(), "v1.2.3-rc.1");
    }

    #[test]
    fn minor_distance_and_refusals() {
        assert_eq!(v("1.35.2").minors_to(&v("1.36.0")), Some(1));
        assert_eq!(v("1.35.2").minors_to(&v("1.37.0")), Some(2));
        assert_eq!(v("1.35.2").minors_to(&v("1.35.9")), Some(0));
        assert_eq!(v("1.35.2").minors_to(&v("1.34.0")), None);
        assert_eq!(v("1.35.2").minors_to(&v("2.0.0")), None);
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "1.2.3-",
            "1.2.3-a..b",
            "latest",
        ] {
            assert!(Release::parse(bad).is_err(), "{bad}");
        }
        assert!(Release::current().is_ok(), "this build's version parses");
    }

    #[test]
    fn a_stamp_is_found_once_and_replaces_the_version() {
        let mut binary = b"prefix".to_vec();
        binary.extend_from_slice(&STAMP);
        binary.extend_from_slice(b"suffix");
        stamp(&mut binary, "v0.2.0").expect("stamped");
        let at = 6 + MARKER_LEN;
        assert_eq!(&binary[at..at + 6], b"0.2.0\0");
        stamp(&mut binary, "0.10.1-rc.1").expect("stamped again");
        assert_eq!(&binary[at..at + 12], b"0.10.1-rc.1\0");
        assert!(binary.ends_with(b"suffix"));
        assert_eq!(
            stamp(&mut b"no slot".to_vec(), "1.0.0"),
            Err(StampError::Slots(0))
        );
        let long = format!("1.0.0-{}", "a".repeat(60));
        assert!(matches!(
            stamp(&mut binary, &long),
            Err(StampError::TooLong(..))
        ));
        assert!(stamp(&mut binary, "latest").is_err());
        assert_eq!(
            version(),
            BUILT.trim_start_matches('v'),
            "this test binary is not stamped"
        );
    }
}

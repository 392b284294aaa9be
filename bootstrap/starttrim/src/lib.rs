//! A long-running k3r process (the server, an agent, the operators) gives
//! back the pages of its own binary that only its start touched: the same
//! contract as the Go package beside this crate, for k3r's Rust binary.
//!
//! The kernel maps a file's large folios whole at a page fault (2 MiB per
//! fault on ext4 with Linux 6.18), so a process's start leaves far more of
//! its binary mapped than it keeps using (docs/benchmarks.md). Unmapping
//! the binary's never-written read-only mappings after the start, and
//! evicting the cached folios no process maps any longer, lets what is
//! still used fault back one page at a time.

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// The variable that gives the delay (a duration such as "60s"); "off"
/// keeps the pages mapped. k3r passes it to every process it starts.
pub const ENV: &str = "K3R_TRIM_START_PAGES_AFTER";

/// The delay when [`ENV`] is unset: past a node's start (Ready in about
/// 10 s).
pub const DEFAULT_DELAY: &str = "60s";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{ENV}={value:?} is not a duration (e.g. 60s) or \"off\"")]
    Setting { value: String },
    #[error("{path}: {source}")]
    Io {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("no read-only mapping of the executable in /proc/self/smaps")]
    NoMapping,
    #[error("fadvise DONTNEED /proc/self/exe: {source}")]
    Fadvise { source: nix::Error },
    #[error("madvise {start:#x}-{end:#x}: {source}")]
    Madvise {
        start: usize,
        end: usize,
        source: nix::Error,
    },
}

/// The value in effect: [`ENV`] if set, else [`DEFAULT_DELAY`]; what k3r
/// hands to the processes it starts.
pub fn configured() -> String {
    std::env::var(ENV).unwrap_or_else(|_| DEFAULT_DELAY.to_string())
}

/// Parses a value of [`ENV`]: `None` for "off" (or empty).
pub fn parse_delay(value: &str) -> Result<Option<Duration>, Error> {
    let value = value.trim();
    if value.is_empty() || value == "off" {
        return Ok(None);
    }
    humantime::parse_duration(value)
        .map(Some)
        .map_err(|_| Error::Setting {
            value: value.to_string(),
        })
}

/// Aligns the trim to the wall clock, as the Go side does (`PassEvery`):
/// processes of one binary whose delays end within the same half minute
/// trim in the same instant, so that the page cache can drop the large
/// folios they shared. One pass: a second costs as much again.
pub const PASS_EVERY: Duration = Duration::from_secs(30);

/// Trims after the delay `value` gives, on a thread of its own, at the
/// next multiple of [`PASS_EVERY`]; the outcome is logged in one line.
pub fn later(value: &str) {
    let delay = match parse_delay(value) {
        Ok(Some(delay)) => delay,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!("{err}; the start-up pages stay mapped");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("starttrim".into())
        .spawn(move || {
            std::thread::sleep(delay);
            std::thread::sleep(until_next_pass(std::time::SystemTime::now()));
            let before = resident_kib();
            match now() {
                // Worded as the Go side's line, which tests and people grep.
                Ok(trimmed) => {
                    let line = format!(
                        "unmapped the binary's {} MiB of read-only mappings: resident {} -> {} MiB",
                        trimmed.unmapped >> 20,
                        before >> 10,
                        resident_kib() >> 10
                    );
                    match trimmed.eviction {
                        Ok(()) => tracing::info!("{line}"),
                        Err(err) => tracing::warn!("{line}; its cached pages stay: {err}"),
                    }
                }
                Err(err) => tracing::warn!("trimming the start-up pages: {err}"),
            }
        });
    if let Err(err) = spawned {
        tracing::warn!("the start-up pages stay mapped: no thread for the trim: {err}");
    }
}

/// The wait from `now` to the next multiple of [`PASS_EVERY`] since the
/// Unix epoch.
pub fn until_next_pass(now: std::time::SystemTime) -> Duration {
    let since_epoch = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let every = PASS_EVERY.as_nanos();
    let into_period = since_epoch.as_nanos() % every;
    // Below 30 s in nanoseconds: fits u64.
    Duration::from_nanos((every - into_period) as u64)
}

/// What one trim did: the bytes unmapped, and whether the cached pages
/// no process maps any longer were evicted after (a failure there leaves
/// the unmapping done, so it is reported apart).
#[derive(Debug)]
pub struct Trimmed {
    pub unmapped: u64,
    pub eviction: Result<(), Error>,
}

/// Unmaps every read-only, never written mapping of the process's own
/// executable, then evicts the executable's unmapped cached pages.
pub fn now() -> Result<Trimmed, Error> {
    let io = |path| move |source| Error::Io { path, source };
    // Opened once: found by its device and inode, then evicted through it.
    let exe = std::fs::File::open("/proc/self/exe").map_err(io("/proc/self/exe"))?;
    let identity = exe.metadata().map_err(io("/proc/self/exe"))?;
    let smaps = std::fs::File::open("/proc/self/smaps").map_err(io("/proc/self/smaps"))?;
    let ranges = unwritten_mappings(
        std::io::BufReader::new(smaps),
        identity.dev(),
        identity.ino(),
    )
    .map_err(io("/proc/self/smaps"))?;
    if ranges.is_empty() {
        return Err(Error::NoMapping);
    }
    let mut unmapped = 0;
    for range in ranges {
        advise(range, nix::sys::mman::MmapAdvise::MADV_DONTNEED)?;
        // A page needed again is read alone, not with a read-ahead window.
        advise(range, nix::sys::mman::MmapAdvise::MADV_RANDOM)?;
        unmapped += (range.end - range.start) as u64;
    }
    Ok(Trimmed {
        unmapped,
        eviction: drop_unmapped_cache(&exe),
    })
}

/// Evicts the executable's cached pages that no process maps any longer:
/// a fault maps the whole cached folio it lands in, and a freshly written
/// or read-ahead binary is cached in folios of up to 2 MiB. Pages other
/// processes still map stay cached.
fn drop_unmapped_cache(exe: &std::fs::File) -> Result<(), Error> {
    nix::fcntl::posix_fadvise(
        exe,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .map_err(|source| Error::Fadvise { source })
}

/// One mapping's addresses, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    pub start: usize,
    pub end: usize,
}

#[allow(unsafe_code)]
fn advise(range: AddressRange, advice: nix::sys::mman::MmapAdvise) -> Result<(), Error> {
    let failed = |source| Error::Madvise {
        start: range.start,
        end: range.end,
        source,
    };
    let start = std::ptr::NonNull::new(range.start as *mut std::ffi::c_void)
        .ok_or(failed(nix::Error::EINVAL))?;
    // SAFETY: the range is a whole mapping of the executable file that is
    // read-only and was never written (no anonymous pages), so its pages
    // equal the file's: dropping them (MADV_DONTNEED) loses nothing, and
    // the next access faults the same bytes back in from the file;
    // MADV_RANDOM only changes read-ahead. No Rust value owns these pages.
    unsafe { nix::sys::mman::madvise(start, range.end - range.start, advice) }.map_err(failed)
}

/// The read-only mappings of the file (dev, ino) in an smaps listing whose
/// Anonymous count is 0. A mapping with anonymous pages was written once:
/// RELRO (the GOT, relocated by the dynamic loader, then made read-only);
/// dropping those pages would bring back the unrelocated file contents.
pub fn unwritten_mappings(
    smaps: impl BufRead,
    dev: u64,
    ino: u64,
) -> std::io::Result<Vec<AddressRange>> {
    let mut ranges = Vec::new();
    let mut candidate = None;
    for line in smaps.lines() {
        let line = line?;
        if let Some(header) = parse_header(&line) {
            candidate = (header.dev == dev && header.ino == ino && !header.writable)
                .then_some(header.range);
        } else if let Some(rest) = line.strip_prefix("Anonymous:")
            && let Some(range) = candidate.take()
            && parse_kib(rest) == Some(0)
        {
            ranges.push(range);
        }
    }
    Ok(ranges)
}

struct MappingHeader {
    range: AddressRange,
    writable: bool,
    dev: u64,
    ino: u64,
}

/// A mapping's first line: "start-end perms offset major:minor inode path".
fn parse_header(line: &str) -> Option<MappingHeader> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let ino = fields.next()?.parse().ok()?;
    let range = AddressRange {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
    };
    (range.end > range.start).then_some(MappingHeader {
        range,
        writable: perms.contains('w'),
        dev: makedev(
            u64::from_str_radix(major, 16).ok()?,
            u64::from_str_radix(minor, 16).ok()?,
        ),
        ino,
    })
}

/// glibc's encoding of a device number, as stat reports it.
fn makedev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// An smaps value such as "   4 kB".
fn parse_kib(value: &str) -> Option<u64> {
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The process's resident set in KiB (smaps_rollup's Rss), or 0.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|rollup| {
            rollup
                .lines()
                .find_map(|line| line.strip_prefix("Rss:").and_then(parse_kib))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;

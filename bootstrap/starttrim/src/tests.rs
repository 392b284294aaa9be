use super::*;

const SMAPS: &str = "\
55d0c0000000-55d0c1000000 r--p 00000000 fe:01 1234 /usr/local/bin/k3r
Size:              16384 kB
Anonymous:             0 kB
55d0c1000000-55d0c3000000 r-xp 01000000 fe:01 1234 /usr/local/bin/k3r
Size:              32768 kB
AnonHugePages:         0 kB
Anonymous:             0 kB
55d0c3000000-55d0c3100000 r--p 03000000 fe:01 1234 /usr/local/bin/k3r
Size:               1024 kB
Anonymous:           112 kB
55d0c3100000-55d0c3200000 rw-p 03100000 fe:01 1234 /usr/local/bin/k3r
Size:               1024 kB
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Size:               1024 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 fe:02 1234 /other/device/same/inode
Size:               1024 kB
Anonymous:             0 kB
";

#[test]
fn only_the_executables_unwritten_read_only_mappings_are_chosen() {
    let ranges = unwritten_mappings(SMAPS.as_bytes(), makedev(0xfe, 1), 1234).expect("ok");
    assert_eq!(
        ranges,
        [
            AddressRange {
                start: 0x55d0c0000000,
                end: 0x55d0c1000000
            },
            AddressRange {
                start: 0x55d0c1000000,
                end: 0x55d0c3000000
            },
        ],
        "text and rodata, not RELRO (anonymous pages), not data (writable), not libc, not another device"
    );
}

#[test]
fn delays_parse_as_k3r_documents_them() {
    assert_eq!(
        parse_delay("60s").expect("ok"),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        parse_delay("1m30s").expect("ok"),
        Some(Duration::from_secs(90))
    );
    assert_eq!(parse_delay("off").expect("ok"), None);
    assert_eq!(parse_delay("").expect("ok"), None);
    let err = parse_delay("soon").expect_err("not a duration").to_string();
    assert_eq!(
        err,
        "K3R_TRIM_START_PAGES_AFTER=\"soon\" is not a duration (e.g. 60s) or \"off\""
    );
}

#[test]
fn a_process_keeps_working_after_its_trim() {
    // This test binary trims itself for real: text, read-only data and
    // the dynamic loader's relocations must all still be right afterwards.
    let trimmed = now().expect("ok");
    assert!(trimmed.unmapped > 0);
    trimmed.eviction.expect("the unmapped cached pages evicted");
    let formatted = format!("{:?}", std::collections::BTreeMap::from([(1, "one")]));
    assert_eq!(formatted, "{1: \"one\"}");
    let threads = std::thread::spawn(|| std::fs::read_to_string("/proc/self/status"))
        .join()
        .expect("ok")
        .expect("ok");
    assert!(threads.contains("Threads:"));
    assert!(resident_kib() > 0);
}

#[test]
fn the_trimmed_mappings_read_one_page_at_a_time() {
    now().expect("ok");
    // smaps shows MADV_RANDOM as the "rr" VmFlag of each trimmed mapping.
    let exe = std::fs::metadata("/proc/self/exe").expect("exe");
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let ranges = unwritten_mappings(smaps.as_bytes(), exe.dev(), exe.ino()).expect("parse");
    assert!(!ranges.is_empty());
    for range in ranges {
        let header = format!("{:x}-{:x} ", range.start, range.end);
        let mapping = &smaps[smaps.find(&header).expect("mapping")..];
        let flags = mapping
            .lines()
            .find(|line| line.starts_with("VmFlags:"))
            .expect("VmFlags");
        assert!(flags.split_whitespace().any(|flag| flag == "rr"), "{flags}");
    }
}

#[test]
fn passes_fall_on_the_same_wall_clock_instants_in_every_process() {
    let at = |seconds: u64, nanos: u32| std::time::UNIX_EPOCH + Duration::new(seconds, nanos);
    assert_eq!(until_next_pass(at(1_800_000_000, 0)), PASS_EVERY);
    assert_eq!(
        until_next_pass(at(1_800_000_001, 0)),
        Duration::from_secs(29)
    );
    assert_eq!(
        until_next_pass(at(1_800_000_029, 999_999_000)),
        Duration::from_micros(1)
    );
    // Two processes started 3 s apart with the same delay meet at 1_800_000_090.
    let first = at(1_800_000_061, 0);
    let second = at(1_800_000_064, 0);
    assert_eq!(
        first + until_next_pass(first),
        second + until_next_pass(second)
    );
}

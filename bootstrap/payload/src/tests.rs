use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::extract::point;

/// A fake executable and a tree with a program, a symlink to it, and one
/// from a subdir (as `bin/aux/iptables`).
fn packed(dir: &Path) -> PathBuf {
    let exe = dir.join("k3r");
    std::fs::write(&exe, b"\x7fELF not really, but bytes before the payload")
        .expect("must succeed");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).expect("must succeed");
    std::fs::write(tree.join("bin/containerd"), b"#!/bin/sh\necho containerd\n")
        .expect("must succeed");
    std::fs::set_permissions(
        tree.join("bin/containerd"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("must succeed");
    std::os::unix::fs::symlink("containerd", tree.join("bin/ctr")).expect("must succeed");
    std::fs::create_dir(tree.join("bin/aux")).expect("must succeed");
    std::os::unix::fs::symlink("../containerd", tree.join("bin/aux/tool")).expect("must succeed");
    let out = dir.join("k3r-packed");
    pack(&exe, &tree, &out, 3).expect("must succeed");
    out
}

#[test]
fn a_plain_executable_has_no_payload() {
    let dir = tempfile::tempdir().expect("must succeed");
    let exe = dir.path().join("k3r");
    std::fs::write(&exe, vec![7u8; 100]).expect("must succeed");
    assert_eq!(Payload::find(&exe).expect("must succeed"), None);
    std::fs::write(&exe, b"tiny").expect("must succeed");
    assert_eq!(Payload::find(&exe).expect("must succeed"), None);
}

#[test]
fn extracts_once_keeps_modes_and_links_and_points_current() {
    let dir = tempfile::tempdir().expect("must succeed");
    let exe = packed(dir.path());
    let payload = Payload::find(&exe).expect("must succeed").expect("payload");
    let data = dir.path().join("data");
    let first = payload.extract(&data).expect("must succeed");
    assert!(first.fresh);
    let program = first.bin.join("containerd");
    assert_eq!(
        std::fs::metadata(&program)
            .expect("must succeed")
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(first.bin.join("ctr")).expect("must succeed"),
        Path::new("containerd")
    );
    assert_eq!(
        std::fs::read(first.bin.join("aux/tool")).expect("a link out of a subdir resolves"),
        std::fs::read(&program).expect("must succeed")
    );
    assert_eq!(
        std::fs::canonicalize(current_bin(&data)).expect("must succeed"),
        std::fs::canonicalize(&first.bin).expect("must succeed")
    );
    let again = payload.extract(&data).expect("must succeed");
    assert!(!again.fresh);
    assert_eq!(again.dir, first.dir);
}

#[test]
fn the_same_files_pack_to_the_same_hash_and_repacking_replaces_the_payload() {
    let dir = tempfile::tempdir().expect("must succeed");
    let exe = packed(dir.path());
    let first = Payload::find(&exe)
        .expect("must succeed")
        .expect("must succeed");
    // Packing the packed file again replaces its payload, not stacks one.
    let again = dir.path().join("again");
    pack(&exe, &dir.path().join("tree"), &again, 3).expect("must succeed");
    let second = Payload::find(&again)
        .expect("must succeed")
        .expect("must succeed");
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.offset, second.offset);
    let bytes = std::fs::read(&again).expect("must succeed");
    let (program, rest) = split(&bytes);
    assert_eq!(program, b"\x7fELF not really, but bytes before the payload");
    assert_eq!(
        rest.expect("must succeed").len() as u64,
        second.len + TRAILER_LEN as u64
    );
}

#[test]
fn a_corrupted_payload_is_named_and_nothing_is_left_in_use() {
    let dir = tempfile::tempdir().expect("must succeed");
    let exe = packed(dir.path());
    let payload = Payload::find(&exe)
        .expect("must succeed")
        .expect("must succeed");
    let mut bytes = std::fs::read(&exe).expect("must succeed");
    let middle = (payload.offset + payload.len / 2) as usize;
    bytes[middle] ^= 0xff;
    std::fs::write(&exe, &bytes).expect("must succeed");
    let data = dir.path().join("data");
    let err = payload.extract(&data).expect_err("must fail");
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("corrupted"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&data)
        .expect("must succeed")
        .flatten()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_truncated_file_carries_no_payload() {
    let dir = tempfile::tempdir().expect("must succeed");
    let exe = packed(dir.path());
    let bytes = std::fs::read(&exe).expect("must succeed");
    std::fs::write(&exe, &bytes[..bytes.len() - 10]).expect("must succeed");
    assert_eq!(Payload::find(&exe).expect("must succeed"), None);
}

#[test]
fn an_unwritable_data_dir_is_named() {
    let dir = tempfile::tempdir().expect("must succeed");
    let exe = packed(dir.path());
    let payload = Payload::find(&exe)
        .expect("must succeed")
        .expect("must succeed");
    // A file where the data dir should be: fails for root too.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").expect("must succeed");
    let err = payload
        .extract(&blocker.join("data"))
        .expect_err("must fail");
    assert!(err.to_string().contains("blocker"), "{err}");
}

#[test]
fn clean_up_keeps_current_and_previous() {
    let dir = tempfile::tempdir().expect("must succeed");
    let data = dir.path().join("data");
    let old = "a".repeat(64);
    let older = "b".repeat(64);
    for hash in [&old, &older] {
        std::fs::create_dir_all(data.join(hash).join("bin")).expect("must succeed");
    }
    let exe = packed(dir.path());
    let payload = Payload::find(&exe)
        .expect("must succeed")
        .expect("must succeed");
    point(&data, &older).expect("must succeed");
    point(&data, &old).expect("must succeed");
    payload.extract(&data).expect("must succeed");
    let removed = clean_up(&data);
    assert_eq!(removed, vec![data.join(&older)]);
    assert!(data.join(&old).is_dir());
    assert!(data.join(payload.hash()).is_dir());
}

//! Compiles the static pause binary that k3r embeds and packs into its
//! pause image.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-Os", "-static", "-s", "-o"])
        .arg(&out)
        .arg("pause/pause.c")
        .status()
        .unwrap_or_else(|e| {
            panic!("running {cc} for the pause binary: {e} (install gcc and libc6-dev)")
        });
    assert!(
        status.success(),
        "building the static pause binary failed (needs libc6-dev for static glibc)"
    );
}

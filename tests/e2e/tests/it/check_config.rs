//! `k3r check-config` on this host (the real kernel config and cgroups,
//! which the e2e clusters run on: it must pass) and on a kernel config
//! that lacks most of what k3r needs (one line naming what is missing).

use std::process::Command;

use crate::cluster::k3r_binary;

pub fn this_host_passes_and_a_bare_kernel_is_named() {
    let out = Command::new(k3r_binary())
        .arg("check-config")
        .output()
        .expect("k3r runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("- cgroup hierarchy: cgroups V1"),
        "{stdout}"
    );
    assert!(stdout.contains("- CONFIG_VXLAN: enabled"), "{stdout}");
    assert!(stdout.trim_end().ends_with("STATUS: pass"), "{stdout}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bare = dir.path().join("config");
    std::fs::write(
        &bare,
        "CONFIG_NAMESPACES=y\nCONFIG_NET_NS=y\n# CONFIG_VXLAN is not set\n",
    )
    .expect("config");
    let out = Command::new(k3r_binary())
        .arg("check-config")
        .arg("--kernel-config")
        .arg(&bare)
        .output()
        .expect("k3r runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("k3r: error: this kernel lacks what k3r needs: ")
            && lines[0].contains("CONFIG_VXLAN")
            && !lines[0].contains("CONFIG_NET_NS,"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("- CONFIG_VXLAN: missing (the node network (vxlan backend))"),
        "{stdout}"
    );
}

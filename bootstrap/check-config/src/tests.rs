use super::*;

const V1_MOUNTS: &str =
    "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
const V1_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t20\t1\ncpu\t1\t20\t1\ncpuacct\t2\t20\t1\nmemory\t4\t126\t1\ndevices\t5\t20\t1\nfreezer\t6\t20\t1\npids\t8\t20\t1\n";

fn v1_host() -> Host {
    Host {
        mounts: V1_MOUNTS.into(),
        cgroups: V1_CGROUPS.into(),
        ..Host::default()
    }
}

/// A config with every feature built in.
fn everything() -> String {
    FEATURES
        .iter()
        .map(|f| format!("CONFIG_{}=y\n", f.options[0]))
        .collect()
}

#[test]
fn a_complete_kernel_passes_and_modules_count() {
    let host = v1_host();
    let config = everything().replace("CONFIG_VXLAN=y", "CONFIG_VXLAN=m");
    let report = check(&KernelConfig::parse(&config), &host);
    assert!(report.missing.is_empty(), "{}", report.text);
    assert!(report.text.contains("- CONFIG_VXLAN: enabled (as module)"));
    assert!(report.text.contains("- cgroup hierarchy: cgroups V1\n"));
    assert!(report.text.ends_with("STATUS: pass\n"), "{}", report.text);
}

#[test]
fn missing_features_and_controllers_are_named() {
    let host = Host {
        mounts: V1_MOUNTS.into(),
        cgroups: V1_CGROUPS.replace("pids\t8\t20\t1", "pids\t8\t20\t0"),
        ..Host::default()
    };
    let config = everything()
        .replace("CONFIG_OVERLAY_FS=y\n", "# CONFIG_OVERLAY_FS is not set\n")
        .replace("CONFIG_SECCOMP=y\n", "");
    let report = check(&KernelConfig::parse(&config), &host);
    assert_eq!(
        report.missing,
        ["cgroup controller pids", "CONFIG_OVERLAY_FS"]
    );
    assert!(
        report
            .text
            .contains("- CONFIG_OVERLAY_FS: missing (containerd's overlayfs snapshotter)")
    );
    // Optional: reported, not counted.
    assert!(report.text.contains("- CONFIG_SECCOMP: missing"));
    assert!(
        report.text.ends_with(
            "STATUS: 2 required feature(s) missing: cgroup controller pids, CONFIG_OVERLAY_FS\n"
        ),
        "{}",
        report.text
    );
}

#[test]
fn either_masquerade_option_will_do() {
    let host = v1_host();
    let config = everything().replace(
        "CONFIG_IP_NF_TARGET_MASQUERADE=y",
        "CONFIG_NETFILTER_XT_TARGET_MASQUERADE=m",
    );
    let report = check(&KernelConfig::parse(&config), &host);
    assert!(report.missing.is_empty(), "{}", report.text);
}

#[test]
fn cgroup_v2_needs_bpf_and_its_own_controllers() {
    let host = Host {
        mounts: "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n".into(),
        v2_controllers: "cpuset cpu io memory pids\n".into(),
        ..Host::default()
    };
    assert_eq!(host.cgroup_mode(), CgroupMode::V2);
    // v1's device controller is not needed there; BPF is.
    let config = everything()
        .replace("CONFIG_CGROUP_DEVICE=y\n", "")
        .replace("CONFIG_CGROUP_BPF=y\n", "");
    let report = check(&KernelConfig::parse(&config), &host);
    assert_eq!(report.missing, ["CONFIG_CGROUP_BPF"], "{}", report.text);
    let hybrid = Host {
        mounts: format!("{V1_MOUNTS}cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"),
        ..Host::default()
    };
    assert_eq!(hybrid.cgroup_mode(), CgroupMode::Hybrid);
}

#[test]
fn configs_are_read_gzipped_or_plain_and_a_missing_one_is_named() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("config");
    std::fs::write(&plain, "CONFIG_VXLAN=m\n").expect("write");
    let gz = dir.path().join("config.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"CONFIG_VXLAN=y\n").expect("gzip");
    std::fs::write(&gz, encoder.finish().expect("gzip")).expect("write");
    assert_eq!(
        read_kernel_config(&plain).expect("plain").state("VXLAN"),
        State::Module
    );
    let (found, config) =
        find_kernel_config(&[dir.path().join("nowhere"), gz.clone()]).expect("found");
    assert_eq!(found, gz);
    assert_eq!(config.state("VXLAN"), State::Enabled);
    let err = find_kernel_config(&[dir.path().join("nowhere")]).expect_err("none");
    assert!(
        err.to_string()
            .starts_with("no kernel config found (tried ")
    );
}

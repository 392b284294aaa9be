//! Bad configuration gives one line naming the problem and a non-zero
//! exit, and leaves an existing data dir untouched.

use std::path::Path;
use std::process::{Command, Output};

use crate::cluster::k3r_binary;

fn server(data_dir: &Path, extra: &[&str], config: Option<&Path>) -> Output {
    let mut command = Command::new(k3r_binary());
    command
        .arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra);
    match config {
        Some(c) => command.arg("--config").arg(c),
        None => command.arg("--config=/nonexistent/k3r.yaml"),
    };
    command.env("K3R_LOG", "error").output().expect("k3r runs")
}

fn error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error line expected, got: {stderr}");
    lines[0].to_string()
}

pub fn bad_configuration_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("keep-me"), "precious").expect("marker");
    let cases: [(&[&str], &str); 6] = [
        (&["--cluster-cidr=10.42.0.0"], "--cluster-cidr"),
        (&["--service-cidr=banana"], "--service-cidr"),
        (
            &["--cluster-cidr=10.0.0.0/8", "--service-cidr=10.43.0.0/16"],
            "overlaps",
        ),
        (&["--cluster-dns=192.168.0.10"], "outside --service-cidr"),
        (&["--disable=tryefik"], "unknown component"),
        (&["--write-kubeconfig-mode=999"], "octal"),
    ];
    for (args, expected) in cases {
        let line = error_line(&server(&data, args, None));
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "cluster-cidr: 10.42.0.0/16\nnot-a-flag: true\n").expect("config");
    let line = error_line(&server(&data, &[], Some(&config)));
    assert!(
        line.contains("unknown config key \"not-a-flag\"") && line.contains("config.yaml"),
        "{line}"
    );
    std::fs::write(&config, "cluster-cidr: [10.42.0.0/16\n").expect("config");
    let line = error_line(&server(&data, &[], Some(&config)));
    assert!(line.contains("invalid YAML"), "{line}");
    // Port in use.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let line = error_line(&server(&data, &["--https-listen-port", &port], None));
    assert!(line.contains(&format!("port {port}")), "{line}");
    // A kernel lacking what k3r needs (its config named by
    // K3R_KERNEL_CONFIG, as `k3r check-config --kernel-config`).
    let bare = dir.path().join("kernel-config");
    std::fs::write(&bare, "CONFIG_NAMESPACES=y\n# CONFIG_VXLAN is not set\n").expect("config");
    let out = Command::new(k3r_binary())
        .args(["server", "--config=/nonexistent/k3r.yaml", "--data-dir"])
        .arg(&data)
        .env("K3R_KERNEL_CONFIG", &bare)
        .output()
        .expect("k3r");
    let line = error_line(&out);
    assert!(
        line.contains("this kernel lacks what k3r needs: ") && line.contains("CONFIG_VXLAN"),
        "{line}"
    );
    // Not root.
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(k3r_binary())
        .args([
            "server",
            "--config=/nonexistent/k3r.yaml",
            "--data-dir=/tmp/k3r-not-root",
        ])
        .output()
        .expect("runuser");
    let line = error_line(&out);
    assert!(line.contains("must run as root"), "{line}");
    // Nothing in the data dir was touched by any of it.
    let entries: Vec<_> = std::fs::read_dir(&data)
        .expect("read")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("keep-me")]);
}

pub fn bad_agent_flags_are_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("agent");
    let agent = |extra: &[&str]| {
        Command::new(k3r_binary())
            .args(["agent", "--config=/nonexistent/k3r.yaml", "--data-dir"])
            .arg(&data)
            .args(extra)
            .env("K3R_LOG", "error")
            .output()
            .expect("k3r runs")
    };
    let cases: [(&[&str], &str); 5] = [
        (&["--token=t"], "--server is required"),
        (
            &["--server=https://127.0.0.1:1"],
            "--token or --token-file is required",
        ),
        (
            &["--server=http://127.0.0.1:1", "--token=t"],
            "not an https:// URL",
        ),
        (
            &["--server=https://127.0.0.1:1", "--token=K10abc::node:p"],
            "CA hash must be 64 hex characters",
        ),
        (
            &[
                "--server=https://127.0.0.1:1",
                "--token-file=/nonexistent/token",
            ],
            "--token-file /nonexistent/token",
        ),
    ];
    for (args, expected) in cases {
        let line = error_line(&agent(args));
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert!(!data.exists(), "nothing written for refused flags");
    let bare = dir.path().join("kernel-config");
    std::fs::write(&bare, "# CONFIG_VXLAN is not set\n").expect("config");
    let out = Command::new(k3r_binary())
        .args(["agent", "--config=/nonexistent/k3r.yaml", "--data-dir"])
        .arg(&data)
        .args(["--server=https://127.0.0.1:1", "--token=secret"])
        .env("K3R_KERNEL_CONFIG", &bare)
        .output()
        .expect("k3r agent");
    let line = error_line(&out);
    assert!(
        line.contains("this kernel lacks what k3r needs: "),
        "{line}"
    );

    // An unreachable server is retried, not fatal; SIGTERM still stops it.
    let mut waiting = Command::new(k3r_binary())
        .args(["agent", "--config=/nonexistent/k3r.yaml", "--data-dir"])
        .arg(&data)
        .args(["--server=https://127.0.0.1:1", "--token=secret"])
        .env("K3R_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("k3r agent");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        waiting.try_wait().expect("status").is_none(),
        "the agent keeps retrying"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(waiting.id().to_string())
        .status();
    let out = waiting.wait_with_output().expect("agent output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stopped cleanly: {stderr}");
    assert!(
        stderr.matches("cannot join yet; retrying").count() >= 2
            && stderr.contains("cannot reach the server at https://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!data.join("agent/client-kubelet.crt").exists());
}

/// A server start with `exe` on a free port: it fails before anything
/// but the payload is touched.
fn start_with(exe: &Path, data: &Path) -> Output {
    Command::new(exe)
        .args(["server", "--config=/nonexistent/k3r.yaml", "--data-dir"])
        .arg(data)
        .arg(format!(
            "--https-listen-port={}",
            crate::cluster::free_port()
        ))
        .env("K3R_LOG", "error")
        .output()
        .expect("k3r runs")
}

/// What extraction left under `<data>/data`: names, dot-files included.
fn extracted(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("data"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Unmounts on drop, whatever the test did.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

pub fn a_damaged_runtime_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(k3r_binary()).expect("k3r under test");
    let (program, runtime) = k3r_payload::split(&bytes);
    let executable = |path: &Path, contents: &[u8]| {
        std::fs::write(path, contents).expect("a copy of k3r");
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    };
    // A k3r built by cargo alone carries no runtime.
    let plain = dir.path().join("k3r-plain");
    executable(&plain, program);
    let line = error_line(&start_with(&plain, &dir.path().join("plain")));
    assert!(line.contains("carries no runtime payload"), "{line}");
    std::fs::remove_file(&plain).expect("rm");

    // A flipped byte inside the payload: named, nothing left to be used.
    let damaged = dir.path().join("k3r-damaged");
    let middle = program.len() + runtime.expect("payload").len() / 2;
    bytes[middle] ^= 0x55;
    executable(&damaged, &bytes);
    drop(bytes);
    let data = dir.path().join("damaged");
    let line = error_line(&start_with(&damaged, &data));
    assert!(
        line.contains("is corrupted") && line.contains("reinstall k3r"),
        "{line}"
    );
    assert_eq!(extracted(&data), Vec::<String>::new());
    std::fs::remove_file(&damaged).expect("rm");

    // A disk too small for the runtime: named, the scratch dir removed.
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).expect("mount point");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "k3r-e2e-small"])
        .arg(&small)
        .status()
        .expect("mount");
    assert!(ok.success(), "mounting a small tmpfs");
    let mounted = Mounted(small.clone());
    let line = error_line(&start_with(&k3r_binary(), &small.join("d")));
    assert!(line.contains("No space left on device"), "{line}");
    assert_eq!(extracted(&small.join("d")), Vec::<String>::new());
    drop(mounted);

    // An unwritable data dir (a file in the way): named.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").expect("file");
    let line = error_line(&start_with(&k3r_binary(), &blocker.join("d")));
    assert!(line.contains("blocker"), "{line}");
}

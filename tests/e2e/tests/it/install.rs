//! install.sh and the k3r-uninstall.sh it writes, round trip, into a
//! scratch root (the INSTALL_K3R_*_DIR and K3R_DATA_DIR variables): every
//! file in place with the k3r under test, the tools answering through
//! their links, then nothing left.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::k3r_binary;

fn install_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../install.sh")
}

/// stdout and stderr (install.sh's messages) of a command that must succeed.
fn run(command: &mut Command) -> String {
    let out = crate::process::succeed(command);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(files(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

pub fn install_and_uninstall_round_trip() {
    let root = tempfile::tempdir().expect("scratch root");
    let dir = |name: &str| root.path().join(name);
    let (bin, units, config, data) = (dir("bin"), dir("systemd"), dir("etc-k3r"), dir("data"));
    std::fs::create_dir_all(&units).expect("units dir");
    let out = run(Command::new("sh")
        .arg(install_script())
        .env("INSTALL_K3R_BIN", k3r_binary())
        .env("INSTALL_K3R_BIN_DIR", &bin)
        .env("INSTALL_K3R_SYSTEMD_DIR", &units)
        .env("INSTALL_K3R_CONFIG_DIR", &config)
        .env("INSTALL_K3R_EXEC", "server --disable traefik")
        .env("INSTALL_K3R_SYMLINK", "force")
        // Never start a service from a test, even where systemd runs.
        .env("INSTALL_K3R_SKIP_ENABLE", "true")
        .env("INSTALL_K3R_SKIP_START", "true")
        .env("K3R_DATA_DIR", &data)
        .env("K3R_TOKEN", "e2e-secret")
        .env("K3R_NODE_NAME", "e2e-installed"));
    if !Path::new("/run/systemd/system").exists() {
        assert!(
            out.contains("neither systemd (as PID 1) nor OpenRC")
                && out.contains(&format!("{}/k3r server --disable traefik", bin.display())),
            "{out}"
        );
    }
    // The binary, the links, the scripts.
    let installed = bin.join("k3r");
    assert_eq!(
        std::fs::read(&installed).expect("installed k3r").len(),
        std::fs::read(k3r_binary()).expect("k3r").len()
    );
    for tool in ["kubectl", "crictl", "ctr"] {
        assert_eq!(
            std::fs::read_link(bin.join(tool)).expect("tool link"),
            Path::new("k3r")
        );
    }
    for script in ["k3r-killall.sh", "k3r-uninstall.sh"] {
        let mode = std::fs::metadata(bin.join(script))
            .expect(script)
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{script} executable");
    }
    // The unit, its environment (the token, private) and config.yaml.
    let unit = std::fs::read_to_string(units.join("k3r.service")).expect("unit");
    assert!(
        unit.contains(&format!(
            "ExecStart={}/k3r server --disable traefik",
            bin.display()
        )),
        "{unit}"
    );
    let env_file = units.join("k3r.service.env");
    let env = std::fs::read_to_string(&env_file).expect("env file");
    assert!(env.contains("K3R_TOKEN='e2e-secret'"), "{env}");
    assert!(!env.contains("K3R_NODE_NAME"), "{env}");
    let mode = std::fs::metadata(&env_file)
        .expect("env")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the env file holds the token: private");
    let yaml = std::fs::read_to_string(config.join("config.yaml")).expect("config.yaml");
    assert!(
        yaml.contains("node-name: \"e2e-installed\"")
            && yaml.contains(&format!("data-dir: \"{}\"", data.display())),
        "{yaml}"
    );
    // kubectl and crictl through their links: k3r by argv[0], its
    // runtime extracted into the data dir.
    let version = run(Command::new(bin.join("kubectl"))
        .args(["version", "--client"])
        .env("K3R_DATA_DIR", &data));
    assert!(version.contains("Client Version: v1.37."), "{version}");
    let crictl = run(Command::new(bin.join("crictl"))
        .arg("--version")
        .env("K3R_DATA_DIR", &data));
    assert!(crictl.starts_with("crictl version v1."), "{crictl}");
    assert!(data.join("data/current/bin/k3r-kube").is_file());

    // Uninstall: nothing of it left.
    run(&mut Command::new(bin.join("k3r-uninstall.sh")));
    let left: Vec<String> = [&bin, &units, &config, &data]
        .iter()
        .flat_map(|d| files(d))
        .collect();
    assert!(left.is_empty(), "left after uninstall: {left:?}");
    assert!(!config.exists() && !data.exists());
}

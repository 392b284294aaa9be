//! Real Helm as a test oracle. `scripts/install-deps` installs the
//! `helm-python-sdk` wheel (the Helm v4 Go library behind a C ABI); a chart
//! is written to a directory and rendered by it, and the tests compare our
//! output with Helm's.

mod registry;

pub use registry::Registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const RENDER: &str = r#"
import json, sys
from helm_python import Chart
chart = Chart.load(sys.argv[1])
try:
    out = chart.render({}, name=sys.argv[2], namespace=sys.argv[3])
    print(json.dumps({"ok": out}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

const INSTALL: &str = r#"
import json, sys
from helm_python import Config
config = Config(namespace=sys.argv[3], storage_driver="memory",
    kubeconfig_content="apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
try:
    release = config.install(sys.argv[1], sys.argv[2], json.loads(sys.argv[4]), dry_run="client")
    print(json.dumps({"ok": release["manifest"]}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

const READ: &str = r#"
import json, sys
from helm_python import Config
config = Config(kubeconfig_path=sys.argv[1], namespace=sys.argv[2], storage_driver="secret")
try:
    out = {
        "list": config.list(),
        "values": config.get_values(sys.argv[3]),
        "all_values": config.get_values(sys.argv[3], all_values=True),
        "history": config.history(sys.argv[3]),
    }
    print(json.dumps({"ok": out}, default=str))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

/// What real Helm reads from a cluster for release `name` in `namespace`:
/// {list, values, all_values, history} (as the SDK returns them).
pub fn helm_read_release(
    kubeconfig: &Path,
    namespace: &str,
    name: &str,
) -> Result<serde_json::Value, String> {
    let parsed = run(READ, &[&kubeconfig.display().to_string(), namespace, name]);
    outcome(&parsed)
}

const UPGRADE: &str = r#"
import json, sys
from helm_python import Config
config = Config(kubeconfig_path=sys.argv[1], namespace=sys.argv[2], storage_driver="secret")
try:
    release = config.upgrade(sys.argv[4], sys.argv[3], json.loads(sys.argv[5]))
    print(json.dumps({"ok": {"revision": release["revision"], "status": release["status"]}}, default=str))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

/// `helm upgrade NAME CHART` with real Helm against a cluster; returns
/// {revision, status}.
pub fn helm_upgrade(
    kubeconfig: &Path,
    namespace: &str,
    name: &str,
    chart: &Path,
    values: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let parsed = run_as_helm(
        UPGRADE,
        &[
            &kubeconfig.display().to_string(),
            namespace,
            name,
            &chart.display().to_string(),
            &values.to_string(),
        ],
    );
    outcome(&parsed)
}

const PUSH: &str = r#"
import json, sys, tempfile, os
from helm_python import RegistryClient
from helm_python.chart import package
try:
    work = tempfile.mkdtemp()
    archive = package(sys.argv[1], destination=work, version=sys.argv[2])
    tls = sys.argv[7] == "tls"
    with RegistryClient(plain_http=not tls, credentials_file=os.path.join(work, "registry.json")) as client:
        client.login(sys.argv[4], sys.argv[5], sys.argv[6], plain_http=not tls, insecure=tls)
        out = client.push(archive, sys.argv[3], plain_http=not tls, insecure_skip_tls_verify=tls)
    print(json.dumps({"ok": out}, default=str))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

/// `helm package --version VERSION CHART` and `helm push` to `remote`
/// (oci://host/path) after logging in, over plain HTTP or (`tls`) HTTPS
/// without verification.
pub fn helm_push(
    chart: &Path,
    version: &str,
    remote: &str,
    (registry, username, password): (&str, &str, &str),
    tls: bool,
) -> Result<serde_json::Value, String> {
    let parsed = run(
        PUSH,
        &[
            &chart.display().to_string(),
            version,
            remote,
            registry,
            username,
            password,
            if tls { "tls" } else { "plain" },
        ],
    );
    outcome(&parsed)
}

/// Writes `<dir>/<name>/` with Chart.yaml, values.yaml and the templates
/// (file name under templates/ -> text). Returns the chart directory.
pub fn write_chart(
    dir: &Path,
    name: &str,
    values_yaml: &str,
    templates: &[(&str, &str)],
) -> PathBuf {
    let chart = dir.join(name);
    std::fs::create_dir_all(chart.join("templates")).expect("create chart dir");
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\nappVersion: \"1.2.3\"\n"),
    )
    .expect("write Chart.yaml");
    std::fs::write(chart.join("values.yaml"), values_yaml).expect("write values.yaml");
    for (file, text) in templates {
        let path = chart.join("templates").join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create template dir");
        }
        std::fs::write(path, text).expect("write template");
    }
    chart
}

/// The manifest `helm install --dry-run=client` stores for the chart at
/// `chart` with user values `values` (JSON).
pub fn helm_manifest(
    chart: &Path,
    release: &str,
    namespace: &str,
    values: &serde_json::Value,
) -> Result<String, String> {
    let parsed = run(
        INSTALL,
        &[
            &chart.display().to_string(),
            release,
            namespace,
            &values.to_string(),
        ],
    );
    match parsed["error"].as_str() {
        Some(error) => Err(error.to_string()),
        None => Ok(parsed["ok"].as_str().unwrap_or_default().to_string()),
    }
}

/// Runs the script in a Python started under the name `helm`: the Go
/// library names its server-side-apply field manager after the process
/// (os.Args[0]), and the real helm CLI's is "helm".
fn run_as_helm(script: &str, args: &[&str]) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("k3r-helm-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("oracle dir");
    let link = dir.join("helm");
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    let python = String::from_utf8_lossy(&python.stdout).trim().to_string();
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(python, &link).expect("symlink python as helm");
    let result = run_with(&link.display().to_string(), script, args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Runs a tool (openssl, base64, …) with `input` on its stdin.
pub fn pipe(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // A tool that exits early closes its stdin; its output says why.
        let _ = stdin.write_all(input);
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// A script's {"ok": …} or {"error": "…"}.
fn outcome(parsed: &serde_json::Value) -> Result<serde_json::Value, String> {
    match parsed.get("error").and_then(|e| e.as_str()) {
        Some(error) => Err(error.to_string()),
        None => Ok(parsed["ok"].clone()),
    }
}

fn run(script: &str, args: &[&str]) -> serde_json::Value {
    run_with("python3", script, args)
}

fn run_with(python: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "the Helm oracle failed (scripts/install-deps installs helm-python-sdk): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Helm's rendering of the chart at `chart` as release `release` in
/// `namespace`: file path -> text, or Helm's error message.
pub fn helm_render(
    chart: &Path,
    release: &str,
    namespace: &str,
) -> Result<BTreeMap<String, String>, String> {
    let parsed = run(RENDER, &[&chart.display().to_string(), release, namespace]);
    if let Some(error) = parsed["error"].as_str() {
        return Err(error.to_string());
    }
    Ok(parsed["ok"]
        .as_object()
        .expect("render result is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

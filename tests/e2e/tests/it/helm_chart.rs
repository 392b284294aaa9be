//! HelmChart resources end to end: a chart from a repository the test
//! serves on the node, installed, upgraded by a HelmChartConfig, pruned,
//! read by real Helm, a broken chart failing without applying anything,
//! and uninstall on delete.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cluster::Cluster;

pub(crate) fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/charts")
}

/// `helm package`: a .tgz of the chart directory.
pub(crate) fn package(chart: &str, out: &Path) -> Vec<u8> {
    let tgz = out.join(format!("{chart}-0.1.0.tgz"));
    let status = Command::new("tar")
        .arg("-C")
        .arg(testdata())
        .arg("-czf")
        .arg(&tgz)
        .arg(chart)
        .status()
        .expect("tar");
    assert!(status.success(), "packaging {chart}");
    std::fs::read(&tgz).expect("read tgz")
}

/// A chart repository: index.yaml and the archive, over plain HTTP.
struct Repository {
    url: String,
    stop: Arc<AtomicBool>,
}

impl Repository {
    fn serve(host: &str, files: Vec<(String, Vec<u8>)>) -> Self {
        let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                let path = line
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let response = match files.iter().find(|(name, _)| name == path) {
                    Some((_, body)) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(body);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&response);
            }
        });
        Self {
            url: format!("http://{host}:{port}"),
            stop,
        }
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    let out = k3r_helm_oracle::pipe("base64", &["-w0"], bytes);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn release_secrets(cluster: &Cluster, release: &str) -> usize {
    cluster
        .ok(&[
            "-n",
            "helm-e2e",
            "get",
            "secrets",
            "-l",
            &format!("owner=helm,name={release}"),
            "-o",
            "name",
        ])
        .lines()
        .count()
}

pub(crate) fn configmap(cluster: &Cluster, name: &str, field: &str) -> Option<String> {
    let out = cluster.kubectl(&[
        "-n",
        "helm-e2e",
        "get",
        "cm",
        name,
        "-o",
        &format!("jsonpath={field}"),
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn condition(cluster: &Cluster, chart: &str) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "helmchart",
        chart,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Failed\")].status}|{.status.conditions[?(@.type==\"Failed\")].reason}|{.status.conditions[?(@.type==\"Failed\")].message}",
    ])
}

pub(crate) fn helm_revisions(cluster: &Cluster) -> Vec<(i64, String)> {
    revisions_of(cluster, "greeter")
}

/// (revision, status) of a release in helm-e2e, as real Helm reads them.
pub(crate) fn revisions_of(cluster: &Cluster, release: &str) -> Vec<(i64, String)> {
    revisions_in(cluster, "helm-e2e", release)
}

/// (revision, status) of a release in `namespace`, as real Helm reads them.
pub(crate) fn revisions_in(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
) -> Vec<(i64, String)> {
    let read = k3r_helm_oracle::helm_read_release(&cluster.kubeconfig, namespace, release)
        .expect("real Helm reads the release");
    read["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            (
                h["revision"].as_i64().unwrap_or(0),
                h["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn helm_charts(cluster: &Cluster) {
    let work = tempfile::tempdir().expect("tempdir");
    let greeter = package("greeter", work.path());
    let index = "apiVersion: v1\nentries:\n  greeter:\n  - name: greeter\n    version: 0.1.0\n    urls: [charts/greeter-0.1.0.tgz]\n";
    let repo = Repository::serve(
        &cluster.node_ip(),
        vec![
            ("index.yaml".into(), index.as_bytes().to_vec()),
            ("charts/greeter-0.1.0.tgz".into(), greeter),
        ],
    );
    let chart = format!(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: greeter, namespace: kube-system}}\nspec:\n  repo: {}\n  chart: greeter\n  version: \"~0.1\"\n  targetNamespace: helm-e2e\n  createNamespace: true\n  valuesContent: |\n    greeting: hi\n",
        repo.url
    );
    let started = std::time::Instant::now();
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&chart));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    cluster.eventually("the chart installed", Duration::from_secs(90), || {
        (configmap(cluster, "greeter", "{.data.greeting}/{.data.revision}").as_deref()
            == Some("hi/1"))
        .then_some(())
    });
    eprintln!(
        "E2E: HelmChart from a repository installed {:.1} s after it was applied",
        started.elapsed().as_secs_f64()
    );
    // lookup reads the live cluster: an object, a missing one, a list.
    assert_eq!(
        configmap(
            cluster,
            "greeter",
            "{.data.kubeSystem}/{.data.missing}/{.data.services}"
        )
        .as_deref(),
        Some("kube-system/0/true")
    );
    let marks = configmap(
        cluster,
        "greeter",
        "{.metadata.labels.app\\.kubernetes\\.io/managed-by} {.metadata.annotations.meta\\.helm\\.sh/release-name}",
    );
    assert_eq!(marks.as_deref(), Some("Helm greeter"));
    let status = condition(cluster, "greeter");
    assert!(status.starts_with("False|Installed|"), "{status}");
    assert_eq!(helm_revisions(cluster), [(1, "deployed".to_string())]);

    // A HelmChartConfig overrides values: upgrade to revision 2.
    let config = "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata: {name: greeter, namespace: kube-system}\nspec:\n  valuesContent: |\n    greeting: hello again\n    extra: true\n";
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(config));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    cluster.eventually("the upgrade", Duration::from_secs(90), || {
        (configmap(cluster, "greeter-extra", "{.data.note}").as_deref() == Some("extra")
            && configmap(cluster, "greeter", "{.data.greeting}").as_deref() == Some("hello again"))
        .then_some(())
    });
    // Dropping the extra object prunes it (revision 3).
    let config = config.replace("extra: true", "extra: false");
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&config));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    cluster.eventually(
        "the extra ConfigMap pruned",
        Duration::from_secs(90),
        || {
            configmap(cluster, "greeter-extra", "{.data.note}")
                .is_none()
                .then_some(())
        },
    );
    cluster.eventually("revision 3 recorded", Duration::from_secs(30), || {
        let revisions = helm_revisions(cluster);
        (revisions.last() == Some(&(3, "deployed".to_string()))).then_some(revisions)
    });
    let revisions = helm_revisions(cluster);
    assert_eq!(
        revisions,
        [
            (1, "superseded".to_string()),
            (2, "superseded".to_string()),
            (3, "deployed".to_string())
        ]
    );

    // A chart that cannot render fails with file and line; nothing applied.
    let broken = package("broken", work.path());
    let content = base64(&broken);
    let chart = format!(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: broken, namespace: kube-system}}\nspec:\n  targetNamespace: helm-e2e\n  chartContent: {content}\n"
    );
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&chart));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let status = cluster.eventually("the broken chart to fail", Duration::from_secs(90), || {
        let status = condition(cluster, "broken");
        status.starts_with("True|").then_some(status)
    });
    assert!(
        status.starts_with("True|RenderFailed|") && status.contains("broken/templates/bad.yaml:4"),
        "{status}"
    );
    assert!(configmap(cluster, "should-not-exist", "{.metadata.name}").is_none());
    let events = cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "events",
        "--field-selector",
        "reason=RenderFailed",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a RenderFailed event");
    cluster.ok(&["-n", "kube-system", "delete", "helmchart", "broken"]);

    // A chart that renders but cannot be applied, with failurePolicy
    // abort: one failed revision, then the operator waits for a change.
    let unservable = base64(&package("unservable", work.path()));
    let chart = format!(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: unservable, namespace: kube-system}}\nspec:\n  targetNamespace: helm-e2e\n  failurePolicy: abort\n  chartContent: {unservable}\n"
    );
    let applied = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&chart));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let status = cluster.eventually("the abort", Duration::from_secs(90), || {
        let status = condition(cluster, "unservable");
        status.starts_with("True|Aborted|").then_some(status)
    });
    assert!(status.contains("failurePolicy is abort"), "{status}");
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        release_secrets(cluster, "unservable"),
        1,
        "abort must not retry"
    );
    cluster.ok(&[
        "-n",
        "kube-system",
        "delete",
        "helmchart",
        "unservable",
        "--wait=true",
        "--timeout=60s",
    ]);
    assert_eq!(release_secrets(cluster, "unservable"), 0);
    assert!(configmap(cluster, "unservable-first", "{.metadata.name}").is_none());

    // Real Helm takes the release over once the chart is unmanaged: the
    // objects carry the ownership marks `helm upgrade` checks.
    cluster.ok(&[
        "-n",
        "kube-system",
        "annotate",
        "helmchart",
        "greeter",
        "helmcharts.helm.cattle.io/unmanaged=true",
    ]);
    let upgraded = k3r_helm_oracle::helm_upgrade(
        &cluster.kubeconfig,
        "helm-e2e",
        "greeter",
        &testdata().join("greeter"),
        &serde_json::json!({"greeting": "from real helm"}),
    )
    .expect("real helm upgrades the release k3r installed");
    assert_eq!(upgraded["revision"], 4, "{upgraded}");
    assert_eq!(
        configmap(cluster, "greeter", "{.data.greeting}/{.data.revision}").as_deref(),
        Some("from real helm/4")
    );
    cluster.ok(&[
        "-n",
        "kube-system",
        "annotate",
        "helmchart",
        "greeter",
        "helmcharts.helm.cattle.io/unmanaged-",
    ]);

    // Deleting the HelmChart uninstalls the release.
    cluster.ok(&[
        "-n",
        "kube-system",
        "delete",
        "helmchart",
        "greeter",
        "--wait=true",
        "--timeout=90s",
    ]);
    assert!(
        configmap(cluster, "greeter", "{.metadata.name}").is_none(),
        "objects left after uninstall"
    );
    let secrets = cluster.ok(&[
        "-n",
        "helm-e2e",
        "get",
        "secrets",
        "-l",
        "owner=helm",
        "-o",
        "name",
    ]);
    assert!(secrets.trim().is_empty(), "release secrets left: {secrets}");
    cluster.ok(&["-n", "kube-system", "delete", "helmchartconfig", "greeter"]);
    drop(repo);
    eprintln!("E2E: HelmChart install, upgrade, prune, failure and uninstall checked");
}

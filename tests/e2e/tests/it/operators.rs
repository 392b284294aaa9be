//! Areas of the operators' shape on the shared cluster: a HelmChart whose
//! pre-install hook Job runs for minutes holds up no other chart and no
//! manifest, and the operators pod is not restarted meanwhile; the
//! per-node controllers run on every node.

use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::helm_chart::{base64, condition, package, revisions_in};

/// Where the slow and quick charts' releases live (apart from the helm
/// areas', which check that theirs leave nothing behind).
const NAMESPACE: &str = "hook-e2e";
use crate::shared::Shared;

/// How long the slow chart's pre-install hook Job runs: longer than the
/// old operators' 2-minute liveness window.
const SLOW_HOOK_SECONDS: u64 = 200;

fn chart(name: &str, content: &str, values: &str) -> String {
    format!(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: {name}, namespace: kube-system}}\nspec:\n  targetNamespace: {NAMESPACE}\n  createNamespace: true\n  timeout: 600s\n  chartContent: {content}\n  valuesContent: |\n    {values}\n"
    )
}

/// Applies the slow chart (once): its pre-install hook sleeps 200 s.
fn start_slow_chart(shared: &mut Shared) -> Instant {
    if let Some(applied) = shared.slow_hook_applied {
        return applied;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let content = base64(&package("hooked", work.path()));
    shared.cluster.apply(&chart(
        "slow-hook",
        &content,
        &format!("greeting: slow\n    preInstallSeconds: {SLOW_HOOK_SECONDS}"),
    ));
    let applied = Instant::now();
    shared.slow_hook_applied = Some(applied);
    applied
}

pub fn hook_blocks_nothing(shared: &mut Shared) {
    let applied = start_slow_chart(shared);
    let cluster = &shared.cluster;
    cluster.eventually(
        "the slow chart's pre-install hook running",
        Duration::from_secs(90),
        || {
            let job = cluster.kubectl(&["-n", NAMESPACE, "get", "job", "slow-hook-pre"]);
            (job.status.success()
                && revisions_in(cluster, NAMESPACE, "slow-hook")
                    == [(1, "pending-install".to_string())])
            .then_some(())
        },
    );
    eprintln!(
        "E2E: slow chart pending on its hook {:.1} s after apply",
        applied.elapsed().as_secs_f64()
    );

    // Another chart installs meanwhile.
    let work = tempfile::tempdir().expect("tempdir");
    let content = base64(&package("greeter", work.path()));
    let started = Instant::now();
    cluster.apply(&chart("quick", &content, "greeting: quick"));
    let status = cluster.eventually("the quick chart installed", Duration::from_secs(60), || {
        let status = condition(cluster, "quick");
        status.starts_with("False|Installed|").then_some(status)
    });
    let took = started.elapsed();
    eprintln!(
        "E2E: a chart applied while another waits on its hook installed in {:.1} s",
        took.as_secs_f64()
    );
    assert!(status.contains("revision 1"), "{status}");
    assert!(
        took < Duration::from_secs(5),
        "the quick chart took {took:?}: held up by the slow one?"
    );

    // And a manifest dropped into the manifests dir is applied.
    let manifest = shared.data_dir.join("server/manifests/while-hook.yaml");
    let started = Instant::now();
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: while-hook, namespace: default}\n",
    )
    .expect("write manifest");
    cluster.eventually("the manifest applied", Duration::from_secs(30), || {
        cluster
            .kubectl(&["get", "cm", "while-hook"])
            .status
            .success()
            .then_some(())
    });
    eprintln!(
        "E2E: a manifest written while a chart waits on its hook applied in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        revisions_in(cluster, NAMESPACE, "slow-hook"),
        [(1, "pending-install".to_string())],
        "the slow chart is still waiting on its hook"
    );
    std::fs::remove_file(&manifest).expect("remove manifest");
    cluster.ok(&["delete", "cm", "while-hook"]);
    cluster.ok(&[
        "-n",
        "kube-system",
        "delete",
        "helmchart",
        "quick",
        "--timeout=90s",
    ]);
}

pub fn slow_hook_completes(shared: &mut Shared) {
    let applied = start_slow_chart(shared);
    let cluster = &shared.cluster;
    let status = cluster.eventually(
        "the slow chart installed after its hook",
        Duration::from_secs(SLOW_HOOK_SECONDS + 180),
        || {
            let status = condition(cluster, "slow-hook");
            status.starts_with("False|Installed|").then_some(status)
        },
    );
    let took = applied.elapsed();
    eprintln!(
        "E2E: chart with a {SLOW_HOOK_SECONDS} s pre-install hook installed {:.1} s after apply",
        took.as_secs_f64()
    );
    assert!(status.contains("revision 1"), "{status}");
    assert!(
        took >= Duration::from_secs(SLOW_HOOK_SECONDS),
        "installed after {took:?}: the hook cannot have run {SLOW_HOOK_SECONDS} s"
    );
    assert_eq!(
        crate::addons::operators_pods(
            cluster,
            "{.items[*].status.containerStatuses[0].restartCount}"
        ),
        "0",
        "the operators pod restarted while the hook ran"
    );
    cluster.ok(&[
        "-n",
        "kube-system",
        "delete",
        "helmchart",
        "slow-hook",
        "--timeout=90s",
    ]);
    let _ = cluster.kubectl(&[
        "-n",
        NAMESPACE,
        "delete",
        "job",
        "slow-hook-pre",
        "--cascade=background",
        "--ignore-not-found",
    ]);
    let _ = cluster.kubectl(&[
        "-n",
        NAMESPACE,
        "delete",
        "cm",
        "slow-hook-pre-install",
        "slow-hook-pre-delete",
        "--ignore-not-found",
    ]);
    shared.slow_hook_applied = None;
}

/// The k3r-node-operators DaemonSet has a ready pod on each of `nodes`
/// nodes, and each node carries the version label its nodeinfo
/// controller sets.
pub fn per_node_controllers(cluster: &Cluster, nodes: usize) {
    let started = Instant::now();
    let labels = cluster.eventually(
        "per-node controllers on every node",
        Duration::from_secs(180),
        || {
            let ready = cluster.ok(&[
                "-n",
                "kube-system",
                "get",
                "daemonset",
                "k3r-node-operators",
                "-o",
                "jsonpath={.status.numberReady}",
            ]);
            let labels = cluster.ok(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.k3r\\.io/version}{\"\\n\"}{end}",
            ]);
            let labelled = labels.lines().filter(|l| l.ends_with("=v0.1.0")).count();
            (ready == nodes.to_string() && labelled == nodes).then_some(labels)
        },
    );
    let pods = node_operators_pods(
        cluster,
        &[],
        "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
    );
    let on: std::collections::BTreeSet<&str> = pods.lines().collect();
    assert_eq!(on.len(), nodes, "one per-node pod per node: {pods}");
    eprintln!(
        "E2E: per-node controllers labelled all {nodes} nodes within {:.1} s:\n{labels}",
        started.elapsed().as_secs_f64()
    );
}

/// `kubectl get pods` of the k3r-node-operators DaemonSet, with `extra`
/// arguments, printed as `output`.
pub fn node_operators_pods(cluster: &Cluster, extra: &[&str], output: &str) -> String {
    let mut args = vec![
        "-n",
        "kube-system",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=k3r-node-operators",
        "-o",
        output,
    ];
    args.extend_from_slice(extra);
    cluster.ok(&args)
}

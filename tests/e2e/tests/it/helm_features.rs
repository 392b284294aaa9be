//! HelmChart features beyond install/upgrade/uninstall, end to end: hooks
//! (order, delete policies, a failing and a hanging hook under
//! `spec.timeout`), Helm's ownership check and `takeOwnership`, charts
//! from a real OCI registry pushed by real Helm, and bad input (an
//! unreachable repository retried with backoff, invalid values, values
//! failing the chart's schema).

use std::time::Duration;

use crate::cluster::Cluster;
use crate::helm_chart::{
    base64, condition, configmap, package, release_secrets, revisions_of, testdata,
};

const WAIT: Duration = Duration::from_secs(90);

fn field(cluster: &Cluster, args: &[&str], jsonpath: &str) -> Option<String> {
    let mut all: Vec<&str> = vec!["-n", "helm-e2e", "get"];
    all.extend_from_slice(args);
    let path = format!("jsonpath={jsonpath}");
    all.extend_from_slice(&["-o", &path]);
    let out = cluster.kubectl(&all);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The messages of the HelmChart's Events with `reason`.
fn chart_events(cluster: &Cluster, chart: &str, reason: &str) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={chart},reason={reason}"),
        "-o",
        "jsonpath={.items[*].message}",
    ])
}

fn operator_log(cluster: &Cluster) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "logs",
        "-l",
        "app.kubernetes.io/name=k3r-operators",
        "--tail=-1",
    ])
}

fn wait_condition(cluster: &Cluster, chart: &str, prefix: &str) -> String {
    cluster.eventually(&format!("{chart}: {prefix}"), WAIT, || {
        let status = condition(cluster, chart);
        status.starts_with(prefix).then_some(status)
    })
}

fn delete_chart(cluster: &Cluster, chart: &str) {
    cluster.ok(&[
        "-n",
        "kube-system",
        "delete",
        "helmchart",
        chart,
        "--wait=true",
        "--timeout=90s",
    ]);
}

pub fn helm_features(cluster: &Cluster) {
    let work = tempfile::tempdir().expect("tempdir");
    hooks(cluster, work.path());
    ownership(cluster, work.path());
    oci(cluster);
    bad_input(cluster, work.path());
    eprintln!("E2E: HelmChart hooks, ownership, OCI and bad input checked");
}

fn hooked_chart(content: &str, values: &str, timeout: &str) -> String {
    format!(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: hooked, namespace: kube-system}}\nspec:\n  targetNamespace: helm-e2e\n  failurePolicy: abort\n  timeout: {timeout}\n  chartContent: {content}\n  valuesContent: |\n    {values}\n"
    )
}

fn hooks(cluster: &Cluster, work: &std::path::Path) {
    let content = base64(&package("hooked", work));
    let started = std::time::Instant::now();
    cluster.apply(&hooked_chart(&content, "greeting: one", "60s"));
    let status = wait_condition(cluster, "hooked", "False|Installed|");
    eprintln!(
        "E2E: chart with pre/post-install hook Jobs installed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(status.contains("revision 1"), "{status}");
    // Weight -5 before weight 0, and the pre-install Job finished before
    // the release's own objects were created.
    let hook_cm = field(
        cluster,
        &["cm", "hooked-pre-install"],
        "{.metadata.creationTimestamp}",
    )
    .expect("the pre-install hook ConfigMap is kept");
    let job_created = field(
        cluster,
        &["job", "hooked-pre"],
        "{.metadata.creationTimestamp}",
    )
    .expect("the pre-install Job is kept (before-hook-creation)");
    let job_done = field(cluster, &["job", "hooked-pre"], "{.status.completionTime}")
        .expect("completion time");
    let main = field(cluster, &["cm", "hooked"], "{.metadata.creationTimestamp}")
        .expect("the release ConfigMap");
    assert!(hook_cm <= job_created, "{hook_cm} > {job_created}");
    assert!(
        !job_done.is_empty() && job_done <= main,
        "pre-install Job completed at {job_done:?}, release object created at {main}"
    );
    // Hook objects carry no release marks.
    assert_eq!(
        field(
            cluster,
            &["cm", "hooked-pre-install"],
            "{.metadata.annotations.meta\\.helm\\.sh/release-name}"
        )
        .as_deref(),
        Some("")
    );
    // hook-succeeded: the post-install Job ran to completion and is gone.
    assert!(field(cluster, &["job", "hooked-post"], "{.metadata.name}").is_none());
    let completed = cluster.ok(&[
        "-n",
        "helm-e2e",
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=hooked-post,reason=Completed",
        "-o",
        "name",
    ]);
    assert!(
        !completed.trim().is_empty(),
        "the post-install Job completed"
    );

    // A failing pre-upgrade hook: revision 2 failed, nothing upgraded.
    cluster.apply(&hooked_chart(
        &content,
        "greeting: two\n    upgradeHook: fail",
        "60s",
    ));
    let failed = cluster.eventually("the HookFailed event", WAIT, || {
        let messages = chart_events(cluster, "hooked", "HookFailed");
        (!messages.is_empty()).then_some(messages)
    });
    assert!(
        failed.contains("pre-upgrade hook hooked/templates/hook-jobs.yaml")
            && failed.contains("BackoffLimitExceeded"),
        "{failed}"
    );
    assert_eq!(
        configmap(cluster, "hooked", "{.data.greeting}").as_deref(),
        Some("one")
    );
    assert_eq!(
        revisions_of(cluster, "hooked"),
        [(1, "deployed".to_string()), (2, "failed".to_string())]
    );

    // A hanging hook stops at spec.timeout.
    cluster.apply(&hooked_chart(
        &content,
        "greeting: three\n    upgradeHook: hang",
        "8s",
    ));
    // Events of one reason on one object are aggregated (the first message
    // stays), so the cause is read from the operator's log.
    cluster.eventually("revision 3 failed", WAIT, || {
        let revisions = revisions_of(cluster, "hooked");
        (revisions.last() == Some(&(3, "failed".to_string()))).then_some(())
    });
    let timed_out = operator_log(cluster).lines().any(|l| {
        l.contains("reconcile failed") && l.contains("not finished within the timeout (8s)")
    });
    assert!(timed_out, "no hook timeout in the operator's log");
    assert_eq!(
        configmap(cluster, "hooked", "{.data.greeting}").as_deref(),
        Some("one")
    );

    // Uninstall runs the pre-delete hook; hook objects outlive the release.
    delete_chart(cluster, "hooked");
    assert!(configmap(cluster, "hooked", "{.metadata.name}").is_none());
    assert_eq!(
        configmap(cluster, "hooked-pre-delete", "{.data.revision}").as_deref(),
        Some("3")
    );
    cluster.ok(&[
        "-n",
        "helm-e2e",
        "delete",
        "job,cm",
        "hooked-pre",
        "--cascade=background",
        "--ignore-not-found",
    ]);
    cluster.ok(&[
        "-n",
        "helm-e2e",
        "delete",
        "cm",
        "hooked-pre-install",
        "hooked-pre-delete",
    ]);
}

fn greeter_chart(name: &str, content: &str, extra: &str) -> String {
    format!(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: {name}, namespace: kube-system}}\nspec:\n  targetNamespace: helm-e2e\n  chartContent: {content}\n  valuesContent: |\n    greeting: adopted\n{extra}"
    )
}

fn ownership(cluster: &Cluster, work: &std::path::Path) {
    cluster.ok(&[
        "-n",
        "helm-e2e",
        "create",
        "configmap",
        "adoptee",
        "--from-literal=greeting=mine",
    ]);
    let content = base64(&package("greeter", work));
    cluster.apply(&greeter_chart("adoptee", &content, ""));
    let status = wait_condition(cluster, "adoptee", "True|");
    assert!(
        status.starts_with("True|OwnershipConflict|")
            && status.contains(
                "ConfigMap \"adoptee\" in namespace \"helm-e2e\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\""
            ),
        "{status}"
    );
    assert_eq!(
        configmap(cluster, "adoptee", "{.data.greeting}").as_deref(),
        Some("mine"),
        "a conflicting object is left alone"
    );
    assert_eq!(release_secrets(cluster, "adoptee"), 0, "nothing recorded");
    cluster.apply(&greeter_chart(
        "adoptee",
        &content,
        "  takeOwnership: true\n",
    ));
    wait_condition(cluster, "adoptee", "False|Installed|");
    assert_eq!(
        configmap(
            cluster,
            "adoptee",
            "{.data.greeting} {.metadata.annotations.meta\\.helm\\.sh/release-name}"
        )
        .as_deref(),
        Some("adopted adoptee")
    );
    delete_chart(cluster, "adoptee");
    assert!(configmap(cluster, "adoptee", "{.metadata.name}").is_none());
}

fn oci(cluster: &Cluster) {
    let registry = k3r_helm_oracle::Registry::start(&cluster.node_ip()).expect("docker-registry");
    for version in ["0.1.0", "0.2.0"] {
        registry
            .push(&testdata().join("greeter"), version, "charts")
            .expect("real helm pushes the chart");
    }
    let chart = |extra: &str| {
        format!(
            "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: greeter-oci, namespace: kube-system}}\nspec:\n  chart: oci://{}/charts/greeter\n  version: \"~0.2\"\n  plainHTTP: true\n  targetNamespace: helm-e2e\n  valuesContent: |\n    greeting: from oci\n{extra}",
            registry.host
        )
    };
    cluster.apply(&chart(""));
    let status = wait_condition(cluster, "greeter-oci", "True|");
    assert!(
        status.starts_with("True|FetchFailed|") && status.contains("requires credentials"),
        "{status}"
    );
    cluster.ok(&[
        "-n",
        "kube-system",
        "create",
        "secret",
        "docker-registry",
        "greeter-oci-pull",
        &format!("--docker-server={}", registry.host),
        &format!("--docker-username={}", registry.username),
        &format!("--docker-password={}", registry.password),
    ]);
    let started = std::time::Instant::now();
    cluster.apply(&chart("  dockerRegistrySecret: {name: greeter-oci-pull}\n"));
    let status = wait_condition(cluster, "greeter-oci", "False|Installed|");
    eprintln!(
        "E2E: chart from an OCI registry installed {:.1} s after the credentials were added",
        started.elapsed().as_secs_f64()
    );
    assert!(status.contains("charts/greeter:0.2.0"), "{status}");
    assert_eq!(
        configmap(cluster, "greeter-oci", "{.data.greeting}").as_deref(),
        Some("from oci")
    );
    delete_chart(cluster, "greeter-oci");
    cluster.ok(&["-n", "kube-system", "delete", "secret", "greeter-oci-pull"]);
}

fn bad_input(cluster: &Cluster, work: &std::path::Path) {
    // An unreachable repository: FetchFailed, retried with growing delays.
    cluster.apply("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: unreachable, namespace: kube-system}\nspec:\n  repo: http://127.0.0.1:9/charts\n  chart: greeter\n  targetNamespace: helm-e2e\n",
    );
    let status = wait_condition(cluster, "unreachable", "True|");
    assert!(
        status.starts_with("True|FetchFailed|GET http://127.0.0.1:9/charts/index.yaml"),
        "{status}"
    );
    std::thread::sleep(Duration::from_secs(20));
    let logs = operator_log(cluster);
    let attempts: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("reconcile failed") && l.contains("unreachable"))
        .collect();
    assert!(
        (2..=4).contains(&attempts.len())
            && attempts[0].contains("retry_in=5s")
            && attempts[1].contains("retry_in=10s"),
        "attempts in about 25 s: {attempts:#?}"
    );
    delete_chart(cluster, "unreachable");

    // Values that are not YAML, then values the chart's schema refuses.
    let content = base64(&package("hooked", work));
    let chart = |values: &str| {
        format!(
            "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {{name: badvalues, namespace: kube-system}}\nspec:\n  targetNamespace: helm-e2e\n  chartContent: {content}\n  valuesContent: |\n    {values}\n"
        )
    };
    cluster.apply(&chart("greeting: [unclosed"));
    let status = wait_condition(cluster, "badvalues", "True|");
    assert!(
        status.starts_with("True|InvalidValues|HelmChart spec.valuesContent"),
        "{status}"
    );
    cluster.apply(&chart("greeting: 5"));
    let status = wait_condition(cluster, "badvalues", "True|RenderFailed|");
    assert!(
        status.contains("greeting") && status.contains("string"),
        "{status}"
    );
    assert!(configmap(cluster, "badvalues", "{.metadata.name}").is_none());
    assert_eq!(release_secrets(cluster, "badvalues"), 0);
    delete_chart(cluster, "badvalues");
}

//! The Plan controller on the three-node cluster, with SUC-shaped Plans
//! whose upgrade step is a busybox script (upgrading k3r itself is
//! another area): bad Plans (a channel that does not redirect among them)
//! are refused with a condition and touch nothing; a windowed, concurrency-2, cordon-and-drain Plan rolls over
//! all three nodes (asserted from the Jobs' times), labels them and leaves
//! none cordoned; a failing Plan stops at its first node, reports the
//! failure and releases the node; deleting a Plan mid-rollout leaves no
//! node cordoned.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::shared::Shared;

const NS: &str = "system-upgrade";
const CORDONED_BY: &str = "upgrade.k3r.io/cordoned-by";

fn json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&cluster.ok(&all)).expect("kubectl json")
}

fn plan_status(cluster: &Cluster, name: &str) -> Value {
    json(cluster, &["-n", NS, "get", "plan", name])["status"].clone()
}

fn condition(status: &Value, type_: &str) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null);
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

/// The Plan's Jobs: (node, created, completed) sorted by creation.
fn jobs_of(cluster: &Cluster, plan: &str) -> Vec<(String, Timestamp, Option<Timestamp>)> {
    let list = json(
        cluster,
        &[
            "-n",
            NS,
            "get",
            "jobs",
            "-l",
            &format!("upgrade.cattle.io/plan={plan}"),
        ],
    );
    let time = |v: &Value| v.as_str().and_then(|t| t.parse::<Timestamp>().ok());
    let mut jobs: Vec<_> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            (
                j["metadata"]["labels"]["upgrade.cattle.io/node"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                time(&j["metadata"]["creationTimestamp"]).expect("created"),
                time(&j["status"]["completionTime"]),
            )
        })
        .collect();
    jobs.sort_by_key(|j| j.1);
    jobs
}

/// Nodes that are unschedulable, with who cordoned them.
fn cordoned(cluster: &Cluster) -> Vec<String> {
    json(cluster, &["get", "nodes"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["spec"]["unschedulable"] == true)
        .map(|n| {
            format!(
                "{} ({})",
                n["metadata"]["name"].as_str().unwrap_or_default(),
                n["metadata"]["annotations"][CORDONED_BY]
                    .as_str()
                    .unwrap_or("-")
            )
        })
        .collect()
}

fn plan_yaml(name: &str, spec: &str) -> String {
    format!(
        r#"apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata: {{name: {name}, namespace: {NS}}}
spec:
  serviceAccountName: system-upgrade
  nodeSelector: {{matchExpressions: [{{key: kubernetes.io/hostname, operator: Exists}}]}}
{spec}"#
    )
}

fn script(command: &str) -> String {
    format!(
        r#"  upgrade:
    image: docker.io/library/busybox:k3r-e2e
    command: [sh, -c]
    args: [{command:?}]"#
    )
}

pub fn plans(shared: &mut Shared) {
    crate::agents::ensure_joined(shared);
    let cluster = &shared.cluster;
    cluster.eventually(
        "the system-upgrade account",
        Duration::from_secs(60),
        || {
            cluster
                .kubectl(&["-n", NS, "get", "serviceaccount", "system-upgrade"])
                .status
                .success()
                .then_some(())
        },
    );
    bad_plans_touch_nothing(cluster);
    window_concurrency_and_drain(cluster);
    a_failing_plan_stops_and_releases_its_node(cluster);
    deleting_a_plan_mid_rollout_uncordons(cluster);
    assert_eq!(cordoned(cluster), Vec::<String>::new());
}

/// An HTTP server on the host that answers 200 to everything: a channel
/// URL that does not redirect. Stops when dropped.
struct NotAChannel {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NotAChannel {
    /// Listening on the server node's address, which pods reach.
    fn start(cluster: &Cluster) -> Self {
        let ip = cluster.ok(&[
            "get",
            "nodes",
            "-l",
            "node-role.kubernetes.io/control-plane=true",
            "-o",
            "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
        ]);
        let listener = TcpListener::bind((ip.trim(), 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!(
            "http://{}/v1-release/channels/stable",
            listener.local_addr().expect("address")
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let mut buf = [0u8; 4096];
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Self {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for NotAChannel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bad_plans_touch_nothing(cluster: &Cluster) {
    let channel = NotAChannel::start(cluster);
    let cases = [
        (
            "bad-secret",
            format!(
                "  version: v1\n  secrets: [{{name: nowhere}}]\n{}",
                script("true")
            ),
            "secrets \"nowhere\" not found",
        ),
        (
            "bad-window",
            format!(
                "  version: v1\n  window: {{days: [monday], startTime: \"04:00\", endTime: \"02:00\"}}\n{}",
                script("true")
            ),
            "the window never opens",
        ),
        (
            "bad-version",
            format!("  version: \"v1 final\"\n{}", script("true")),
            "not usable as an image tag",
        ),
        (
            "bad-image",
            "  version: v1\n  upgrade: {command: [sh]}".to_string(),
            "spec.upgrade.image is required",
        ),
        (
            "bad-selector",
            format!(
                "  version: v1\n  drain: {{podSelector: {{matchExpressions: [{{key: app, operator: In}}]}}}}\n{}",
                script("true")
            ),
            "values set can't be empty",
        ),
        (
            "bad-channel",
            format!("  channel: {}\n{}", channel.url, script("true")),
            "does not redirect to a version",
        ),
    ];
    for (name, spec, _) in &cases {
        cluster.apply(&plan_yaml(name, spec));
    }
    for (name, _, message) in &cases {
        let (status, reason, text) =
            cluster.eventually(&format!("{name} refused"), Duration::from_secs(60), || {
                let c = condition(&plan_status(cluster, name), "Validated");
                (!c.0.is_empty()).then_some(c)
            });
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "Error"),
            "{name}"
        );
        assert!(text.contains(message), "{name}: {text}");
        let events = cluster.ok(&[
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name},reason=ValidateFailed"),
            "-o",
            "name",
        ]);
        assert!(!events.trim().is_empty(), "{name}: a ValidateFailed event");
        assert!(jobs_of(cluster, name).is_empty(), "{name}: no Job");
    }
    assert_eq!(cordoned(cluster), Vec::<String>::new());
    for (name, _, _) in &cases {
        cluster.ok(&["-n", NS, "delete", "plan", name, "--timeout=60s"]);
    }
}

/// A window opening at the next whole minute (in a zone where that is not
/// near midnight, as windows do not wrap), today only.
fn window_from_next_minute() -> (String, Timestamp) {
    let now = Timestamp::now();
    let zone_name = if now.to_zoned(TimeZone::UTC).hour() >= 22 {
        "Etc/GMT+6"
    } else {
        "UTC"
    };
    let zone = TimeZone::get(zone_name).expect("zone");
    let local = now.to_zoned(zone);
    let mut start = local
        .with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .expect("minute");
    start = start.checked_add(1.minute()).expect("next minute");
    if start.timestamp().duration_since(now).as_secs() < 15 {
        start = start.checked_add(1.minute()).expect("a minute more");
    }
    let end = start.checked_add(20.minutes()).expect("end");
    let day = format!("{:?}", start.weekday()).to_lowercase();
    let spec = format!(
        "  window: {{days: [{day}], startTime: \"{:02}:{:02}\", endTime: \"{:02}:{:02}\", timeZone: {zone_name}}}",
        start.hour(),
        start.minute(),
        end.hour(),
        end.minute()
    );
    (spec, start.timestamp())
}

fn window_concurrency_and_drain(cluster: &Cluster) {
    // A workload the drain must move, pinned away from nothing.
    cluster.apply(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: drain-me, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: drain-me}}
  template:
    metadata: {labels: {app: drain-me}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: docker.io/library/busybox:k3r-e2e, imagePullPolicy: Never, command: [sleep, "3600"]}
"#,
    );
    cluster.ok(&["rollout", "status", "deployment/drain-me", "--timeout=120s"]);
    let first_pods = cluster.ok(&["get", "pods", "-l", "app=drain-me", "-o", "name"]);
    let (window, opens) = window_from_next_minute();
    let spec = format!(
        "  version: v1.0.0+e2e\n  concurrency: 2\n{window}\n  drain: {{podSelector: {{matchLabels: {{app: drain-me}}}}, timeout: 2m}}\n  postCompleteLabels: {{e2e.k3r.io/applied: \"$(LATEST_VERSION)\"}}\n{}",
        script("test -d /host/etc && sleep 3")
    );
    cluster.apply(&plan_yaml("rolling", &spec));
    let (_, reason, _) = cluster.eventually("the Plan to wait", Duration::from_secs(60), || {
        let c = condition(&plan_status(cluster, "rolling"), "Complete");
        (c.1 == "Waiting").then_some(c)
    });
    assert_eq!(reason, "Waiting");
    let status = cluster.eventually("all three nodes upgraded", Duration::from_secs(300), || {
        let status = plan_status(cluster, "rolling");
        (condition(&status, "Complete").0 == "True").then_some(status)
    });
    assert_eq!(status["nodesDone"], 3, "{status}");
    assert_eq!(status["latestVersion"], "v1.0.0-e2e");
    let hash = status["latestHash"].as_str().expect("hash").to_string();
    let jobs = jobs_of(cluster, "rolling");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    for (node, created, _) in &jobs {
        assert!(
            *created >= opens,
            "{node}'s Job created at {created}, before the window opened at {opens}"
        );
    }
    // Concurrency 2: the third Job only once one of the first two finished.
    let first_done = jobs[..2]
        .iter()
        .filter_map(|j| j.2)
        .min()
        .expect("completion times");
    assert!(
        jobs[2].1 >= first_done.checked_sub(1.second()).expect("time"),
        "{jobs:?}"
    );
    assert!(
        jobs[1].1 < jobs[0].2.expect("done"),
        "two ran at once: {jobs:?}"
    );
    for node in json(cluster, &["get", "nodes"])["items"]
        .as_array()
        .expect("nodes")
    {
        let labels = &node["metadata"]["labels"];
        assert_eq!(
            labels["plan.upgrade.cattle.io/rolling"],
            hash.as_str(),
            "{node}"
        );
        assert_eq!(labels["e2e.k3r.io/applied"], "v1.0.0-e2e");
    }
    // The drain moved every original pod (each node was drained in turn).
    let now_pods = cluster.ok(&["get", "pods", "-l", "app=drain-me", "-o", "name"]);
    for pod in first_pods.lines() {
        assert!(!now_pods.contains(pod), "{pod} was never evicted");
    }
    let printed = cluster.ok(&["get", "plans", "-A"]);
    let mut lines = printed.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "VERSION",
            "COMPLETE",
            "DONE",
            "APPLYING",
            "FAILED",
            "LAST",
            "ERROR",
            "AGE"
        ]
    );
    let row: Vec<&str> = lines
        .find(|l| l.split_whitespace().nth(1) == Some("rolling"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // No last error: the column is blank, so AGE follows FAILED.
    assert_eq!(row.len(), 8, "{printed}");
    assert_eq!(
        row[2..7],
        ["v1.0.0-e2e", "True", "3", "0", "0"],
        "{printed}"
    );
    cluster.ok(&["-n", NS, "delete", "plan", "rolling", "--timeout=60s"]);
    cluster.ok(&["delete", "deployment", "drain-me"]);
}

fn a_failing_plan_stops_and_releases_its_node(cluster: &Cluster) {
    let spec = format!(
        "  version: v1\n  concurrency: 1\n  cordon: true\n{}",
        script("exit 3")
    );
    cluster.apply(&plan_yaml("failing", &spec));
    let status = cluster.eventually("the Job failure reported", Duration::from_secs(240), || {
        let status = plan_status(cluster, "failing");
        (condition(&status, "Complete").1 == "JobFailed").then_some(status)
    });
    let (_, _, message) = condition(&status, "Complete");
    assert!(message.contains("BackoffLimitExceeded"), "{message}");
    assert_eq!(status["nodesFailed"], 1);
    assert_eq!(status["lastError"].as_str(), Some(message.as_str()));
    let node = status["applying"][0]
        .as_str()
        .expect("the failed node")
        .to_string();
    assert!(message.contains(&format!("on Node {node}")), "{message}");
    cluster.eventually(
        "the failed node uncordoned",
        Duration::from_secs(30),
        || cordoned(cluster).is_empty().then_some(()),
    );
    // It stops there: one Job, one node, for as long as we watch.
    std::thread::sleep(Duration::from_secs(5));
    let jobs = jobs_of(cluster, "failing");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, node);
    let events = cluster.ok(&[
        "-n",
        NS,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=failing,reason=JobFailed",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a JobFailed event");
    cluster.ok(&["-n", NS, "delete", "plan", "failing", "--timeout=60s"]);
}

fn deleting_a_plan_mid_rollout_uncordons(cluster: &Cluster) {
    let spec = format!(
        "  version: v1\n  concurrency: 1\n  cordon: true\n{}",
        script("sleep 600")
    );
    cluster.apply(&plan_yaml("deleted", &spec));
    cluster.eventually(
        "a node cordoned by the Plan and its Job running",
        Duration::from_secs(120),
        || {
            let cordon = cordoned(cluster);
            let running = json(
                cluster,
                &[
                    "-n",
                    NS,
                    "get",
                    "pods",
                    "-l",
                    "upgrade.cattle.io/plan=deleted",
                ],
            )["items"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["status"]["phase"] == "Running"));
            (cordon.iter().any(|c| c.contains("system-upgrade/deleted")) && running).then_some(())
        },
    );
    cluster.ok(&["-n", NS, "delete", "plan", "deleted", "--timeout=60s"]);
    assert_eq!(
        cordoned(cluster),
        Vec::<String>::new(),
        "no node left cordoned"
    );
    cluster.eventually("its Job gone", Duration::from_secs(60), || {
        jobs_of(cluster, "deleted").is_empty().then_some(())
    });
}

//! NetworkPolicy on the three-node cluster: a table of cases, each a set
//! of policies (and label changes) applied live to the running cluster,
//! then every listed connection between pods on different nodes and
//! namespaces checked — allowed ones answer, denied ones time out. Then
//! bad input, the node's own traffic, and `--disable-network-policy`
//! removing every node's table.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, PROBE_DNS_CONTAINER, PROBE_DNS_VOLUME, probe_dns_config};
use crate::shared::Shared;

/// How long a case may take to be enforced and checked (enforcement
/// itself takes about 0.25 s; a round of checks about 3 s).
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// TCP 8080 ("http") and 8081 ("alt") on every pod; UDP 5353 ("dns") on
/// a/web-s only (CoreDNS answering probe.test).
const UDP: u16 = 5353;

fn workloads(server: &str) -> String {
    let pod = |ns: &str, name: &str, app: &str, node: &str, dns: bool| {
        let dns_container = if dns {
            format!("\n  - {PROBE_DNS_CONTAINER}\n  volumes: [{PROBE_DNS_VOLUME}]")
        } else {
            String::new()
        };
        format!(
            r#"
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: docker.io/library/busybox:k3r-e2e
    imagePullPolicy: Never
    command: [sh, -c, "mkdir -p /w && echo ok > /w/index.html && httpd -p 8080 -h /w && exec httpd -f -p 8081 -h /w"]
    ports: [{{name: http, containerPort: 8080}}, {{name: alt, containerPort: 8081}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 2}}{dns_container}"#
        )
    };
    let mut yaml = String::from(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: np-a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: np-b, labels: {team: b}}
---
apiVersion: v1
kind: Namespace
metadata: {name: np-c, labels: {team: c}}
"#,
    );
    yaml.push_str("---");
    yaml.push_str(&probe_dns_config("np-a"));
    for (ns, name, app, node, dns) in [
        ("np-a", "web-s", "web", server, true),
        ("np-a", "web-1", "web", "e2e-agent-1", false),
        ("np-a", "client", "client", "e2e-agent-2", false),
        ("np-a", "other", "other", "e2e-agent-1", false),
        ("np-b", "client", "client", "e2e-agent-1", false),
        ("np-b", "other", "other", server, false),
        ("np-c", "client", "client", server, false),
    ] {
        yaml.push_str(&pod(ns, name, app, node, dns));
    }
    yaml
}

/// Where a connection starts: a pod ("a/client" is np-a/client) or a
/// node's own network namespace.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Pod(&'static str),
    ServerHost,
    AgentHost(usize),
}

/// Runs a command in agent `i`'s network namespace; its stdout.
type InAgent<'a> = &'a (dyn Fn(usize, &[&str]) -> String + Sync);

/// (from, to pod, port, allowed)
type Expectation = (Peer, &'static str, u16, bool);

struct Case {
    name: &'static str,
    /// The policies in force for this case, each with
    /// `metadata: {name: N, namespace: NS}`; others are deleted.
    policies: &'static str,
    /// kubectl commands run after the policies are applied.
    then: &'static [&'static [&'static str]],
    expect: &'static [Expectation],
}

use Peer::{AgentHost, Pod, ServerHost};

const A_CLIENT: Peer = Pod("a/client");
const A_OTHER: Peer = Pod("a/other");
const B_CLIENT: Peer = Pod("b/client");
const B_OTHER: Peer = Pod("b/other");
const C_CLIENT: Peer = Pod("c/client");
const WEB_S: Peer = Pod("a/web-s");

fn namespace_of(pod: &str) -> String {
    format!("np-{}", pod.split('/').next().unwrap_or_default())
}

/// Connects as `from` to `ip:port`: an HTTP GET of "ok" (TCP) or a DNS
/// query answered with 10.1.2.3 (UDP), within 2 s.
fn connects(cluster: &Cluster, shared_agent: InAgent<'_>, from: Peer, ip: &str, port: u16) -> bool {
    let url = format!("http://{ip}:{port}/");
    let port_arg = format!("-port={port}");
    match from {
        Pod(pod) => {
            let ns = namespace_of(pod);
            let name = pod.split('/').nth(1).unwrap_or_default();
            // (Debian's static busybox crashes in wget -T and timeout; nc
            // -w bounds the connect.)
            let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port}");
            let mut args = vec!["exec", "-n", &ns, name, "-c", "web", "--"];
            let probe: Vec<&str> = if port == UDP {
                vec![
                    "nslookup",
                    &port_arg,
                    "-timeout=2",
                    "-retry=1",
                    "probe.test",
                    ip,
                ]
            } else {
                vec!["sh", "-c", &get]
            };
            args.extend(probe);
            let out = cluster.kubectl(&args);
            let text = String::from_utf8_lossy(&out.stdout);
            if port == UDP {
                text.contains("10.1.2.3")
            } else {
                text.trim_end().ends_with("\nok")
            }
        }
        ServerHost => {
            let out = Command::new("curl")
                .args(["-s", "-m", "2", &url])
                .output()
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).trim() == "ok"
        }
        AgentHost(i) => shared_agent(i, &["curl", "-s", "-m", "2", &url]).trim() == "ok",
    }
}

const DENY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: np-a}
spec: {podSelector: {}, policyTypes: [Ingress]}
"#;

/// An `allow` policy for np-a's web pods with this ingress rule, beside
/// the default deny.
macro_rules! allow_web {
    ($ingress:literal) => {
        concat!(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: np-a}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: ["#,
            $ingress,
            "]\n"
        )
    };
}

/// An `out` egress policy for np-a's client pods with these rules.
macro_rules! egress_client {
    ($egress:literal) => {
        concat!(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress: ["#,
            $egress,
            "]\n"
        )
    };
}

const CASES: &[Case] = &[
    Case {
        name: "no policy: everything connects",
        policies: "",
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, true),
            (B_CLIENT, "a/web-1", 8081, true),
            (C_CLIENT, "a/web-s", UDP, true),
        ],
    },
    Case {
        name: "default deny ingress isolates a namespace's pods on every node, not their egress",
        policies: DENY,
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, false),
            (B_CLIENT, "a/web-1", 8080, false),
            (C_CLIENT, "a/web-s", UDP, false),
            (WEB_S, "b/client", 8080, true),
            (B_CLIENT, "c/client", 8080, true),
        ],
    },
    Case {
        name: "a podSelector peer admits its own namespace's matching pods only",
        policies: allow_web!("{from: [{podSelector: {matchLabels: {app: client}}}]}"),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, true),
            (A_CLIENT, "a/web-1", 8081, true),
            (A_OTHER, "a/web-s", 8080, false),
            (B_CLIENT, "a/web-1", 8080, false),
        ],
    },
    Case {
        name: "a namespaceSelector peer admits every pod of the labelled namespaces (policy changed live)",
        policies: allow_web!("{from: [{namespaceSelector: {matchLabels: {team: b}}}]}"),
        then: &[],
        expect: &[
            (B_CLIENT, "a/web-1", 8080, true),
            (B_OTHER, "a/web-s", 8080, true),
            (C_CLIENT, "a/web-s", 8080, false),
            (A_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "namespaceSelector and podSelector in one peer must both match",
        policies: allow_web!(
            "{from: [{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchLabels: {app: client}}}]}"
        ),
        then: &[],
        expect: &[
            (B_CLIENT, "a/web-s", 8080, true),
            (B_OTHER, "a/web-s", 8080, false),
            (A_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "two peers of one rule: either admits",
        policies: allow_web!(
            "{from: [{namespaceSelector: {matchLabels: {team: c}}}, {podSelector: {matchLabels: {app: client}}}]}"
        ),
        then: &[],
        expect: &[
            (C_CLIENT, "a/web-1", 8080, true),
            (A_CLIENT, "a/web-1", 8080, true),
            (A_OTHER, "a/web-1", 8080, false),
            (B_CLIENT, "a/web-1", 8080, false),
        ],
    },
    Case {
        name: "a port with its protocol admits that port only, from anywhere",
        policies: allow_web!("{ports: [{protocol: TCP, port: 8080}]}"),
        then: &[],
        expect: &[
            (A_OTHER, "a/web-s", 8080, true),
            (B_OTHER, "a/web-s", 8080, true),
            (A_OTHER, "a/web-s", 8081, false),
            (C_CLIENT, "a/web-s", UDP, false),
        ],
    },
    Case {
        name: "endPort admits a range",
        policies: allow_web!("{ports: [{port: 8081, endPort: 8090}]}"),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-1", 8081, true),
            (A_CLIENT, "a/web-1", 8080, false),
        ],
    },
    Case {
        name: "a named port resolves on the target pod",
        policies: allow_web!("{ports: [{port: http}]}"),
        then: &[],
        expect: &[
            (B_CLIENT, "a/web-s", 8080, true),
            (B_CLIENT, "a/web-s", 8081, false),
        ],
    },
    Case {
        name: "UDP by named port, TCP not",
        policies: allow_web!("{ports: [{protocol: UDP, port: dns}]}"),
        then: &[],
        expect: &[
            (C_CLIENT, "a/web-s", UDP, true),
            (A_CLIENT, "a/web-s", UDP, true),
            (C_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "ipBlock with except: the cluster CIDR less one node's pod CIDR",
        policies: allow_web!(
            "{from: [{ipBlock: {cidr: 10.42.0.0/16, except: [\"{cidr:e2e-agent-2}\"]}}]}"
        ),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, false),
            (B_CLIENT, "a/web-s", 8080, true),
            (C_CLIENT, "a/web-1", 8080, true),
        ],
    },
    Case {
        name: "an ipBlock changed live to that node's pod CIDR alone",
        policies: allow_web!("{from: [{ipBlock: {cidr: \"{cidr:e2e-agent-2}\"}}]}"),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, true),
            (B_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "default deny egress stops a pod's connections, not connections to it",
        policies: egress_client!(""),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, false),
            (A_CLIENT, "b/client", 8080, false),
            (A_OTHER, "b/client", 8080, true),
            (B_CLIENT, "a/client", 8080, true),
        ],
    },
    Case {
        name: "egress to a namespace on one port",
        policies: egress_client!(
            "{to: [{namespaceSelector: {matchLabels: {team: b}}}], ports: [{port: 8080}]}"
        ),
        then: &[],
        expect: &[
            (A_CLIENT, "b/client", 8080, true),
            (A_CLIENT, "b/other", 8080, true),
            (A_CLIENT, "b/client", 8081, false),
            (A_CLIENT, "c/client", 8080, false),
            (A_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "egress to an ipBlock of one pod",
        policies: egress_client!("{to: [{ipBlock: {cidr: \"{ip:c/client}/32\"}}]}"),
        then: &[],
        expect: &[
            (A_CLIENT, "c/client", 8080, true),
            (A_CLIENT, "b/client", 8080, false),
        ],
    },
    Case {
        name: "egress to a named port resolves on each destination",
        policies: egress_client!(
            "{to: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: http}]}"
        ),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-1", 8080, true),
            (A_CLIENT, "a/web-s", 8080, true),
            (A_CLIENT, "a/web-s", 8081, false),
            (A_CLIENT, "b/client", 8080, false),
        ],
    },
    Case {
        name: "ingress and egress policies together: both must allow",
        policies: r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow, namespace: np-a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]
"#,
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-1", 8080, true),
            (A_OTHER, "a/web-1", 8080, false),
            (A_CLIENT, "b/client", 8080, false),
            (C_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "a pod relabelled live becomes a peer",
        policies: allow_web!("{from: [{podSelector: {matchLabels: {app: client}}}]}"),
        then: &[&[
            "-n",
            "np-a",
            "label",
            "pod",
            "other",
            "app=client",
            "--overwrite",
        ]],
        expect: &[
            (A_OTHER, "a/web-s", 8080, true),
            (B_CLIENT, "a/web-s", 8080, false),
        ],
    },
    Case {
        name: "relabelled back, it is not",
        policies: allow_web!("{from: [{podSelector: {matchLabels: {app: client}}}]}"),
        then: &[&[
            "-n",
            "np-a",
            "label",
            "pod",
            "other",
            "app=other",
            "--overwrite",
        ]],
        expect: &[
            (A_OTHER, "a/web-s", 8080, false),
            (A_CLIENT, "a/web-s", 8080, true),
        ],
    },
    Case {
        name: "a namespace relabelled live admits its pods",
        policies: allow_web!("{from: [{namespaceSelector: {matchLabels: {team: b}}}]}"),
        then: &[&["label", "namespace", "np-c", "team=b", "--overwrite"]],
        expect: &[
            (C_CLIENT, "a/web-s", 8080, true),
            (B_CLIENT, "a/web-s", 8080, true),
        ],
    },
    Case {
        name: "relabelled back, it does not",
        policies: allow_web!("{from: [{namespaceSelector: {matchLabels: {team: b}}}]}"),
        then: &[&["label", "namespace", "np-c", "team=c", "--overwrite"]],
        expect: &[
            (C_CLIENT, "a/web-s", 8080, false),
            (B_CLIENT, "a/web-s", 8080, true),
        ],
    },
    Case {
        name: "a node's own traffic (and host-network pods) reaches its pods through a default deny",
        policies: r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: np-a}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
"#,
        then: &[],
        expect: &[
            (ServerHost, "a/web-s", 8080, true),
            (AgentHost(1), "a/web-1", 8080, true),
            (A_CLIENT, "a/web-s", 8080, false),
            (WEB_S, "b/client", 8080, false),
        ],
    },
    Case {
        name: "every policy removed: everything connects again",
        policies: "",
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, true),
            (B_CLIENT, "a/web-1", 8081, true),
            (C_CLIENT, "a/web-s", UDP, true),
            (WEB_S, "b/client", 8080, true),
        ],
    },
];

/// The pods' IPs by "a/client"-style name.
fn pod_ips(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut ips = BTreeMap::new();
    for ns in ["np-a", "np-b", "np-c"] {
        let out = cluster.ok(&[
            "-n",
            ns,
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}",
        ]);
        for line in out.lines() {
            if let Some((name, ip)) = line.split_once(' ') {
                ips.insert(format!("{}/{name}", &ns[3..]), ip.to_string());
            }
        }
    }
    ips
}

/// A case's YAML with `{ip:<pod>}` and `{cidr:<node>}` filled in.
fn fill(yaml: &str, ips: &BTreeMap<String, String>, cidrs: &BTreeMap<String, String>) -> String {
    let mut text = yaml.to_string();
    for (pod, ip) in ips {
        text = text.replace(&format!("{{ip:{pod}}}"), ip);
    }
    for (node, cidr) in cidrs {
        text = text.replace(&format!("{{cidr:{node}}}"), cidr);
    }
    text
}

/// Each node's pod CIDR by node name.
fn pod_cidrs(cluster: &Cluster) -> BTreeMap<String, String> {
    cluster
        .ok(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR}{\"\\n\"}{end}",
        ])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect()
}

/// The (namespace, name) of every policy in a case's YAML.
fn policy_names(yaml: &str) -> BTreeSet<(String, String)> {
    yaml.lines()
        .filter_map(|l| l.strip_prefix("metadata: {name: "))
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(", namespace: ")?;
            Some((rest.trim_end_matches('}').to_string(), name.to_string()))
        })
        .collect()
}

fn existing_policies(cluster: &Cluster) -> BTreeSet<(String, String)> {
    cluster
        .ok(&[
            "get",
            "networkpolicies",
            "-A",
            "-o",
            "jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{\"\\n\"}{end}",
        ])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(ns, _)| ns.starts_with("np-"))
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .collect()
}

/// Applies `case`'s policies (changing, adding and deleting), runs its
/// commands, and waits until every expectation holds at once; returns the
/// seconds from the change to that (checks included).
fn run_case(
    cluster: &Cluster,
    agent: InAgent<'_>,
    ips: &BTreeMap<String, String>,
    cidrs: &BTreeMap<String, String>,
    case: &Case,
    timeout: Duration,
) -> f64 {
    let started = Instant::now();
    let policies = fill(case.policies, ips, cidrs);
    let wanted = policy_names(&policies);
    if !policies.trim().is_empty() {
        cluster.apply(&policies);
    }
    for (ns, name) in existing_policies(cluster).difference(&wanted) {
        cluster.ok(&["-n", ns, "delete", "networkpolicy", name, "--wait=false"]);
    }
    for command in case.then {
        cluster.ok(command);
    }
    let deadline = started + timeout;
    loop {
        let wrong: Vec<String> = std::thread::scope(|scope| {
            let checks: Vec<_> = case
                .expect
                .iter()
                .map(|&(from, to, port, allowed)| {
                    let ip = ips.get(to).unwrap_or_else(|| panic!("no pod {to}")).clone();
                    scope.spawn(move || {
                        let got = connects(cluster, agent, from, &ip, port);
                        (got != allowed).then(|| {
                            format!(
                                "{from:?} -> {to}:{port} {}",
                                if allowed { "refused" } else { "connected" }
                            )
                        })
                    })
                })
                .collect();
            checks
                .into_iter()
                .filter_map(|c| c.join().expect("check thread"))
                .collect()
        });
        if wrong.is_empty() {
            return started.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            // What the enforcers said, besides the cluster's state.
            let logs = cluster.kubectl(&[
                "-n",
                "kube-system",
                "logs",
                "-l",
                "app.kubernetes.io/name=k3r-node-operators",
                "--prefix",
                "--tail=40",
            ]);
            panic!(
                "case {:?}: after {timeout:?} still {wrong:?}\n{}\n--- node operators' logs\n{}{}",
                case.name,
                cluster.diagnosis(),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
    }
}

pub fn netpol(shared: &mut Shared) {
    crate::agents::ensure_joined(shared);
    let ips = cases(shared);
    assert!(
        tables_are(shared, true),
        "every node has the inet k3r table"
    );
    disable_and_restore(shared, &ips);
    for ns in ["np-a", "np-b", "np-c"] {
        shared
            .cluster
            .ok(&["delete", "namespace", ns, "--wait=false"]);
    }
}

/// The pods, the table of cases and the bad input; returns the pods' IPs.
fn cases(shared: &Shared) -> BTreeMap<String, String> {
    let multi = shared.multi.as_ref().expect("agents joined");
    let cluster = &shared.cluster;
    let agent = |i: usize, command: &[&str]| {
        String::from_utf8_lossy(&multi.in_agent(i, command).stdout).into_owned()
    };
    let server = cluster.server_node();
    cluster.apply(&workloads(&server));
    // Every node's enforcer running.
    cluster.wait_node_operators();
    for ns in ["np-a", "np-b", "np-c"] {
        cluster.ok(&[
            "-n",
            ns,
            "wait",
            "--for=condition=Ready",
            "pod",
            "--all",
            "--timeout=180s",
        ]);
    }
    let ips = pod_ips(cluster);
    let cidrs = pod_cidrs(cluster);
    // Every node's enforcer live before the cases: a default deny seen on
    // all three nodes within a minute, though the earlier areas restarted
    // the server twice (enforcers took up to five minutes to catch up
    // while kube-runtime's joint watch backoff was on — see
    // docs/network-policy.md).
    let warm_up = Case {
        name: "warm-up: a default deny enforced on every node",
        policies: DENY,
        then: &[],
        expect: &[
            (B_CLIENT, "a/web-s", 8080, false),
            (B_CLIENT, "a/web-1", 8080, false),
            (B_OTHER, "a/client", 8080, false),
        ],
    };
    let seconds = run_case(
        cluster,
        &agent,
        &ips,
        &cidrs,
        &warm_up,
        Duration::from_secs(60),
    );
    eprintln!("E2E: netpol: every node enforcing after {seconds:.1} s");
    for (index, case) in CASES.iter().enumerate() {
        let seconds = run_case(cluster, &agent, &ips, &cidrs, case, CASE_TIMEOUT);
        eprintln!(
            "E2E: netpol case {:2} enforced and checked in {seconds:.1} s: {}",
            index + 1,
            case.name
        );
    }
    for target in ["a/web-1", "a/web-s"] {
        let seconds = enforcement_latency(cluster, &ips[target]);
        eprintln!(
            "E2E: netpol: a deny of {target} in effect {seconds:.2} s after kubectl apply began"
        );
    }
    bad_input(cluster, &agent, &ips, &cidrs);
    ips
}

/// From `kubectl apply` of a default deny to the first refused connection
/// of a client looping on new connections to `ip` (a/client, on another
/// node than both targets); then the deny is removed again.
fn enforcement_latency(cluster: &Cluster, ip: &str) -> f64 {
    const NC_TIMEOUT: f64 = 1.0;
    let script = format!(
        // (No grep in the image: the shell matches the body.)
        "while r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {ip} 8080); \
         case \"$r\" in *ok) true ;; *) false ;; esac; do :; done"
    );
    let mut client = cluster
        .kubectl_command(&[
            "exec", "-n", "np-a", "client", "-c", "web", "--", "sh", "-c", &script,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl exec");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        client.try_wait().expect("client").is_none(),
        "the client loop stopped before any policy"
    );
    let started = Instant::now();
    cluster.apply(DENY);
    client.wait().expect("client loop");
    // The failed connection's own wait is not enforcement time.
    let seconds = (started.elapsed().as_secs_f64() - NC_TIMEOUT).max(0.0);
    cluster.ok(&["-n", "np-a", "delete", "networkpolicy", "deny"]);
    cluster.eventually("the deny lifted", Duration::from_secs(30), || {
        let out = cluster.kubectl(&[
            "exec",
            "-n",
            "np-a",
            "client",
            "-c",
            "web",
            "--",
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {ip} 8080"),
        ]);
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .ends_with("\nok")
            .then_some(())
    });
    seconds
}

/// Whether every node's network namespace has (or lacks) the table.
fn tables_are(shared: &Shared, present: bool) -> bool {
    let listed = |out: std::process::Output| out.status.success();
    let server = listed(
        Command::new("nft")
            .args(["list", "table", "inet", "k3r"])
            .output()
            .expect("nft"),
    );
    let multi = shared.multi.as_ref().expect("agents joined");
    let agents =
        (1..=2).map(|i| listed(multi.in_agent(i, &["nft", "list", "table", "inet", "k3r"])));
    std::iter::once(server).chain(agents).all(|p| p == present)
}

/// `--disable-network-policy`: with the server restarted with it, every
/// node's table goes and a deny policy denies nothing; restarted without
/// it, the table and the policy's effect return. (The check runs between
/// the two agents' pods: the server's pods restart with it.)
fn disable_and_restore(shared: &mut Shared, ips: &BTreeMap<String, String>) {
    let web_1 = ips.get("a/web-1").expect("a/web-1's IP").clone();
    let denied = |shared: &Shared| {
        let multi = shared.multi.as_ref().expect("agents joined");
        let agent = |i: usize, command: &[&str]| {
            String::from_utf8_lossy(&multi.in_agent(i, command).stdout).into_owned()
        };
        !connects(&shared.cluster, &agent, A_CLIENT, &web_1, 8080)
    };
    shared.cluster.apply(DENY);
    shared
        .cluster
        .eventually("the default deny in force", Duration::from_secs(30), || {
            denied(shared).then_some(())
        });
    let seconds = shared.cluster.restart(&["--disable-network-policy"]);
    eprintln!("E2E: netpol: server restarted with --disable-network-policy in {seconds:.1} s");
    let started = Instant::now();
    shared.cluster.eventually(
        "every node's inet k3r table removed",
        Duration::from_secs(180),
        || tables_are(shared, false).then_some(()),
    );
    shared.cluster.eventually(
        "the deny policy no longer enforced",
        Duration::from_secs(30),
        || (!denied(shared)).then_some(()),
    );
    eprintln!(
        "E2E: netpol: disabled, every table gone in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let seconds = shared.cluster.restart(&[]);
    eprintln!("E2E: netpol: server restarted without the flag in {seconds:.1} s");
    shared.cluster.eventually(
        "every node's inet k3r table back",
        Duration::from_secs(180),
        || tables_are(shared, true).then_some(()),
    );
    shared
        .cluster
        .eventually("the deny enforced again", Duration::from_secs(30), || {
            denied(shared).then_some(())
        });
}

/// Bad input: a policy whose namespaceSelector selects no namespace is
/// reported by an Event and allows nothing; a malformed policy is refused
/// by the API server with the field named, and nothing changes.
fn bad_input(
    cluster: &Cluster,
    agent: InAgent<'_>,
    ips: &BTreeMap<String, String>,
    cidrs: &BTreeMap<String, String>,
) {
    let missing = Case {
        name: "a peer naming a missing namespace allows nothing",
        policies: allow_web!(
            "{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: np-gone}}}]}"
        ),
        then: &[],
        expect: &[
            (A_CLIENT, "a/web-s", 8080, false),
            (B_CLIENT, "a/web-1", 8080, false),
        ],
    };
    run_case(cluster, agent, ips, cidrs, &missing, CASE_TIMEOUT);
    let note = cluster.eventually(
        "a NoMatchingNamespace Event on np-a/allow",
        Duration::from_secs(30),
        || {
            let notes = cluster.ok(&[
                "-n",
                "np-a",
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=allow,reason=NoMatchingNamespace",
                "-o",
                "jsonpath={.items[*].message}",
            ]);
            (!notes.is_empty()).then_some(notes)
        },
    );
    assert!(
        note.contains(
            "namespaceSelector {kubernetes.io/metadata.name=np-gone} selects no namespace"
        ),
        "{note}"
    );
    let out = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: np-a}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]
"#,
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a /33 CIDR was accepted");
    assert!(stderr.contains("ipBlock.cidr"), "{stderr}");
    let unchanged = Case {
        name: "after a refused policy, what was in force still is",
        policies: "",
        then: &[],
        expect: &[(A_CLIENT, "a/web-s", 8080, true)],
    };
    run_case(cluster, agent, ips, cidrs, &unchanged, CASE_TIMEOUT);
    eprintln!("E2E: netpol: missing namespace reported, malformed policy refused");
}

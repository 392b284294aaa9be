//! Ingress through the packaged traefik, offline: its image is built from
//! traefik's Go module and imported from agent/images (scripts/
//! traefik-image), servicelb gives its LoadBalancer Service the node's
//! address on :80, an Ingress routes a path to test pods, and a
//! HelmChartConfig changing traefik's values takes effect.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::shared::Shared;

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ing-e2e}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: site, namespace: ing-e2e}
data:
  index.html: "hello through traefik\n"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: site, namespace: ing-e2e}
spec:
  replicas: 1
  selector: {matchLabels: {app: site}}
  template:
    metadata: {labels: {app: site}}
    spec:
      containers:
      - name: web
        image: docker.io/library/busybox:k3r-e2e
        imagePullPolicy: Never
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        volumeMounts: [{name: site, mountPath: /www/app}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
      volumes: [{name: site, configMap: {name: site}}]
---
apiVersion: v1
kind: Service
metadata: {name: site, namespace: ing-e2e}
spec:
  selector: {app: site}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site, namespace: ing-e2e}
spec:
  rules:
  - http:
      paths:
      - path: /app
        pathType: Prefix
        backend: {service: {name: site, port: {number: 80}}}
"#;

/// Turns traefik's access log on through its chart's values.
const ACCESS_LOG: &str = r#"
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata: {name: traefik, namespace: kube-system}
spec:
  valuesContent: |-
    extraArgs: ["--accesslog=true"]
"#;

/// Status line and body of GET `path` on `address`.
fn get(address: &str, path: &str) -> Option<(String, String)> {
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: e2e.example\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// `jsonpath` of kube-system's traefik `kind` (deploy or svc).
fn traefik_field(cluster: &Cluster, kind: &str, jsonpath: &str) -> String {
    cluster.ok(&[
        "-n",
        "kube-system",
        "get",
        kind,
        "traefik",
        "-o",
        &format!("jsonpath={jsonpath}"),
    ])
}

fn traefik_args(cluster: &Cluster) -> String {
    traefik_field(
        cluster,
        "deploy",
        "{.spec.template.spec.containers[0].args}",
    )
}

fn traefik_ready(cluster: &Cluster) {
    cluster.eventually("traefik Ready", Duration::from_secs(180), || {
        let ready = traefik_field(
            cluster,
            "deploy",
            "{.status.readyReplicas}/{.status.updatedReplicas}/{.spec.replicas}",
        );
        (ready == "1/1/1").then_some(())
    });
}

pub fn traefik(shared: &mut Shared) {
    let cluster = &shared.cluster;
    crate::addons::traefik_installed(cluster);
    traefik_ready(cluster);
    let image = traefik_field(
        cluster,
        "deploy",
        "{.spec.template.spec.containers[0].image}",
    );
    let node_ip = cluster.eventually(
        "traefik's LoadBalancer address",
        Duration::from_secs(60),
        || {
            let ip = traefik_field(cluster, "svc", "{.status.loadBalancer.ingress[0].ip}");
            (!ip.is_empty()).then_some(ip)
        },
    );
    cluster.apply(APP);
    let address = format!("{node_ip}:80");
    let (status, body) = cluster.eventually(
        &format!("http://{address}/app/ through traefik"),
        Duration::from_secs(120),
        || get(&address, "/app/").filter(|(status, _)| status.contains(" 200 ")),
    );
    assert_eq!(body.trim(), "hello through traefik", "{status}");
    let (missing, _) = get(&address, "/elsewhere").expect("traefik answers");
    assert!(missing.contains(" 404 "), "no route: {missing}");
    eprintln!("E2E: traefik ({image}) routes an Ingress at http://{address}/app/");

    // A HelmChartConfig merges over the packaged values: the access log
    // appears; without it, it goes again.
    cluster.apply(ACCESS_LOG);
    cluster.eventually(
        "traefik restarted with --accesslog",
        Duration::from_secs(120),
        || {
            traefik_args(cluster)
                .contains("--accesslog=true")
                .then_some(())
        },
    );
    traefik_ready(cluster);
    cluster.eventually(
        "a request in traefik's access log",
        Duration::from_secs(120),
        || {
            get(&address, "/app/?logged=yes")?;
            let logs = cluster.kubectl(&["-n", "kube-system", "logs", "deploy/traefik"]);
            String::from_utf8_lossy(&logs.stdout)
                .contains("GET /app/?logged=yes HTTP/1.0")
                .then_some(())
        },
    );
    cluster.ok(&["-n", "kube-system", "delete", "helmchartconfig", "traefik"]);
    cluster.eventually(
        "traefik without --accesslog",
        Duration::from_secs(120),
        || (!traefik_args(cluster).contains("--accesslog")).then_some(()),
    );
    traefik_ready(cluster);
    cluster.ok(&[
        "delete",
        "namespace",
        "ing-e2e",
        "--wait=true",
        "--timeout=120s",
    ]);
    eprintln!("E2E: traefik: a HelmChartConfig's values take effect and are undone");
}

//! The join endpoints of a running server, driven by the agent's join
//! client: the CA checked against the token before credentials go out,
//! wrong tokens and passwords refused, node certificates issued and
//! verified by openssl, node passwords guarding live node names, bootstrap
//! tokens from `k3r token`, the critical configuration, API server list
//! and readiness.

use k3r_join_protocol::{CriticalConfig, Endpoint};
use std::net::IpAddr;
use std::process::Command;

use k3r_agent::{
    AgentSetup, JoinError, Joiner, LoadBalancer, NodeIdentity, SetupError,
    join::split_cert_and_key, prepare,
};

use crate::cluster::{Cluster, k3r_binary};

fn block<T>(future: impl std::future::Future<Output = T>) -> T {
    // Multi-threaded: the load balancer forwards while the test blocks on
    // kubectl.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// openssl's stdout and stderr (verify reports on both).
fn openssl(args: &[&str], input: &str) -> String {
    let out = k3r_helm_oracle::pipe("openssl", args, input.as_bytes());
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn node(name: &str, password: &str) -> NodeIdentity {
    NodeIdentity {
        name: name.into(),
        password: password.into(),
        ips: vec![IpAddr::from([10, 99, 0, 7])],
    }
}

fn k3r_token(cluster: &Cluster, args: &[&str]) -> String {
    let out = Command::new(k3r_binary())
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .output()
        .expect("k3r token");
    assert!(
        out.status.success(),
        "k3r token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn join_endpoints(cluster: &Cluster) {
    let server = format!("https://127.0.0.1:{}", cluster.port);
    let token = std::fs::read_to_string(cluster.data_dir.join("server/node-token"))
        .expect("node-token")
        .trim()
        .to_string();
    let server_ca = std::fs::read_to_string(cluster.data_dir.join("server/tls/server-ca.crt"))
        .expect("server CA");
    let dir = tempfile::tempdir().expect("tempdir");
    block(async {
        // The CA, checked against the token's hash.
        let joiner = Joiner::connect(&server, &token).await.expect("joins");
        assert_eq!(joiner.ca_pem(), server_ca.as_bytes());
        let (_, password) = token.rsplit_once(':').expect("K10…::server:password");
        let forged = format!("K10{}::node:{password}", "f".repeat(64));
        let mismatch = Joiner::connect(&server, &forged)
            .await
            .err()
            .expect("a forged hash is refused");
        assert!(
            matches!(mismatch, JoinError::CaHashMismatch { .. }),
            "{mismatch}"
        );
        let wrong = Joiner::connect(&server, &format!("K10{}::node:wrong", joiner.ca_hash()))
            .await
            .expect("the CA is right")
            .get(Endpoint::ClientCa, None)
            .await
            .expect_err("a wrong password");
        assert!(matches!(wrong, JoinError::Unauthorized), "{wrong}");
        let agent = Joiner::connect(
            &server,
            &format!("K10{}::node:{password}", joiner.ca_hash()),
        )
        .await
        .expect("agent token");

        // Kubelet certificates for a new node, verified by openssl.
        let client_ca = String::from_utf8(
            agent
                .get(Endpoint::ClientCa, None)
                .await
                .expect("client CA"),
        )
        .expect("PEM");
        let serving = agent
            .get(Endpoint::ServingKubelet, Some(&node("agent-e2e", "pw-one")))
            .await
            .expect("serving cert");
        let (chain, key) = split_cert_and_key(&serving);
        assert!(key.contains("PRIVATE KEY"));
        let ca_file = dir.path().join("server-ca.crt");
        std::fs::write(&ca_file, &server_ca).expect("write");
        let verified = openssl(
            &["verify", "-CAfile", &ca_file.display().to_string()],
            &chain,
        );
        assert!(verified.contains(": OK"), "{verified}");
        let text = openssl(
            &["x509", "-noout", "-subject", "-ext", "subjectAltName"],
            &chain,
        );
        assert!(
            text.contains("CN = agent-e2e")
                && text.contains("IP Address:10.99.0.7")
                && text.contains("DNS:agent-e2e"),
            "{text}"
        );
        let client = agent
            .get(Endpoint::ClientKubelet, Some(&node("agent-e2e", "pw-one")))
            .await
            .expect("client cert");
        let (client_chain, _) = split_cert_and_key(&client);
        let client_ca_file = dir.path().join("client-ca.crt");
        std::fs::write(&client_ca_file, &client_ca).expect("write");
        let verified = openssl(
            &["verify", "-CAfile", &client_ca_file.display().to_string()],
            &client_chain,
        );
        assert!(verified.contains(": OK"), "{verified}");
        let subject = openssl(&["x509", "-noout", "-subject"], &client_chain);
        assert!(
            subject.contains("O = system:nodes") && subject.contains("CN = system:node:agent-e2e"),
            "{subject}"
        );
        let proxy = agent
            .get(Endpoint::ClientKubeProxy, None)
            .await
            .expect("kube-proxy cert");
        let (proxy_chain, proxy_key) = split_cert_and_key(&proxy);
        assert!(
            openssl(&["x509", "-noout", "-subject"], &proxy_chain)
                .contains("CN = system:kube-proxy")
        );
        assert!(proxy_key.contains("PRIVATE KEY"));

        // A live node's name is guarded by its password; deleting the Node
        // lets another password take it.
        let ghost = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"ghost-node"}}"#;
        let created = cluster.kubectl_stdin(&["create", "-f", "-"], Some(ghost));
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        agent
            .get(Endpoint::ClientKubelet, Some(&node("ghost-node", "first")))
            .await
            .expect("first password stored");
        let taken = agent
            .get(Endpoint::ClientKubelet, Some(&node("ghost-node", "second")))
            .await
            .expect_err("the name is taken");
        assert!(
            matches!(&taken, JoinError::Forbidden(m) if m.contains("Node password rejected")),
            "{taken}"
        );
        cluster.ok(&["delete", "node", "ghost-node"]);
        agent
            .get(Endpoint::ClientKubelet, Some(&node("ghost-node", "second")))
            .await
            .expect("a deleted node's name can be taken");
        cluster.ok(&[
            "-n",
            "kube-system",
            "delete",
            "secret",
            "ghost-node.node-password.k3r",
            "agent-e2e.node-password.k3r",
        ]);

        // Critical configuration, API servers, readiness.
        let config: CriticalConfig =
            serde_json::from_slice(&agent.get(Endpoint::Config, None).await.expect("config"))
                .expect("JSON");
        assert_eq!(config.cluster_cidr, "10.42.0.0/16", "{config:?}");
        let mismatch = config
            .check(&[("clusterCIDR", Some("10.99.0.0/16".into()))])
            .expect_err("a different cluster CIDR");
        assert_eq!(mismatch.key, "clusterCIDR");
        let apiservers: Vec<String> = serde_json::from_slice(
            &agent
                .get(Endpoint::Apiservers, None)
                .await
                .expect("apiservers"),
        )
        .expect("JSON");
        assert_eq!(
            apiservers,
            [format!("{}:{}", cluster.node_ip(), cluster.port)]
        );
        assert_eq!(
            agent.get(Endpoint::Readyz, None).await.expect("readyz"),
            b"ok"
        );
    });

    // Bootstrap tokens: usable until deleted or expired.
    let created = k3r_token(cluster, &["create", "--ttl", "1h", "--description", "e2e"]);
    let bootstrap = created.trim().to_string();
    let id = bootstrap
        .rsplit("::")
        .next()
        .and_then(|c| c.split('.').next())
        .expect("id")
        .to_string();
    assert!(k3r_token(cluster, &["list"]).contains(&id));
    let short_lived = k3r_token(cluster, &["create", "--ttl", "1s"])
        .trim()
        .to_string();
    std::thread::sleep(std::time::Duration::from_secs(2));
    block(async {
        let joiner = Joiner::connect(&server, &bootstrap)
            .await
            .expect("bootstrap token");
        joiner
            .get(Endpoint::ClientCa, None)
            .await
            .expect("bootstrap token accepted");
        let expired = Joiner::connect(&server, &short_lived)
            .await
            .expect("the CA is right")
            .get(Endpoint::ClientCa, None)
            .await
            .expect_err("expired");
        assert!(matches!(expired, JoinError::Unauthorized), "{expired}");
    });
    k3r_token(cluster, &["delete", &bootstrap]);
    block(async {
        let deleted = Joiner::connect(&server, &bootstrap)
            .await
            .expect("the CA is right")
            .get(Endpoint::ClientCa, None)
            .await
            .expect_err("deleted");
        assert!(matches!(deleted, JoinError::Unauthorized), "{deleted}");
    });
    // kube-controller-manager's token cleaner deletes the expired one.
    agent_setup(cluster, &server, &token, dir.path());
    eprintln!("E2E: join endpoints, node passwords, bootstrap tokens and agent setup checked");
}

/// An agent's setup against the server: certificates and kubeconfigs
/// written, and the kubelet's kubeconfig, through a local load balancer,
/// authenticates as the node.
fn agent_setup(cluster: &Cluster, server: &str, token: &str, dir: &std::path::Path) {
    let (_, password) = token.rsplit_once(':').expect("password");
    let hash = token
        .strip_prefix("K10")
        .and_then(|t| t.split("::").next())
        .expect("hash");
    let agent_token = format!("K10{hash}::node:{password}");
    block(async {
        let lb = LoadBalancer::start(
            "127.0.0.1:0".parse().expect("addr"),
            vec![format!("127.0.0.1:{}", cluster.port)],
        )
        .await
        .expect("load balancer");
        let mut setup = AgentSetup {
            data_dir: dir.join("agent-data"),
            server: server.to_string(),
            token: agent_token,
            node_name: "agent-setup".into(),
            node_ips: vec![IpAddr::from([10, 99, 0, 8])],
            lb_port: lb.local_addr().port(),
            critical: vec![("clusterCIDR", Some("10.99.0.0/16".into()))],
        };
        let refused = prepare(&setup).await.expect_err("a different cluster CIDR");
        assert!(
            matches!(&refused, SetupError::Critical(m) if m.key == "clusterCIDR"),
            "{refused}"
        );
        assert!(
            !setup.data_dir.join("agent/client-kubelet.crt").exists(),
            "nothing fetched for a refused node"
        );
        setup.critical = vec![("clusterCIDR", Some("10.42.0.0/16".into()))];
        let started = std::time::Instant::now();
        let prepared = prepare(&setup).await.expect("setup");
        eprintln!(
            "E2E: agent setup (CA check, certificates, kubeconfigs) took {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(
            prepared.apiservers,
            [format!("{}:{}", cluster.node_ip(), cluster.port)]
        );
        let kubeconfig = prepared.agent_dir.join("kubelet.kubeconfig");
        let whoami = cluster.ok(&[
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ]);
        assert!(
            whoami.starts_with("system:node:agent-setup") && whoami.contains("system:nodes"),
            "{whoami}"
        );
        // The load balancer follows the server list the server reports.
        lb.set_servers(prepared.apiservers.clone());
        let proxy = prepared.agent_dir.join("kubeproxy.kubeconfig");
        let whoami = cluster.ok(&[
            "--kubeconfig",
            &proxy.display().to_string(),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ]);
        assert_eq!(whoami, "system:kube-proxy");
    });
    cluster.ok(&[
        "-n",
        "kube-system",
        "delete",
        "secret",
        "agent-setup.node-password.k3r",
    ]);
}

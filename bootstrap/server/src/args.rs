//! Command lines of the control-plane components (the node's are in
//! k3r-node). User passthrough args
//! (`--kube-apiserver-arg=key=value`) come last, so they win.

use std::path::Path;

use k3r_pki::Pki;

use crate::config::ServerConfig;
use k3r_node::{flag, passthrough};

use crate::layout::Layout;

fn path(p: &Path) -> String {
    p.display().to_string()
}

pub fn apiserver(
    config: &ServerConfig,
    layout: &Layout,
    pki: &Pki,
    etcd_servers: &str,
) -> Vec<String> {
    let issuer = format!("https://kubernetes.default.svc.{}", config.cluster_domain);
    let mut args = vec![
        "kube-apiserver".into(),
        flag("etcd-servers", etcd_servers),
        flag("storage-backend", "etcd3"),
        flag("bind-address", "0.0.0.0"),
        flag("secure-port", config.apiserver_port()),
        flag("advertise-address", config.node_ip),
        flag("allow-privileged", true),
        flag("anonymous-auth", false),
        flag("authorization-mode", "Node,RBAC"),
        flag("enable-admission-plugins", "NodeRestriction"),
        // Kubelets are reached through agents' tunnels (see `tunnel`).
        flag(
            "egress-selector-config-file",
            path(&layout.server().join("egress-selector.yaml")),
        ),
        flag("client-ca-file", path(&pki.client_ca)),
        flag("tls-cert-file", path(&pki.cert("serving-kube-apiserver"))),
        flag(
            "tls-private-key-file",
            path(&pki.key("serving-kube-apiserver")),
        ),
        flag(
            "kubelet-client-certificate",
            path(&pki.cert("client-kube-apiserver")),
        ),
        flag(
            "kubelet-client-key",
            path(&pki.key("client-kube-apiserver")),
        ),
        flag("kubelet-certificate-authority", path(&pki.server_ca)),
        flag(
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname",
        ),
        flag("service-account-key-file", path(&pki.service_pub)),
        flag("service-account-signing-key-file", path(&pki.service_key)),
        flag("service-account-issuer", &issuer),
        flag("api-audiences", format!("{issuer},k3r")),
        flag("service-cluster-ip-range", config.service_cidr),
        flag("service-node-port-range", &config.service_node_port_range),
        flag("requestheader-client-ca-file", path(&pki.request_header_ca)),
        flag("requestheader-allowed-names", "system:auth-proxy"),
        flag("requestheader-username-headers", "X-Remote-User"),
        flag("requestheader-group-headers", "X-Remote-Group"),
        flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        flag(
            "proxy-client-cert-file",
            path(&pki.cert("client-auth-proxy")),
        ),
        flag("proxy-client-key-file", path(&pki.key("client-auth-proxy"))),
        flag("profiling", false),
        flag("cert-dir", path(&layout.tls().join("temporary-certs"))),
    ];
    if let Some(tls) = &config.datastore_tls {
        args.push(flag("etcd-cafile", path(&tls.ca)));
        args.push(flag("etcd-certfile", path(&tls.cert)));
        args.push(flag("etcd-keyfile", path(&tls.key)));
    }
    args.extend(passthrough(&config.kube_apiserver_args));
    args
}

pub fn controller_manager(config: &ServerConfig, layout: &Layout, pki: &Pki) -> Vec<String> {
    let kubeconfig = path(&layout.kubeconfig("controller"));
    let mut args = vec![
        "kube-controller-manager".into(),
        flag("kubeconfig", &kubeconfig),
        flag("authentication-kubeconfig", &kubeconfig),
        flag("authorization-kubeconfig", &kubeconfig),
        flag("bind-address", "127.0.0.1"),
        flag("secure-port", 10257),
        flag("allocate-node-cidrs", true),
        flag("cluster-cidr", config.cluster_cidr),
        flag("service-cluster-ip-range", config.service_cidr),
        flag("root-ca-file", path(&pki.server_ca)),
        flag("service-account-private-key-file", path(&pki.service_key)),
        flag("use-service-account-credentials", true),
        flag(
            "cluster-signing-kube-apiserver-client-cert-file",
            path(&pki.client_ca),
        ),
        flag(
            "cluster-signing-kube-apiserver-client-key-file",
            path(&pki.client_ca.with_extension("key")),
        ),
        flag(
            "cluster-signing-kubelet-client-cert-file",
            path(&pki.client_ca),
        ),
        flag(
            "cluster-signing-kubelet-client-key-file",
            path(&pki.client_ca.with_extension("key")),
        ),
        flag(
            "cluster-signing-kubelet-serving-cert-file",
            path(&pki.server_ca),
        ),
        flag(
            "cluster-signing-kubelet-serving-key-file",
            path(&pki.server_ca.with_extension("key")),
        ),
        flag(
            "cluster-signing-legacy-unknown-cert-file",
            path(&pki.server_ca),
        ),
        flag(
            "cluster-signing-legacy-unknown-key-file",
            path(&pki.server_ca.with_extension("key")),
        ),
        // Kubernetes 1.37 has no cloud controllers left in
        // kube-controller-manager to turn off.
        flag("controllers", "*,tokencleaner"),
        flag("configure-cloud-routes", false),
        // A single server: no leader election, so a restart does not wait
        // out the previous lease.
        flag("leader-elect", false),
        flag("profiling", false),
        flag("cert-dir", path(&layout.tls().join("temporary-certs"))),
    ];
    args.extend(passthrough(&config.kube_controller_manager_args));
    args
}

pub fn scheduler(config: &ServerConfig, layout: &Layout) -> Vec<String> {
    let kubeconfig = path(&layout.kubeconfig("scheduler"));
    let mut args = vec![
        "kube-scheduler".into(),
        flag("kubeconfig", &kubeconfig),
        flag("authentication-kubeconfig", &kubeconfig),
        flag("authorization-kubeconfig", &kubeconfig),
        flag("bind-address", "127.0.0.1"),
        flag("secure-port", 10259),
        flag("leader-elect", false),
        flag("profiling", false),
    ];
    args.extend(passthrough(&config.kube_scheduler_args));
    args
}

//! Command lines of the upstream components. User passthrough args
//! (`--kube-apiserver-arg=key=value`) come last, so they win.

use std::path::Path;

use k3r_pki::Pki;

use crate::config::ServerConfig;
use crate::layout::{Layout, containerd_socket};

fn flag(name: &str, value: impl std::fmt::Display) -> String {
    format!("--{name}={value}")
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `key=value` (or `key`) from a passthrough flag, as `--key=value`.
pub fn passthrough(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| format!("--{}", a.trim_start_matches('-')))
        .collect()
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
        flag(
            "controllers",
            "*,tokencleaner,-service,-route,-cloud-node-lifecycle",
        ),
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

/// The KubeletConfiguration file (flags for it are deprecated upstream).
pub fn kubelet_config(
    config: &ServerConfig,
    layout: &Layout,
    pki: &Pki,
    resolv_conf: &Path,
) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{socket}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {client_ca}
authorization:
  mode: Webhook
clusterDNS:
- {dns}
clusterDomain: {domain}
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
staticPodPath: {static_pods}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
failSwapOn: false
serializeImagePulls: false
resolvConf: {resolv}
# containerd 1.6 cannot pin images: never garbage-collect the pause image.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  imagefs.available: 5%
  nodefs.available: 5%
",
        socket = containerd_socket().display(),
        client_ca = pki.client_ca.display(),
        dns = config.cluster_dns,
        domain = config.cluster_domain,
        cert = pki.cert("serving-kubelet").display(),
        key = pki.key("serving-kubelet").display(),
        static_pods = layout.agent().join("pod-manifests").display(),
        resolv = resolv_conf.display(),
    )
}

pub fn kubelet(config: &ServerConfig, layout: &Layout) -> Vec<String> {
    let mut args = vec![
        "kubelet".into(),
        flag("config", path(&layout.agent_etc().join("kubelet.conf"))),
        flag("kubeconfig", path(&layout.kubeconfig("kubelet"))),
        flag("hostname-override", &config.node_name),
        flag("node-ip", config.node_ip),
        flag("root-dir", path(&layout.kubelet_root())),
        flag("containerd", path(&containerd_socket())),
    ];
    if !config.node_labels.is_empty() {
        args.push(flag("node-labels", config.node_labels.join(",")));
    }
    if !config.node_taints.is_empty() {
        args.push(flag("register-with-taints", config.node_taints.join(",")));
    }
    args.extend(passthrough(&config.kubelet_args));
    args
}

pub fn kube_proxy(config: &ServerConfig, layout: &Layout) -> Vec<String> {
    let mut args = vec![
        "kube-proxy".into(),
        flag("kubeconfig", path(&layout.kubeconfig("kube-proxy"))),
        flag("hostname-override", &config.node_name),
        flag("cluster-cidr", config.cluster_cidr),
        flag("proxy-mode", "iptables"),
        flag("healthz-bind-address", "127.0.0.1:10256"),
        flag("metrics-bind-address", "127.0.0.1:10249"),
        // Leave the host's conntrack sysctls alone.
        flag("conntrack-max-per-core", 0),
        flag("conntrack-tcp-timeout-established", "0s"),
        flag("conntrack-tcp-timeout-close-wait", "0s"),
    ];
    args.extend(passthrough(&config.kube_proxy_args));
    args
}

#[cfg(test)]
mod tests {
    #[test]
    fn passthrough_args_become_flags() {
        let got = super::passthrough(&[
            "v=2".into(),
            "--feature-gates=A=true".into(),
            "allow-privileged".into(),
        ]);
        assert_eq!(
            got,
            ["--v=2", "--feature-gates=A=true", "--allow-privileged"]
        );
    }
}

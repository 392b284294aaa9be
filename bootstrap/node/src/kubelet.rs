//! kubelet's configuration file and the kubelet and kube-proxy command
//! lines. User passthrough args (`--kubelet-arg=key=value`) come last, so
//! they win.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::{NodePaths, flag, passthrough};

/// What a node's kubelet is told.
#[derive(Clone, Debug)]
pub struct Kubelet {
    pub node_name: String,
    pub node_ip: IpAddr,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    /// CA of client certificates the kubelet accepts (kube-apiserver's).
    pub client_ca: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub kubeconfig: PathBuf,
    pub config_file: PathBuf,
    pub labels: Vec<String>,
    pub taints: Vec<String>,
    pub extra_args: Vec<String>,
    /// Where nodes sharing a machine keep apart: the cgroup the node's
    /// pods live under, and a pod log dir of its own (kubelet deletes the
    /// log dirs of pods it does not know).
    pub shared_host: Option<SharedHost>,
}

#[derive(Clone, Debug)]
pub struct SharedHost {
    pub cgroup_root: String,
    pub pod_logs_dir: PathBuf,
}

/// The KubeletConfiguration file (flags for it are deprecated upstream).
pub fn config(kubelet: &Kubelet, paths: &NodePaths, resolv_conf: &Path) -> String {
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
evictionHard:
  imagefs.available: 5%
  nodefs.available: 5%
{shared}",
        socket = paths.containerd_socket().display(),
        client_ca = kubelet.client_ca.display(),
        dns = kubelet.cluster_dns,
        domain = kubelet.cluster_domain,
        cert = kubelet.serving_cert.display(),
        key = kubelet.serving_key.display(),
        static_pods = paths.pod_manifests().display(),
        resolv = resolv_conf.display(),
        shared = kubelet
            .shared_host
            .as_ref()
            .map(|s| format!(
                "cgroupRoot: {}\npodLogsDir: {}\n",
                s.cgroup_root,
                s.pod_logs_dir.display()
            ))
            .unwrap_or_default(),
    )
}

/// Writes `kubelet.config_file` (pods get the host's resolv.conf, or a
/// fallback when it points at loopback).
pub fn write_config(kubelet: &Kubelet, paths: &NodePaths) -> Result<(), crate::Error> {
    let resolv = crate::host::resolv_conf(paths)?;
    std::fs::write(&kubelet.config_file, config(kubelet, paths, &resolv))
        .map_err(|e| crate::Error::Io(kubelet.config_file.clone(), e))
}

pub fn args(kubelet: &Kubelet, paths: &NodePaths) -> Vec<String> {
    let mut args = vec![
        "kubelet".into(),
        flag("config", kubelet.config_file.display()),
        flag("kubeconfig", kubelet.kubeconfig.display()),
        flag("hostname-override", &kubelet.node_name),
        flag("node-ip", kubelet.node_ip),
        flag("root-dir", paths.kubelet_root().display()),
    ];
    if !kubelet.labels.is_empty() {
        args.push(flag("node-labels", kubelet.labels.join(",")));
    }
    if !kubelet.taints.is_empty() {
        args.push(flag("register-with-taints", kubelet.taints.join(",")));
    }
    args.extend(passthrough(&kubelet.extra_args));
    args
}

/// kube-proxy in iptables mode for a node.
pub fn kube_proxy_args(
    node_name: &str,
    cluster_cidr: &str,
    kubeconfig: &Path,
    extra_args: &[String],
) -> Vec<String> {
    let mut args = vec![
        "kube-proxy".into(),
        flag("kubeconfig", kubeconfig.display()),
        flag("hostname-override", node_name),
        flag("cluster-cidr", cluster_cidr),
        flag("proxy-mode", "iptables"),
        flag("healthz-bind-address", "127.0.0.1:10256"),
        flag("metrics-bind-address", "127.0.0.1:10249"),
        // Leave the host's conntrack sysctls alone.
        flag("conntrack-max-per-core", 0),
        flag("conntrack-tcp-timeout-established", "0s"),
        flag("conntrack-tcp-timeout-close-wait", "0s"),
    ];
    args.extend(passthrough(extra_args));
    args
}

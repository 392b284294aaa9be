//! The join protocol (k3s's /v1-k3s/*, here /v1-k3r/*), defined once for
//! the server that answers it and the agent that speaks it: the endpoints,
//! the headers that carry a node's identity, and the critical
//! configuration every node of a cluster must share.

use serde::{Deserialize, Serialize};

/// Where the join endpoints live on the supervisor port.
pub const PREFIX: &str = "/v1-k3r/";
/// The CA bundle, served without authentication (the agent checks it
/// against the token's hash before sending anything).
pub const CACERTS: &str = "/cacerts";

/// Headers of a node asking for its kubelet certificates.
pub mod header {
    pub const NODE_NAME: &str = "k3r-node-name";
    pub const NODE_PASSWORD: &str = "k3r-node-password";
    /// The node's IPs, comma-separated (the serving certificate's SANs).
    pub const NODE_IP: &str = "k3r-node-ip";
}

/// One join endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    ClientCa,
    ServerCa,
    /// The node's kubelet serving certificate and key (needs the node).
    ServingKubelet,
    /// The node's kubelet client certificate and key (needs the node).
    ClientKubelet,
    ClientKubeProxy,
    ClientK3rController,
    /// The cluster's [`CriticalConfig`] as JSON.
    Config,
    /// Every server's supervisor address, as a JSON list.
    Apiservers,
    Readyz,
}

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Endpoint::ClientCa,
        Endpoint::ServerCa,
        Endpoint::ServingKubelet,
        Endpoint::ClientKubelet,
        Endpoint::ClientKubeProxy,
        Endpoint::ClientK3rController,
        Endpoint::Config,
        Endpoint::Apiservers,
        Endpoint::Readyz,
    ];

    /// The name after [`PREFIX`].
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ClientCa => "client-ca.crt",
            Endpoint::ServerCa => "server-ca.crt",
            Endpoint::ServingKubelet => "serving-kubelet.crt",
            Endpoint::ClientKubelet => "client-kubelet.crt",
            Endpoint::ClientKubeProxy => "client-kube-proxy.crt",
            Endpoint::ClientK3rController => "client-k3r-controller.crt",
            Endpoint::Config => "config",
            Endpoint::Apiservers => "apiservers",
            Endpoint::Readyz => "readyz",
        }
    }

    pub fn path(self) -> String {
        format!("{PREFIX}{}", self.name())
    }

    /// The endpoint a request path names.
    pub fn from_path(path: &str) -> Option<Self> {
        let name = path.strip_prefix(PREFIX)?;
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether a request must carry the node's identity headers.
    pub fn needs_node(self) -> bool {
        matches!(self, Endpoint::ServingKubelet | Endpoint::ClientKubelet)
    }
}

/// The values every node of a cluster must agree on (k3s's critical
/// control args): the server publishes them at [`Endpoint::Config`]; an
/// agent whose own flags differ is refused with the value named.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalConfig {
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: String,
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: String,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: String,
    pub cluster_domain: String,
    pub service_node_port_range: String,
    pub flannel_backend: String,
    pub system_default_registry: String,
    /// `--disable-network-policy` (k3s's `DisableNPC`): every node
    /// enforces NetworkPolicies, or none does.
    #[serde(rename = "disableNPC", default)]
    pub disable_network_policy: bool,
}

/// A critical value the agent was given differently.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("critical configuration mismatch: {key} is {server:?} on the server but {agent:?} here")]
pub struct Mismatch {
    pub key: &'static str,
    pub server: String,
    pub agent: String,
}

impl CriticalConfig {
    /// The value under its JSON name (`clusterCIDR`, …).
    pub fn get(&self, key: &str) -> Option<&str> {
        Some(match key {
            "clusterCIDR" => &self.cluster_cidr,
            "serviceCIDR" => &self.service_cidr,
            "clusterDNS" => &self.cluster_dns,
            "clusterDomain" => &self.cluster_domain,
            "serviceNodePortRange" => &self.service_node_port_range,
            "flannelBackend" => &self.flannel_backend,
            "systemDefaultRegistry" => &self.system_default_registry,
            "disableNPC" => match self.disable_network_policy {
                true => "true",
                false => "false",
            },
            _ => return None,
        })
    }

    /// Compares the values an agent was given flags for (by JSON name);
    /// values not given are not compared.
    pub fn check(&self, agent: &[(&'static str, Option<String>)]) -> Result<(), Mismatch> {
        for (key, value) in agent {
            let Some(value) = value else { continue };
            let theirs = self.get(key).unwrap_or_default();
            if theirs != value {
                return Err(Mismatch {
                    key,
                    server: theirs.to_string(),
                    agent: value.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_round_trip_their_paths() {
        for endpoint in Endpoint::ALL {
            assert_eq!(Endpoint::from_path(&endpoint.path()), Some(endpoint));
        }
        assert_eq!(Endpoint::from_path("/v1-k3r/nope"), None);
        assert_eq!(Endpoint::from_path("/api/v1"), None);
        assert!(Endpoint::ServingKubelet.needs_node() && !Endpoint::Config.needs_node());
    }

    #[test]
    fn critical_config_speaks_k3s_names_and_names_a_mismatch() {
        let config = CriticalConfig {
            cluster_cidr: "10.42.0.0/16".into(),
            cluster_dns: "10.43.0.10".into(),
            ..CriticalConfig::default()
        };
        let json = serde_json::to_value(&config).expect("json");
        assert_eq!(json["clusterCIDR"], "10.42.0.0/16");
        assert_eq!(json["clusterDNS"], "10.43.0.10");
        assert!(json.get("serviceNodePortRange").is_some());
        assert_eq!(json["disableNPC"], false);
        let back: CriticalConfig = serde_json::from_value(json).expect("back");
        assert_eq!(back, config);
        assert!(
            config
                .check(&[("clusterCIDR", Some("10.42.0.0/16".into()))])
                .is_ok()
        );
        assert!(config.check(&[("clusterDNS", None)]).is_ok());
        let err = config
            .check(&[("disableNPC", Some("true".into()))])
            .expect_err("network policy disabled here only");
        assert_eq!(err.server, "false");
        let err = config
            .check(&[("clusterCIDR", Some("10.99.0.0/16".into()))])
            .expect_err("mismatch");
        assert_eq!(err.key, "clusterCIDR");
        assert_eq!(
            err.to_string(),
            "critical configuration mismatch: clusterCIDR is \"10.42.0.0/16\" on the server but \"10.99.0.0/16\" here"
        );
    }
}

//! Every node of a cluster must agree on a few values (k3s's critical
//! control args): an agent whose flags differ from the server's is refused
//! with the value named.

use serde_json::Value;

/// The agent's own view of the critical values it was given flags for.
/// Only values set here are compared.
pub fn check_critical(server: &Value, agent: &[(&str, Option<String>)]) -> Result<(), String> {
    for (key, value) in agent {
        let Some(value) = value else { continue };
        let theirs = server[*key].as_str().unwrap_or_default();
        if theirs != value {
            return Err(format!(
                "critical configuration mismatch: {key} is {theirs:?} on the server but {value:?} here"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_values_are_named() {
        let server = serde_json::json!({"clusterCIDR": "10.42.0.0/16", "clusterDNS": "10.43.0.10"});
        assert!(check_critical(&server, &[("clusterCIDR", Some("10.42.0.0/16".into()))]).is_ok());
        assert!(check_critical(&server, &[("clusterDNS", None)]).is_ok());
        let err = check_critical(&server, &[("clusterCIDR", Some("10.99.0.0/16".into()))])
            .expect_err("mismatch");
        assert!(
            err.contains("clusterCIDR") && err.contains("10.99.0.0/16"),
            "{err}"
        );
    }
}

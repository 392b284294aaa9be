//! Which upgrades a node may take: never a downgrade, at most one minor
//! version at a time, and an agent never on a newer minor version than
//! its servers (Kubernetes' skew policy: the control plane first; patch
//! releases may differ either way).

use k3r_version::{NotARelease, Release};

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Upgrade,
    /// The node already runs the target version.
    Current,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error(transparent)]
    NotARelease(#[from] NotARelease),
    #[error("refusing to downgrade k3r from {running} to {target}")]
    Downgrade { running: Release, target: Release },
    #[error("{running} to {target} skips minor versions: upgrade one minor version at a time")]
    MinorJump { running: Release, target: Release },
    #[error(
        "the servers run {server}: an agent is never upgraded past its servers' minor version (to {target})"
    )]
    AheadOfServers { server: Release, target: Release },
}

/// What `running` may do about `target`; `servers` are the versions the
/// cluster's servers run, checked for an agent only.
pub fn decide(
    running: &str,
    target: &str,
    agent: bool,
    servers: &[String],
) -> Result<Decision, Refusal> {
    let running = Release::parse(running)?;
    let target = Release::parse(target)?;
    if target < running {
        return Err(Refusal::Downgrade { running, target });
    }
    if running.major != target.major || running.minors_to(&target).is_some_and(|m| m > 1) {
        return Err(Refusal::MinorJump { running, target });
    }
    if agent {
        let oldest = servers
            .iter()
            .map(|s| Release::parse(s))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .min();
        if let Some(server) = oldest
            && (server.major, server.minor) < (target.major, target.minor)
        {
            return Err(Refusal::AheadOfServers { server, target });
        }
    }
    if target == running {
        return Ok(Decision::Current);
    }
    Ok(Decision::Upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_one_minor_at_a_time_servers_first() {
        assert_eq!(
            decide("v0.1.0", "v0.2.0", false, &[]),
            Ok(Decision::Upgrade)
        );
        assert_eq!(decide("0.1.0", "0.1.3", false, &[]), Ok(Decision::Upgrade));
        assert_eq!(decide("0.2.0", "v0.2.0", false, &[]), Ok(Decision::Current));
        let refused = |r: Result<Decision, Refusal>| r.expect_err("refused").to_string();
        assert_eq!(
            refused(decide("0.2.0", "0.1.9", false, &[])),
            "refusing to downgrade k3r from v0.2.0 to v0.1.9"
        );
        assert!(refused(decide("0.1.0", "0.3.0", false, &[])).contains("skips minor versions"));
        assert!(refused(decide("0.9.0", "1.0.0", false, &[])).contains("skips minor versions"));
        assert!(refused(decide("0.1.0", "latest", false, &[])).contains("not a release"));
        let servers = ["v0.2.0".to_string(), "v0.1.0".to_string()];
        assert_eq!(
            refused(decide("0.1.0", "0.2.0", true, &servers)),
            "the servers run v0.1.0: an agent is never upgraded past its servers' minor version (to v0.2.0)"
        );
        let upgraded = ["v0.2.0".to_string()];
        assert_eq!(
            decide("0.1.0", "0.2.0", true, &upgraded),
            Ok(Decision::Upgrade)
        );
        // A newer patch than the servers' is within the skew policy.
        assert_eq!(
            decide("0.2.0", "0.2.1", true, &upgraded),
            Ok(Decision::Upgrade)
        );
    }
}

//! What to do with a chart given its newest stored revision, as
//! klipper-helm decides: nothing when the deployed revision has the same
//! configuration; for a failed one, the HelmChart's failurePolicy —
//! `reinstall` (the default: uninstall, then install), `retry` (upgrade
//! from the failed revision) or `abort` (leave it for an operator until the
//! configuration changes).

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// The deployed revision is current.
    Nothing,
    Install,
    Upgrade,
    /// Uninstall the failed release, then install it afresh.
    Reinstall,
    /// A failed release under failurePolicy abort: wait for a change.
    Abort,
}

/// The newest stored revision: its status and configuration hash.
pub struct Latest<'a> {
    pub status: &'a str,
    pub hash: &'a str,
}

pub fn decide(latest: Option<Latest<'_>>, hash: &str, failure_policy: Option<&str>) -> Action {
    let Some(latest) = latest else {
        return Action::Install;
    };
    match latest.status {
        "deployed" if latest.hash == hash => Action::Nothing,
        "failed" => match failure_policy.unwrap_or("reinstall") {
            "abort" if latest.hash == hash => Action::Abort,
            "abort" | "retry" => Action::Upgrade,
            _ => Action::Reinstall,
        },
        _ => Action::Upgrade,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest<'a>(status: &'a str, hash: &'a str) -> Option<Latest<'a>> {
        Some(Latest { status, hash })
    }

    #[test]
    fn decisions_follow_klipper_helm() {
        assert_eq!(decide(None, "h", None), Action::Install);
        assert_eq!(decide(latest("deployed", "h"), "h", None), Action::Nothing);
        assert_eq!(
            decide(latest("deployed", "old"), "h", None),
            Action::Upgrade
        );
        assert_eq!(decide(latest("failed", "h"), "h", None), Action::Reinstall);
        assert_eq!(
            decide(latest("failed", "h"), "h", Some("reinstall")),
            Action::Reinstall
        );
        assert_eq!(
            decide(latest("failed", "h"), "h", Some("retry")),
            Action::Upgrade
        );
        assert_eq!(
            decide(latest("failed", "h"), "h", Some("abort")),
            Action::Abort
        );
        // A change of configuration lifts an abort.
        assert_eq!(
            decide(latest("failed", "old"), "h", Some("abort")),
            Action::Upgrade
        );
        assert_eq!(
            decide(latest("superseded", "h"), "h", None),
            Action::Upgrade
        );
    }
}

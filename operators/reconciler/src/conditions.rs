//! Status conditions in the wrangler shape k3s's CRDs use: setting one
//! keeps its lastTransitionTime unless its status changed, and says
//! whether anything changed (so an unchanged status is not written).

use k3r_crds::condition::Condition;

/// An RFC 3339 timestamp of now, as conditions carry it.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Sets condition `type_` in `conditions`; returns whether anything changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    let existing = conditions.iter_mut().find(|c| c.type_ == type_);
    match existing {
        Some(c)
            if c.status == status
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message) =>
        {
            false
        }
        Some(c) => {
            let now = now();
            if c.status != status {
                c.last_transition_time = Some(now.clone());
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_update_time = Some(now);
            true
        }
        None => {
            let now = now();
            conditions.push(Condition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_update_time: Some(now.clone()),
                last_transition_time: Some(now),
            });
            true
        }
    }
}

/// The condition of this type, if any.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut conditions = Vec::new();
        assert!(set(&mut conditions, "Failed", "False", "Installed", "ok"));
        let first = conditions[0].last_transition_time.clone();
        assert!(!set(&mut conditions, "Failed", "False", "Installed", "ok"));
        assert!(set(&mut conditions, "Failed", "False", "Upgraded", "ok 2"));
        assert_eq!(conditions[0].last_transition_time, first);
        assert!(set(&mut conditions, "Failed", "True", "HookFailed", "no"));
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            get(&conditions, "Failed").map(|c| c.status.as_str()),
            Some("True")
        );
    }
}

//! `k3r prepare <plan>`: the prepare step of SUC's k3s example agent Plan
//! (`prepare: {image: …, args: [prepare, <server plan>]}`), so that Plan
//! applies with only its image changed. As k3s-upgrade's `prepare`, it
//! waits until the named Plan (in the Job's namespace) applies on no node
//! any more and is Complete.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use k3r_crds::Plan;
use kube::api::Api;

const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// The Plan to wait for (the server Plan)
    plan: String,
    /// Its namespace (default: the Job's)
    #[arg(long)]
    namespace: Option<String>,
}

fn complete(plan: &Plan) -> bool {
    let Some(status) = &plan.status else {
        return false;
    };
    status.applying.is_empty()
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
}

pub fn run(args: PrepareArgs) -> anyhow::Result<()> {
    let namespace = match args.namespace {
        Some(ns) => ns,
        None => std::fs::read_to_string(NAMESPACE_FILE)
            .map(|ns| ns.trim().to_string())
            .with_context(|| format!("reading {NAMESPACE_FILE} (or pass --namespace)"))?,
    };
    super::in_cluster::with_client(|client| async move {
        let plans: Api<Plan> = Api::namespaced(client, &namespace);
        loop {
            match plans.get_opt(&args.plan).await {
                Ok(Some(plan)) if complete(&plan) => {
                    println!("plan {namespace}/{} is complete", args.plan);
                    return Ok(());
                }
                Ok(Some(_)) => {
                    tracing::info!(plan = %args.plan, "waiting for the plan to complete")
                }
                Ok(None) => tracing::info!(plan = %args.plan, "waiting for the plan to exist"),
                // The API may be away while a server switches.
                Err(err) => tracing::info!(error = %err, "waiting for the API"),
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(status: serde_json::Value) -> Plan {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
            "metadata": {"name": "server", "namespace": "system-upgrade"},
            "spec": {"upgrade": {"image": "i"}},
            "status": status,
        }))
        .expect("plan")
    }

    #[test]
    fn a_plan_is_complete_when_true_and_applying_nowhere() {
        let done = serde_json::json!({"type": "Complete", "status": "True"});
        assert!(complete(&plan(
            serde_json::json!({"conditions": [done.clone()]})
        )));
        assert!(!complete(&plan(
            serde_json::json!({"conditions": [done], "applying": ["n1"]})
        )));
        assert!(!complete(&plan(serde_json::json!({"conditions": [
            {"type": "Complete", "status": "False"}]}))));
        assert!(!complete(&plan(serde_json::json!({}))));
    }
}

//! The k3r-operators Deployment and its RBAC, applied by the bootstrap with
//! server-side apply. The deploy operator reads the server's manifests
//! directory through a read-only hostPath, so it runs on this node.

use hyper::Method;
use serde_json::{Value, json};

use crate::api::ApiClient;
use crate::layout::Layout;
use crate::{Error, ServerConfig};

fn objects(config: &ServerConfig, layout: &Layout) -> Vec<(String, Value)> {
    let manifests = layout.manifests().display().to_string();
    let labels = json!({"app.kubernetes.io/name": "k3r-operators"});
    vec![
        (
            "/api/v1/namespaces/kube-system/serviceaccounts/k3r-operators".into(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "k3r-operators", "namespace": "kube-system"}}),
        ),
        (
            // The deploy operator applies whatever the manifests say, as
            // k3s's does: it needs cluster-admin.
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/k3r-operators-deploy".into(),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "k3r-operators-deploy"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "k3r-operators", "namespace": "kube-system"}],
            }),
        ),
        (
            "/apis/apps/v1/namespaces/kube-system/deployments/k3r-operators".into(),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "k3r-operators", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "strategy": {"type": "Recreate"},
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": "k3r-operators",
                            "priorityClassName": "system-cluster-critical",
                            "nodeSelector": {"kubernetes.io/hostname": config.node_name},
                            "tolerations": [{"operator": "Exists"}],
                            "containers": [{
                                "name": "operators",
                                "image": k3r_images::operators_image(),
                                "imagePullPolicy": "Never",
                                "args": ["operators", "--manifests-dir", manifests, "--disable", config.disable.join(",")],
                                "env": [{"name": "K3R_LOG", "value": "info"}],
                                // Root only to read the root-owned manifests
                                // directory; no capabilities, read-only root.
                                "securityContext": {
                                    "runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": false,
                                    "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]},
                                },
                                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                                "volumeMounts": [{"name": "manifests", "mountPath": manifests, "readOnly": true}],
                            }],
                            "volumes": [{"name": "manifests", "hostPath": {"path": manifests, "type": "Directory"}}],
                        },
                    },
                },
            }),
        ),
    ]
}

pub async fn apply(api: &ApiClient, config: &ServerConfig, layout: &Layout) -> Result<(), Error> {
    for (path, object) in objects(config, layout) {
        let body = serde_json::to_vec(&object).map_err(|e| Error::Api(e.to_string()))?;
        let (status, response) = api
            .request(
                Method::PATCH,
                &format!("{path}?fieldManager=k3r&force=true"),
                Some(("application/apply-patch+yaml", body)),
            )
            .await?;
        if !status.is_success() {
            return Err(Error::Api(format!(
                "applying {path}: {status}: {}",
                String::from_utf8_lossy(&response)
            )));
        }
    }
    Ok(())
}

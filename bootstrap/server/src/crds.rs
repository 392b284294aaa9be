//! Installs k3r's CRDs at start with server-side apply and waits until the
//! API serves them.

use std::time::Duration;

use crate::Error;
use crate::api::ApiClient;

pub async fn install(api: &ApiClient) -> Result<Vec<String>, Error> {
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(k3r_crds::CRDS_YAML)
        .map_err(|e| Error::Api(format!("embedded CRD YAML: {e}")))?;
    let mut names = Vec::new();
    for crd in documents.into_iter().filter(|d| !d.is_null()) {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        api.apply(&crd).await?;
        names.push(name);
    }
    for name in &names {
        let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
        crate::wait_until(
            &format!("CRD {name} established"),
            Duration::from_secs(60),
            || async {
                match api.get_json(&path).await {
                    Ok(Some(crd)) => crd["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    }),
                    _ => false,
                }
            },
        )
        .await?;
    }
    Ok(names)
}

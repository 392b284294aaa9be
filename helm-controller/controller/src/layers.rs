//! The values a HelmChart's release gets: valuesContent, values and
//! valuesSecrets of the chart, then of its HelmChartConfig, then `set`.

use crate::set::set_value;
use crate::values::{Layer, LayerSource, user_values};
use k3r_crds::helmchart::{HelmChart, HelmChartConfig, SecretSpec};
use k3r_gotemplate::Value;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;

use crate::Error;

/// The values layers of a chart and its HelmChartConfig, in k3s order.
pub async fn values(
    client: &kube::Client,
    chart: &HelmChart,
    config: Option<&HelmChartConfig>,
    namespace: &str,
) -> Result<Value, Error> {
    let mut layers = Vec::new();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let sources = [
        (
            "HelmChart",
            chart.spec.values_content.clone(),
            chart.spec.values.clone(),
            chart.spec.values_secrets.clone(),
        ),
        (
            "HelmChartConfig",
            config.and_then(|c| c.spec.values_content.clone()),
            config.and_then(|c| c.spec.values.clone()),
            config
                .map(|c| c.spec.values_secrets.clone())
                .unwrap_or_default(),
        ),
    ];
    for (kind, content, structured, value_secrets) in sources {
        if let Some(text) = content.filter(|t| !t.trim().is_empty()) {
            layers.push(Layer {
                origin: format!("{kind} spec.valuesContent"),
                source: LayerSource::Yaml(text),
            });
        }
        if let Some(structured) = structured.filter(|v| !v.is_null()) {
            layers.push(Layer {
                origin: format!("{kind} spec.values"),
                source: LayerSource::Yaml(structured.to_string()),
            });
        }
        for SecretSpec { name, keys, .. } in value_secrets {
            let name = name.unwrap_or_default();
            let secret = secrets
                .get(&name)
                .await
                .map_err(|e| Error::Other(format!("{kind} valuesSecrets {name}: {e}")))?;
            let keys = if keys.is_empty() {
                vec!["values.yaml".to_string()]
            } else {
                keys
            };
            for key in keys {
                let data = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&key))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .ok_or_else(|| {
                        Error::Other(format!("{kind} valuesSecrets {name}: no key {key:?}"))
                    })?;
                layers.push(Layer {
                    origin: format!("{kind} valuesSecrets {name}/{key}"),
                    source: LayerSource::Yaml(data),
                });
            }
        }
    }
    let sets: Vec<(String, Value)> = chart
        .spec
        .set
        .iter()
        .map(|(k, v)| {
            let value = match v {
                IntOrString::Int(i) => set_value(Some(i64::from(*i)), &i.to_string()),
                IntOrString::String(s) => set_value(None, s),
            };
            (k.clone(), value)
        })
        .collect();
    user_values(&layers, &sets).map_err(|e| Error::Other(e.to_string()))
}

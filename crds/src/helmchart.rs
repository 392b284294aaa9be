use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, PodSecurityContext, SecurityContext};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;

/// Arbitrary structured values (`apiextv1.JSON` upstream).
pub type Values = serde_json::Value;

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_updates: Option<bool>,
}

/// A Helm chart to install, as helm-controller defines it.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "helm.cattle.io",
    version = "v1",
    kind = "HelmChart",
    namespaced,
    shortname = "hc",
    status = "HelmChartStatus",
    printcolumn = r#"{"name":"Repo","type":"string","jsonPath":".spec.repo"}"#,
    printcolumn = r#"{"name":"Chart","type":"string","jsonPath":".spec.chart"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"TargetNamespace","type":"string","jsonPath":".spec.targetNamespace"}"#,
    printcolumn = r#"{"name":"Bootstrap","type":"boolean","jsonPath":".spec.bootstrap"}"#,
    printcolumn = r#"{"name":"Failed","type":"string","jsonPath":".status.conditions[?(@.type==\"Failed\")].status"}"#,
    printcolumn = r#"{"name":"Job","type":"string","jsonPath":".status.jobName","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespace: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, rename = "repoCA", skip_serializing_if = "Option::is_none")]
    pub repo_ca: Option<String>,
    #[serde(
        default,
        rename = "repoCAConfigMap",
        skip_serializing_if = "Option::is_none"
    )]
    pub repo_ca_config_map: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub values: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_secrets: Vec<SecretSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_ownership: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_conflicts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_off_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// abort, reinstall (default) or retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_pass_credentials: Option<bool>,
    #[serde(
        default,
        rename = "insecureSkipTLSVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls_verify: Option<bool>,
    #[serde(default, rename = "plainHTTP", skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_registry_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// Release storage: secret (default) or configmap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Overrides for the HelmChart of the same name and namespace.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "helm.cattle.io",
    version = "v1",
    kind = "HelmChartConfig",
    namespaced,
    shortname = "hcc"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub values: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values_secrets: Vec<SecretSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_conflicts: Option<bool>,
}

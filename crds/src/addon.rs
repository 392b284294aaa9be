use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;

/// One file of the auto-deploy manifests directory.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "k3s.cattle.io",
    version = "v1",
    kind = "Addon",
    namespaced,
    status = "AddonStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source"}"#,
    printcolumn = r#"{"name":"Checksum","type":"string","jsonPath":".spec.checksum","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AddonSpec {
    /// Path of the manifest file.
    #[serde(default)]
    pub source: String,
    /// SHA-256 of the file as last applied.
    #[serde(default)]
    pub checksum: String,
}

/// k3r's addition (k3s has no Addon status): what was applied and how it went.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AddonStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Objects applied from the file, as `group/version/Kind namespace/name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_objects: Vec<String>,
    /// Legacy k3s field: the GVKs applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gvks: Vec<String>,
}

//! Releases stored as Helm stores them (the Secrets driver), so that real
//! `helm list`, `helm history`, `helm get values` and `helm upgrade` read
//! and take over what k3r installs: Secret `sh.helm.release.v1.NAME.vN`,
//! type helm.sh/release.v1, labels name/owner/status/version, and
//! `data.release` = base64(gzip(JSON release)) (which the API base64-encodes
//! once more).

use std::io::{Read, Write};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_gotemplate::Value;
use serde_json::{Map, json};

use crate::chart::Chart;
use crate::manifest::Hook;
use crate::schema::to_serde;

/// Helm's release statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Deployed,
    Superseded,
    Failed,
    Uninstalling,
    PendingInstall,
    PendingUpgrade,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deployed => "deployed",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    /// The revision, from 1.
    pub version: i64,
    pub status: Status,
    pub first_deployed: SystemTime,
    pub last_deployed: SystemTime,
    pub description: String,
    pub notes: String,
    pub chart: Chart,
    /// The user-supplied values (what `helm get values` prints).
    pub config: Value,
    pub manifest: String,
    pub hooks: Vec<Hook>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("release data: {0}")]
    Decode(String),
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

fn files_json<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> serde_json::Value {
    serde_json::Value::Array(
        files
            .map(|(name, data)| json!({"name": name, "data": STANDARD.encode(data)}))
            .collect(),
    )
}

impl Release {
    pub fn secret_name(&self) -> String {
        format!("sh.helm.release.v1.{}.v{}", self.name, self.version)
    }

    /// The release as Helm's JSON (pkg/release/v1). Zero times are left
    /// out (Helm 4's omitzero; an empty string would not parse). Subcharts
    /// are not embedded (Helm's JSON has no field for them).
    pub fn to_json(&self) -> serde_json::Value {
        let chart = &self.chart;
        let mut chart_json = Map::new();
        chart_json.insert("metadata".into(), to_serde(&chart.metadata));
        chart_json.insert("lock".into(), serde_json::Value::Null);
        chart_json.insert(
            "templates".into(),
            files_json(
                chart
                    .templates
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.as_bytes())),
            ),
        );
        chart_json.insert("values".into(), to_serde(&chart.values));
        chart_json.insert(
            "schema".into(),
            chart.schema.as_ref().map_or(serde_json::Value::Null, |s| {
                serde_json::Value::String(STANDARD.encode(s))
            }),
        );
        chart_json.insert(
            "files".into(),
            files_json(chart.files.iter().map(|(n, b)| (n.as_str(), b.as_slice()))),
        );
        let hooks: Vec<serde_json::Value> = self
            .hooks
            .iter()
            .map(|h| {
                json!({
                    "name": h.document.name,
                    "kind": h.document.kind,
                    "path": h.document.source,
                    "manifest": h.document.content,
                    "events": h.events,
                    "weight": h.weight,
                    "delete_policies": h.delete_policies,
                })
            })
            .collect();
        let mut release = json!({
            "name": self.name,
            "info": {
                "first_deployed": time(self.first_deployed),
                "last_deployed": time(self.last_deployed),
                "description": self.description,
                "status": self.status.as_str(),
                "notes": self.notes,
            },
            "chart": serde_json::Value::Object(chart_json),
            "manifest": self.manifest,
            "version": self.version,
            "namespace": self.namespace,
            "apply_method": "ssa",
        });
        if matches!(&self.config, Value::Map(m) if !m.is_empty()) {
            release["config"] = to_serde(&self.config);
        }
        if !hooks.is_empty() {
            release["hooks"] = serde_json::Value::Array(hooks);
        }
        release
    }

    /// base64(gzip(JSON)): the string Helm puts in `data.release`.
    pub fn encode(&self) -> String {
        encode_json(&self.to_json())
    }

    /// The Secret object (for server-side apply).
    pub fn secret(&self) -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": self.secret_name(),
                "namespace": self.namespace,
                "labels": {
                    "name": self.name,
                    "owner": "helm",
                    "status": self.status.as_str(),
                    "version": self.version.to_string(),
                },
            },
            "data": {"release": STANDARD.encode(self.encode())},
        })
    }
}

/// base64(gzip(JSON)) of a release JSON (to rewrite a stored release).
pub fn encode_json(json: &serde_json::Value) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(json.to_string().as_bytes());
    let compressed = gz.finish().unwrap_or_default();
    STANDARD.encode(compressed)
}

/// Decodes `data.release` (after the API's base64): base64, then gzip if
/// the gzip magic is there, then JSON.
pub fn decode(release_field: &str) -> Result<serde_json::Value, ReleaseError> {
    let bytes = STANDARD
        .decode(release_field.trim())
        .map_err(|e| ReleaseError::Decode(e.to_string()))?;
    let json = if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| ReleaseError::Decode(e.to_string()))?;
        out
    } else {
        bytes
    };
    serde_json::from_slice(&json).map_err(|e| ReleaseError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::from_files;

    #[test]
    fn release_round_trips_through_helms_encoding() {
        let chart = from_files(
            vec![
                (
                    "Chart.yaml".into(),
                    b"apiVersion: v2\nname: demo\nversion: 0.3.0\nappVersion: \"1.0\"\n".to_vec(),
                ),
                ("values.yaml".into(), b"replicas: 1\n".to_vec()),
                ("templates/cm.yaml".into(), b"kind: ConfigMap\n".to_vec()),
            ],
            "demo",
        )
        .expect("chart");
        let now = SystemTime::now();
        let release = Release {
            name: "web".into(),
            namespace: "apps".into(),
            version: 2,
            status: Status::Deployed,
            first_deployed: now,
            last_deployed: now,
            description: "Upgrade complete".into(),
            notes: String::new(),
            chart,
            config: crate::values::parse_yaml("replicas: 3\n").expect("values"),
            manifest: "---\n# Source: demo/templates/cm.yaml\nkind: ConfigMap\n".into(),
            hooks: Vec::new(),
        };
        let secret = release.secret();
        assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.web.v2");
        assert_eq!(secret["metadata"]["labels"]["status"], "deployed");
        assert_eq!(secret["metadata"]["labels"]["version"], "2");
        // The API's base64, then Helm's.
        let api_b64 = secret["data"]["release"].as_str().expect("data");
        let helm_b64 = String::from_utf8(STANDARD.decode(api_b64).expect("b64")).expect("utf8");
        let decoded = decode(&helm_b64).expect("decode");
        assert_eq!(decoded["name"], "web");
        assert_eq!(decoded["version"], 2);
        assert_eq!(decoded["info"]["status"], "deployed");
        assert_eq!(decoded["config"]["replicas"], 3.0);
        assert_eq!(decoded["chart"]["metadata"]["appVersion"], "1.0");
        assert_eq!(
            decoded["chart"]["templates"][0]["name"],
            "templates/cm.yaml"
        );
        assert!(
            decoded["info"]["last_deployed"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
}

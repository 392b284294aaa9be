//! The values a HelmChart's release gets, in k3s's precedence (lowest
//! first): HelmChart valuesContent, values, valuesSecrets; HelmChartConfig
//! valuesContent, values, valuesSecrets; then `set`. Files merge as Helm
//! merges -f files (maps recursively, later wins, nulls kept so that they
//! can delete chart defaults).

use k3r_gotemplate::Value;
use k3r_helm_render::values::{merge, parse_yaml};
use sha2::{Digest, Sha256};

use crate::set;

/// One source of values, named for error messages.
pub struct Layer {
    pub origin: String,
    pub source: LayerSource,
}

pub enum LayerSource {
    /// YAML text (valuesContent, a values Secret key).
    Yaml(String),
    /// Structured values (spec.values).
    Data(Value),
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{origin}: {message}")]
pub struct ValuesError {
    pub origin: String,
    pub message: String,
}

/// Merges the layers in order, then applies `set` (sorted by key, as
/// k3s sorts them).
pub fn user_values(layers: &[Layer], sets: &[(String, Value)]) -> Result<Value, ValuesError> {
    let mut values = Value::from(std::collections::BTreeMap::new());
    for layer in layers {
        let data = match &layer.source {
            LayerSource::Data(v) => v.clone(),
            LayerSource::Yaml(text) => parse_yaml(text).map_err(|e| ValuesError {
                origin: layer.origin.clone(),
                message: e.to_string(),
            })?,
        };
        match data {
            Value::Map(_) => values = merge(&values, &data),
            Value::Nil => {}
            other => {
                return Err(ValuesError {
                    origin: layer.origin.clone(),
                    message: format!("values must be a map, not {}", other.type_name()),
                });
            }
        }
    }
    let mut sorted: Vec<&(String, Value)> = sets.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in sorted {
        values = set::apply(&values, key, value.clone()).map_err(|e| ValuesError {
            origin: "spec.set".into(),
            message: e.to_string(),
        })?;
    }
    Ok(values)
}

/// A digest of everything that decides a release: when it is unchanged
/// and the release is deployed, there is nothing to do.
pub fn config_hash(parts: &[&str], values: &Value) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let json =
        k3r_helm_render::json::to_json(values, &k3r_helm_render::json::COMPACT).unwrap_or_default();
    hasher.update(json.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(origin: &str, yaml: &str) -> Layer {
        Layer {
            origin: origin.into(),
            source: LayerSource::Yaml(yaml.into()),
        }
    }

    #[test]
    fn later_layers_win_and_set_wins_over_all() {
        let values = user_values(
            &[
                layer(
                    "HelmChart valuesContent",
                    "a: 1\nnested: {x: 1, w: 1}\ndrop: keep\n",
                ),
                layer(
                    "HelmChartConfig valuesContent",
                    "a: 2\nnested: {w: 2}\ndrop: null\n",
                ),
            ],
            &[
                ("nested.z".into(), Value::Int(3)),
                ("a".into(), Value::str("set")),
            ],
        )
        .expect("values");
        let json =
            k3r_helm_render::json::to_json(&values, &k3r_helm_render::json::COMPACT).expect("json");
        assert_eq!(
            json,
            r#"{"a":"set","drop":null,"nested":{"w":2,"x":1,"z":3}}"#
        );
    }

    #[test]
    fn bad_yaml_names_its_origin() {
        let err = user_values(&[layer("HelmChartConfig valuesContent", "a: [\n")], &[])
            .expect_err("bad yaml");
        assert_eq!(err.origin, "HelmChartConfig valuesContent");
        let err =
            user_values(&[layer("HelmChart valuesContent", "- a\n")], &[]).expect_err("not a map");
        assert!(err.message.contains("must be a map"), "{err}");
    }

    #[test]
    fn hash_changes_with_any_part() {
        let v = parse_yaml("a: 1").expect("yaml");
        let w = parse_yaml("a: 2").expect("yaml");
        assert_eq!(config_hash(&["x"], &v), config_hash(&["x"], &v));
        assert_ne!(config_hash(&["x"], &v), config_hash(&["x"], &w));
        assert_ne!(config_hash(&["x"], &v), config_hash(&["y"], &v));
    }
}

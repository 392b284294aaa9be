//! values.schema.json under every `$schema` Helm accepts, and its failures
//! worded as Helm words them, against Helm.

use serde_json::json;

use crate::harness::our_manifest;

const SCHEMAS: &[Option<&str>] = &[
    None,
    Some("http://json-schema.org/schema#"),
    Some("http://json-schema.org/draft-04/schema#"),
    Some("http://json-schema.org/draft-06/schema#"),
    Some("http://json-schema.org/draft-07/schema#"),
    Some("http://json-schema.org/draft-07/schema"),
    Some("https://json-schema.org/draft/2019-09/schema"),
    Some("https://json-schema.org/draft/2020-12/schema"),
];

fn schema(declared: Option<&str>) -> String {
    let mut schema = json!({
        "type": "object",
        "required": ["replicas", "name", "mode"],
        "additionalProperties": false,
        "properties": {
            "replicas": {"type": "integer", "minimum": 1, "maximum": 9},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
            "mode": {"enum": ["fast", "safe"]},
            "ports": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": "integer"}},
            "ratio": {"type": ["number", "null"], "multipleOf": 0.5},
        }
    });
    if let Some(declared) = declared {
        schema["$schema"] = json!(declared);
    }
    schema.to_string()
}

#[test]
fn schemas_and_their_failures_match_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_values = [
        json!({"replicas": "two", "name": "a", "mode": "fast"}),
        json!({"replicas": 0, "name": "a", "mode": "fast"}),
        json!({"replicas": 10, "name": "a", "mode": "fast"}),
        json!({"replicas": 2}),
        json!({"replicas": 1, "name": "A1", "mode": "fast"}),
        json!({"replicas": 1, "name": "abcdefghij", "mode": "fast"}),
        json!({"replicas": 1, "name": "a", "mode": "slow"}),
        json!({"replicas": 1, "name": "a", "mode": "fast", "extra": 1, "more": 2}),
        json!({"replicas": 1, "name": "a", "mode": "fast", "ports": []}),
        json!({"replicas": 1, "name": "a", "mode": "fast", "ports": [80, 80]}),
        json!({"replicas": 1, "name": "a", "mode": "fast", "ratio": 0.3}),
        json!({"replicas": 1, "name": "a", "mode": "fast", "ratio": "x"}),
    ];
    let mut differ = Vec::new();
    for (i, declared) in SCHEMAS.iter().enumerate() {
        let chart = k3r_helm_oracle::write_chart(
            dir.path(),
            &format!("s{i}"),
            "replicas: 1\n",
            &[(
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  r: {{ .Values.replicas | quote }}\n",
            )],
        );
        std::fs::write(chart.join("values.schema.json"), schema(*declared)).expect("schema");
        let good = json!({"replicas": 3, "name": "a", "mode": "safe"});
        let theirs = k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &good);
        let ours = our_manifest(&chart, &good);
        if theirs != ours {
            differ.push(format!(
                "{declared:?} valid:\n  helm: {theirs:?}\n  ours: {ours:?}"
            ));
        }
        for bad in &bad_values {
            let theirs = k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", bad)
                .map_err(|e| unordered_names(e.trim_end()));
            let ours = our_manifest(&chart, bad).map_err(|e| unordered_names(e.trim_end()));
            assert!(theirs.is_err(), "{declared:?} {bad}: Helm rejects");
            if theirs != ours {
                differ.push(format!(
                    "{declared:?} {bad}:\n  helm: {theirs:?}\n  ours: {ours:?}"
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// Helm lists unexpected properties in Go's map order, which varies from
/// run to run: sort them so the texts compare.
fn unordered_names(message: &str) -> String {
    message
        .lines()
        .map(|line| match line.split_once("additional properties ") {
            Some((head, rest)) => {
                let names = rest.trim_end_matches(" not allowed");
                let mut names: Vec<&str> = names.split(", ").collect();
                names.sort_unstable();
                format!(
                    "{head}additional properties {} not allowed",
                    names.join(", ")
                )
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

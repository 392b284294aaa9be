//! Whole charts written by this project, rendered into release manifests
//! by `helm install --dry-run` and by us: subcharts with values scoping and
//! globals, aliases, conditions and tags, a library chart, `.Files`, hooks,
//! NOTES, install order with unknown kinds.

use std::path::Path;

use serde_json::json;

use crate::harness::our_manifest;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn suite(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("suite");
    write(
        &root,
        "Chart.yaml",
        r#"apiVersion: v2
name: suite
version: 1.2.3
appVersion: "9.9"
dependencies:
- name: sub
  version: 0.1.0
  condition: sub.enabled
- name: sub
  alias: sub2
  version: 0.1.0
- name: extra
  version: 0.1.0
  tags: [extras]
- name: lib
  version: 0.1.0
"#,
    );
    write(
        &root,
        "values.yaml",
        r#"name: suite
global:
  region: eu
  shared: {a: 1}
sub:
  enabled: true
  replicas: 2
sub2:
  replicas: 5
tags:
  extras: false
big: 1000000
"#,
    );
    write(&root, ".helmignore", "*.bak\n");
    write(&root, "files/a.txt", "alpha\n");
    write(&root, "files/b.txt", "beta\nsecond line\n");
    write(&root, "files/conf/c.yaml", "key: value\n");
    write(&root, "files/ignored.bak", "never\n");
    write(
        &root,
        "templates/_helpers.tpl",
        r#"{{- define "suite.fullname" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end -}}
{{- define "suite.labels" -}}
app.kubernetes.io/name: {{ include "suite.fullname" . }}
{{ include "lib.label" . }}
{{- end -}}
"#,
    );
    write(
        &root,
        "templates/configmap.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "suite.fullname" . }}
  labels:
    {{- include "suite.labels" . | nindent 4 }}
data:
  a: {{ .Files.Get "files/a.txt" | quote }}
  lines: {{ .Files.Lines "files/b.txt" | len | quote }}
  files: |
    {{- range $path, $bytes := .Files.Glob "files/*.txt" }}
    {{ $path }}: {{ len $bytes }}
    {{- end }}
  ignored: {{ .Files.Get "files/ignored.bak" | quote }}
  big: {{ .Values.big | quote }}
  region: {{ .Values.global.region }}
  subReplicas: {{ .Values.sub.replicas | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "suite.fullname" . }}-files
data:
{{ (.Files.Glob "files/**").AsConfig | indent 2 }}
"#,
    );
    write(
        &root,
        "templates/mixed.yaml",
        r#"apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "suite.fullname" . }}
spec:
  replicas: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "suite.fullname" . }}
---
apiVersion: v1
kind: Namespace
metadata:
  name: extra-ns
---
apiVersion: example.com/v1
kind: Apple
metadata:
  name: a
"#,
    );
    write(
        &root,
        "templates/secret.yaml",
        r#"apiVersion: v1
kind: Secret
metadata:
  name: {{ include "suite.fullname" . }}
data:
  token: {{ "s3cret" | b64enc }}
"#,
    );
    write(
        &root,
        "templates/hook.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
spec: {}
"#,
    );
    write(
        &root,
        "templates/empty.yaml",
        "{{- if false }}\nnever: here\n{{- end }}\n",
    );
    write(
        &root,
        "templates/NOTES.txt",
        "Installed {{ .Release.Name }}.\n",
    );
    write(
        &root,
        "crds/widget.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n",
    );

    let (name, replicas) = ("sub", 1);
    let sub = root.join("charts").join(name);
    write(
        &sub,
        "Chart.yaml",
        &format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
    );
    write(
        &sub,
        "values.yaml",
        &format!("replicas: {replicas}\nglobal:\n  region: us\n  childonly: x\n"),
    );
    write(
        &sub,
        "templates/_helpers.tpl",
        "{{- define \"suite.fullname\" -}}overridden-by-parent{{- end -}}\n",
    );
    write(
        &sub,
        "templates/deploy.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
  annotations:
    region: {{ .Values.global.region }}
    childonly: {{ .Values.global.childonly }}
    shared: {{ .Values.global.shared.a | quote }}
    base: {{ .Template.BasePath }}
    root: {{ .Chart.IsRoot | quote }}
    helper: {{ include "suite.fullname" . }}
spec:
  replicas: {{ .Values.replicas }}
"#,
    );
    let extra = root.join("charts/extra");
    write(
        &extra,
        "Chart.yaml",
        "apiVersion: v2\nname: extra\nversion: 0.1.0\n",
    );
    write(
        &extra,
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
    );
    let lib = root.join("charts/lib");
    write(
        &lib,
        "Chart.yaml",
        "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n",
    );
    write(
        &lib,
        "templates/_lib.tpl",
        "{{- define \"lib.label\" -}}lib: {{ .Chart.Name }}{{- end -}}\n",
    );
    write(
        &lib,
        "templates/not-rendered.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-library\n",
    );
    root
}

#[test]
fn chart_suite_manifests_match_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = suite(dir.path());
    for values in [
        json!({}),
        json!({"sub": {"enabled": false}, "tags": {"extras": true}, "global": {"region": "ap"}}),
        json!({"sub2": {"replicas": null}, "big": 2.5, "name": "x"}),
    ] {
        let helm = k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &values)
            .unwrap_or_else(|e| panic!("Helm installs the suite with {values}: {e}"));
        let ours = our_manifest(&chart, &values).expect("we render the suite");
        assert!(helm.contains("kind: Deployment"), "{helm}");
        if ours != helm {
            let diff: Vec<String> = helm
                .lines()
                .zip(ours.lines())
                .enumerate()
                .filter(|(_, (h, o))| h != o)
                .take(5)
                .map(|(i, (h, o))| format!("line {}: helm {h:?} ours {o:?}", i + 1))
                .collect();
            panic!(
                "values {values}: manifests differ:\n{}\n--- helm ---\n{helm}\n--- ours ---\n{ours}",
                diff.join("\n")
            );
        }
    }
}

#[test]
fn schema_and_kube_version_failures_match_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = k3r_helm_oracle::write_chart(
        dir.path(),
        "strict",
        "replicas: 1\nimage: {tag: v1}\n",
        &[(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  r: {{ .Values.replicas | quote }}\n",
        )],
    );
    write(
        &chart,
        "values.schema.json",
        r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "required": ["replicas"],
            "properties": {"replicas": {"type": "integer", "minimum": 1},
                           "image": {"type": "object", "properties": {"tag": {"type": "string"}}}}}"#,
    );
    // Valid values render the same.
    let good = json!({"replicas": 3});
    assert_eq!(
        our_manifest(&chart, &good).expect("valid values render"),
        k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &good).expect("Helm renders")
    );
    for bad in [
        json!({"replicas": "two"}),
        json!({"replicas": 0}),
        json!({"image": {"tag": 5}}),
    ] {
        let helm =
            k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &bad).expect_err("Helm rejects");
        let ours = our_manifest(&chart, &bad).expect_err("we reject");
        assert!(helm.contains("schema"), "{helm}");
        assert!(
            ours.contains("values don't meet the specifications of the schema"),
            "{ours}"
        );
        assert!(ours.contains("strict:"), "{ours}");
        let field = if bad.get("image").is_some() {
            "/image/tag"
        } else {
            "/replicas"
        };
        assert!(ours.contains(field), "{bad}: {ours}");
    }
    // A kubeVersion the cluster does not satisfy.
    write(
        &chart,
        "Chart.yaml",
        "apiVersion: v2\nname: strict\nversion: 0.1.0\nkubeVersion: \">=1.99.0-0\"\n",
    );
    let helm =
        k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &good).expect_err("Helm rejects");
    let ours = our_manifest(&chart, &good).expect_err("we reject");
    assert!(helm.contains("incompatible with Kubernetes"), "{helm}");
    assert!(
        ours.contains(
            "chart requires kubeVersion: >=1.99.0-0 which is incompatible with Kubernetes"
        ),
        "{ours}"
    );
}

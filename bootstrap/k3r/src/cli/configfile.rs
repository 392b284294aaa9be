//! k3s-compatible config files: `config.yaml` then `config.yaml.d/*.yaml`
//! in name order. Each key is a flag name; its value becomes `--key=value`
//! arguments spliced before the command-line arguments, so flags given on
//! the command line win (for lists, the command-line list replaces the
//! file's). `key+:` appends to what earlier files set instead of replacing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// One flag's accumulated value from config files.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Scalar(String),
    List(Vec<String>),
}

fn to_strings(key: &str, file: &Path, value: &serde_json::Value) -> anyhow::Result<Value> {
    let scalar = |v: &serde_json::Value| -> anyhow::Result<String> {
        Ok(match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => String::new(),
            _ => bail!(
                "{}: value of {key:?} must be a string, number, boolean or list of them",
                file.display()
            ),
        })
    };
    match value {
        serde_json::Value::Array(items) => Ok(Value::List(
            items.iter().map(scalar).collect::<anyhow::Result<_>>()?,
        )),
        other => Ok(Value::Scalar(scalar(other)?)),
    }
}

/// Files to read for `config`: the file itself (if present) and its
/// drop-in directory.
pub fn config_files(config: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if config.exists() {
        files.push(config.to_path_buf());
    }
    let dropins = PathBuf::from(format!("{}.d", config.display()));
    if dropins.is_dir() {
        let mut extra: Vec<PathBuf> = std::fs::read_dir(&dropins)
            .with_context(|| format!("reading {}", dropins.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        extra.sort();
        files.extend(extra);
    }
    Ok(files)
}

/// Turns config files into arguments for a command whose long flags are
/// `known`, leaving out keys that `cli_args` sets itself and keys in
/// `elsewhere` (another command's flags: one file serves server and agent).
pub fn config_args(
    files: &[PathBuf],
    known: &[String],
    elsewhere: &[String],
    cli_args: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let map: BTreeMap<String, serde_json::Value> = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: invalid YAML: {e}", file.display()))?;
        for (raw_key, raw_value) in map {
            let (key, append) = match raw_key.strip_suffix('+') {
                Some(k) => (k.to_string(), true),
                None => (raw_key.clone(), false),
            };
            if !known.contains(&key) {
                if elsewhere.contains(&key) {
                    continue;
                }
                bail!("{}: unknown config key {key:?}", file.display());
            }
            let value = to_strings(&key, file, &raw_value)?;
            let entry = match (append, merged.remove(&key), value) {
                (true, Some(Value::List(mut old)), Value::List(new)) => {
                    old.extend(new);
                    Value::List(old)
                }
                (true, Some(Value::List(mut old)), Value::Scalar(new)) => {
                    old.push(new);
                    Value::List(old)
                }
                (true, Some(Value::Scalar(old)), Value::List(new)) => {
                    Value::List([vec![old], new].concat())
                }
                (true, Some(Value::Scalar(old)), Value::Scalar(new)) => {
                    Value::Scalar(format!("{old},{new}"))
                }
                (_, _, value) => value,
            };
            if !order.contains(&key) {
                order.push(key.clone());
            }
            merged.insert(key, entry);
        }
    }
    let on_cli = |key: &str| {
        cli_args
            .iter()
            .any(|a| a == &format!("--{key}") || a.starts_with(&format!("--{key}=")))
    };
    let mut args = Vec::new();
    for key in order {
        if on_cli(&key) {
            continue;
        }
        match merged.remove(&key) {
            Some(Value::Scalar(v)) => args.push(format!("--{key}={v}")),
            Some(Value::List(vs)) => args.extend(vs.into_iter().map(|v| format!("--{key}={v}"))),
            None => {}
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "token",
            "node-label",
            "tls-san",
            "write-kubeconfig-mode",
            "disable",
            "debug",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn dropins_override_append_and_cli_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = write(
            dir.path(),
            "config.yaml",
            "token: one\nnode-label: [a=1, b=2]\ntls-san: x\nwrite-kubeconfig-mode: \"0644\"\ndebug: true\n",
        );
        write(
            dir.path(),
            "config.yaml.d/10-more.yaml",
            "token: two\nnode-label+: [c=3]\n",
        );
        write(
            dir.path(),
            "config.yaml.d/20-last.yaml",
            "tls-san: [y, z]\n",
        );
        write(dir.path(), "config.yaml.d/ignored.txt", "not: yaml: at all");
        let files = config_files(&main).expect("files");
        assert_eq!(files.len(), 3);
        let args =
            config_args(&files, &known(), &[], &["--tls-san=cli".to_string()]).expect("args");
        assert_eq!(
            args,
            [
                "--debug=true",
                "--node-label=a=1",
                "--node-label=b=2",
                "--node-label=c=3",
                "--token=two",
                "--write-kubeconfig-mode=0644"
            ]
        );
    }

    #[test]
    fn another_commands_keys_are_skipped() {
        let dir = tempfile::tempdir().expect("dir");
        let shared = dir.path().join("config.yaml");
        std::fs::write(&shared, "tls-san: a\nflannel-iface: eth1\n").expect("write");
        let args = config_args(&[shared], &known(), &["flannel-iface".to_string()], &[])
            .expect("server's keys are skipped");
        assert_eq!(args, ["--tls-san=a"]);
    }

    #[test]
    fn unknown_keys_and_bad_yaml_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad_key = write(dir.path(), "a.yaml", "tokn: x\n");
        let err = config_args(&[bad_key], &known(), &[], &[])
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.contains("a.yaml") && err.contains("unknown config key \"tokn\""),
            "{err}"
        );
        let bad_yaml = write(dir.path(), "b.yaml", "token: [unclosed\n");
        let err = config_args(&[bad_yaml], &known(), &[], &[])
            .expect_err("bad yaml")
            .to_string();
        assert!(
            err.contains("b.yaml") && err.contains("invalid YAML"),
            "{err}"
        );
        let nested = write(dir.path(), "c.yaml", "token:\n  nested: map\n");
        assert!(config_args(&[nested], &known(), &[], &[]).is_err());
    }
}

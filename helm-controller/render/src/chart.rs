//! Loading a chart from a directory or a .tgz archive: Chart.yaml,
//! values.yaml, values.schema.json, templates/, crds/, the other files
//! (for `.Files`), and subcharts from charts/ (directories or archives).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use k3r_gotemplate::Value;

use crate::ignore::IgnoreRules;
use crate::values::parse_yaml;

#[derive(Clone, Debug)]
pub struct Chart {
    /// Chart.yaml as a map.
    pub metadata: Value,
    /// values.yaml (the chart's defaults).
    pub values: Value,
    pub schema: Option<String>,
    /// (path relative to the chart, text): "templates/x.yaml". Shared, as
    /// are the other files: rendering copies charts (aliases, dependency
    /// processing), never their contents.
    pub templates: Arc<Vec<(String, String)>>,
    /// crds/ files, never templated.
    pub crds: Arc<Vec<(String, String)>>,
    /// Every other file, for `.Files`.
    pub files: Arc<Vec<(String, Arc<Vec<u8>>)>>,
    /// Subcharts from charts/.
    pub dependencies: Vec<Chart>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChartError {
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("chart archive: {0}")]
    Archive(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Chart {
    pub fn name(&self) -> String {
        self.field("name")
    }

    pub fn version(&self) -> String {
        self.field("version")
    }

    pub fn field(&self, key: &str) -> String {
        match &self.metadata {
            Value::Map(m) => m
                .get(key)
                .map(|v| match v {
                    Value::String(s) => s.to_string(),
                    other => other.to_go_string(),
                })
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// Library charts contribute only their helpers.
    pub fn is_library(&self) -> bool {
        self.field("type") == "library"
    }
}

/// Loads a chart directory, leaving out what its .helmignore names.
pub fn load_dir(dir: &Path) -> Result<Chart, ChartError> {
    let origin = dir.display().to_string();
    let ignore_file = dir.join(".helmignore");
    let text = match std::fs::read_to_string(&ignore_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(ChartError::Io(
                ignore_file.display().to_string(),
                e.to_string(),
            ));
        }
    };
    let rules = IgnoreRules::parse(&text).map_err(|message| ChartError::Invalid {
        path: format!("{origin}/.helmignore"),
        message,
    })?;
    let mut files = Vec::new();
    walk(dir, dir, &rules, &mut files)?;
    from_files(files, &origin)
}

fn walk(
    root: &Path,
    dir: &Path,
    rules: &IgnoreRules,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), ChartError> {
    let io = |p: &Path, e: std::io::Error| ChartError::Io(p.display().to_string(), e.to_string());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let is_dir = path.is_dir();
        if rules.ignores(&relative, is_dir) {
            continue;
        }
        if is_dir {
            walk(root, &path, rules, files)?;
        } else {
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            // Helm drops a UTF-8 byte order mark.
            let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
                Some(rest) => rest.to_vec(),
                None => bytes,
            };
            files.push((relative, bytes));
        }
    }
    Ok(())
}

/// Loads a .tgz chart archive (one top-level directory).
pub fn load_archive(bytes: &[u8]) -> Result<Chart, ChartError> {
    let decoder = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(decoder);
    let mut files = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| ChartError::Archive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ChartError::Archive(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| ChartError::Archive(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        // Drop the top-level directory ("mychart/templates/x" -> "templates/x").
        let Some((_, relative)) = path.split_once('/') else {
            continue;
        };
        let mut contents = Vec::new();
        entry
            .read_to_end(&mut contents)
            .map_err(|e| ChartError::Archive(format!("{path}: {e}")))?;
        files.push((relative.to_string(), contents));
    }
    if files.is_empty() {
        return Err(ChartError::Archive("no files in archive".into()));
    }
    from_files(files, "chart archive")
}

fn text(path: &str, bytes: &[u8]) -> Result<String, ChartError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ChartError::Invalid {
        path: path.to_string(),
        message: "not UTF-8 text".into(),
    })
}

/// Builds a chart from (relative path, bytes); `origin` names it in errors.
pub fn from_files(files: Vec<(String, Vec<u8>)>, origin: &str) -> Result<Chart, ChartError> {
    let invalid = |path: &str, message: String| ChartError::Invalid {
        path: format!("{origin}/{path}"),
        message,
    };
    let mut chart = Chart {
        metadata: Value::Nil,
        values: Value::from(std::collections::BTreeMap::new()),
        schema: None,
        templates: Arc::default(),
        crds: Arc::default(),
        files: Arc::default(),
        dependencies: Vec::new(),
    };
    let (mut templates, mut crds, mut files_of_chart) = (Vec::new(), Vec::new(), Vec::new());
    // Subcharts: charts/<name>/... directories and charts/<name>.tgz.
    let mut sub_dirs: std::collections::BTreeMap<String, Vec<(String, Vec<u8>)>> =
        std::collections::BTreeMap::new();
    for (path, bytes) in files {
        if let Some(rest) = path.strip_prefix("charts/") {
            // Provenance files of archived subcharts are the parent's files.
            if rest.ends_with(".prov") {
                files_of_chart.push((path, Arc::new(bytes)));
                continue;
            }
            match rest.split_once('/') {
                Some((name, inner)) => sub_dirs
                    .entry(name.to_string())
                    .or_default()
                    .push((inner.to_string(), bytes)),
                None if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") => chart
                    .dependencies
                    .push(load_archive(&bytes).map_err(|e| invalid(&path, e.to_string()))?),
                None => {}
            }
            continue;
        }
        match path.as_str() {
            "Chart.yaml" => {
                chart.metadata =
                    parse_yaml(&text(&path, &bytes)?).map_err(|e| invalid(&path, e.to_string()))?;
            }
            "values.yaml" => {
                chart.values =
                    parse_yaml(&text(&path, &bytes)?).map_err(|e| invalid(&path, e.to_string()))?;
            }
            "values.schema.json" => chart.schema = Some(text(&path, &bytes)?),
            "Chart.lock" | "requirements.yaml" | "requirements.lock" => {}
            p if p.starts_with("templates/") => {
                templates.push((path.clone(), text(&path, &bytes)?));
            }
            p if p.starts_with("crds/") => {
                crds.push((path.clone(), text(&path, &bytes)?));
                files_of_chart.push((path, Arc::new(bytes)));
            }
            _ => files_of_chart.push((path, Arc::new(bytes))),
        }
    }
    chart.templates = Arc::new(templates);
    chart.crds = Arc::new(crds);
    chart.files = Arc::new(files_of_chart);
    for (name, files) in sub_dirs {
        chart
            .dependencies
            .push(from_files(files, &format!("{origin}/charts/{name}"))?);
    }
    if !matches!(chart.metadata, Value::Map(_)) {
        return Err(invalid(
            "Chart.yaml",
            "missing (a chart needs Chart.yaml)".into(),
        ));
    }
    if chart.name().is_empty() {
        return Err(invalid(
            "Chart.yaml",
            "validation: chart.metadata.name is required".into(),
        ));
    }
    if chart.version().is_empty() {
        return Err(invalid(
            "Chart.yaml",
            "validation: chart.metadata.version is required".into(),
        ));
    }
    Ok(chart)
}

/// filepath.Match-style globbing (no '/' crossing for '*').
pub fn glob(pattern: &str, name: &str) -> bool {
    fn inner(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                inner(&p[1..], n) || (!n.is_empty() && n[0] != '/' && inner(p, &n[1..]))
            }
            (Some('?'), Some(c)) if *c != '/' => inner(&p[1..], &n[1..]),
            (Some('['), Some(c)) => {
                let Some(end) = p.iter().position(|x| *x == ']') else {
                    return false;
                };
                let class = &p[1..end];
                let (negated, class) = match class.first() {
                    Some('^' | '!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negated && inner(&p[end + 1..], &n[1..])
            }
            (Some('\\'), Some(c)) => p.get(1) == Some(c) && inner(&p[2..], &n[1..]),
            (Some(a), Some(b)) => a == b && inner(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    inner(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "dir/a.txt"));
        assert!(glob("file-[0-9].yaml", "file-3.yaml"));
    }

    #[test]
    fn chart_from_files_with_subchart_and_errors() {
        let files = vec![
            (
                "Chart.yaml".to_string(),
                b"apiVersion: v2\nname: top\nversion: 1.0.0\n".to_vec(),
            ),
            ("values.yaml".to_string(), b"a: 1\n".to_vec()),
            ("templates/x.yaml".to_string(), b"x".to_vec()),
            ("files/data.txt".to_string(), b"data".to_vec()),
            (
                "charts/sub/Chart.yaml".to_string(),
                b"name: sub\nversion: 0.1.0\n".to_vec(),
            ),
            ("charts/sub/templates/y.yaml".to_string(), b"y".to_vec()),
        ];
        let chart = from_files(files, "top").expect("chart");
        assert_eq!(chart.name(), "top");
        assert_eq!(chart.templates.len(), 1);
        assert_eq!(chart.files.len(), 1);
        assert_eq!(chart.dependencies.len(), 1);
        assert_eq!(chart.dependencies[0].name(), "sub");
        let missing = from_files(vec![("values.yaml".into(), b"a: 1".to_vec())], "bad");
        assert!(matches!(missing, Err(ChartError::Invalid { .. })));
        let bad_yaml = from_files(
            vec![("Chart.yaml".into(), b"name: [oops\n".to_vec())],
            "bad",
        )
        .expect_err("bad yaml");
        assert!(
            bad_yaml.to_string().contains("bad/Chart.yaml"),
            "{bad_yaml}"
        );
    }
}

//! Chart repositories: index.yaml, choosing a version as Helm does (an
//! exact match first, else the highest version satisfying the constraint;
//! no constraint means the highest stable release), and chart URLs
//! relative to the repository.

use k3r_gotemplate::Value;
use k3r_helm_render::semver::{Constraints, Version};
use k3r_helm_render::values::parse_yaml;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RepoError {
    #[error("repository index: {0}")]
    Index(String),
    #[error("chart {chart:?} not found in the repository index")]
    NoChart { chart: String },
    #[error("chart {chart:?} version {version:?} not found in the repository index")]
    NoVersion { chart: String, version: String },
    #[error("invalid version constraint {0:?}: {1}")]
    Constraint(String, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChartVersion {
    pub version: String,
    pub urls: Vec<String>,
    pub digest: String,
}

fn text(map: &k3r_gotemplate::MapRef, key: &str) -> String {
    match map.get(key) {
        Some(Value::String(s)) => s.to_string(),
        Some(Value::Nil) | None => String::new(),
        Some(other) => other.to_go_string(),
    }
}

/// The versions of `chart` in an index.yaml, highest first.
pub fn versions(index_yaml: &str, chart: &str) -> Result<Vec<ChartVersion>, RepoError> {
    let index = parse_yaml(index_yaml).map_err(|e| RepoError::Index(e.to_string()))?;
    let Value::Map(index) = index else {
        return Err(RepoError::Index("not a map".into()));
    };
    let Some(Value::Map(entries)) = index.get("entries") else {
        return Err(RepoError::Index("no entries".into()));
    };
    let Some(Value::List(list)) = entries.get(chart) else {
        return Err(RepoError::NoChart {
            chart: chart.to_string(),
        });
    };
    let mut found: Vec<ChartVersion> = list
        .iter()
        .filter_map(|entry| {
            let Value::Map(m) = entry else { return None };
            let urls = match m.get("urls") {
                Some(Value::List(urls)) => urls
                    .iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            Some(ChartVersion {
                version: text(m, "version"),
                urls,
                digest: text(m, "digest"),
            })
        })
        .collect();
    sort_descending(&mut found, |v| v.version.as_str());
    Ok(found)
}

/// Helm's IndexFile.Get.
pub fn select(index_yaml: &str, chart: &str, wanted: &str) -> Result<ChartVersion, RepoError> {
    let versions = versions(index_yaml, chart)?;
    let names: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    match choose(&names, wanted)? {
        Some(i) => Ok(versions[i].clone()),
        None => Err(RepoError::NoVersion {
            chart: chart.to_string(),
            version: wanted.trim().to_string(),
        }),
    }
}

/// Which of `versions` (highest first) Helm picks for `wanted`: an exact
/// match first, else the highest version satisfying the constraint; no
/// constraint means the highest stable release.
pub fn choose(versions: &[&str], wanted: &str) -> Result<Option<usize>, RepoError> {
    let wanted = wanted.trim();
    if !wanted.is_empty()
        && let Some(exact) = versions.iter().position(|v| *v == wanted)
    {
        return Ok(Some(exact));
    }
    let constraint = if wanted.is_empty() { "*" } else { wanted };
    let constraints = Constraints::parse(constraint)
        .map_err(|e| RepoError::Constraint(constraint.to_string(), e))?;
    Ok(versions
        .iter()
        .position(|v| Version::parse(v).is_ok_and(|parsed| constraints.check(&parsed))))
}

/// Sorts versions highest first (semantic versions before anything else).
pub fn sort_descending<T>(items: &mut [T], version: impl Fn(&T) -> &str) {
    items.sort_by(
        |a, b| match (Version::parse(version(a)), Version::parse(version(b))) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            _ => version(b).cmp(version(a)),
        },
    );
}

/// A chart URL from the index, made absolute against the repository URL.
pub fn resolve_url(repo: &str, url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    let base = repo.trim_end_matches('/');
    format!("{base}/{}", url.trim_start_matches('/'))
}

/// The repository's index URL.
pub fn index_url(repo: &str) -> String {
    format!("{}/index.yaml", repo.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"apiVersion: v1
entries:
  web:
  - version: 1.2.0
    urls: [charts/web-1.2.0.tgz]
    digest: abc
  - version: 2.0.0-rc.1
    urls: [https://cdn.example.com/web-2.0.0-rc.1.tgz]
  - version: 1.10.1
    urls: [web-1.10.1.tgz]
  - version: 0.9.0
    urls: [web-0.9.0.tgz]
"#;

    #[test]
    fn selection_follows_helm() {
        assert_eq!(select(INDEX, "web", "").expect("latest").version, "1.10.1");
        assert_eq!(
            select(INDEX, "web", "~1.2").expect("tilde").version,
            "1.2.0"
        );
        assert_eq!(
            select(INDEX, "web", "2.0.0-rc.1").expect("exact").version,
            "2.0.0-rc.1"
        );
        assert_eq!(
            select(INDEX, "web", ">=1.0.0-0").expect("pre").version,
            "2.0.0-rc.1"
        );
        assert_eq!(
            select(INDEX, "web", "3.x"),
            Err(RepoError::NoVersion {
                chart: "web".into(),
                version: "3.x".into()
            })
        );
        assert_eq!(
            select(INDEX, "db", ""),
            Err(RepoError::NoChart { chart: "db".into() })
        );
        assert!(matches!(
            select("entries: [", "web", ""),
            Err(RepoError::Index(_))
        ));
    }

    #[test]
    fn urls_resolve_against_the_repository() {
        assert_eq!(
            resolve_url("http://127.0.0.1:8080/repo/", "charts/web-1.2.0.tgz"),
            "http://127.0.0.1:8080/repo/charts/web-1.2.0.tgz"
        );
        assert_eq!(
            resolve_url("http://x/", "https://cdn.example.com/a.tgz"),
            "https://cdn.example.com/a.tgz"
        );
        assert_eq!(
            index_url("https://charts.example.com/"),
            "https://charts.example.com/index.yaml"
        );
    }
}

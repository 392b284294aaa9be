//! Parsing of `--datastore-endpoint`.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Sqlite(PathBuf),
    Postgres(String),
    Mysql(String),
    /// An external etcd cluster: k3r does not serve it, kube-apiserver talks
    /// to it directly.
    Etcd(Vec<String>),
}

impl Endpoint {
    /// Parses a DSN. An empty endpoint means SQLite at `default_sqlite`.
    pub fn parse(endpoint: &str, default_sqlite: PathBuf) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason: reason.to_string(),
        };
        let endpoint = endpoint.trim();
        if endpoint.is_empty() {
            return Ok(Endpoint::Sqlite(default_sqlite));
        }
        if let Some(path) = endpoint.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(invalid("sqlite:// needs a file path"));
            }
            return Ok(Endpoint::Sqlite(PathBuf::from(path)));
        }
        if endpoint.starts_with("postgres://") || endpoint.starts_with("postgresql://") {
            let mut url = url::Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("postgres endpoint needs a host"));
            }
            if without_database(&url) {
                url.set_path(DEFAULT_DATABASE);
                return Ok(Endpoint::Postgres(url.to_string()));
            }
            return Ok(Endpoint::Postgres(endpoint.to_string()));
        }
        if let Some(rest) = endpoint.strip_prefix("mysql://") {
            // k3s accepts the Go DSN form user:pass@tcp(host:port)/db as well.
            let normalised = normalise_go_mysql_dsn(rest);
            let mut url = url::Url::parse(&format!("mysql://{normalised}"))
                .map_err(|e| invalid(&e.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("mysql endpoint needs a host"));
            }
            if without_database(&url) {
                url.set_path(DEFAULT_DATABASE);
            }
            return Ok(Endpoint::Mysql(url.to_string()));
        }
        if endpoint.starts_with("https://") || endpoint.starts_with("http://") {
            let urls: Vec<String> = endpoint.split(',').map(|u| u.trim().to_string()).collect();
            for u in &urls {
                url::Url::parse(u).map_err(|e| invalid(&format!("{u}: {e}")))?;
            }
            return Ok(Endpoint::Etcd(urls));
        }
        if endpoint.contains("://") {
            return Err(invalid(
                "unknown scheme; use sqlite://, postgres://, mysql:// or https:// (etcd)",
            ));
        }
        Ok(Endpoint::Sqlite(PathBuf::from(endpoint)))
    }
}

/// The database kine (and so k3s) uses when the endpoint names none.
const DEFAULT_DATABASE: &str = "kubernetes";

fn without_database(url: &url::Url) -> bool {
    matches!(url.path(), "" | "/")
}

fn normalise_go_mysql_dsn(rest: &str) -> String {
    match (rest.find("@tcp("), rest.find(")/")) {
        (Some(at), Some(close)) if close > at => {
            format!(
                "{}@{}{}",
                &rest[..at],
                &rest[at + 5..close],
                &rest[close + 1..]
            )
        }
        _ => rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Endpoint> {
        Endpoint::parse(s, PathBuf::from("/d/state.db"))
    }

    #[test]
    fn parses_every_backend() {
        assert_eq!(parse("").ok(), Some(Endpoint::Sqlite("/d/state.db".into())));
        assert_eq!(
            parse("sqlite:///x/y.db?_journal=WAL").ok(),
            Some(Endpoint::Sqlite("/x/y.db".into()))
        );
        assert!(matches!(
            parse("postgres://u:p@localhost:5432/k3r"),
            Ok(Endpoint::Postgres(_))
        ));
        assert_eq!(
            parse("mysql://root:pw@tcp(127.0.0.1:3306)/k3r").ok(),
            Some(Endpoint::Mysql("mysql://root:pw@127.0.0.1:3306/k3r".into()))
        );
        assert!(
            matches!(parse("https://a:2379,https://b:2379"), Ok(Endpoint::Etcd(v)) if v.len() == 2)
        );
    }

    #[test]
    fn a_dsn_without_database_names_kines_default() {
        assert_eq!(
            parse("postgres://u:p@db:5432?sslmode=disable").ok(),
            Some(Endpoint::Postgres(
                "postgres://u:p@db:5432/kubernetes?sslmode=disable".into()
            ))
        );
        assert_eq!(
            parse("postgres://u:p@db:5432/").ok(),
            Some(Endpoint::Postgres(
                "postgres://u:p@db:5432/kubernetes".into()
            ))
        );
        assert_eq!(
            parse("mysql://root:pw@tcp(127.0.0.1:3306)/").ok(),
            Some(Endpoint::Mysql(
                "mysql://root:pw@127.0.0.1:3306/kubernetes".into()
            ))
        );
        assert_eq!(
            parse("mysql://root@db:3306").ok(),
            Some(Endpoint::Mysql("mysql://root@db:3306/kubernetes".into()))
        );
    }

    #[test]
    fn rejects_malformed_dsns_with_a_reason() {
        for bad in [
            "postgres://",
            "mysql://",
            "redis://x",
            "sqlite://",
            "https://[bad",
        ] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains("invalid datastore endpoint"), "{bad}: {err}");
        }
    }
}

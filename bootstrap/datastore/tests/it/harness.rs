//! Starting the systems under test: our datastore on each backend, and
//! real etcd.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k3r_datastore::{Datastore, DatastoreConfig, Endpoint, Listen, StoreConfig};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Which system a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Etcd,
    Sqlite,
    Postgres,
    Mysql,
}

pub const ALL_TARGETS: [Target; 4] = [
    Target::Etcd,
    Target::Sqlite,
    Target::Postgres,
    Target::Mysql,
];
pub const OUR_BACKENDS: [Target; 3] = [Target::Sqlite, Target::Postgres, Target::Mysql];

/// A running system with a client endpoint; stops on drop.
pub struct Running {
    pub endpoint: String,
    pub target: Target,
    datastore: Option<Datastore>,
    etcd: Option<Child>,
    _dir: tempfile::TempDir,
}

/// The revision the next write will get: a watch from it hears every
/// write after this call, however late the watch gets going.
pub async fn next_revision(client: &mut etcd_client::Client) -> i64 {
    client
        .get("/", None)
        .await
        .expect("get")
        .header()
        .expect("header")
        .revision()
        + 1
}

impl Running {
    pub async fn client(&self) -> etcd_client::Client {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let attempt = match etcd_client::Client::connect([self.endpoint.as_str()], None).await {
                Ok(mut client) => client.status().await.map(|_| client),
                Err(e) => Err(e),
            };
            match attempt {
                Ok(client) => return client,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!(
                    "{:?} at {} never became ready: {e}",
                    self.target, self.endpoint
                ),
            }
        }
    }

    pub async fn stop(mut self) {
        if let Some(datastore) = self.datastore.take() {
            datastore.stop().await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut etcd) = self.etcd.take() {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
    }
}

pub fn env_dsn(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test, which starts PostgreSQL and MariaDB")
    })
}

static DATABASE_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database on the shared server, so revisions start at 1.
fn fresh_database(base_dsn: &str, target: Target) -> String {
    let name = format!(
        "k3r_t{}_{}",
        std::process::id(),
        DATABASE_SEQ.fetch_add(1, Ordering::SeqCst)
    );
    match target {
        Target::Postgres => {
            let mut client =
                postgres::Client::connect(base_dsn, postgres::NoTls).expect("connect postgres");
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create database");
            let mut url = url::Url::parse(base_dsn).expect("postgres dsn");
            url.set_path(&name);
            url.to_string()
        }
        Target::Mysql => {
            use mysql::prelude::Queryable;
            let opts = mysql::Opts::from_url(base_dsn).expect("mysql dsn");
            let mut conn = mysql::Conn::new(opts).expect("connect mysql");
            conn.query_drop(format!("CREATE DATABASE {name}"))
                .expect("create database");
            let mut url = url::Url::parse(base_dsn).expect("mysql dsn");
            url.set_path(&name);
            url.to_string()
        }
        _ => unreachable!("only external databases need creating"),
    }
}

pub async fn endpoint_for(target: Target, dir: &Path) -> Endpoint {
    let database = |var: &'static str| async move {
        let base = env_dsn(var);
        tokio::task::spawn_blocking(move || fresh_database(&base, target))
            .await
            .expect("create database")
    };
    match target {
        Target::Sqlite => Endpoint::Sqlite(dir.join("state.db")),
        Target::Postgres => Endpoint::Postgres(database("K3R_TEST_POSTGRES").await),
        Target::Mysql => Endpoint::Mysql(database("K3R_TEST_MYSQL").await),
        Target::Etcd => unreachable!("etcd is not served by k3r"),
    }
}

pub fn test_store_config() -> StoreConfig {
    // Scenarios compact explicitly; automatic compaction would make
    // revisions differ from etcd's.
    StoreConfig {
        compaction_interval: Duration::ZERO,
        ..StoreConfig::default()
    }
}

pub async fn start_datastore(endpoint: Endpoint, store: StoreConfig) -> Datastore {
    Datastore::start(DatastoreConfig {
        endpoint,
        listen: vec![Listen::Tcp("127.0.0.1:0".parse().expect("addr"))],
        tls: None,
        metrics_listen: None,
        store,
        progress_notify_interval: Duration::from_secs(1),
    })
    .await
    .expect("datastore starts")
}

pub fn tcp_endpoint(datastore: &Datastore) -> String {
    match datastore.listening().first() {
        Some(Listen::Tcp(addr)) => addr.to_string(),
        other => panic!("unexpected listener {other:?}"),
    }
}

pub async fn start(target: Target) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    if target == Target::Etcd {
        let (endpoint, child) = start_etcd(dir.path());
        return Running {
            endpoint,
            target,
            datastore: None,
            etcd: Some(child),
            _dir: dir,
        };
    }
    let datastore =
        start_datastore(endpoint_for(target, dir.path()).await, test_store_config()).await;
    let endpoint = tcp_endpoint(&datastore);
    Running {
        endpoint,
        target,
        datastore: Some(datastore),
        etcd: None,
        _dir: dir,
    }
}

/// Real etcd from Debian's etcd-server package, on private ports.
pub fn start_etcd(dir: &Path) -> (String, Child) {
    let client = format!("http://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let child = Command::new("etcd")
        .args(["--name", "oracle", "--data-dir"])
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("oracle={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd from the etcd-server package is installed");
    (client.trim_start_matches("http://").to_string(), child)
}

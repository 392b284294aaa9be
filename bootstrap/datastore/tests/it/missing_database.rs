//! An endpoint naming a database the server does not have yet: the
//! datastore creates it, as kine does, and works on it.

use crate::harness::{env_dsn, start_datastore, tcp_endpoint, test_store_config};
use k3r_datastore::Endpoint;

fn dsn_with_database(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).expect("dsn");
    url.set_path(name);
    url.to_string()
}

async fn works_on(endpoint: Endpoint) {
    let datastore = start_datastore(endpoint, test_store_config()).await;
    let mut client = etcd_client::Client::connect([tcp_endpoint(&datastore)], None)
        .await
        .expect("connect");
    client.put("/created", "yes", None).await.expect("put");
    let got = client.get("/created", None).await.expect("get");
    assert_eq!(got.kvs().first().map(|kv| kv.value()), Some(&b"yes"[..]));
    datastore.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_is_created() {
    let name = format!("k3r_created_{}", std::process::id());
    let dsn = dsn_with_database(&env_dsn("K3R_TEST_POSTGRES"), &name);
    works_on(Endpoint::Postgres(dsn.clone())).await;
    // A second start finds it there.
    works_on(Endpoint::Postgres(dsn)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_database_is_created() {
    let name = format!("k3r_created_{}", std::process::id());
    let dsn = dsn_with_database(&env_dsn("K3R_TEST_MYSQL"), &name);
    works_on(Endpoint::Mysql(dsn.clone())).await;
    works_on(Endpoint::Mysql(dsn)).await;
}

//! kill -9 of `k3r datastore` in the middle of a write load, again and
//! again: after every restart each acknowledged write is there.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

const ROUNDS: usize = 5;
const WRITERS: usize = 16;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn start(db: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_k3r"))
        .args([
            "datastore",
            "--listen-address",
            &format!("127.0.0.1:{port}"),
        ])
        .arg(format!("--datastore-endpoint=sqlite://{}", db.display()))
        .args(["--compaction-interval", "0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("k3r datastore starts")
}

async fn connect(port: u16) -> etcd_client::Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut client) =
            etcd_client::Client::connect([format!("127.0.0.1:{port}")], None).await
            && client.status().await.is_ok()
        {
            return client;
        }
        assert!(Instant::now() < deadline, "datastore did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    for round in 0..ROUNDS {
        let port = free_port();
        let mut child = start(&db, port);
        let client = connect(port).await;
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let mut client = client.clone();
            let acked = Arc::clone(&acked);
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{round}/{writer}/{i}");
                    let value = format!("{round}-{writer}-{i}");
                    match client.put(key.as_str(), value.as_str(), None).await {
                        Ok(_) => acked.lock().expect("lock").push((key, value)),
                        Err(_) => break,
                    }
                }
            }));
        }
        let run_for = rand::rng().random_range(300..1500);
        tokio::time::sleep(Duration::from_millis(run_for)).await;
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        for writer in writers {
            let _ = writer.await;
        }
    }
    let port = free_port();
    let mut child = start(&db, port);
    let mut client = connect(port).await;
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > ROUNDS * WRITERS,
        "too few writes acknowledged: {}",
        acked.len()
    );
    let mut missing = Vec::new();
    for (key, value) in &acked {
        let got = client.get(key.as_str(), None).await.expect("get");
        if got.kvs().first().map(|kv| kv.value()) != Some(value.as_bytes()) {
            missing.push(key.clone());
        }
    }
    child.kill().expect("stop");
    child.wait().expect("reaped");
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{} acknowledged writes over {ROUNDS} kill -9 rounds all present",
        acked.len()
    );
}

//! Debian's etcdctl (the Go client) against our datastore.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Target, next_revision, start};

fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl from the etcd-client package is installed");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("etcdctl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_get_put_del_watch_txn() {
    let running = start(Target::Sqlite).await;
    let mut client = running.client().await;
    let ep = running.endpoint.clone();
    // The watch starts from the next revision, so it hears every event below
    // however late its process gets going on a loaded machine.
    let from = next_revision(&mut client).await;
    let ep2 = ep.clone();
    let watcher = std::thread::spawn(move || {
        Command::new("timeout")
            .args([
                "8",
                "etcdctl",
                &format!("--endpoints={ep2}"),
                "watch",
                "--prefix",
                &format!("--rev={from}"),
                "/ctl/",
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl watch")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        etcdctl(&ep, &["put", "/ctl/a", "alpha"], None),
        (true, "OK\n".into())
    );
    assert_eq!(
        etcdctl(&ep, &["put", "/ctl/b", "beta"], None),
        (true, "OK\n".into())
    );
    assert_eq!(
        etcdctl(&ep, &["get", "/ctl/a", "--print-value-only"], None),
        (true, "alpha\n".into())
    );
    assert_eq!(
        etcdctl(&ep, &["get", "--prefix", "/ctl/", "--keys-only"], None),
        (true, "/ctl/a\n\n/ctl/b\n\n".into())
    );
    let txn = "value(\"/ctl/a\") = \"alpha\"\n\nput /ctl/c gamma\n\nput /ctl/d never\n\n";
    let (ok, out) = etcdctl(&ep, &["txn"], Some(txn));
    assert!(ok && out.starts_with("SUCCESS"), "txn: {out}");
    assert_eq!(
        etcdctl(&ep, &["get", "/ctl/c", "--print-value-only"], None),
        (true, "gamma\n".into())
    );
    assert_eq!(
        etcdctl(&ep, &["del", "--prefix", "/ctl/"], None),
        (true, "3\n".into())
    );
    let (ok, out) = etcdctl(&ep, &["endpoint", "status"], None);
    assert!(ok && out.contains("3.6.5"), "status: {out}");
    let (ok, out) = etcdctl(&ep, &["member", "list"], None);
    assert!(ok && out.contains("k3r-sqlite"), "member list: {out}");
    // Client URLs carry a scheme and the real port, as etcd's do.
    assert!(out.contains(&format!("http://{ep}")), "member list: {out}");
    let (ok, out) = etcdctl(&ep, &["endpoint", "health"], None);
    assert!(ok && out.contains("is healthy"), "health: {out}");
    let watched = watcher.join().expect("watch thread");
    let watched = String::from_utf8_lossy(&watched.stdout);
    assert!(
        watched.contains("PUT\n/ctl/a\nalpha\nPUT\n/ctl/b\nbeta\nPUT\n/ctl/c\ngamma"),
        "watch saw: {watched}"
    );
    assert!(watched.contains("DELETE\n/ctl/a\n"), "watch saw: {watched}");
    running.stop().await;
}

//! The client load balancer forwarding real TCP connections: it sticks to
//! a working server, fails over when it goes away, and follows a new list.

use std::time::Duration;

use k3r_agent::LoadBalancer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A server that greets every connection with its name.
async fn named_server(name: &'static str) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(name.as_bytes()).await;
        }
    });
    (address, task)
}

async fn who(lb: &LoadBalancer) -> String {
    let mut stream = TcpStream::connect(lb.local_addr()).await.expect("connect");
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
    answer
}

#[tokio::test]
async fn sticks_fails_over_and_follows_the_list() {
    let (a, a_task) = named_server("a").await;
    let (b, _b_task) = named_server("b").await;
    let (c, _c_task) = named_server("c").await;
    let lb = LoadBalancer::start(
        "127.0.0.1:0".parse().expect("addr"),
        vec![a.clone(), b.clone()],
    )
    .await
    .expect("listens");
    assert_eq!(who(&lb).await, "a");
    assert_eq!(who(&lb).await, "a", "sticks to the server that works");
    a_task.abort();
    // The listener closes once the aborted task is dropped.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(who(&lb).await, "b", "fails over");
    lb.set_servers(vec![c.clone(), b.clone()]);
    assert_eq!(who(&lb).await, "b", "stays on a server still listed");
    lb.set_servers(vec![c.clone()]);
    assert_eq!(who(&lb).await, "c", "follows the new list");
    assert_eq!(lb.servers(), vec![c]);
    lb.set_servers(vec!["127.0.0.1:9".into()]);
    assert_eq!(
        who(&lb).await,
        "",
        "nothing reachable: the connection is closed"
    );
}

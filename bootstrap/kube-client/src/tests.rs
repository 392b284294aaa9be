// Reading a socket option of one of this process's own sockets needs its
// raw file descriptor.
#![allow(unsafe_code)]

use std::os::fd::RawFd;

use super::*;

/// TCP_NODELAY of fd `fd` of this process.
fn nodelay(fd: RawFd) -> bool {
    matches!(int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), Some(v) if v != 0)
}

/// An int socket option of fd `fd` of this process (None if unreadable).
fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`; a bad
    // descriptor only makes it fail.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The descriptors of this process's TCP sockets connected to `port`.
fn sockets_to(port: u16) -> Vec<RawFd> {
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap_or_default();
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote = fields.get(2)?;
            let remote_port = u16::from_str_radix(remote.rsplit(':').next()?, 16).ok()?;
            (remote_port == port).then(|| fields.get(9).map(|s| s.to_string()))?
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .to_string();
            inodes
                .contains(&inode)
                .then(|| entry.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

#[tokio::test]
async fn clients_talk_over_nodelay_keepalive_sockets() {
    // A plain-HTTP API stand-in that answers one request per connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let body = r#"{"major":"1","minor":"35","gitVersion":"v1.35.8","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
            // Keep the connection open, as an API server does.
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let config = Config::new(format!("http://127.0.0.1:{port}").parse().expect("url"));
    let client = from_config(config).expect("client");
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.git_version, "v1.35.8");
    let sockets = sockets_to(port);
    assert!(!sockets.is_empty(), "no socket to the API server found");
    for fd in sockets {
        assert!(
            nodelay(fd),
            "socket fd {fd} to the API server lacks TCP_NODELAY"
        );
        assert_eq!(
            int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            Some(1),
            "socket fd {fd} to the API server lacks keepalive"
        );
        assert_eq!(
            int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
            Some(KEEPALIVE_IDLE.as_secs() as libc::c_int)
        );
        assert_eq!(
            int_option(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
            Some(KEEPALIVE_PROBES as libc::c_int)
        );
    }
    server.abort();
}

//! Which TCP connections of a process lack TCP_NODELAY: every socket k3r
//! opens carries small requests and answers that must not wait on Nagle's
//! algorithm (kube-rs, hyper and tokio all leave it on unless told).
//! The process's sockets are duplicated with pidfd_getfd (root) and read
//! with getsockopt.

// Duplicating another process's descriptors and reading a socket option
// are system calls on raw descriptors.
#![allow(unsafe_code)]

use std::collections::BTreeMap;

/// inode -> "local -> remote" of the ESTABLISHED TCP sockets in the
/// process's network namespace.
fn established(pid: u32) -> BTreeMap<String, String> {
    let mut sockets = BTreeMap::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && fields[3] == "01" {
                sockets.insert(
                    fields[9].to_string(),
                    format!("{} -> {}", fields[1], fields[2]),
                );
            }
        }
    }
    sockets
}

fn nodelay_of(pidfd: i32, fd: i32) -> Option<bool> {
    // SAFETY: pidfd_getfd returns a new descriptor (or -1) that this
    // function owns and closes; getsockopt writes at most `len` bytes.
    unsafe {
        let own = libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) as i32;
        if own < 0 {
            return None;
        }
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let rc = libc::getsockopt(
            own,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        );
        libc::close(own);
        (rc == 0).then_some(value != 0)
    }
}

/// The process's established TCP connections without TCP_NODELAY, and
/// how many established ones it has.
pub fn without_nodelay(pid: u32) -> (Vec<String>, usize) {
    let sockets = established(pid);
    // SAFETY: pidfd_open returns a new descriptor (or -1), closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    assert!(pidfd >= 0, "pidfd_open({pid}) failed");
    let mut lacking = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
        else {
            continue;
        };
        let Some(connection) = sockets.get(inode) else {
            continue;
        };
        let Some(fd) = entry.file_name().to_str().and_then(|f| f.parse().ok()) else {
            continue;
        };
        checked += 1;
        if nodelay_of(pidfd, fd) == Some(false) {
            lacking.push(format!("fd {fd}: {connection}"));
        }
    }
    // SAFETY: closes the descriptor pidfd_open gave us.
    unsafe { libc::close(pidfd) };
    (lacking, checked)
}

/// Asserts that every established TCP connection of each process has
/// TCP_NODELAY.
pub fn assert_nodelay(processes: &[(&str, u32)]) {
    for (name, pid) in processes {
        let (lacking, checked) = without_nodelay(*pid);
        eprintln!("E2E: {name}: {checked} TCP connections checked for TCP_NODELAY");
        assert!(
            checked > 0,
            "{name} (pid {pid}) has no TCP connection to check"
        );
        assert!(
            lacking.is_empty(),
            "{name} (pid {pid}) has TCP connections without TCP_NODELAY: {lacking:#?}"
        );
    }
}

/// The check itself: a connection of this process without TCP_NODELAY is
/// reported, and setting it clears the report.
pub fn detector_sees_nagle() {
    let (before, _) = without_nodelay(std::process::id());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("dial");
    let (server, _) = listener.accept().expect("accept");
    let (lacking, _) = without_nodelay(std::process::id());
    assert_eq!(
        lacking.len(),
        before.len() + 2,
        "both ends of a fresh connection lack TCP_NODELAY, got {lacking:?}"
    );
    client.set_nodelay(true).expect("nodelay");
    server.set_nodelay(true).expect("nodelay");
    let (lacking, _) = without_nodelay(std::process::id());
    assert_eq!(lacking.len(), before.len(), "still reported: {lacking:?}");
}

//! One netlink socket per transaction, in the calling thread's network
//! namespace.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    setsockopt, sockopt,
};
use nix::sys::time::TimeVal;

use crate::Error;
use crate::expr::NFTA_TABLE_NAME;
use crate::wire::{Batch, MsgType, NLM_F_ACK, Reply, parse_replies};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The kernel's default send buffer; larger batches need a larger one.
const DEFAULT_SNDBUF: usize = 200 * 1024;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Sequence numbers distinct across transactions of this process.
pub fn next_seq() -> u32 {
    if SEQ.load(Ordering::Relaxed) == 0 {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let _ = SEQ.compare_exchange(0, seconds.max(1), Ordering::Relaxed, Ordering::Relaxed);
    }
    // Leaves room for a batch's messages.
    SEQ.fetch_add(1 << 20, Ordering::Relaxed)
}

fn open() -> Result<OwnedFd, Error> {
    let fd = nix::sys::socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(Error::Socket)?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(Error::Socket)?;
    let timeout = TimeVal::new(ANSWER_TIMEOUT.as_secs() as i64, 0);
    setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(Error::Socket)?;
    Ok(fd)
}

/// Sends a batch and waits for the acknowledgement of its last message;
/// the first error names the message it is about (`what[seq - first]`).
pub fn transact(batch: &Batch, what: &[String]) -> Result<(), Error> {
    let fd = open()?;
    let bytes = batch.bytes();
    if bytes.len() + 4096 > DEFAULT_SNDBUF {
        setsockopt(&fd, sockopt::SndBufForce, &(bytes.len() + 4096)).map_err(Error::Socket)?;
    }
    send(fd.as_raw_fd(), bytes, MsgFlags::empty()).map_err(Error::Socket)?;
    // The acknowledged message is the one before the batch end.
    let acked = batch.last_seq().wrapping_sub(1);
    let describe = |seq: u32| {
        what.get(seq.wrapping_sub(batch.first_seq) as usize)
            .cloned()
            .unwrap_or_else(|| format!("message {seq}"))
    };
    let mut first_error = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(nix::Error::EAGAIN) => {
                return Err(first_error.unwrap_or(Error::Timeout(ANSWER_TIMEOUT)));
            }
            Err(e) => return Err(Error::Socket(e)),
        };
        for reply in parse_replies(&buf[..n]) {
            match reply {
                Reply::Error { seq, errno } => {
                    if first_error.is_none() {
                        first_error = Some(Error::Refused {
                            what: describe(seq),
                            errno: nix::Error::from_raw(errno),
                        });
                    }
                    if seq == acked {
                        return Err(first_error.unwrap_or(Error::Timeout(ANSWER_TIMEOUT)));
                    }
                }
                Reply::Ack { seq } if seq == acked => {
                    return match first_error {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                }
                _ => {}
            }
        }
    }
}

pub fn table_exists(name: &str) -> Result<bool, Error> {
    let fd = open()?;
    let mut batch = Batch::new(next_seq());
    let mut msg = batch.nft(MsgType::GetTable, NLM_F_ACK);
    msg.attrs.str(NFTA_TABLE_NAME, name);
    msg.finish();
    send(fd.as_raw_fd(), batch.bytes(), MsgFlags::empty()).map_err(Error::Socket)?;
    let mut found = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(|e| match e {
            nix::Error::EAGAIN => Error::Timeout(ANSWER_TIMEOUT),
            e => Error::Socket(e),
        })?;
        for reply in parse_replies(&buf[..n]) {
            match reply {
                Reply::Other { .. } => found = true,
                Reply::Ack { .. } | Reply::Done { .. } => return Ok(found),
                Reply::Error { errno, .. } if errno == nix::Error::ENOENT as i32 => {
                    return Ok(false);
                }
                Reply::Error { errno, .. } => {
                    return Err(Error::Refused {
                        what: format!("listing table {name}"),
                        errno: nix::Error::from_raw(errno),
                    });
                }
            }
        }
    }
}

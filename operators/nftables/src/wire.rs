//! Netlink message and attribute encoding for nf_tables (nfnetlink).
//! Attribute headers are host-endian; nf_tables' integer payloads are
//! big-endian unless a field says otherwise (ct state is host-endian).

pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub const NFNL_MSG_BATCH_END: u16 = 0x11;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLMSG_ERROR: u16 = 0x2;
pub const NLMSG_DONE: u16 = 0x3;
const NLA_F_NESTED: u16 = 0x8000;

pub const NFPROTO_INET: u8 = 1;
const NFPROTO_UNSPEC: u8 = 0;

/// nf_tables message types (`enum nf_tables_msg_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum MsgType {
    NewTable = 0,
    GetTable = 1,
    DelTable = 2,
    NewChain = 3,
    NewRule = 6,
    NewSet = 9,
    NewSetElem = 12,
}

/// A batch of netlink messages under construction.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Where the last message starts.
    last_start: usize,
    /// Sequence number of the first message (the batch begin).
    pub first_seq: u32,
}

impl Batch {
    pub fn new(first_seq: u32) -> Self {
        Self {
            buf: Vec::new(),
            seq: first_seq,
            last_start: 0,
            first_seq,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The sequence number of the last message added.
    pub fn last_seq(&self) -> u32 {
        self.seq.wrapping_sub(1)
    }

    /// Asks for an acknowledgement of the last message added: errors are
    /// reported for every message anyway, and acknowledging only the last
    /// keeps a large batch's replies small.
    pub fn request_ack_on_last(&mut self) {
        let at = self.last_start + 6;
        let flags = u16::from_ne_bytes([self.buf[at], self.buf[at + 1]]) | NLM_F_ACK;
        self.buf[at..at + 2].copy_from_slice(&flags.to_ne_bytes());
    }

    pub fn begin(&mut self) {
        self.control(NFNL_MSG_BATCH_BEGIN);
    }

    pub fn end(&mut self) {
        self.control(NFNL_MSG_BATCH_END);
    }

    fn control(&mut self, kind: u16) {
        let mut msg = self.message(kind, NLM_F_REQUEST, NFPROTO_UNSPEC);
        msg.finish();
    }

    /// Starts an nf_tables message; attributes are added to the returned
    /// writer, whose `finish` fixes the length.
    pub fn nft(&mut self, kind: MsgType, flags: u16) -> Message<'_> {
        self.message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind as u16,
            NLM_F_REQUEST | flags,
            NFPROTO_INET,
        )
    }

    fn message(&mut self, kind: u16, flags: u16, family: u8) -> Message<'_> {
        let start = self.buf.len();
        self.last_start = start;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, fixed by finish
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // nfgenmsg: family, version 0, resource id (the subsystem, big-endian)
        self.buf.push(family);
        self.buf.push(0);
        self.buf
            .extend_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
        Message {
            attrs: Attrs {
                buf: &mut self.buf,
                start,
                message: true,
            },
        }
    }
}

/// One message's attributes.
pub struct Message<'a> {
    pub attrs: Attrs<'a>,
}

impl Message<'_> {
    pub fn finish(&mut self) {
        self.attrs.fix_length();
    }
}

/// An attribute list being written (a message's or a nested attribute's).
pub struct Attrs<'a> {
    buf: &'a mut Vec<u8>,
    /// Where the length field of the enclosing header starts.
    start: usize,
    /// A message's length is a u32; a nested attribute's a u16.
    message: bool,
}

impl Attrs<'_> {
    fn fix_length(&mut self) {
        let len = self.buf.len() - self.start;
        self.write_len(len);
    }

    fn write_len(&mut self, len: usize) {
        // Callers keep nested attributes below 64 KiB (set elements are
        // sent in chunks).
        if self.message {
            self.buf[self.start..self.start + 4].copy_from_slice(&(len as u32).to_ne_bytes());
        } else {
            self.buf[self.start..self.start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        }
    }

    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        pad(self.buf);
        self
    }

    pub fn str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.bytes(kind, &bytes)
    }

    pub fn u32_be(&mut self, kind: u16, value: u32) -> &mut Self {
        self.bytes(kind, &value.to_be_bytes())
    }

    /// A nested attribute whose contents `fill` writes.
    pub fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs<'_>)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        let mut inner = Attrs {
            buf: self.buf,
            start,
            message: false,
        };
        fill(&mut inner);
        let len = inner.buf.len() - start;
        inner.write_len(len);
        self
    }
}

fn pad(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// One reply the kernel sent: an error (0 is an acknowledgement) for the
/// request with `seq`, or another message.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Ack { seq: u32 },
    Error { seq: u32, errno: i32 },
    Done { seq: u32 },
    Other { seq: u32, kind: u16 },
}

/// Splits a datagram into its replies.
pub fn parse_replies(mut data: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
        replies.push(match kind {
            NLMSG_ERROR if len >= 20 => {
                let errno = i32::from_ne_bytes([data[16], data[17], data[18], data[19]]);
                if errno == 0 {
                    Reply::Ack { seq }
                } else {
                    Reply::Error { seq, errno: -errno }
                }
            }
            NLMSG_DONE => Reply::Done { seq },
            _ => Reply::Other { seq, kind },
        });
        let next = (len + 3) & !3;
        if next >= data.len() {
            break;
        }
        data = &data[next..];
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_its_length_family_and_padded_attributes() {
        let mut batch = Batch::new(7);
        let mut msg = batch.nft(MsgType::NewTable, NLM_F_CREATE);
        msg.attrs.str(1, "k3r").nested(4, |inner| {
            inner.u32_be(1, 2);
        });
        msg.finish();
        let bytes = batch.bytes();
        let len = u32::from_ne_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(len, bytes.len());
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 10 << 8);
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().expect("4")), 7);
        assert_eq!(bytes[16], NFPROTO_INET);
        // "k3r\0" in an 8-byte attribute, then the nested one (4 + 8).
        assert_eq!(&bytes[20..28], &[8, 0, 1, 0, b'k', b'3', b'r', 0]);
        assert_eq!(&bytes[28..32], &[12, 0, 4, 0x80]);
        assert_eq!(&bytes[32..40], &[8, 0, 1, 0, 0, 0, 0, 2]);
        assert_eq!(batch.last_seq(), 7);
    }

    #[test]
    fn replies_split_into_acks_and_errors() {
        let mut data = Vec::new();
        for (seq, errno) in [(3u32, 0i32), (4, -2)] {
            data.extend_from_slice(&36u32.to_ne_bytes());
            data.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            data.extend_from_slice(&0u16.to_ne_bytes());
            data.extend_from_slice(&seq.to_ne_bytes());
            data.extend_from_slice(&0u32.to_ne_bytes());
            data.extend_from_slice(&errno.to_ne_bytes());
            data.extend_from_slice(&[0; 16]);
        }
        assert_eq!(
            parse_replies(&data),
            vec![Reply::Ack { seq: 3 }, Reply::Error { seq: 4, errno: 2 }]
        );
    }
}

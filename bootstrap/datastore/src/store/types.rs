//! The rows the store keeps and the events it publishes.

use k3r_etcd_proto::mvccpb::{self, KeyValue};

/// One row of the revision log: a put (version > 0) or a delete tombstone
/// (version == 0). `(revision, sub)` orders rows; a multi-key transaction
/// shares one revision, as in etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    pub revision: i64,
    pub sub: i64,
    pub key: Vec<u8>,
    pub create_revision: i64,
    /// Revision of the previous row of the same key, 0 if none.
    pub prev_revision: i64,
    pub version: i64,
    pub lease: i64,
    pub value: Vec<u8>,
}

impl LogRow {
    pub fn is_delete(&self) -> bool {
        self.version == 0
    }

    pub fn to_kv(&self) -> KeyValue {
        if self.is_delete() {
            return KeyValue {
                key: self.key.clone(),
                mod_revision: self.revision,
                ..Default::default()
            };
        }
        KeyValue {
            key: self.key.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
            version: self.version,
            value: self.value.clone(),
            lease: self.lease,
        }
    }
}

/// A change as watchers see it; `prev` is the key's previous live value
/// when it is still known.
#[derive(Clone, Debug)]
pub struct Change {
    pub row: LogRow,
    pub prev: Option<KeyValue>,
}

impl Change {
    pub fn to_event(&self, with_prev: bool) -> mvccpb::Event {
        let kind = if self.row.is_delete() {
            mvccpb::event::EventType::Delete
        } else {
            mvccpb::event::EventType::Put
        };
        mvccpb::Event {
            r#type: kind as i32,
            kv: Some(self.row.to_kv()),
            prev_kv: if with_prev { self.prev.clone() } else { None },
        }
    }
}

/// The store's revision bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revisions {
    pub current: i64,
    pub compacted: i64,
}

/// A key range in etcd's encoding: empty `end` is a single key, `[0]` is
/// "every key from `key` on", anything else is the half-open `[key, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub key: Vec<u8>,
    pub end: RangeEnd,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeEnd {
    Single,
    Unbounded,
    Before(Vec<u8>),
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        let end = match range_end {
            [] => RangeEnd::Single,
            [0] => RangeEnd::Unbounded,
            end => RangeEnd::Before(end.to_vec()),
        };
        // etcd treats key "\0" with range_end "\0" as "all keys".
        Self {
            key: key.to_vec(),
            end,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.end {
            RangeEnd::Single => key == self.key.as_slice(),
            RangeEnd::Unbounded => key >= self.key.as_slice(),
            RangeEnd::Before(end) => key >= self.key.as_slice() && key < end.as_slice(),
        }
    }

    /// True when the range can hold no key at all (end at or before start).
    pub fn is_empty(&self) -> bool {
        matches!(&self.end, RangeEnd::Before(end) if end.as_slice() <= self.key.as_slice())
    }

    pub fn overlaps(&self, other: &KeyRange) -> bool {
        match (&self.end, &other.end) {
            (RangeEnd::Single, _) => other.contains(&self.key),
            (_, RangeEnd::Single) => self.contains(&other.key),
            _ => {
                let self_before_other_end = match &other.end {
                    RangeEnd::Before(e) => self.key < *e,
                    _ => true,
                };
                let other_before_self_end = match &self.end {
                    RangeEnd::Before(e) => other.key < *e,
                    _ => true,
                };
                self_before_other_end && other_before_self_end
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_etcd_encoding() {
        let single = KeyRange::new(b"a", b"");
        assert!(single.contains(b"a") && !single.contains(b"ab"));
        let prefix = KeyRange::new(b"a/", b"a0");
        assert!(prefix.contains(b"a/x") && !prefix.contains(b"a0") && !prefix.contains(b"a"));
        let all = KeyRange::new(b"\0", b"\0");
        assert!(all.contains(b"zzz") && all.contains(b"\0"));
        assert!(KeyRange::new(b"b", b"a").is_empty());
        assert!(prefix.overlaps(&KeyRange::new(b"a/b", b"")));
        assert!(!prefix.overlaps(&KeyRange::new(b"a0", b"a1")));
        assert!(all.overlaps(&prefix));
    }
}

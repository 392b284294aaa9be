//! nftables over netlink, with no `nft` binary on the host: a [`Ruleset`]
//! (one table with its chains, sets and rules) is encoded as one nf_tables
//! transaction that creates the table if missing, deletes it and creates it
//! again with its new contents — the kernel applies all of it or none, so
//! packets never see a half-programmed table.
//!
//! The model covers what k3r's firewalls need (address, set, protocol, port
//! and conntrack-state matches in `inet` tables); `nft list table inet
//! <name>` shows the result in the usual syntax.

mod expr;
mod socket;
pub mod wire;

use std::net::IpAddr;

use ipnet::IpNet;

use crate::wire::{Batch, MsgType, NLM_F_CREATE};

/// The one table k3r owns (its network policy's); `k3r killall` removes it.
pub const K3R_TABLE: &str = "k3r";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink socket: {0}")]
    Socket(#[source] nix::Error),
    #[error("nf_tables refused {what}: {errno}")]
    Refused { what: String, errno: nix::Error },
    #[error("no answer from nf_tables within {0:?}")]
    Timeout(std::time::Duration),
    #[error("{0}")]
    Invalid(String),
}

/// A netfilter hook an `inet` base chain attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Input = 1,
    Forward = 2,
    Output = 3,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// A base chain (type filter, policy accept) at this hook and priority;
    /// `None` for a regular chain reached by jumps.
    pub base: Option<(Hook, i32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// A named set of addresses of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    pub family: Family,
    pub elements: Vec<IpAddr>,
}

/// A transport protocol a rule can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp = 6,
    Udp = 17,
    Sctp = 132,
}

/// conntrack states (`ct state`), as a bit mask.
pub mod ct {
    pub const INVALID: u32 = 1;
    pub const ESTABLISHED: u32 = 2;
    pub const RELATED: u32 = 4;
    pub const NEW: u32 = 8;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    Source(IpNet),
    Destination(IpNet),
    SourceIn(String, Family),
    DestinationIn(String, Family),
    Protocol(Protocol),
    /// Destination port in `first..=last` of this protocol.
    DestinationPort(Protocol, u16, u16),
    /// Any of these conntrack state bits.
    CtState(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub matches: Vec<Match>,
    /// Count packets and bytes (shown by `nft list`).
    pub counter: bool,
    pub verdict: Verdict,
    /// Shown by `nft list` (at most 127 bytes are kept).
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(chain: &str, matches: Vec<Match>, verdict: Verdict) -> Self {
        Rule {
            chain: chain.to_string(),
            matches,
            counter: false,
            verdict,
            comment: None,
        }
    }

    #[must_use]
    pub fn counted(mut self) -> Self {
        self.counter = true;
        self
    }

    #[must_use]
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

/// One `inet` table and everything in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    pub chains: Vec<Chain>,
    pub sets: Vec<Set>,
    pub rules: Vec<Rule>,
}

/// What a replacement sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub messages: usize,
    pub bytes: usize,
}

/// Set elements per message: keeps the nested attribute below 64 KiB.
const ELEMENTS_PER_MESSAGE: usize = 1000;

/// Replaces the `inet` table `ruleset.table` with `ruleset`, atomically, in
/// the calling thread's network namespace.
pub fn replace(ruleset: &Ruleset) -> Result<Applied, Error> {
    validate(ruleset)?;
    let mut batch = Batch::new(socket::next_seq());
    let mut what = Vec::new();
    batch.begin();
    what.push("batch".to_string());
    table_message(&mut batch, MsgType::NewTable, &ruleset.table);
    what.push(format!("table {}", ruleset.table));
    table_message(&mut batch, MsgType::DelTable, &ruleset.table);
    what.push(format!("deleting table {}", ruleset.table));
    table_message(&mut batch, MsgType::NewTable, &ruleset.table);
    what.push(format!("table {}", ruleset.table));
    for chain in &ruleset.chains {
        expr::chain(&mut batch, &ruleset.table, chain);
        what.push(format!("chain {}", chain.name));
    }
    for (index, set) in ruleset.sets.iter().enumerate() {
        let id = index as u32 + 1;
        expr::set(&mut batch, &ruleset.table, set, id);
        what.push(format!("set {}", set.name));
        for chunk in set.elements.chunks(ELEMENTS_PER_MESSAGE) {
            expr::elements(&mut batch, &ruleset.table, set, id, chunk);
            what.push(format!("elements of set {}", set.name));
        }
    }
    let set_ids = |name: &str| {
        ruleset
            .sets
            .iter()
            .position(|s| s.name == name)
            .map(|i| i as u32 + 1)
    };
    for (index, rule) in ruleset.rules.iter().enumerate() {
        expr::rule(&mut batch, &ruleset.table, rule, &set_ids);
        what.push(format!("rule {} of chain {}", index, rule.chain));
    }
    batch.request_ack_on_last();
    batch.end();
    what.push("batch end".to_string());
    socket::transact(&batch, &what)?;
    Ok(Applied {
        messages: what.len(),
        bytes: batch.bytes().len(),
    })
}

/// Deletes the `inet` table `name` if it exists.
pub fn delete_table(name: &str) -> Result<(), Error> {
    let mut batch = Batch::new(socket::next_seq());
    batch.begin();
    table_message(&mut batch, MsgType::NewTable, name);
    table_message(&mut batch, MsgType::DelTable, name);
    batch.request_ack_on_last();
    batch.end();
    let what = ["batch", "table", "deleting table", "batch end"].map(String::from);
    socket::transact(&batch, &what)
}

/// Whether the `inet` table `name` exists.
pub fn table_exists(name: &str) -> Result<bool, Error> {
    socket::table_exists(name)
}

fn table_message(batch: &mut Batch, kind: MsgType, name: &str) {
    let flags = if kind == MsgType::NewTable {
        NLM_F_CREATE
    } else {
        0
    };
    let mut msg = batch.nft(kind, flags);
    msg.attrs.str(expr::NFTA_TABLE_NAME, name);
    msg.finish();
}

fn validate(ruleset: &Ruleset) -> Result<(), Error> {
    let chains: Vec<&str> = ruleset.chains.iter().map(|c| c.name.as_str()).collect();
    for rule in &ruleset.rules {
        if !chains.contains(&rule.chain.as_str()) {
            return Err(Error::Invalid(format!(
                "a rule is in chain {}, which the ruleset does not declare",
                rule.chain
            )));
        }
        if let Verdict::Jump(target) = &rule.verdict
            && !chains.contains(&target.as_str())
        {
            return Err(Error::Invalid(format!(
                "a rule jumps to chain {target}, which the ruleset does not declare"
            )));
        }
        for m in &rule.matches {
            if let Match::SourceIn(set, family) | Match::DestinationIn(set, family) = m
                && !ruleset
                    .sets
                    .iter()
                    .any(|s| &s.name == set && s.family == *family)
            {
                return Err(Error::Invalid(format!(
                    "a rule matches set {set}, which the ruleset does not declare for that family"
                )));
            }
        }
    }
    for set in &ruleset.sets {
        if let Some(bad) = set.elements.iter().find(|e| Family::of(e) != set.family) {
            return Err(Error::Invalid(format!(
                "set {} holds {bad}, not of its family",
                set.name
            )));
        }
    }
    Ok(())
}

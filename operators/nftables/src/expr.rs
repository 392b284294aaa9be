//! Tables' objects and rules' expressions as nf_tables attributes
//! (`include/uapi/linux/netfilter/nf_tables.h`).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::wire::{Attrs, Batch, MsgType, NLM_F_CREATE};
use crate::{Chain, Family, Match, Protocol, Rule, Set, Verdict};

pub const NFTA_TABLE_NAME: u16 = 1;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
const NFTA_SET_ELEM_KEY: u16 = 1;
/// nft's datatype numbers, so that `nft list` prints addresses.
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_IPV6_ADDR: u32 = 8;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
/// nft's rule comment, a TLV in the rule's user data.
const UDATA_RULE_COMMENT: u8 = 0;
const NLM_F_APPEND: u16 = 0x800;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;

const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const PAYLOAD_NETWORK: u32 = 1;
const PAYLOAD_TRANSPORT: u32 = 2;
const CT_STATE: u32 = 0;

const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;
const CMP_LTE: u32 = 3;
const CMP_GTE: u32 = 5;

const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_RETURN: i32 = -5;

pub fn chain(batch: &mut Batch, table: &str, chain: &Chain) {
    let mut msg = batch.nft(MsgType::NewChain, NLM_F_CREATE);
    msg.attrs
        .str(NFTA_CHAIN_TABLE, table)
        .str(NFTA_CHAIN_NAME, &chain.name);
    if let Some((hook, priority)) = chain.base {
        msg.attrs
            .nested(NFTA_CHAIN_HOOK, |h| {
                h.u32_be(NFTA_HOOK_HOOKNUM, hook as u32)
                    .u32_be(NFTA_HOOK_PRIORITY, priority as u32);
            })
            .u32_be(NFTA_CHAIN_POLICY, NF_ACCEPT as u32)
            .str(NFTA_CHAIN_TYPE, "filter");
    }
    msg.finish();
}

pub fn set(batch: &mut Batch, table: &str, set: &Set, id: u32) {
    let (key_type, key_len) = match set.family {
        Family::V4 => (TYPE_IPV4_ADDR, 4),
        Family::V6 => (TYPE_IPV6_ADDR, 16),
    };
    let mut msg = batch.nft(MsgType::NewSet, NLM_F_CREATE);
    msg.attrs
        .str(NFTA_SET_TABLE, table)
        .str(NFTA_SET_NAME, &set.name)
        .u32_be(NFTA_SET_FLAGS, 0)
        .u32_be(NFTA_SET_KEY_TYPE, key_type)
        .u32_be(NFTA_SET_KEY_LEN, key_len)
        .u32_be(NFTA_SET_ID, id);
    msg.finish();
}

pub fn elements(batch: &mut Batch, table: &str, set: &Set, id: u32, elements: &[IpAddr]) {
    let mut msg = batch.nft(MsgType::NewSetElem, NLM_F_CREATE);
    msg.attrs
        .str(NFTA_SET_ELEM_LIST_TABLE, table)
        .str(NFTA_SET_ELEM_LIST_SET, &set.name)
        .u32_be(NFTA_SET_ELEM_LIST_SET_ID, id)
        .nested(NFTA_SET_ELEM_LIST_ELEMENTS, |list| {
            for element in elements {
                list.nested(NFTA_LIST_ELEM, |elem| {
                    elem.nested(NFTA_SET_ELEM_KEY, |key| {
                        key.bytes(NFTA_DATA_VALUE, &addr_bytes(element));
                    });
                });
            }
        });
    msg.finish();
}

pub fn rule(batch: &mut Batch, table: &str, rule: &Rule, set_id: &dyn Fn(&str) -> Option<u32>) {
    let mut msg = batch.nft(MsgType::NewRule, NLM_F_CREATE | NLM_F_APPEND);
    msg.attrs
        .str(NFTA_RULE_TABLE, table)
        .str(NFTA_RULE_CHAIN, &rule.chain)
        .nested(NFTA_RULE_EXPRESSIONS, |list| {
            for m in &rule.matches {
                matches(list, m, set_id);
            }
            if rule.counter {
                expr(list, "counter", |_| {});
            }
            verdict(list, &rule.verdict);
        });
    if let Some(comment) = &rule.comment {
        let mut text: Vec<u8> = comment.bytes().take(127).collect();
        text.push(0);
        let mut udata = vec![UDATA_RULE_COMMENT, text.len() as u8];
        udata.extend_from_slice(&text);
        msg.attrs.bytes(NFTA_RULE_USERDATA, &udata);
    }
    msg.finish();
}

fn expr(list: &mut Attrs<'_>, name: &str, data: impl FnOnce(&mut Attrs<'_>)) {
    list.nested(NFTA_LIST_ELEM, |elem| {
        elem.str(NFTA_EXPR_NAME, name).nested(NFTA_EXPR_DATA, data);
    });
}

fn matches(list: &mut Attrs<'_>, m: &Match, set_id: &dyn Fn(&str) -> Option<u32>) {
    match m {
        Match::Source(net) => address(list, net, true),
        Match::Destination(net) => address(list, net, false),
        Match::SourceIn(set, family) | Match::DestinationIn(set, family) => {
            let source = matches!(m, Match::SourceIn(..));
            nfproto(list, *family);
            load_address(list, *family, source);
            expr(list, "lookup", |e| {
                e.str(1, set).u32_be(2, REG_1);
                if let Some(id) = set_id(set) {
                    e.u32_be(4, id);
                }
            });
        }
        Match::Protocol(protocol) => l4proto(list, *protocol),
        Match::DestinationPort(protocol, first, last) => {
            l4proto(list, *protocol);
            expr(list, "payload", |e| {
                e.u32_be(1, REG_1)
                    .u32_be(2, PAYLOAD_TRANSPORT)
                    .u32_be(3, 2)
                    .u32_be(4, 2);
            });
            if first == last {
                cmp(list, CMP_EQ, &first.to_be_bytes());
            } else {
                cmp(list, CMP_GTE, &first.to_be_bytes());
                cmp(list, CMP_LTE, &last.to_be_bytes());
            }
        }
        Match::CtState(mask) => {
            expr(list, "ct", |e| {
                e.u32_be(1, REG_1).u32_be(2, CT_STATE);
            });
            // ct state sits in the register in host byte order.
            bitwise(list, 4, &mask.to_ne_bytes());
            cmp(list, CMP_NEQ, &0u32.to_ne_bytes());
        }
    }
}

fn address(list: &mut Attrs<'_>, net: &IpNet, source: bool) {
    let family = Family::of(&net.addr());
    nfproto(list, family);
    if net.prefix_len() == 0 {
        return;
    }
    load_address(list, family, source);
    let network = addr_bytes(&net.network());
    if net.prefix_len() < net.max_prefix_len() {
        bitwise(list, network.len() as u32, &addr_bytes(&net.netmask()));
    }
    cmp(list, CMP_EQ, &network);
}

fn load_address(list: &mut Attrs<'_>, family: Family, source: bool) {
    let (offset, len) = match (family, source) {
        (Family::V4, true) => (12, 4),
        (Family::V4, false) => (16, 4),
        (Family::V6, true) => (8, 16),
        (Family::V6, false) => (24, 16),
    };
    expr(list, "payload", |e| {
        e.u32_be(1, REG_1)
            .u32_be(2, PAYLOAD_NETWORK)
            .u32_be(3, offset)
            .u32_be(4, len);
    });
}

fn nfproto(list: &mut Attrs<'_>, family: Family) {
    expr(list, "meta", |e| {
        e.u32_be(1, REG_1).u32_be(2, META_NFPROTO);
    });
    let value = match family {
        Family::V4 => NFPROTO_IPV4,
        Family::V6 => NFPROTO_IPV6,
    };
    cmp(list, CMP_EQ, &[value]);
}

fn l4proto(list: &mut Attrs<'_>, protocol: Protocol) {
    expr(list, "meta", |e| {
        e.u32_be(1, REG_1).u32_be(2, META_L4PROTO);
    });
    cmp(list, CMP_EQ, &[protocol as u8]);
}

fn bitwise(list: &mut Attrs<'_>, len: u32, mask: &[u8]) {
    let xor = vec![0u8; mask.len()];
    expr(list, "bitwise", |e| {
        e.u32_be(1, REG_1)
            .u32_be(2, REG_1)
            .u32_be(3, len)
            .nested(4, |d| {
                d.bytes(NFTA_DATA_VALUE, mask);
            })
            .nested(5, |d| {
                d.bytes(NFTA_DATA_VALUE, &xor);
            });
    });
}

fn cmp(list: &mut Attrs<'_>, op: u32, value: &[u8]) {
    expr(list, "cmp", |e| {
        e.u32_be(1, REG_1).u32_be(2, op).nested(3, |d| {
            d.bytes(NFTA_DATA_VALUE, value);
        });
    });
}

fn verdict(list: &mut Attrs<'_>, verdict: &Verdict) {
    let (code, chain) = match verdict {
        Verdict::Accept => (NF_ACCEPT, None),
        Verdict::Drop => (NF_DROP, None),
        Verdict::Return => (NFT_RETURN, None),
        Verdict::Jump(chain) => (NFT_JUMP, Some(chain)),
    };
    expr(list, "immediate", |e| {
        e.u32_be(1, REG_VERDICT).nested(2, |data| {
            data.nested(NFTA_DATA_VERDICT, |v| {
                v.u32_be(NFTA_VERDICT_CODE, code as u32);
                if let Some(chain) = chain {
                    v.str(NFTA_VERDICT_CHAIN, chain);
                }
            });
        });
    });
}

fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

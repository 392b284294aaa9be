//! Against the running kernel, in a private network namespace, with the
//! `nft` binary as the oracle: what k3r encodes is what nft reads back.
//! Skipped (with a message) where not root or nft is missing.

use std::net::IpAddr;
use std::process::Command;

use k3r_nftables::{Chain, Family, Hook, Match, Protocol, Rule, Ruleset, Set, Verdict, ct};

/// Runs `body` in a thread of its own in a fresh network namespace; hands
/// it a function listing the namespace's table with nft.
fn in_netns<T: Send>(body: impl FnOnce(&dyn Fn(&str) -> String) -> T + Send) -> Option<T> {
    if !nix::unistd::Uid::effective().is_root() || Command::new("nft").arg("-v").output().is_err() {
        eprintln!("skipped: needs root and nft");
        return None;
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
                let ns = format!(
                    "/proc/{}/task/{}/ns/net",
                    nix::unistd::getpid(),
                    nix::unistd::gettid()
                );
                let ns = std::fs::read_link(&ns).map(|_| ns).expect("netns link");
                let list = move |table: &str| {
                    let out = Command::new("nsenter")
                        .arg(format!("--net={ns}"))
                        .args(["nft", "list", "table", "inet", table])
                        .output()
                        .expect("nft");
                    String::from_utf8_lossy(&out.stdout).into_owned()
                        + &String::from_utf8_lossy(&out.stderr)
                };
                Some(body(&list))
            })
            .join()
            .expect("netns thread")
    })
}

fn sample() -> Ruleset {
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    let net = |s: &str| s.parse().expect("net");
    Ruleset {
        table: "k3r-test".into(),
        chains: vec![
            Chain {
                name: "forward".into(),
                base: Some((Hook::Forward, -10)),
            },
            Chain {
                name: "pod-a".into(),
                base: None,
            },
        ],
        sets: vec![
            Set {
                name: "peers4".into(),
                family: Family::V4,
                elements: vec![ip("10.42.0.5"), ip("10.42.1.7")],
            },
            Set {
                name: "peers6".into(),
                family: Family::V6,
                elements: vec![ip("fd00::5")],
            },
        ],
        rules: vec![
            Rule::new(
                "forward",
                vec![Match::CtState(ct::ESTABLISHED | ct::RELATED)],
                Verdict::Accept,
            ),
            Rule::new(
                "forward",
                vec![Match::Destination(net("10.42.0.9/32"))],
                Verdict::Jump("pod-a".into()),
            )
            .comment("ingress of default/a"),
            Rule::new(
                "pod-a",
                vec![
                    Match::SourceIn("peers4".into(), Family::V4),
                    Match::DestinationPort(Protocol::Tcp, 80, 80),
                ],
                Verdict::Return,
            ),
            Rule::new(
                "pod-a",
                vec![
                    Match::Source(net("192.168.0.0/16")),
                    Match::DestinationPort(Protocol::Udp, 1000, 2000),
                ],
                Verdict::Return,
            ),
            Rule::new(
                "pod-a",
                vec![
                    Match::SourceIn("peers6".into(), Family::V6),
                    Match::Protocol(Protocol::Sctp),
                ],
                Verdict::Return,
            ),
            Rule::new(
                "pod-a",
                vec![Match::Source(net("fd00::/8"))],
                Verdict::Return,
            ),
            Rule::new("pod-a", vec![], Verdict::Drop).counted(),
        ],
    }
}

#[test]
fn nft_reads_back_what_was_encoded() {
    let Some(listed) = in_netns(|list| {
        k3r_nftables::replace(&sample()).expect("replace");
        list("k3r-test")
    }) else {
        return;
    };
    let expected = "table inet k3r-test {
\tset peers4 {
\t\ttype ipv4_addr
\t\telements = { 10.42.0.5, 10.42.1.7 }
\t}

\tset peers6 {
\t\ttype ipv6_addr
\t\telements = { fd00::5 }
\t}

\tchain forward {
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tct state established,related accept
\t\tip daddr 10.42.0.9 jump pod-a comment \"ingress of default/a\"
\t}

\tchain pod-a {
\t\tip saddr @peers4 tcp dport 80 return
\t\tip saddr 192.168.0.0/16 udp dport 1000-2000 return
\t\tip6 saddr @peers6 meta l4proto sctp return
\t\tip6 saddr fd00::/8 return
\t\tcounter packets 0 bytes 0 drop
\t}
}
";
    assert_eq!(listed, expected);
}

#[test]
fn a_replacement_leaves_nothing_of_the_old_table_and_delete_removes_it() {
    let Some((listed, existed, exists_after, second_delete)) = in_netns(|list| {
        k3r_nftables::replace(&sample()).expect("first");
        let mut smaller = sample();
        smaller.sets.truncate(1);
        smaller.sets[0].elements.truncate(1);
        smaller.rules.truncate(3);
        k3r_nftables::replace(&smaller).expect("second");
        let listed = list("k3r-test");
        let existed = k3r_nftables::table_exists("k3r-test").expect("exists");
        k3r_nftables::delete_table("k3r-test").expect("delete");
        let exists_after = k3r_nftables::table_exists("k3r-test").expect("exists");
        (
            listed,
            existed,
            exists_after,
            k3r_nftables::delete_table("k3r-test"),
        )
    }) else {
        return;
    };
    assert!(!listed.contains("peers6"), "{listed}");
    assert!(!listed.contains("10.42.1.7"), "{listed}");
    assert!(!listed.contains("1000-2000"), "{listed}");
    assert!(listed.contains("tcp dport 80 return"), "{listed}");
    assert!(existed);
    assert!(!exists_after);
    assert!(
        second_delete.is_ok(),
        "deleting a missing table is not an error"
    );
}

#[test]
fn a_refused_batch_names_its_message_and_keeps_the_old_table() {
    let Some((error, listed)) = in_netns(|list| {
        k3r_nftables::replace(&sample()).expect("first");
        let mut bad = sample();
        bad.chains.push(Chain {
            name: "x".repeat(300),
            base: None,
        });
        let error = k3r_nftables::replace(&bad).expect_err("name too long");
        (error.to_string(), list("k3r-test"))
    }) else {
        return;
    };
    assert!(error.starts_with("nf_tables refused chain xxx"), "{error}");
    assert!(
        listed.contains("10.42.1.7"),
        "the old table stays: {listed}"
    );
}

#[test]
fn rules_naming_undeclared_chains_or_sets_are_refused_before_sending() {
    let mut bad = sample();
    bad.rules
        .push(Rule::new("nowhere", vec![], Verdict::Accept));
    let error = k3r_nftables::replace(&bad).expect_err("undeclared chain");
    assert_eq!(
        error.to_string(),
        "a rule is in chain nowhere, which the ruleset does not declare"
    );
    let mut bad = sample();
    bad.rules.push(Rule::new(
        "forward",
        vec![Match::SourceIn("peers4".into(), Family::V6)],
        Verdict::Accept,
    ));
    let error = k3r_nftables::replace(&bad).expect_err("set of the other family");
    assert!(error.to_string().contains("set peers4"), "{error}");
}

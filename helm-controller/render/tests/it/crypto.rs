//! sprig's crypto functions against Helm: exact output where it is
//! deterministic (derivePassword, decryptAES, errors), each side decrypting
//! the other's encryptAES, and for keys and certificates the same shape as
//! openssl reads it (subject, issuer, extensions, key type and size), the
//! chain verified by openssl, bcrypt hashes verified by Apache's htpasswd.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::{assert_same, helm, ours};

#[test]
fn deterministic_crypto_matches_helm() {
    assert_same(
        "pw: correct horse\n",
        &[
            (
                "derive.yaml",
                r#"{{ derivePassword 1 "long" "password" "user" "example.com" }} {{ derivePassword 3 "maximum" .Values.pw "ann" "k3r.io" }} {{ derivePassword 1 "medium" "x" "y" "z" }} {{ derivePassword 2 "basic" "x" "y" "z" }} {{ derivePassword 1 "short" "x" "y" "z" }} {{ derivePassword 9 "pin" "x" "y" "z" }} {{ derivePassword 1 "nope" "x" "y" "z" }}"#,
            ),
            (
                "aes.yaml",
                r#"{{ decryptAES "key" "O66yKy9BhCvIGBVm4xv/kNNBveA8B811z3QgBu+iq/k=" }}|{{ encryptAES "key" "" }}|{{ decryptAES "thirty-two bytes, exactly, here!" (encryptAES "thirty-two bytes, exactly, here!" "round trip") }}"#,
            ),
            (
                "misc.yaml",
                r#"{{ htpasswd "us:er" "pw" }}|{{ genPrivateKey "nope" }}|{{ printf "%T" (genCA "x" 1) }}|{{ bcrypt "pw" | len }}|{{ bcrypt "pw" | trunc 7 }}"#,
            ),
        ],
    );
}

fn rendered(side: Result<BTreeMap<String, String>, String>, file: &str) -> String {
    let files = side.expect("renders");
    files
        .get(&format!("demo/templates/{file}"))
        .cloned()
        .unwrap_or_else(|| panic!("no {file}"))
}

#[test]
fn each_side_decrypts_the_others_aes() {
    let encrypt = [(
        "enc.yaml",
        r#"{{ encryptAES "s3cret" "attack at dawn, twice over" }}"#,
    )];
    let from_helm = rendered(helm("", &encrypt), "enc.yaml");
    let from_us = rendered(ours("", &encrypt), "enc.yaml");
    assert_ne!(from_helm, from_us, "a fresh IV each time");
    let decrypt = |text: &str| format!(r#"{{{{ decryptAES "s3cret" "{text}" }}}}"#);
    let (helm_text, our_text) = (decrypt(&from_us), decrypt(&from_helm));
    assert_eq!(
        rendered(helm("", &[("dec.yaml", &helm_text)]), "dec.yaml"),
        "attack at dawn, twice over"
    );
    assert_eq!(
        rendered(ours("", &[("dec.yaml", &our_text)]), "dec.yaml"),
        "attack at dawn, twice over"
    );
}

const CERTS: &str = r#"{{- $ca := genCA "k3r-test-ca" 30 }}
{{- $leaf := genSignedCert "web.example" (list "10.0.0.1" "::1") (list "web.example" "web") 10 $ca }}
{{- $self := genSelfSignedCert "self" nil (list "self.local") 5 }}
{{- $ecdsa := genPrivateKey "ecdsa" }}
{{- $withKey := genSelfSignedCertWithKey "keyed" (list "192.0.2.7") nil 3 $ecdsa }}
{{- $custom := buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc) }}
{{- $fromCustom := genSignedCert "from-custom" nil (list "c.example") 2 $custom }}
ca: {{ $ca.Cert | b64enc }}
caKey: {{ $ca.Key | b64enc }}
leaf: {{ $leaf.Cert | b64enc }}
leafKey: {{ $leaf.Key | b64enc }}
self: {{ $self.Cert | b64enc }}
ecdsa: {{ $ecdsa | b64enc }}
withKey: {{ $withKey.Cert | b64enc }}
fromCustom: {{ $fromCustom.Cert | b64enc }}
ed25519: {{ genPrivateKey "ed25519" | b64enc }}
"#;

fn decode(text: &str) -> BTreeMap<String, Vec<u8>> {
    use base64::Engine;
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .expect("base64");
            (k.to_string(), bytes)
        })
        .collect()
}

fn openssl(args: &[&str], input: &[u8]) -> String {
    let out = k3r_helm_oracle::pipe("openssl", args, input);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What openssl reads from a certificate, without what differs on every
/// run (serial, key, dates) — validity is reported in whole days.
fn describe_cert(pem: &[u8]) -> String {
    let fields = openssl(
        &[
            "x509",
            "-noout",
            "-subject",
            "-issuer",
            "-ext",
            "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName",
        ],
        pem,
    );
    // Extensions in a fixed order: their order in the DER is not meaning.
    let mut blocks: Vec<String> = Vec::new();
    for line in fields.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => {
                block.push('\n');
                block.push_str(line);
            }
            _ => blocks.push(line.to_string()),
        }
    }
    blocks[2..].sort();
    let fields = blocks.join("\n") + "\n";
    let dates = openssl(&["x509", "-noout", "-startdate", "-enddate"], pem);
    let seconds: Vec<i64> = dates
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(_, date)| {
            let out = Command::new("date")
                .args(["-u", "-d", date, "+%s"])
                .output()
                .expect("date");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("epoch seconds")
        })
        .collect();
    let key = openssl(&["x509", "-noout", "-text"], pem)
        .lines()
        .find(|l| l.contains("Public-Key:") || l.contains("Public Key Algorithm"))
        .unwrap_or_default()
        .trim()
        .to_string();
    format!(
        "{fields}valid days: {}\n{key}",
        (seconds[1] - seconds[0]) / 86_400
    )
}

fn describe_key(pem: &[u8]) -> String {
    let header = String::from_utf8_lossy(pem)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let text = openssl(&["pkey", "-noout", "-text"], pem);
    format!("{header}\n{}", text.lines().next().unwrap_or_default())
}

#[test]
fn keys_and_certificates_have_helms_shape() {
    let template = [("certs.yaml", CERTS)];
    let from_helm = decode(&rendered(helm("", &template), "certs.yaml"));
    let from_us = decode(&rendered(ours("", &template), "certs.yaml"));
    for name in ["ca", "leaf", "self", "withKey", "fromCustom"] {
        assert_eq!(
            describe_cert(&from_us[name]),
            describe_cert(&from_helm[name]),
            "{name}"
        );
    }
    for name in ["caKey", "leafKey", "ecdsa", "ed25519"] {
        assert_eq!(
            describe_key(&from_us[name]),
            describe_key(&from_helm[name]),
            "{name}"
        );
    }
    // Our chain verifies.
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &from_us["ca"]).expect("write ca");
    let ca_arg = ca.display().to_string();
    for leaf in ["leaf", "fromCustom"] {
        let verified = openssl(&["verify", "-CAfile", &ca_arg], &from_us[leaf]);
        assert!(verified.contains("OK"), "{leaf}: {verified}");
    }
}

#[test]
fn bcrypt_hashes_verify_with_apache_htpasswd() {
    let template = [("ht.yaml", r#"{{ htpasswd "ann" "pass phrase" }}"#)];
    let line = rendered(ours("", &template), "ht.yaml");
    let helm_line = rendered(helm("", &template), "ht.yaml");
    assert_eq!(line[..11], helm_line[..11], "{line} vs {helm_line}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, format!("{line}\n")).expect("write");
    let check = |password: &str| {
        Command::new("htpasswd")
            .arg("-vb")
            .arg(&file)
            .args(["ann", password])
            .output()
            .expect("htpasswd (apache2-utils)")
            .status
            .success()
    };
    assert!(check("pass phrase"));
    assert!(!check("wrong"));
}

//! PKI checked with real `openssl verify`.

use std::net::IpAddr;
use std::process::Command;

use k3r_pki::{Pki, PkiOptions};

fn options(sans: &[&str]) -> PkiOptions {
    PkiOptions {
        node_name: "node-a".into(),
        node_ips: vec![IpAddr::from([10, 0, 0, 5])],
        tls_sans: sans.iter().map(|s| s.to_string()).collect(),
        cluster_domain: "cluster.local".into(),
        api_service_ip: IpAddr::from([10, 43, 0, 1]),
    }
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn certificates_verify_with_openssl_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::ensure(dir.path(), &options(&["k3r.example"])).expect("pki");
    let server_ca = pki.server_ca.to_string_lossy().into_owned();
    let client_ca = pki.client_ca.to_string_lossy().into_owned();
    for (ca, stem, purpose) in [
        (&server_ca, "serving-kube-apiserver", "sslserver"),
        (&server_ca, "serving-kubelet", "sslserver"),
        (&client_ca, "client-admin", "sslclient"),
        (&client_ca, "client-kubelet", "sslclient"),
    ] {
        let cert = pki.cert(stem).to_string_lossy().into_owned();
        let (ok, out) = openssl(&["verify", "-purpose", purpose, "-CAfile", ca, &cert]);
        assert!(ok, "{stem}: {out}");
    }
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        &client_ca,
        &pki.cert("client-auth-proxy").to_string_lossy(),
    ]);
    assert!(!ok, "auth-proxy must not chain to the client CA: {out}");
    let apiserver = pki
        .cert("serving-kube-apiserver")
        .to_string_lossy()
        .into_owned();
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", &apiserver]);
    for san in [
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:k3r.example",
        "IP Address:10.43.0.1",
        "IP Address:10.0.0.5",
    ] {
        assert!(text.contains(san), "missing {san}");
    }
    let (_, admin) = openssl(&[
        "x509",
        "-noout",
        "-subject",
        "-in",
        &pki.cert("client-admin").to_string_lossy(),
    ]);
    assert!(
        admin.contains("O = system:masters") && admin.contains("CN = system:admin"),
        "{admin}"
    );
    // A restart with the same names changes nothing; a new SAN renews
    // that certificate only, with its key kept.
    let before = std::fs::read(pki.cert("serving-kube-apiserver")).expect("read");
    let key_before = std::fs::read(pki.key("serving-kube-apiserver")).expect("read");
    let admin_before = std::fs::read(pki.cert("client-admin")).expect("read");
    Pki::ensure(dir.path(), &options(&["k3r.example"])).expect("reload");
    assert_eq!(
        before,
        std::fs::read(pki.cert("serving-kube-apiserver")).expect("read")
    );
    Pki::ensure(dir.path(), &options(&["k3r.example", "other.example"])).expect("new san");
    assert_ne!(
        before,
        std::fs::read(pki.cert("serving-kube-apiserver")).expect("read")
    );
    assert_eq!(
        key_before,
        std::fs::read(pki.key("serving-kube-apiserver")).expect("read")
    );
    assert_eq!(
        admin_before,
        std::fs::read(pki.cert("client-admin")).expect("read")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(pki.key("client-admin"))
            .expect("stat")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_corrupt_ca_is_reported_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    Pki::ensure(dir.path(), &options(&[])).expect("pki");
    std::fs::write(dir.path().join("server-ca.crt"), "garbage").expect("corrupt");
    let err = Pki::ensure(dir.path(), &options(&[]))
        .expect_err("corrupt CA")
        .to_string();
    assert!(err.contains("server-ca.crt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("server-ca.crt")).expect("read"),
        "garbage"
    );
}

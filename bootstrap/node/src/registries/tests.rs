use super::*;

fn settings(yaml: &str, disable_default_endpoint: bool) -> RegistrySettings {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("registries.yaml");
    std::fs::write(&file, yaml).expect("write");
    RegistrySettings {
        registries: Registries::load(&file).expect("valid registries.yaml"),
        disable_default_endpoint,
    }
}

const K3S_DOCS_EXAMPLE: &str = r#"
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example.com:5000"
      - "http://10.0.0.5:5000/some/prefix"
  registry.example.com:
    endpoint:
      - "https://registry.example.com"
configs:
  "mirror.example.com:5000":
    auth:
      username: xxxxxx
      password: "p\"w"
    tls:
      cert_file: /etc/k3r/client.crt
      key_file: /etc/k3r/client.key
      ca_file: /etc/k3r/ca.crt
  registry.example.com:
    tls:
      insecure_skip_verify: true
"#;

#[test]
fn a_mirror_becomes_hosts_toml_with_its_endpoints_tls_and_the_default_last() {
    let s = settings(K3S_DOCS_EXAMPLE, false);
    let docker = hosts_toml(&s, "docker.io");
    assert!(
        docker.contains("server = \"https://registry-1.docker.io\""),
        "{docker}"
    );
    let mirror = docker
        .find("[host.\"https://mirror.example.com:5000\"]")
        .expect("mirror");
    let prefixed = docker
        .find("[host.\"http://10.0.0.5:5000/some/prefix\"]")
        .expect("second endpoint, in order");
    assert!(mirror < prefixed);
    assert!(docker.contains("  ca = \"/etc/k3r/ca.crt\"\n"), "{docker}");
    assert!(
        docker.contains("  client = [[\"/etc/k3r/client.crt\", \"/etc/k3r/client.key\"]]\n"),
        "{docker}"
    );
    assert_eq!(
        docker.matches("override_path = true").count(),
        1,
        "{docker}"
    );
    let own = hosts_toml(&s, "registry.example.com");
    assert!(
        own.contains("server = \"https://registry.example.com\"\nskip_verify = true\n"),
        "{own}"
    );
}

#[test]
fn disabling_the_default_endpoint_drops_server_where_mirrors_exist() {
    let s = settings(K3S_DOCS_EXAMPLE, true);
    assert!(!hosts_toml(&s, "docker.io").contains("server ="));
}

#[test]
fn credentials_go_to_the_cri_config_quoted() {
    let auth = auth_config(&settings(K3S_DOCS_EXAMPLE, false));
    assert_eq!(
        auth,
        "\n[plugins.'io.containerd.cri.v1.images'.registry.configs.\"mirror.example.com:5000\".auth]\n  username = \"xxxxxx\"\n  password = \"p\\\"w\"\n"
    );
}

#[test]
fn hosts_dir_has_one_file_per_registry_and_nothing_stale() {
    let s = settings(K3S_DOCS_EXAMPLE, false);
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs.d");
    std::fs::create_dir_all(certs.join("stale.example")).expect("stale");
    write_hosts(&s, &certs).expect("written");
    let mut names: Vec<String> = std::fs::read_dir(&certs)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // mirror.example.com:5000 is only an endpoint: no file of its own.
    assert_eq!(names, ["docker.io", "registry.example.com"]);
}

#[test]
fn a_wildcard_mirror_is_containerds_default() {
    let s = settings(
        "mirrors:\n  \"*\":\n    endpoint: [\"https://all.example\"]\n",
        false,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write_hosts(&s, dir.path()).expect("written");
    let text = std::fs::read_to_string(dir.path().join("_default/hosts.toml")).expect("_default");
    assert!(text.contains("[host.\"https://all.example\"]") && !text.contains("server ="));
}

#[test]
fn bad_files_are_named_with_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("registries.yaml");
    for (yaml, expected) in [
        (
            "mirrors:\n  docker.io:\n    endpoints: [\"https://x\"]\n",
            "endpoints",
        ),
        (
            "mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n",
            "not an http:// or https:// URL",
        ),
        (
            "mirrors:\n  docker.io:\n    endpoint: [\"https://x\"]\n    rewrite:\n      \"^a/(.*)\": \"b/$1\"\n",
            "rewrite is not supported",
        ),
        (
            "configs:\n  x:\n    tls:\n      cert_file: /c\n",
            "go together",
        ),
        ("mirrors: [\n", "registries.yaml"),
    ] {
        std::fs::write(&file, yaml).expect("write");
        let err = Registries::load(&file).expect_err("refused").to_string();
        assert!(
            err.contains(expected) && err.contains("registries.yaml"),
            "{yaml}: {err}"
        );
    }
    assert_eq!(
        Registries::load(&dir.path().join("absent.yaml")).expect("absent is fine"),
        Registries::default()
    );
}

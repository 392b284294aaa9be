//! A real OCI registry for tests: Debian's docker-registry (the CNCF
//! distribution server) with htpasswd auth on a free port, over plain HTTP
//! or TLS with a CA of its own (made by openssl), data in a temporary
//! directory, stopped on drop. Charts are pushed by real Helm.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// host:port as clients reach it.
    pub host: String,
    pub username: String,
    pub password: String,
    /// The CA that signed the registry's certificate (TLS registries).
    pub ca_pem: Option<String>,
    child: Child,
    dir: PathBuf,
}

impl Registry {
    /// Starts a plain-HTTP registry listening on all addresses, reached as
    /// `advertise` (an address pods can dial, such as the node IP).
    pub fn start(advertise: &str) -> Result<Registry, String> {
        Self::launch(advertise, false)
    }

    /// Starts a registry serving TLS with a certificate for `advertise`
    /// (an IP address) from a fresh CA, `ca_pem`.
    pub fn start_tls(advertise: &str) -> Result<Registry, String> {
        Self::launch(advertise, true)
    }

    fn launch(advertise: &str, tls: bool) -> Result<Registry, String> {
        let port = TcpListener::bind("0.0.0.0:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!("k3r-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (username, password) = ("k3r", "registry-secret");
        let htpasswd = Command::new("htpasswd")
            .args(["-nbB", username, password])
            .output()
            .map_err(|e| format!("htpasswd (apt install apache2-utils): {e}"))?;
        std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).map_err(|e| e.to_string())?;
        let (ca_pem, tls_config) = if tls {
            let ca = certificates(&dir, advertise)?;
            let config = format!(
                "\n  tls: {{certificate: {}, key: {}}}",
                dir.join("server.crt").display(),
                dir.join("server.key").display()
            );
            (Some(ca), config)
        } else {
            (None, String::new())
        };
        let config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {data}}}\nhttp:\n  addr: 0.0.0.0:{port}{tls_config}\nauth:\n  htpasswd: {{realm: k3r-test, path: {htpasswd}}}\n",
            data = dir.join("data").display(),
            htpasswd = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yml"), config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("docker-registry (apt install docker-registry): {e}"))?;
        let registry = Registry {
            host: format!("{advertise}:{port}"),
            username: username.into(),
            password: password.into(),
            ca_pem,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("the registry did not listen on {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// Packages `chart` as `version` and pushes it with real Helm to
    /// oci://HOST/`path`.
    pub fn push(&self, chart: &Path, version: &str, path: &str) -> Result<(), String> {
        crate::helm_push(
            chart,
            version,
            &format!("oci://{}/{path}", self.host),
            (&self.host, &self.username, &self.password),
            self.ca_pem.is_some(),
        )
        .map(|_| ())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and a server certificate for `ip` signed by it, in `dir`
/// (ca.crt, server.crt, server.key); returns the CA PEM.
fn certificates(dir: &Path, ip: &str) -> Result<String, String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=k3r-test-registry-ca",
        "-days",
        "2",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=registry",
    ])?;
    std::fs::write(dir.join("san.ext"), format!("subjectAltName=IP:{ip}\n"))
        .map_err(|e| e.to_string())?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ])?;
    std::fs::read_to_string(dir.join("ca.crt")).map_err(|e| e.to_string())
}

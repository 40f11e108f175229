//! OpenBao over TLS: `bao server -dev -dev-tls` (its own throwaway CA) on a free loopback port.
//! `ca_cert` in the file and `BAO_CACERT` both work; an untrusted CA or a wrong name fails at
//! once (no retries) with one line naming the address, the problem and the fix.

use super::harness::unique;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `bao server -dev -dev-tls`, killed on drop.
struct TlsBao {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    token: String,
}

impl TlsBao {
    fn start() -> TlsBao {
        let bin = std::env::var("CTL_BAO_BIN").unwrap_or_else(|_| "bao".into());
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let token = unique("tok");
        let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(["server", "-dev", "-dev-tls"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-tls-cert-dir={}", dir.path().display()))
            // -dev writes ~/.vault-token: keep it in the temp dir.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        scrub(&mut cmd);
        let child = cmd.spawn().expect("start bao server -dev-tls");
        let bao = TlsBao { child, port, dir, token };
        bao.wait_ready();
        bao
    }

    /// Until the CA is written and the listener answers a TLS health check.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.ca().exists() && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let bin = std::env::var("CTL_BAO_BIN").unwrap_or_else(|_| "bao".into());
                let mut cmd = Command::new(bin);
                cmd.args(["status", "-address", &self.address(), "-ca-cert"]).arg(self.ca()).env("HOME", self.dir.path());
                scrub(&mut cmd);
                if cmd.output().is_ok_and(|o| o.status.success()) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("bao -dev-tls not ready: {}", std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default());
    }

    fn address(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("vault-ca.pem")
    }
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scrub(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("BAO_") || key.starts_with("VAULT_") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
}

/// An environment directory: `environments/tls.yaml` and an empty `templates/policies/`.
struct EnvDir {
    dir: tempfile::TempDir,
}

impl EnvDir {
    fn new() -> EnvDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("environments")).unwrap();
        std::fs::create_dir_all(dir.path().join("templates/policies")).unwrap();
        EnvDir { dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("environments/tls.yaml")
    }

    /// The `openbao:` block for `bao` plus `extra` lines under it, and `workspaces`.
    fn write(&self, bao: &TlsBao, extra: &str, workspaces: &[&str]) {
        let mut s = format!("openbao:\n  address: {}\n  token_env: CTL_TLS_TOKEN\n{extra}workspaces:\n", bao.address());
        for w in workspaces {
            s.push_str(&format!("  - {{ name: {w} }}\n"));
        }
        std::fs::write(self.file(), s).unwrap();
    }

    /// Copies `ca` to `tls/<name>` and returns the path relative to the environment file.
    fn copy_ca(&self, ca: &Path, name: &str) -> String {
        std::fs::create_dir_all(self.dir.path().join("tls")).unwrap();
        std::fs::copy(ca, self.dir.path().join("tls").join(name)).unwrap();
        format!("../tls/{name}")
    }

    /// Runs ctl with the token in `CTL_TLS_TOKEN` and `envs`; checks the token is not echoed.
    fn ctl(&self, bao: &TlsBao, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String, Duration) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctl"));
        cmd.args(args).arg("-e").arg(self.file()).env("CTL_TLS_TOKEN", &bao.token).env_remove("RUST_LOG");
        scrub(&mut cmd);
        cmd.envs(envs.iter().copied());
        let started = Instant::now();
        let out = cmd.output().unwrap();
        let took = started.elapsed();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(!stdout.contains(&bao.token) && !stderr.contains(&bao.token), "the token leaked:\n{stdout}\n{stderr}");
        (out.status.code().unwrap_or(-1), stdout, stderr, took)
    }

    /// plan shows changes, apply succeeds, plan is then empty.
    fn converge(&self, bao: &TlsBao, envs: &[(&str, &str)]) {
        let (code, stdout, stderr, _) = self.ctl(bao, &["plan", "--detailed-exitcode"], envs);
        assert_eq!(code, 2, "plan should show changes:\n{stdout}\n{stderr}");
        let (code, stdout, stderr, _) = self.ctl(bao, &["apply", "--auto-approve"], envs);
        assert_eq!(code, 0, "apply:\n{stdout}\n{stderr}");
        let (code, stdout, stderr, _) = self.ctl(bao, &["plan", "--detailed-exitcode"], envs);
        assert_eq!(code, 0, "plan after apply should be empty:\n{stdout}\n{stderr}");
    }
}

#[test]
fn tls_ca_cert_in_the_file_or_bao_cacert() {
    let bao = TlsBao::start();
    let env = EnvDir::new();
    let ca = env.copy_ca(&bao.ca(), "ca.pem");
    // The file's ca_cert wins over BAO_CACERT (which here names no file at all).
    env.write(&bao, &format!("  ca_cert: {ca}\n"), &["a"]);
    env.converge(&bao, &[("BAO_CACERT", "/nonexistent/ca.pem")]);
    // Without ca_cert in the file, BAO_CACERT (then VAULT_CACERT) is used.
    env.write(&bao, "", &["a", "b"]);
    env.converge(&bao, &[("BAO_CACERT", bao.ca().to_str().unwrap())]);
    // VAULT_CACERT, plus a client certificate from BAO_CLIENT_CERT / BAO_CLIENT_KEY (the dev
    // server asks for none, so this only shows the identity loads and is offered harmlessly).
    env.write(&bao, "", &["a", "b", "c"]);
    let cert = bao.dir.path().join("vault-cert.pem");
    let key = bao.dir.path().join("vault-key.pem");
    env.converge(
        &bao,
        &[
            ("VAULT_CACERT", bao.ca().to_str().unwrap()),
            ("BAO_CLIENT_CERT", cert.to_str().unwrap()),
            ("BAO_CLIENT_KEY", key.to_str().unwrap()),
        ],
    );
}

/// Exit 1 quickly, with one line naming the address, the problem and the fix; one attempt,
/// no rustls log lines even at trace level.
#[track_caller]
fn assert_fails_at_once(env: &EnvDir, bao: &TlsBao, envs: &[(&str, &str)], problem: &str) {
    let mut envs = envs.to_vec();
    envs.push(("RUST_LOG", "trace"));
    let (code, stdout, stderr, took) = env.ctl(bao, &["plan"], &envs);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    let line = format!("{}: {problem}", bao.address());
    let hits: Vec<&str> = stderr.lines().filter(|l| l.contains(&line)).collect();
    assert_eq!(hits.len(), 1, "expected one line with {line:?}:\n{stderr}");
    assert!(hits[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.to_lowercase().contains("rustls"), "rustls text in stderr:\n{stderr}");
    assert!(!stderr.contains("retrying") && !stderr.contains("attempts"), "retried:\n{stderr}");
}

#[test]
fn tls_certificate_problems_fail_at_once_with_one_line() {
    let bao = TlsBao::start();
    let other = TlsBao::start();
    let env = EnvDir::new();
    let unknown = "the server's certificate is not trusted (unknown issuer); set openbao.ca_cert or BAO_CACERT";
    // No CA at all: the platform roots do not know bao's dev CA.
    env.write(&bao, "", &["a"]);
    assert_fails_at_once(&env, &bao, &[], unknown);
    // Another CA (the other dev server's), in the file and in BAO_CACERT.
    let wrong = env.copy_ca(&other.ca(), "other-ca.pem");
    env.write(&bao, &format!("  ca_cert: {wrong}\n"), &["a"]);
    assert_fails_at_once(&env, &bao, &[], unknown);
    env.write(&bao, "", &["a"]);
    assert_fails_at_once(&env, &bao, &[("BAO_CACERT", other.ca().to_str().unwrap())], unknown);
    // The right CA, but a name the certificate was not issued for.
    let ca = env.copy_ca(&bao.ca(), "ca.pem");
    env.write(&bao, &format!("  ca_cert: {ca}\n  tls_server_name: wrong.example\n"), &["a"]);
    assert_fails_at_once(&env, &bao, &[], "the server's certificate is not valid for the name wrong.example (wrong name)");
    // A BAO_CACERT that is not a certificate is refused before any call.
    env.write(&bao, "", &["a"]);
    let (code, _, stderr, _) = env.ctl(&bao, &["plan"], &[("BAO_CACERT", env.file().to_str().unwrap())]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("$BAO_CACERT: ") && stderr.contains("is not a PEM certificate"), "{stderr}");
    let cert = bao.dir.path().join("vault-cert.pem");
    let (code, _, stderr, _) = env.ctl(&bao, &["plan"], &[("BAO_CLIENT_CERT", cert.to_str().unwrap())]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("$BAO_CLIENT_CERT is set but $BAO_CLIENT_KEY is not"), "{stderr}");
}

/// The AWS SDK for Rust ignores `AWS_CA_BUNDLE`; `Aws::connect` builds its https client with
/// `ca_bundle_client`, which trusts the bundle: a KMS call to an https endpoint signed by it
/// (the TLS OpenBao, which answers with an HTTP error) gets a response; the SDK's default
/// client fails the handshake.
#[test]
fn aws_ca_bundle_client_trusts_the_bundle() {
    use aws_smithy_runtime_api::client::result::SdkError;
    let bao = TlsBao::start();
    let env = EnvDir::new();
    let err = ctl::aws::ca_bundle_client(&env.file().with_extension("missing")).err().expect("a missing bundle is an error");
    assert!(err.to_string().contains("$AWS_CA_BUNDLE: cannot read"), "{err}");
    super::harness::runtime().block_on(async {
        let kms = |http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>| {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(bao.address())
                .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "t"));
            if let Some(http) = http {
                loader = loader.http_client(http);
            }
            async move { aws_sdk_kms::Client::new(&loader.load().await) }
        };
        let trusted = kms(Some(ctl::aws::ca_bundle_client(&bao.ca()).unwrap())).await.list_keys().send().await;
        let err = trusted.expect_err("OpenBao is no KMS");
        assert!(err.raw_response().is_some(), "expected an HTTP answer: {err:?}");
        let untrusted = kms(None).await.list_keys().send().await.expect_err("untrusted");
        assert!(matches!(untrusted, SdkError::DispatchFailure(_)), "{untrusted:?}");
    });
}

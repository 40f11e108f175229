//! OpenBao over TLS: `bao server -dev -dev-tls` (its own throwaway CA) on a free loopback port.
//! `ca_cert` in the file and `BAO_CACERT` both work; an untrusted CA or a wrong name fails at
//! once (no retries) with one line naming the address, the problem and the fix.

use super::harness::unique;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `bao server -dev` with a TLS listener, killed on drop.
struct TlsBao {
    child: Child,
    /// The TLS listener's port.
    port: u16,
    dir: tempfile::TempDir,
    token: String,
    /// The CA that signed the listener's certificate.
    ca: PathBuf,
    /// The client certificate and key the listener requires, if it does.
    client: Option<(PathBuf, PathBuf)>,
}

fn bao_bin() -> String {
    std::env::var("CTL_BAO_BIN").unwrap_or_else(|_| "bao".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TlsBao {
    /// `bao server -dev -dev-tls`: a fresh CA and server certificate in its temp dir.
    fn start() -> TlsBao {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let args = vec![
            "-dev-tls".to_string(),
            format!("-dev-listen-address=127.0.0.1:{port}"),
            format!("-dev-tls-cert-dir={}", dir.path().display()),
        ];
        let ca = dir.path().join("vault-ca.pem");
        TlsBao::spawn(args, dir, port, ca, None)
    }

    /// A dev server (plain HTTP dev listener) plus a TLS listener using `signer`'s server
    /// certificate that requires a client certificate issued by `client_ca`.
    fn start_mtls(signer: &TlsBao, client_ca: &Path, client: (PathBuf, PathBuf)) -> TlsBao {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let hcl = format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  \
             tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"{}\"\n}}\n",
            signer.dir.path().join("vault-cert.pem").display(),
            signer.dir.path().join("vault-key.pem").display(),
            client_ca.display()
        );
        std::fs::write(dir.path().join("listener.hcl"), hcl).unwrap();
        let args = vec![
            format!("-dev-listen-address=127.0.0.1:{}", free_port()),
            format!("-config={}", dir.path().join("listener.hcl").display()),
        ];
        TlsBao::spawn(args, dir, port, signer.ca.clone(), Some(client))
    }

    fn spawn(args: Vec<String>, dir: tempfile::TempDir, port: u16, ca: PathBuf, client: Option<(PathBuf, PathBuf)>) -> TlsBao {
        let token = unique("tok");
        let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
        let mut cmd = Command::new(bao_bin());
        cmd.args(["server", "-dev"])
            .arg(format!("-dev-root-token-id={token}"))
            .args(args)
            // -dev writes ~/.vault-token: keep it in the temp dir.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        scrub(&mut cmd);
        let child = cmd.spawn().expect("start bao server -dev");
        let bao = TlsBao { child, port, dir, token, ca, client };
        bao.wait_ready();
        bao
    }

    /// Until the CA is written and the TLS listener answers `bao status`.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.ca.exists() && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let mut cmd = self.cli(&["status"]);
                if cmd.output().is_ok_and(|o| o.status.success()) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("bao TLS listener not ready: {}", std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default());
    }

    /// The `bao` CLI against this server's TLS listener, as root.
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bao_bin());
        scrub(&mut cmd);
        cmd.args(args)
            .env("BAO_ADDR", self.address())
            .env("BAO_CACERT", &self.ca)
            .env("BAO_TOKEN", &self.token)
            .env("HOME", self.dir.path());
        if let Some((cert, key)) = &self.client {
            cmd.env("BAO_CLIENT_CERT", cert).env("BAO_CLIENT_KEY", key);
        }
        cmd
    }

    fn address(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.ca.clone()
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

/// The README's production shape: `ca_cert` + `auth: jwt`. The admin token only bootstraps;
/// plan and apply log in with a CI job's OIDC token, over TLS, under the generated policies.
#[test]
fn production_shape_ca_cert_and_jwt_login() {
    let bao = TlsBao::start();
    let env = EnvDir::new();
    let ca = env.copy_ca(&bao.ca(), "ca.pem");
    std::fs::create_dir_all(env.dir.path().join("ci")).unwrap();
    let jwt = super::harness::oidc().token(&super::harness::push_to_main());
    std::fs::write(env.dir.path().join("ci/oidc.jwt"), &jwt).unwrap();
    let yaml = format!(
        "openbao:\n  address: {}\n  ca_cert: {ca}\n  auth: {{ method: jwt, jwt_file: ../ci/oidc.jwt }}\nworkspaces:\n  - {{ name: a }}\n",
        bao.address()
    );
    std::fs::write(env.file(), yaml).unwrap();
    let pubkey = super::harness::oidc().public_key_file();
    let (code, stdout, stderr, _) = env.ctl(
        &bao,
        &["bootstrap", "--jwt-issuer", super::harness::OIDC_ISSUER, "--jwt-validation-pubkey", pubkey.to_str().unwrap(), "--bound-claims", "repository=ctl/tests"],
        &[("BAO_TOKEN", bao.token.as_str())],
    );
    assert_eq!(code, 0, "bootstrap:\n{stdout}\n{stderr}");
    assert!(stdout.contains("create  JWT role auth/jwt/role/ctl-tls-apply"), "{stdout}");
    env.converge(&bao, &[]);
    let (_, stdout, stderr, _) = env.ctl(&bao, &["plan"], &[]);
    assert!(!stdout.contains(&jwt) && !stderr.contains(&jwt), "the JWT leaked");
}

/// Exit 1 quickly, with one line naming the address, the problem and the fix; one attempt,
/// no rustls log lines even at trace level.
#[track_caller]
fn assert_fails_at_once(env: &EnvDir, bao: &TlsBao, envs: &[(&str, &str)], problem: &str) {
    assert_fails_within(env, bao, envs, problem, 0);
}

/// [`assert_fails_at_once`], allowing `resends` resends before the certificate error shows.
fn assert_fails_within(env: &EnvDir, bao: &TlsBao, envs: &[(&str, &str)], problem: &str, resends: usize) {
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
    let retried = stderr.lines().filter(|l| l.contains("retrying")).count();
    assert!(retried <= resends && !stderr.contains("attempts"), "retried:\n{stderr}");
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

/// A server that requires a client certificate: without one, the handshake failure is final
/// and names the fix; with `client_cert` + `client_key` in the file, plan/apply converge.
#[test]
fn tls_client_certificate_when_the_server_requires_one() {
    let signer = TlsBao::start();
    let run = |args: &[&str]| {
        let out = signer.cli(args).output().unwrap();
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["secrets", "enable", "pki"]);
    let client_ca = run(&["write", "-field=certificate", "pki/root/generate/internal", "common_name=ctl-client-ca", "ttl=2h"]);
    run(&["write", "pki/roles/client", "allow_any_name=true", "ttl=1h"]);
    let issued: serde_json::Value = serde_json::from_str(&run(&["write", "-format=json", "pki/issue/client", "common_name=ctl", "ttl=1h"])).unwrap();
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let client_ca = write("client-ca.pem", &client_ca);
    let cert = write("client.pem", issued["data"]["certificate"].as_str().unwrap());
    let key = write("client-key.pem", issued["data"]["private_key"].as_str().unwrap());
    let bao = TlsBao::start_mtls(&signer, &client_ca, (cert.clone(), key.clone()));
    let env = EnvDir::new();
    let ca = env.copy_ca(&bao.ca(), "ca.pem");
    env.write(&bao, &format!("  ca_cert: {ca}\n"), &["a"]);
    // TLS 1.3: the server's refusal (an alert after the client's Finished) can lose the race
    // with the connection's reset under load, which looks like any lost connection: at most one
    // resend, then the alert itself.
    assert_fails_within(&env, &bao, &[], "the server refused the TLS handshake", 1);
    let (c, k) = (env.copy_ca(&cert, "client.pem"), env.copy_ca(&key, "client-key.pem"));
    env.write(&bao, &format!("  ca_cert: {ca}\n  client_cert: {c}\n  client_key: {k}\n"), &["a"]);
    env.converge(&bao, &[]);
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
    let err = ctl::aws::ca_bundle_client(&env.file().with_extension("missing")).expect_err("a missing bundle is an error");
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

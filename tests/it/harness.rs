//! Integration-test harness: real OpenBao (+ moto) stacks on 127.0.0.1, scenarios that run the
//! built `ctl` binary in a temp dir, the `bao` CLI for out-of-band changes, and canary checks.
//!
//! - [`stack`]: one shared stack per version per test process (2.6 → awskms seal via moto,
//!   2.7 → shamir), started on first use.
//! - [`fresh_stack`]: an exclusive stack for tests that restart or break the server.
//! - [`Scenario`]: a temp dir with `environments/<name>.yaml` (the `openbao:` section filled in
//!   for the stack) and a copy of the repo's `templates/`; runs `ctl` there and keeps a
//!   transcript; [`Scenario::assert_no_canary`] looks for registered secrets everywhere.
//! - [`bao_cli`], [`unique`].
//!
//! Stack processes are spawned from a dedicated thread with `PR_SET_PDEATHSIG(SIGKILL)`, so they
//! die with the test process however it ends. Their dirs live under
//! `$CARGO_TARGET_TMPDIR/stacks/<pid>-…`; dirs of dead test processes are removed on the next run.
#![allow(dead_code)]

use ctl::dev::{pid_alive, BaoVersion, Stack, StackOptions};
use std::collections::HashMap;
use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, Once, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment file of a scenario named `"test"`.
pub const ENV: &str = "environments/test.yaml";

/// How long one `ctl` run may take before the harness kills it and fails the test.
const CTL_TIMEOUT: Duration = Duration::from_secs(300);

/// What tests need to talk to a stack. Secrets stay in `token_file`.
#[derive(Clone, Debug)]
pub struct TestStack {
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    /// The root token file (0600, no newline).
    pub token_file: PathBuf,
    /// `http://127.0.0.1:<port>` of moto (awskms stacks only).
    pub moto_endpoint: Option<String>,
    /// The stack dir: `server.hcl`, `bao.log`, `raft/`, `stack.json`, …
    pub dir: PathBuf,
    pub version: BaoVersion,
    /// The `bao` binary the server runs; [`bao_cli`] uses it too.
    pub bao_bin: PathBuf,
}

impl TestStack {
    /// The root token (for tests that must register or use it; never print it).
    pub fn token(&self) -> String {
        std::fs::read_to_string(&self.token_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.token_file.display()))
    }

    pub fn bao_log(&self) -> PathBuf {
        self.dir.join("bao.log")
    }
}

fn version_slug(version: BaoVersion) -> &'static str {
    version.as_str()
}

/// `$CARGO_TARGET_TMPDIR/stacks`, with dirs of dead test processes removed (once per process).
fn stacks_root() -> PathBuf {
    static CLEAN: Once = Once::new();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stacks");
    CLEAN.call_once(|| {
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        let me = std::process::id();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
                if let Some(pid) = pid {
                    if pid != me && !pid_alive(pid) {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
    });
    root
}

enum Cmd {
    Restart(mpsc::Sender<Result<(), String>>),
    Stop(mpsc::Sender<()>),
}

/// Starts a stack on a new thread that owns a tokio runtime and the [`Stack`]. With
/// `forever`, the thread parks for the rest of the process (shared stacks); otherwise it
/// serves [`Cmd`]s until told to stop or until every sender is gone.
fn start_on_thread(
    version: BaoVersion,
    dir: PathBuf,
    forever: bool,
) -> Result<(TestStack, mpsc::Sender<Cmd>, JoinHandle<()>), String> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<TestStack, String>>();
    let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
    let name = format!(
        "bao-{}-{}",
        version.as_str(),
        dir.file_name().unwrap_or_default().to_string_lossy()
    );
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let opts = StackOptions {
                dir,
                version,
                seal: version.default_seal(),
                detach: false,
            };
            let mut stack = match rt.block_on(Stack::start(opts)) {
                Ok(stack) => stack,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let info = TestStack {
                addr: stack.bao_addr.clone(),
                token_file: stack.token_file(),
                moto_endpoint: stack.moto_endpoint.clone(),
                dir: stack.dir.clone(),
                version,
                bao_bin: stack.bao_bin().to_path_buf(),
            };
            let _ = ready_tx.send(Ok(info));
            if forever {
                // The processes die with this thread (PDEATHSIG), i.e. with the test process.
                loop {
                    std::thread::park();
                }
            }
            while let Ok(cmd) = cmd_rx.recv() {
                match cmd {
                    Cmd::Restart(reply) => {
                        let result = rt.block_on(stack.restart_bao()).map_err(|e| e.to_string());
                        let _ = reply.send(result);
                    }
                    Cmd::Stop(reply) => {
                        rt.block_on(stack.stop());
                        let _ = reply.send(());
                        return;
                    }
                }
            }
            rt.block_on(stack.stop());
        })
        .map_err(|e| format!("cannot spawn the stack thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(info)) => Ok((info, cmd_tx, handle)),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => {
            let _ = handle.join();
            Err("the stack thread panicked".to_string())
        }
    }
}

/// The shared stack of `version` for this test process (started on first use). 2.6 runs the
/// awskms seal against moto; 2.7 runs shamir. Tests must not restart or reconfigure it:
/// use [`fresh_stack`] for that, and [`unique`] names for everything they create on it.
pub fn stack(version: BaoVersion) -> &'static TestStack {
    static V2_6: OnceLock<TestStack> = OnceLock::new();
    static V2_7: OnceLock<TestStack> = OnceLock::new();
    let cell = match version {
        BaoVersion::V2_6 => &V2_6,
        BaoVersion::V2_7 => &V2_7,
    };
    cell.get_or_init(|| {
        let dir = stacks_root().join(format!("{}-{}", std::process::id(), version_slug(version)));
        match start_on_thread(version, dir, true) {
            Ok((info, _cmd, _thread)) => info,
            Err(e) => panic!("cannot start the shared OpenBao {version} stack: {e}"),
        }
    })
}

/// An exclusive stack, stopped (and its dir removed, unless the test failed) on drop.
pub struct OwnedStack {
    stack: TestStack,
    cmd: Option<mpsc::Sender<Cmd>>,
    thread: Option<JoinHandle<()>>,
}

impl Deref for OwnedStack {
    type Target = TestStack;
    fn deref(&self) -> &TestStack {
        &self.stack
    }
}

impl OwnedStack {
    /// Stops bao and starts it again on the same data; returns once it is unsealed and active.
    /// awskms: no key is supplied (auto-unseal); shamir: unsealed with the stored key.
    pub fn restart_bao(&self) {
        let (tx, rx) = mpsc::channel();
        self.cmd
            .as_ref()
            .expect("running")
            .send(Cmd::Restart(tx))
            .expect("stack thread alive");
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("restarting bao ({}) failed: {e}", self.stack.addr),
            Err(_) => panic!("the stack thread died while restarting bao"),
        }
    }
}

impl Drop for OwnedStack {
    fn drop(&mut self) {
        if let Some(cmd) = self.cmd.take() {
            let (tx, rx) = mpsc::channel();
            if cmd.send(Cmd::Stop(tx)).is_ok() {
                let _ = rx.recv();
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.stack.dir);
        } else {
            eprintln!("keeping {} for inspection", self.stack.dir.display());
        }
    }
}

/// A new stack of `version` for one test (same seal choice as [`stack`]).
pub fn fresh_stack(version: BaoVersion) -> OwnedStack {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = stacks_root().join(format!(
        "{}-{}-fresh{n}",
        std::process::id(),
        version_slug(version)
    ));
    match start_on_thread(version, dir, false) {
        Ok((stack, cmd, thread)) => OwnedStack {
            stack,
            cmd: Some(cmd),
            thread: Some(thread),
        },
        Err(e) => panic!("cannot start a fresh OpenBao {version} stack: {e}"),
    }
}

/// A current-thread tokio runtime, for the library calls tests make directly.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// ctl's own AWS connection to the moto at `moto` (static test credentials), as environment `env`.
pub fn moto_aws(moto: &str, env: &str) -> ctl::aws::Aws {
    let conn = ctl::config::AwsConnection::Account { region: "us-east-1".into(), endpoint: Some(moto.to_string()) };
    runtime().block_on(ctl::aws::Aws::connect(&conn, env)).expect("connect to moto")
}

/// A short name, unique in this test process and across concurrent ones: lowercase
/// `[a-z0-9-]`, e.g. `unique("ws")` → `ws-1k3x-7`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.truncate(24);
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "t" } else { clean };
    format!(
        "{clean}-{}-{}",
        base36(u64::from(std::process::id())),
        base36(n)
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Removes every `BAO_*` / `VAULT_*` variable from the child's environment and keeps loopback
/// traffic off any proxy.
fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("BAO_") || key.starts_with("VAULT_") {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
}

/// Runs the stack's `bao` binary with `BAO_ADDR`, `BAO_TOKEN` (from the token file) and
/// `BAO_NAMESPACE` set in the child's environment only. For out-of-band changes in tests,
/// e.g. `bao_cli(s, Some("team-a"), &["write", "secret/config", "max_versions=3"])`.
pub fn bao_cli(stack: &TestStack, namespace: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(&stack.bao_bin);
    cmd.args(args).stdin(Stdio::null());
    scrub_env(&mut cmd);
    cmd.env("BAO_ADDR", &stack.addr)
        .env("BAO_TOKEN", stack.token());
    if let Some(ns) = namespace {
        cmd.env("BAO_NAMESPACE", ns);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", stack.bao_bin.display()))
}

/// What one `ctl` run printed.
#[derive(Clone, Debug)]
pub struct CtlOutput {
    /// Exit code; 128 + signal number when killed by a signal.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CtlOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn assert_status(&self, code: i32) -> &Self {
        assert_eq!(
            self.status, code,
            "ctl exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_status(0)
    }
}

/// A temp dir laid out like a repo checkout, bound to one stack.
pub struct Scenario {
    dir: tempfile::TempDir,
    stack: TestStack,
    env: String,
    /// Files the harness wrote, with their contents (not searched for canaries while unchanged).
    inputs: Mutex<HashMap<PathBuf, Vec<u8>>>,
    /// (label, value).
    canaries: Mutex<Vec<(String, String)>>,
    transcript: Mutex<String>,
    /// Whether [`Scenario::write_env`] bootstraps (off for tests that edit ctl's policies).
    auto_bootstrap: std::sync::atomic::AtomicBool,
}

impl Scenario {
    /// Writes `environments/<name>.yaml` = the `openbao:` section for `stack` followed by
    /// `yaml_body` (which must not have its own `openbao:` section), and copies the repo's
    /// `templates/` next to it. The stack's root token is registered as a canary.
    pub fn new(stack: &TestStack, name: &str, yaml_body: &str) -> Scenario {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ctl-scenario-{name}-"))
            .tempdir()
            .expect("temp dir");
        let scenario = Scenario {
            dir,
            stack: stack.clone(),
            env: format!("environments/{name}.yaml"),
            inputs: Mutex::new(HashMap::new()),
            canaries: Mutex::new(Vec::new()),
            transcript: Mutex::new(String::new()),
            auto_bootstrap: std::sync::atomic::AtomicBool::new(true),
        };
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        if templates.is_dir() {
            scenario.copy_tree(&templates, Path::new("templates"));
        }
        scenario.write_env(yaml_body);
        scenario
            .canaries
            .lock()
            .unwrap()
            .push(("the root token".to_string(), stack.token()));
        scenario
    }

    /// The scenario's root (the `ctl` working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `<scenario dir>/<relative>` as a string, ready for a `ctl` argument.
    pub fn path(&self, relative: &str) -> String {
        self.dir.path().join(relative).display().to_string()
    }

    /// `environments/<name>.yaml`, relative to [`Scenario::dir`] (for `-e`).
    pub fn env_file(&self) -> String {
        self.env.clone()
    }

    pub fn stack(&self) -> &TestStack {
        &self.stack
    }

    /// Rewrites the environment file with a new body (same `openbao:` section) and
    /// bootstraps it with the root token ([`Scenario::bootstrap`]). ctl logs in as CI does: a
    /// JWT from the test issuer ([`oidc`]), role `ctl-<env>-plan` for read-only commands and
    /// `ctl-<env>-apply` for writing ones, under the policies `ctl render ctl-policy` prints.
    pub fn write_env(&self, yaml_body: &str) {
        self.write_env_auth("{ method: jwt, jwt_file: ci/oidc.jwt }", yaml_body);
    }

    /// [`Scenario::write_env`] with another `openbao.auth` (a YAML flow mapping; relative
    /// paths are relative to the environments/ directory: `../ci/…`).
    pub fn write_env_auth(&self, auth: &str, yaml_body: &str) {
        assert!(
            !yaml_body.lines().any(|l| l.starts_with("openbao:")),
            "the harness writes the openbao: section; leave it out of the scenario body"
        );
        let q = |s: &str| serde_json::to_string(s).expect("json string");
        let jwt = self.dir.path().join("ci/oidc.jwt");
        if !jwt.exists() {
            let token = oidc().token(&push_to_main());
            self.canary(token.clone());
            self.write_file("ci/oidc.jwt", &token);
        }
        let auth = auth.replace("ci/", &format!("{}/ci/", self.dir.path().display()));
        let yaml = format!(
            "openbao:\n  address: {}\n  auth: {auth}\n{}{}",
            q(&self.stack.addr),
            yaml_body,
            if yaml_body.ends_with('\n') || yaml_body.is_empty() {
                ""
            } else {
                "\n"
            },
        );
        self.write_file(&self.env.clone(), &yaml);
        if self.auto_bootstrap.load(Ordering::Relaxed) {
            self.bootstrap();
        }
    }

    /// From now on, [`Scenario::write_env`] leaves ctl's policies as they are.
    pub fn keep_policies(&self) {
        self.auto_bootstrap.store(false, Ordering::Relaxed);
    }

    /// `ctl bootstrap` of this environment with the root token (the only use of the root
    /// token by ctl in tests): ctl's policies and the JWT roles for the test issuer. Not in the
    /// transcript; a failure (e.g. a test's deliberately bad environment file) is left for the
    /// test's own ctl run to report.
    pub fn bootstrap(&self) {
        let pubkey = oidc().public_key_file();
        let args = [
            "bootstrap",
            "-e",
            &self.env,
            "--jwt-issuer",
            OIDC_ISSUER,
            "--jwt-validation-pubkey",
            pubkey.to_str().expect("utf-8 path"),
            "--bound-claims",
            "repository=ctl/tests",
            "--restore-claims",
            "event_name=push",
        ];
        let out = self.run_ctl(&args, &[("BAO_TOKEN", self.stack.token().as_str())]);
        if out.status == 0 {
            // A standby serves reads from its own storage (eventually consistent): wait until
            // it knows the role the next login names (the policies were written before it).
            let name = self.env.trim_start_matches("environments/").trim_end_matches(".yaml");
            let role = format!("auth/jwt/role/ctl-{name}-apply");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !bao_cli(&self.stack, None, &["read", &role]).status.success() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            let mut t = self.transcript.lock().unwrap();
            t.push_str(&format!("$ ctl {} (harness)\n[exit {}]\n--- stdout\n{}\n--- stderr\n{}\n", args.join(" "), out.status, out.stdout, out.stderr));
        }
    }

    /// Writes an input file (e.g. a policy template) relative to the scenario root.
    pub fn write_file(&self, relative: &str, contents: &str) {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self.inputs
            .lock()
            .unwrap()
            .insert(path, contents.as_bytes().to_vec());
    }

    fn copy_tree(&self, from: &Path, to_relative: &Path) {
        for entry in std::fs::read_dir(from)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()))
        {
            let entry = entry.expect("dir entry");
            let rel = to_relative.join(entry.file_name());
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                std::fs::create_dir_all(self.dir.path().join(&rel)).expect("create dir");
                self.copy_tree(&entry.path(), &rel);
            } else if kind.is_file() || kind.is_symlink() {
                let bytes = std::fs::read(entry.path()).expect("read template");
                let dest = self.dir.path().join(&rel);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).expect("create parent dir");
                }
                std::fs::write(&dest, &bytes).expect("copy template");
                self.inputs.lock().unwrap().insert(dest, bytes);
            }
        }
    }

    /// Runs the built `ctl` with `args` in the scenario dir (no `BAO_*`/`VAULT_*` inherited).
    pub fn ctl(&self, args: &[&str]) -> CtlOutput {
        self.ctl_with_env(args, &[])
    }

    /// [`Scenario::ctl`] with extra environment variables for the child.
    pub fn ctl_with_env(&self, args: &[&str], envs: &[(&str, &str)]) -> CtlOutput {
        let out = self.run_ctl(args, envs);
        let mut t = self.transcript.lock().unwrap();
        t.push_str(&format!(
            "$ ctl {}\n[exit {}]\n--- stdout\n{}\n--- stderr\n{}\n",
            args.join(" "),
            out.status,
            out.stdout,
            out.stderr
        ));
        out
    }

    fn run_ctl(&self, args: &[&str], envs: &[(&str, &str)]) -> CtlOutput {
        let bin = env!("CARGO_BIN_EXE_ctl");
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        scrub_env(&mut cmd);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run_with_timeout(cmd, CTL_TIMEOUT, &format!("ctl {}", args.join(" ")))
    }

    /// Starts `ctl` with `args` in the scenario dir without waiting (for tests that act while it
    /// runs). Its stdout and stderr go to `<name>.stdout` / `<name>.stderr` in the scenario dir
    /// (files, not pipes: a long plan would fill a pipe nobody reads yet and stall the child;
    /// being in the scenario dir, they are searched for canaries too).
    pub fn ctl_spawn(&self, name: &str, args: &[&str]) -> std::process::Child {
        let file = |ext: &str| std::fs::File::create(self.dir.path().join(format!("{name}.{ext}"))).expect("output file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctl"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"));
        scrub_env(&mut cmd);
        cmd.spawn().expect("spawn ctl")
    }

    /// What a [`Scenario::ctl_spawn`]ed run called `name` wrote: (stdout, stderr).
    pub fn spawned_output(&self, name: &str) -> (String, String) {
        let read = |ext: &str| std::fs::read_to_string(self.dir.path().join(format!("{name}.{ext}"))).unwrap_or_default();
        (read("stdout"), read("stderr"))
    }

    /// Registers a value that must never appear in `ctl`'s output or in any file it leaves
    /// under the scenario dir.
    pub fn canary(&self, value: impl Into<String>) {
        let value = value.into();
        assert!(
            value.len() >= 6,
            "canaries must be at least 6 characters to avoid false hits"
        );
        let label = format!(
            "canary {:?}…",
            &value[..value
                .char_indices()
                .nth(6)
                .map(|(i, _)| i)
                .unwrap_or(value.len())]
        );
        self.canaries.lock().unwrap().push((label, value));
    }

    /// Everything `ctl` printed so far, with the command lines.
    pub fn transcript(&self) -> String {
        self.transcript.lock().unwrap().clone()
    }

    /// Panics, listing where, if any canary (registered values and the root token) occurs in
    /// the transcript or in any file under the scenario dir (harness-written inputs excepted
    /// while unchanged).
    #[track_caller]
    pub fn assert_no_canary(&self) {
        let canaries = self.canaries.lock().unwrap().clone();
        let transcript = self.transcript();
        let inputs = self.inputs.lock().unwrap().clone();
        let mut hits: Vec<String> = Vec::new();
        for (label, value) in &canaries {
            if transcript.contains(value.as_str()) {
                hits.push(format!("{label} in the ctl transcript"));
            }
        }
        let mut files = Vec::new();
        walk(self.dir.path(), &mut files);
        for file in files {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            if inputs.get(&file) == Some(&bytes) {
                continue;
            }
            let rel = file
                .strip_prefix(self.dir.path())
                .unwrap_or(&file)
                .display()
                .to_string();
            for (label, value) in &canaries {
                if contains_bytes(&bytes, value.as_bytes()) {
                    hits.push(format!("{label} in {rel}"));
                }
            }
        }
        assert!(
            hits.is_empty(),
            "secret material leaked:\n  {}",
            hits.join("\n  ")
        );
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `cmd` (stdout/stderr piped), killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration, what: &str) -> CtlOutput {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ctl") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
            let err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
            panic!(
                "{what} did not finish within {} s\n--- stdout\n{out}\n--- stderr\n{err}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = {
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    };
    CtlOutput {
        status: code,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// The test OIDC issuer's name (bound_issuer of the JWT mounts the harness bootstraps).
pub const OIDC_ISSUER: &str = "https://oidc.ctl.test";

/// An offline OIDC issuer for tests: an Ed25519 key made per test process, whose public key
/// OpenBao's JWT mounts trust (`jwt_validation_pubkeys`), signing JWTs like a CI system's.
pub struct Oidc {
    key: jsonwebtoken::EncodingKey,
    public_pem: String,
    public_file: OnceLock<PathBuf>,
}

/// The claims of a GitHub Actions job pushing to main, in the test repository.
pub fn push_to_main() -> serde_json::Value {
    serde_json::json!({"repository": "ctl/tests", "event_name": "push", "ref": "refs/heads/main"})
}

/// The test issuer (made on first use).
pub fn oidc() -> &'static Oidc {
    static ISSUER: OnceLock<Oidc> = OnceLock::new();
    ISSUER.get_or_init(|| {
        use aws_lc_rs::signature::KeyPair;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key");
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519 key");
        // SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte header, then the key.
        let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        spki.extend_from_slice(pair.public_key().as_ref());
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
        Oidc {
            key: jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
            public_pem: format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"),
            public_file: OnceLock::new(),
        }
    })
}

impl Oidc {
    /// A JWT for audience `openbao`, valid for 4 hours, with `claims` added.
    pub fn token(&self, claims: &serde_json::Value) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let mut body = serde_json::json!({
            "iss": OIDC_ISSUER, "aud": "openbao", "sub": "repo:ctl/tests:ref:refs/heads/main",
            "iat": now, "nbf": now - 5, "exp": now + 4 * 3600,
        });
        for (k, v) in claims.as_object().expect("claims object") {
            body[k] = v.clone();
        }
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA), &body, &self.key).expect("sign JWT")
    }

    /// The public key (PEM), in a file for `ctl bootstrap --jwt-validation-pubkey`.
    pub fn public_key_file(&self) -> PathBuf {
        self.public_file
            .get_or_init(|| {
                let dir = stacks_root().join(format!("{}-oidc", std::process::id()));
                std::fs::create_dir_all(&dir).expect("issuer dir");
                let path = dir.join("public.pem");
                std::fs::write(&path, &self.public_pem).expect("write the issuer's public key");
                path
            })
            .clone()
    }
}

//! KMS + IAM through ctl against moto, and the auto-unseal they exist for: ctl applies the
//! unseal key and the OpenBao role, the key policy is what we mean it to be, drift is reported
//! field by field and fixed, `ctl render openbao-config` produces a config that a real
//! OpenBao 2.6.2 starts with, and after a restart that server is unsealed by KMS with no key typed.
//!
//! Also holds the helpers `cluster.rs` uses: [`BaoNode`] (a `bao server` that dies with the
//! test), [`free_ports`], [`init`], [`wait`].

use crate::harness::{runtime, stack, unique, Scenario, TestStack};
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use ctl::dev::{BaoVersion, Tools};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers shared with cluster.rs.

/// `n` distinct ports on 127.0.0.1 that were free a moment ago.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0")).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A `bao server -config=FILE` child. It gets `PR_SET_PDEATHSIG(SIGKILL)` (it dies with the
/// thread that spawned it, i.e. with the test) and is killed on drop.
pub struct BaoNode {
    pub addr: String,
    pub config: PathBuf,
    pub log: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl BaoNode {
    pub fn start(bin: &Path, config: &Path, log: &Path, addr: &str) -> BaoNode {
        let mut node =
            BaoNode { addr: addr.to_string(), config: config.into(), log: log.into(), bin: bin.into(), child: None };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open log");
        let err = out.try_clone().expect("clone log handle");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg(format!("-config={}", self.config.display()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("BAO_") || key.starts_with("VAULT_") || key.starts_with("AWS_") {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
        // SAFETY: only async-signal-safe prctl between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display())));
    }

    /// SIGTERM, then SIGKILL after 10 s; reaped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL (a crash, not a shutdown); reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Panics with the log tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("bao ({}) exited with {status}; log:\n{}", self.addr, self.log_text());
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET sys/seal-status` (None while the listener is not up).
    pub fn seal_status(&mut self) -> Option<Value> {
        self.assert_running();
        get_json(&format!("{}/v1/sys/seal-status", self.addr), None)
    }
}

impl Drop for BaoNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("client")
}

/// GET `url` (with a token) → JSON body of a 2xx answer.
pub fn get_json(url: &str, token: Option<&str>) -> Option<Value> {
    runtime().block_on(async {
        let mut req = client().get(url);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        let resp = req.send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    })
}

/// PUT `url` with `body` → (status, JSON body).
pub fn put_json(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    runtime().block_on(async {
        let mut req = client().put(url).json(body);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `secs` with `what`.
pub fn wait<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sys/init` with one recovery share (auto-unseal); returns the root token.
pub fn init(node: &mut BaoNode) -> String {
    wait(30, "the listener", || node.seal_status());
    let (status, body) =
        put_json(&format!("{}/v1/sys/init", node.addr), None, &json!({"recovery_shares": 1, "recovery_threshold": 1}));
    assert_eq!(status, 200, "sys/init: {body}\n{}", node.log_text());
    body["root_token"].as_str().expect("root_token").to_string()
}

/// Waits until `sys/health` answers 200 (initialized, unsealed, active).
pub fn wait_active(node: &mut BaoNode) {
    let url = format!("{}/v1/sys/health", node.addr);
    let log = node.log.clone();
    wait(60, &format!("{} to become active; log {}", node.addr, log.display()), || {
        node.assert_running();
        runtime().block_on(async { client().get(&url).send().await.ok().filter(|r| r.status().as_u16() == 200) })
    });
}

/// A KMS client for moto.
pub fn kms(endpoint: &str) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "it"))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

pub fn iam(endpoint: &str) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "it"))
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

/// The aws/iam/kms sections of an environment using moto at `moto`.
pub fn kms_iam_body(env: &str, moto: &str) -> String {
    format!(
        "aws: {{ region: us-east-1, endpoint: \"{moto}\" }}
iam:
  roles:
    openbao: {{ instance_profile: true, description: OpenBao servers }}
    api: {{ instance_profile: true }}
kms:
  unseal_key:
    alias: alias/ctl-{env}-unseal
    description: OpenBao auto-unseal
    openbao_role: openbao
    extra_principals: [rds]
"
    )
}

fn plan_json(sc: &Scenario) -> Value {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn assert_applied_and_clean(sc: &Scenario) {
    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(apply.status, 0, "apply failed:\n{}\n{}", apply.stdout, apply.stderr);
    let again = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(again.status, 0, "the plan after apply must be empty:\n{}\n{}", again.stdout, again.stderr);
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// Statements of a key policy by Sid.
fn statements(policy: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(policy).expect("key policy is JSON");
    doc["Statement"].as_array().expect("Statement list").clone()
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => vec![],
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Apply → the key, its alias, the roles and instance profiles exist, tagged; the key policy
/// grants Encrypt/Decrypt/DescribeKey to the OpenBao role only (plus RDS through ViaService),
/// and the account root administers without using the key. Drift in the description and in one
/// statement shows exactly those two fields; apply fixes them.
#[test]
fn kms_and_iam_apply_policy_and_drift() {
    let s = stack(BaoVersion::V2_6);
    let moto = s.moto_endpoint.clone().expect("the 2.6 stack runs moto");
    let env = unique("kms");
    let sc = Scenario::new(s, &env, &kms_iam_body(&env, &moto));
    let first = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(first.status, 2, "{}\n{}", first.stdout, first.stderr);
    for address in
        ["aws.kms.unseal_key", "aws.kms.unseal_key.alias", "aws.iam.role.openbao", "aws.iam.instance_profile.api"]
    {
        assert!(first.stdout.contains(&format!("+ {address}")), "{address} in\n{}", first.stdout);
    }
    assert_applied_and_clean(&sc);

    let kms = kms(&moto);
    let iam = iam(&moto);
    let alias = format!("alias/ctl-{env}-unseal");
    let meta = block(kms.describe_key().key_id(&alias).send()).expect("DescribeKey by alias");
    let meta = meta.key_metadata().unwrap();
    let key_id = meta.key_id().to_string();
    let account = meta.aws_account_id().unwrap().to_string();
    assert_eq!(meta.description(), Some("OpenBao auto-unseal"));
    let tags = block(kms.list_resource_tags().key_id(&key_id).send()).unwrap();
    let tags: Vec<(String, String)> =
        tags.tags().iter().map(|t| (t.tag_key().to_string(), t.tag_value().to_string())).collect();
    for want in [("managed-by", "ctl"), ("ctl-environment", env.as_str()), ("ctl-address", "aws.kms.unseal_key")] {
        assert!(tags.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {tags:?}");
    }
    let role_name = format!("ctl-{env}-openbao");
    let role = block(iam.get_role().role_name(&role_name).send()).expect("GetRole");
    let role_arn = role.role().unwrap().arn().to_string();
    let profile =
        block(iam.get_instance_profile().instance_profile_name(&role_name).send()).expect("GetInstanceProfile");
    let carried: Vec<&str> = profile.instance_profile().unwrap().roles().iter().map(|r| r.role_name()).collect();
    assert_eq!(carried, vec![role_name.as_str()]);

    let policy = block(kms.get_key_policy().key_id(&key_id).policy_name("default").send()).unwrap();
    let stmts = statements(policy.policy().unwrap());
    let by_sid =
        |sid: &str| stmts.iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no {sid} in {stmts:?}")).clone();
    let unseal = by_sid("OpenBaoUnseal");
    assert_eq!(list(&unseal["Principal"]["AWS"]), vec![role_arn.clone()]);
    let mut actions = list(&unseal["Action"]);
    actions.sort();
    assert_eq!(actions, ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"]);
    let admin = by_sid("KeyAdministration");
    assert_eq!(list(&admin["Principal"]["AWS"]), vec![format!("arn:aws:iam::{account}:root")]);
    // Nobody but the OpenBao role may Encrypt/Decrypt directly; RDS only through the service.
    for s in &stmts {
        let actions = list(&s["Action"]);
        let uses = actions.iter().any(|a| ["kms:Encrypt", "kms:Decrypt", "kms:*"].contains(&a.as_str()));
        if !uses || s["Sid"] == "OpenBaoUnseal" {
            continue;
        }
        assert_eq!(s["Sid"], "RdsViaService", "unexpected statement using the key: {s}");
        assert_eq!(s["Condition"]["StringEquals"]["kms:ViaService"], "rds.us-east-1.amazonaws.com");
        assert_eq!(s["Condition"]["StringEquals"]["kms:CallerAccount"], account.as_str());
    }

    // Drift out of band: a new description, and the unseal statement widened.
    block(kms.update_key_description().key_id(&key_id).description("changed by hand").send()).unwrap();
    let mut widened: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    for s in widened["Statement"].as_array_mut().unwrap() {
        if s["Sid"] == "OpenBaoUnseal" {
            s["Action"] = json!(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*"]);
        }
    }
    block(kms.put_key_policy().key_id(&key_id).policy_name("default").policy(widened.to_string()).send()).unwrap();
    let plan = plan_json(&sc);
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{plan:#}");
    assert_eq!(changes[0]["address"], "aws.kms.unseal_key");
    assert_eq!(changes[0]["action"], "update");
    let mut fields: Vec<&str> =
        changes[0]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["description", "policy.OpenBaoUnseal"], "{plan:#}");
    assert_applied_and_clean(&sc);
    let policy = block(kms.get_key_policy().key_id(&key_id).policy_name("default").send()).unwrap();
    let fixed = statements(policy.policy().unwrap());
    let unseal = fixed.iter().find(|s| s["Sid"] == "OpenBaoUnseal").unwrap();
    assert!(!list(&unseal["Action"]).contains(&"kms:ReEncrypt*".to_string()), "{unseal}");

    // Removing the key is data loss: refused without the flag, then scheduled for deletion.
    let without_kms = kms_iam_body(&env, &moto).split("kms:\n").next().unwrap().to_string();
    sc.write_env(&without_kms);
    let refused = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(refused.status, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("--allow-destroy=aws.kms.unseal_key"), "{}", refused.stderr);
    let state = block(kms.describe_key().key_id(&key_id).send()).unwrap();
    assert_eq!(state.key_metadata().unwrap().key_state().unwrap().as_str(), "Enabled");
    let allowed = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--allow-destroy=aws.kms.unseal_key"]);
    assert_eq!(allowed.status, 0, "{}\n{}", allowed.stdout, allowed.stderr);
    let state = block(kms.describe_key().key_id(&key_id).send()).unwrap();
    assert_eq!(state.key_metadata().unwrap().key_state().unwrap().as_str(), "PendingDeletion");
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0, "{}", sc.transcript());
    sc.assert_no_canary();
}

/// An alias that already points at a key ctl does not manage is a conflict: apply refuses
/// before any call, and the stranger's alias still points at its key.
#[test]
fn untagged_alias_look_alike_is_a_conflict() {
    let s = stack(BaoVersion::V2_6);
    let moto = s.moto_endpoint.clone().expect("moto");
    let env = unique("kmsc");
    let kms = kms(&moto);
    let theirs = block(kms.create_key().description("someone else's").send()).unwrap();
    let their_id = theirs.key_metadata().unwrap().key_id().to_string();
    let alias = format!("alias/ctl-{env}-unseal");
    block(kms.create_alias().alias_name(&alias).target_key_id(&their_id).send()).unwrap();

    let sc = Scenario::new(s, &env, &kms_iam_body(&env, &moto));
    let plan = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert!(plan.stdout.contains(&alias), "the look-alike is reported:\n{}", plan.stdout);
    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(apply.status, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("conflicts") && apply.stderr.contains("aws.kms.unseal_key.alias"),
        "{}",
        apply.stderr
    );
    let still = block(kms.describe_key().key_id(&alias).send()).unwrap();
    assert_eq!(still.key_metadata().unwrap().key_id(), their_id);
    // Nothing was created: no role either.
    let role = block(iam(&moto).get_role().role_name(format!("ctl-{env}-openbao")).send());
    assert!(role.is_err(), "apply must not have created anything");
}

/// The `openbao_cluster:` section for `nodes` loopback nodes (api ports, cluster ports).
pub fn cluster_section(dir: &Path, api: &[u16], cluster: &[u16], seal: bool) -> String {
    let list = |ports: &[u16]| ports.iter().map(|p| format!("\"http://127.0.0.1:{p}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "openbao_cluster:
  nodes: {}
  api_addresses: [{}]
  cluster_addresses: [{}]
  data_dir: \"{}\"
  audit_file: \"{}\"
  performance_multiplier: 1
{}",
        api.len(),
        list(api),
        list(cluster),
        dir.join("data").display(),
        dir.join("audit.log").display(),
        if seal { "  seal_key: unseal_key\n" } else { "" }
    )
}

/// Renders node `node`'s config with ctl into `dir/node-<n>.hcl` and creates its raft dir.
pub fn render_node(sc: &Scenario, dir: &Path, node: usize) -> PathBuf {
    let out = dir.join(format!("node-{node}.hcl"));
    let r = sc.ctl(&[
        "render",
        "openbao-config",
        "-e",
        &sc.env_file(),
        "--version",
        "2.6",
        "--node",
        &node.to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(r.status, 0, "render failed:\n{}\n{}", r.stdout, r.stderr);
    std::fs::create_dir_all(dir.join("data").join(format!("node-{node}"))).unwrap();
    out
}

/// ctl applies the unseal key; `ctl render openbao-config` → bao 2.6.2 starts with it, is
/// initialized (recovery keys only), and after a restart comes back unsealed by KMS with no
/// key sent; the declarative audit device exists.
#[test]
fn rendered_config_auto_unseals_with_the_applied_key() {
    let s = stack(BaoVersion::V2_6);
    let moto = s.moto_endpoint.clone().expect("moto");
    let env = unique("seal");
    let dir = tempfile::Builder::new().prefix("ctl-seal-").tempdir().unwrap();
    let ports = free_ports(2);
    let body = format!("{}{}", kms_iam_body(&env, &moto), cluster_section(dir.path(), &ports[..1], &ports[1..], true));
    let sc = Scenario::new(s, &env, &body);
    assert_applied_and_clean(&sc);

    let config = render_node(&sc, dir.path(), 1);
    let hcl = std::fs::read_to_string(&config).unwrap();
    assert!(hcl.contains(&format!("kms_key_id = \"alias/ctl-{env}-unseal\"")), "{hcl}");
    let bin = Tools::discover(BaoVersion::V2_6).expect("bao 2.6.2 (make venv)").bao;
    let addr = format!("http://127.0.0.1:{}", ports[0]);
    let mut node = BaoNode::start(&bin, &config, &dir.path().join("bao.log"), &addr);
    let token = init(&mut node);
    sc.canary(token.clone());
    wait_active(&mut node);
    let audit = get_json(&format!("{addr}/v1/sys/audit"), Some(&token)).expect("sys/audit");
    let device = audit
        .get("file/")
        .or_else(|| audit["data"].get("file/"))
        .unwrap_or_else(|| panic!("no file/ audit device: {audit}"));
    assert_eq!(device["type"], "file");

    node.restart();
    let status = wait(30, "the restarted listener", || node.seal_status());
    assert_eq!(status["type"], "awskms", "{status}");
    let status = wait(30, "auto-unseal after restart", || node.seal_status().filter(|s| s["sealed"] == false));
    assert_eq!(status["type"], "awskms");
    assert_eq!(status["initialized"], true);
    assert_eq!(status["recovery_seal"], true, "{status}");
    wait_active(&mut node);
    assert!(get_json(&format!("{addr}/v1/sys/mounts"), Some(&token)).is_some(), "usable after the restart");
    sc.assert_no_canary();
}

/// The harness's TestStack for a server the test started itself (for [`Scenario`]).
pub fn test_stack(addr: &str, token_file: &Path, moto: &str, dir: &Path) -> TestStack {
    TestStack {
        addr: addr.to_string(),
        token_file: token_file.to_path_buf(),
        moto_endpoint: Some(moto.to_string()),
        dir: dir.to_path_buf(),
        version: BaoVersion::V2_6,
        bao_bin: Tools::discover(BaoVersion::V2_6).expect("bao").bao,
    }
}

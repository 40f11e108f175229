//! The dev stack and the harness itself: real OpenBao servers on 127.0.0.1.

use crate::harness::{bao_cli, fresh_stack, stack, unique, Scenario, TestStack};
use ctl::cli::dev::{run, DevCommand};
use ctl::dev::{self, BaoVersion, Seal};
use serde_json::Value;
use std::process::Output;

#[track_caller]
fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "bao exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `bao status -format=json` (exit 0 unsealed, 2 sealed).
fn status(s: &TestStack) -> Value {
    let out = bao_cli(s, None, &["status", "-format=json"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bao status: {e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

fn mounts(s: &TestStack) -> Value {
    serde_json::from_slice(&ok(bao_cli(s, None, &["secrets", "list", "-format=json"])).stdout)
        .unwrap()
}

fn init_json(s: &TestStack) -> Value {
    serde_json::from_slice(&std::fs::read(s.dir.join(dev::INIT_FILE)).unwrap()).unwrap()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn awskms_stack_auto_unseals_after_restart() {
    let s = fresh_stack(BaoVersion::V2_6);
    assert!(s
        .moto_endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://127.0.0.1:")));
    let st = status(&s);
    assert_eq!(st["type"], "awskms", "{st}");
    assert_eq!(st["sealed"], false, "{st}");
    assert_eq!(st["initialized"], true, "{st}");
    assert_eq!(st["recovery_seal"], true, "{st}");
    assert!(st["version"].as_str().unwrap().starts_with("2.6."), "{st}");

    // Secrets only in the 0600 files; awskms has recovery keys and no unseal keys.
    assert_eq!(mode(&s.token_file), 0o600);
    assert_eq!(mode(&s.dir.join(dev::INIT_FILE)), 0o600);
    let init = init_json(&s);
    assert_eq!(
        init["recovery_keys_base64"].as_array().map(Vec::len),
        Some(1),
        "init.json layout"
    );
    assert_eq!(
        init["keys_base64"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "awskms has no unseal keys"
    );
    assert!(
        init.get("root_token").is_none(),
        "the root token lives in root-token only"
    );
    let token = s.token();
    assert!(!token.ends_with('\n') && !token.is_empty());
    for file in ["stack.json", "server.hcl", "bao.log", "moto.log"] {
        let text = std::fs::read_to_string(s.dir.join(file)).unwrap();
        assert!(!text.contains(&token), "root token in {file}");
    }

    let mount = unique("smoke");
    ok(bao_cli(
        &s,
        None,
        &["secrets", "enable", "-path", &mount, "kv-v2"],
    ));
    let log_before = std::fs::read_to_string(s.bao_log()).unwrap().len();

    s.restart_bao();

    // No key was supplied: the server unsealed itself through moto's KMS.
    let st = status(&s);
    assert_eq!(st["type"], "awskms", "{st}");
    assert_eq!(st["sealed"], false, "{st}");
    let log = std::fs::read_to_string(s.bao_log()).unwrap();
    let after = &log[log_before..];
    assert!(
        after.contains("unsealed with stored key"),
        "restart log:\n{after}"
    );
    assert!(
        mounts(&s).get(format!("{mount}/")).is_some(),
        "mount survives the restart"
    );
}

#[test]
fn shamir_2_7_stack_unseals_with_stored_key_after_restart() {
    let s = fresh_stack(BaoVersion::V2_7);
    assert!(s.moto_endpoint.is_none());
    let st = status(&s);
    assert_eq!(st["type"], "shamir", "{st}");
    assert_eq!(st["sealed"], false, "{st}");
    assert!(st["version"].as_str().unwrap().starts_with("2.7."), "{st}");
    assert_eq!(
        init_json(&s)["keys_base64"].as_array().map(Vec::len),
        Some(1)
    );

    let mount = unique("smoke");
    ok(bao_cli(
        &s,
        None,
        &["secrets", "enable", "-path", &mount, "kv-v2"],
    ));
    s.restart_bao();
    let st = status(&s);
    assert_eq!(st["sealed"], false, "{st}");
    assert!(
        mounts(&s).get(format!("{mount}/")).is_some(),
        "mount survives the restart"
    );
}

#[test]
fn shared_stacks_are_started_once_per_version() {
    let a = stack(BaoVersion::V2_6);
    let b = stack(BaoVersion::V2_6);
    assert!(std::ptr::eq(a, b));
    assert_eq!(status(a)["type"], "awskms");
    assert!(a
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .ends_with(&format!("{}-2.6", std::process::id())));

    let c = stack(BaoVersion::V2_7);
    assert_ne!(a.addr, c.addr);
    assert_eq!(status(c)["type"], "shamir");
}

#[test]
fn bao_cli_sets_namespace_and_token_only_in_the_child() {
    let s = stack(BaoVersion::V2_6);
    let ns = unique("ns");
    ok(bao_cli(s, None, &["namespace", "create", &ns]));
    let mount = unique("kv");
    ok(bao_cli(
        s,
        Some(&ns),
        &["secrets", "enable", "-path", &mount, "kv-v2"],
    ));
    let listed: Value = serde_json::from_slice(
        &ok(bao_cli(s, Some(&ns), &["secrets", "list", "-format=json"])).stdout,
    )
    .unwrap();
    assert!(listed.get(format!("{mount}/")).is_some(), "{listed}");
    assert!(
        mounts(s).get(format!("{mount}/")).is_none(),
        "the mount is inside the namespace only"
    );
    assert!(std::env::var_os("BAO_TOKEN").is_none() && std::env::var_os("BAO_NAMESPACE").is_none());
}

#[test]
fn unique_names_are_short_distinct_and_safe() {
    let a = unique("Team_A workspace");
    let b = unique("Team_A workspace");
    assert_ne!(a, b);
    for name in [&a, &b] {
        assert!(name.len() <= 40, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(name.starts_with("team-a-workspace-"), "{name}");
    }
    assert!(unique("!!!").starts_with("t-"));
}

#[test]
fn scenario_writes_env_copies_templates_and_finds_canaries() {
    let s = stack(BaoVersion::V2_7);
    let sc = Scenario::new(s, "test", "workspaces: []\n");
    assert_eq!(sc.env_file(), crate::harness::ENV);
    let env = std::fs::read_to_string(sc.path(&sc.env_file())).unwrap();
    assert!(env.starts_with("openbao:\n"), "{env}");
    assert!(env.contains(&format!("address: \"{}\"", s.addr)), "{env}");
    assert!(env.contains("auth: { method: jwt, jwt_file: ") && !env.contains(&s.token_file.display().to_string()), "{env}");
    assert!(env.ends_with("workspaces: []\n"), "{env}");
    assert!(std::path::Path::new(&sc.path("templates/openbao/server.hcl.hbs")).is_file());

    let out = sc.ctl(&["--help"]);
    assert!(sc.transcript().contains("$ ctl --help"));
    assert!(sc.transcript().contains(&format!("[exit {}]", out.status)));

    sc.canary("canary-0123456789");
    sc.assert_no_canary();

    sc.write_file(
        "notes/input.txt",
        "an input that mentions canary-0123456789 is not a leak",
    );
    sc.assert_no_canary();

    std::fs::create_dir_all(sc.path("plans")).unwrap();
    std::fs::write(sc.path("plans/leak.json"), "{\"v\":\"canary-0123456789\"}").unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sc.assert_no_canary()))
        .expect_err("a leaked canary must fail the check");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("plans/leak.json"), "{msg}");
    assert!(
        !msg.contains("canary-0123456789"),
        "the message names the canary by prefix only: {msg}"
    );
    std::fs::remove_file(sc.path("plans/leak.json")).unwrap();

    // The root token is always a canary.
    std::fs::write(sc.path("plans/token.txt"), s.token()).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sc.assert_no_canary()))
        .expect_err("a leaked root token must fail the check");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("root token") && msg.contains("plans/token.txt"),
        "{msg}"
    );
}

/// Stops a detached stack if the test fails half-way.
struct DownOnDrop(std::path::PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if let Ok(state) = dev::Stack::load(&self.0) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(state.stop());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_up_is_idempotent_status_and_down_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let _guard = DownOnDrop(dir.clone());

    let err = dev::connection(&dir).unwrap_err().to_string();
    assert!(err.contains("ctl dev up"), "{err}");

    run(DevCommand::Up {
        dir: dir.clone(),
        version: BaoVersion::V2_7,
        seal: None,
    })
    .await
    .unwrap();
    let first = dev::Stack::load(&dir).unwrap();
    assert!(first.detached && first.seal == Seal::Shamir && first.bao_alive());
    let (addr, token_file) = dev::connection(&dir).unwrap();
    assert_eq!(addr, first.bao_addr);
    assert_eq!(
        token_file,
        dir.canonicalize().unwrap().join(dev::ROOT_TOKEN_FILE)
    );

    // Up again: same processes.
    run(DevCommand::Up {
        dir: dir.clone(),
        version: BaoVersion::V2_7,
        seal: None,
    })
    .await
    .unwrap();
    assert_eq!(dev::Stack::load(&dir).unwrap().bao_pid, first.bao_pid);
    // A different version while one runs is refused.
    let err = run(DevCommand::Up {
        dir: dir.clone(),
        version: BaoVersion::V2_6,
        seal: None,
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    // awskms with 2.7 is refused.
    let err = run(DevCommand::Up {
        dir: dir.clone(),
        version: BaoVersion::V2_7,
        seal: Some(Seal::AwsKms),
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("2.6 only"), "{err}");

    run(DevCommand::Status { dir: dir.clone() }).await.unwrap();
    let health = dev::health_status(&first.bao_addr).await.unwrap();
    assert_eq!(health, 200);

    run(DevCommand::Down {
        dir: dir.clone(),
        purge: false,
    })
    .await
    .unwrap();
    assert!(!first.bao_alive());
    assert!(dev::connection(&dir)
        .unwrap_err()
        .to_string()
        .contains("ctl dev up"));
    assert!(run(DevCommand::Status { dir: dir.clone() }).await.is_err());
    assert!(
        dir.join(dev::ROOT_TOKEN_FILE).exists(),
        "down keeps the data"
    );

    // Up on a stopped stack starts a fresh one.
    run(DevCommand::Up {
        dir: dir.clone(),
        version: BaoVersion::V2_7,
        seal: None,
    })
    .await
    .unwrap();
    let second = dev::Stack::load(&dir).unwrap();
    assert_ne!(second.bao_pid, first.bao_pid);
    assert!(second.bao_alive());

    run(DevCommand::Down {
        dir: dir.clone(),
        purge: true,
    })
    .await
    .unwrap();
    assert!(!second.bao_alive());
    assert!(!dir.exists(), "--purge removes the dir");
    run(DevCommand::Down {
        dir: dir.clone(),
        purge: false,
    })
    .await
    .unwrap();
}

/// `environments/example-production.yaml`, exactly as committed, applied to a local stack with
/// `--dev-stack` (what `make demo` does): every kind lands, and the plan after it is empty.
#[test]
fn example_production_applies_on_the_local_stack_as_committed() {
    let s = stack(BaoVersion::V2_6);
    let sc = Scenario::new(s, "unused", "workspaces: []\n");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = |rel: &str| sc.write_file(rel, &std::fs::read_to_string(repo.join(rel)).unwrap());
    copy("environments/example-production.yaml");
    for entry in std::fs::read_dir(repo.join("environments/workspaces/example-production")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        copy(&format!("environments/workspaces/example-production/{name}"));
    }
    copy("examples/artifacts/edge-proxy");
    let url = "https://hooks.example.com/services/T0/B0/example-production-canary";
    sc.canary(url);
    let dev = s.dir.display().to_string();
    let env = "environments/example-production.yaml";
    let ctl = |args: &[&str]| {
        let mut all = vec!["--dev-stack", dev.as_str()];
        all.extend_from_slice(args);
        sc.ctl_with_env(&all, &[("ALARM_WEBHOOK_URL", url)])
    };
    ctl(&["artifacts", "publish", "examples/artifacts/edge-proxy", "--name", "edge-proxy", "--version", "1.0.0", "-e", env]).assert_success();
    let apply = ctl(&["apply", "-e", env, "--auto-approve"]);
    apply.assert_success();
    for kind in [
        "network.vpc",
        "network.nat_instance",
        "network.s3_endpoint",
        "instance.openbao.2",
        "rds.instance",
        "aws.kms.unseal.alias",
        "aws.iam.instance_profile.openbao",
        "alarms.subscription",
        "workspace.tundra.namespace",
    ] {
        assert!(apply.stdout.contains(kind), "{kind} not applied:\n{}", apply.stdout);
    }
    ctl(&["plan", "-e", env, "--detailed-exitcode"]).assert_status(0);
    ctl(&["verify", "-e", env, "--sample", "3"]).assert_success();
    // The drawing names what was applied, offline (no connection is needed for it).
    let graph = sc.ctl(&["graph", "-e", env, "--format", "mermaid"]);
    graph.assert_success();
    assert!(graph.stdout.starts_with("flowchart LR"), "{}", graph.stdout);
    for address in ["network.vpc", "rds.instance", "aws.kms.unseal", "alarms.alarm.api-cpu", "workspace.tundra.namespace"] {
        assert!(graph.stdout.contains(address), "{address} not drawn");
    }
    sc.assert_no_canary();
}

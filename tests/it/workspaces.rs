//! The workspace slice end to end against a real OpenBao: plan → apply → plan is empty,
//! out-of-band drift, stale saved plans, the destroy guard, unmanaged namespaces, AppRole
//! isolation, and canary secrets that must never show up in any output or file.

use crate::harness::{bao_cli, stack, unique, Scenario, TestStack};
use ctl::dev::BaoVersion;
use serde_json::Value;

/// A class with every resource kind a workspace can have.
fn classes() -> &'static str {
    r#"
classes:
  std:
    kv: { path: secret, max_versions: 10 }
    policies:
      - { name: app-read, template: kv-read }
      - { name: app-write, template: kv-write }
    approle:
      roles:
        app:
          token_policies: [app-read]
          token_ttl: 1h
          token_max_ttl: 4h
          secret_id_ttl: 10m
          secret_id_num_uses: 5
          token_bound_cidrs: [127.0.0.0/8]
          secret_id_bound_cidrs: [127.0.0.0/8]
    transit: { keys: [ { name: app, auto_rotate_period: 720h } ] }
    quota: { rate: 500 }
"#
}

/// Workspaces of the class with every kind (also used by `faults.rs`).
pub(crate) fn env_body(workspaces: &[&str]) -> String {
    let mut s = classes().to_string();
    s.push_str("workspaces:\n");
    for w in workspaces {
        s.push_str(&format!("  - {{ name: {w}, class: std }}\n"));
    }
    s
}

fn plan_json(sc: &Scenario) -> Value {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn changes(plan: &Value) -> Vec<&Value> {
    plan["changes"].as_array().expect("changes").iter().collect()
}

/// plan on an empty server → apply → plan is empty; drift of one field shows exactly that field.
fn lifecycle(stack: &TestStack) {
    let a = unique("a");
    let b = unique("b");
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[&a, &b]));

    let first = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(first.status, 2, "changes pending → exit 2\n{}", first.stderr);
    assert!(first.stdout.contains(&format!("+ workspace.{a}.namespace")), "{}", first.stdout);

    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(apply.status, 0, "apply failed:\n{}\n{}", apply.stdout, apply.stderr);

    let again = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(again.status, 0, "second plan must be empty:\n{}", again.stdout);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // Out of band: someone lowers max_versions with the bao CLI.
    let out = bao_cli(stack, Some(&a), &["write", "secret/config", "max_versions=3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let plan = plan_json(&sc);
    let cs = changes(&plan);
    assert_eq!(cs.len(), 1, "exactly one change: {plan:#}");
    assert_eq!(cs[0]["address"], format!("workspace.{a}.kv"));
    assert_eq!(cs[0]["action"], "update");
    let fields = cs[0]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "max_versions");
    assert_eq!(fields[0]["before"], 3);
    assert_eq!(fields[0]["after"], 10);

    let fix = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(fix.status, 0, "{}", fix.stderr);
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0);
    sc.assert_no_canary();
}

#[test]
fn lifecycle_on_openbao_2_6() {
    lifecycle(stack(BaoVersion::V2_6));
}

#[test]
fn lifecycle_on_openbao_2_7() {
    lifecycle(stack(BaoVersion::V2_7));
}

#[test]
fn stale_saved_plan_is_refused_and_fresh_one_applies() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("s");
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[&a]));
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).status, 0);

    // Drift, then save a plan that fixes it…
    assert!(bao_cli(stack, Some(&a), &["write", "secret/config", "max_versions=4"]).status.success());
    let plan_file = sc.path("fix.plan.json");
    let saved = sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &plan_file]);
    assert_eq!(saved.status, 0, "{}", saved.stderr);

    // …and someone changes the same object again before apply.
    assert!(bao_cli(stack, Some(&a), &["write", "secret/config", "max_versions=5"]).status.success());
    let refused = sc.ctl(&["apply", &plan_file, "-e", &sc.env_file()]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("live state changed"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("workspace.{a}.kv")), "{}", refused.stderr);
    let cfg = bao_cli(stack, Some(&a), &["read", "-field=max_versions", "secret/config"]);
    assert_eq!(String::from_utf8_lossy(&cfg.stdout).trim(), "5", "nothing was applied");

    // A fresh plan applies.
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &plan_file]).status, 0);
    let ok = sc.ctl(&["apply", &plan_file, "-e", &sc.env_file()]);
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    let cfg = bao_cli(stack, Some(&a), &["read", "-field=max_versions", "secret/config"]);
    assert_eq!(String::from_utf8_lossy(&cfg.stdout).trim(), "10");

    // A plan from edited environment files is refused too.
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &plan_file]).status, 0);
    sc.write_env(&env_body(&[&a, &unique("t")]));
    let edited = sc.ctl(&["apply", &plan_file, "-e", &sc.env_file()]);
    assert_eq!(edited.status, 1);
    assert!(edited.stderr.contains("environment files changed"), "{}", edited.stderr);
}

#[test]
fn destroying_a_namespace_needs_the_flag_for_that_address() {
    let stack = stack(BaoVersion::V2_6);
    let keep = unique("k");
    let gone = unique("g");
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[&keep, &gone]));
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).status, 0);

    sc.write_env(&env_body(&[&keep]));
    let plan = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert!(plan.stdout.contains(&format!("--allow-destroy=workspace.{gone}.namespace")), "{}", plan.stdout);

    let refused = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("refusing to destroy data"), "{}", refused.stderr);
    let wrong_flag = format!("--allow-destroy=workspace.{keep}.namespace");
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", &wrong_flag]).status, 1);
    let listed = bao_cli(stack, None, &["namespace", "list", "-format=json"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&gone), "still there after refusals");

    let flag = format!("--allow-destroy=workspace.{gone}.namespace");
    let ok = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", &flag]);
    assert_eq!(ok.status, 0, "{}\n{}", ok.stdout, ok.stderr);
    let listed = bao_cli(stack, None, &["namespace", "list", "-format=json"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&gone));
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0);
}

#[test]
fn unmanaged_namespaces_are_reported_never_touched_or_adopted() {
    let stack = stack(BaoVersion::V2_6);
    let foreign = unique("f");
    assert!(bao_cli(stack, None, &["namespace", "create", &foreign]).status.success());
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[&foreign]));
    let plan = plan_json(&sc);
    assert!(changes(&plan).is_empty(), "no create over an unmanaged namespace: {plan:#}");
    let conflicts = plan["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert!(plan["unmanaged"].as_array().unwrap().iter().any(|u| u["name"] == foreign.as_str()));
    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(apply.status, 1);
    assert!(apply.stderr.contains("conflicts"), "{}", apply.stderr);
}

#[test]
fn approle_isolation_wrapped_secret_ids_and_canaries() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("v");
    let b = unique("w");
    // A third workspace whose KV requires check-and-set: the probe must still be writable.
    let strict = unique("x");
    let body = format!("{}  - {{ name: {strict}, class: std, kv: {{ cas_required: true }} }}\n", env_body(&[&a, &b]));
    let sc = Scenario::new(stack, &unique("env"), &body);
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).status, 0);

    // Secrets the workloads store: they must never leave OpenBao through ctl.
    let canary = format!("canary-{}", unique("c"));
    sc.canary(&canary);
    let put = bao_cli(stack, Some(&a), &["kv", "put", "-mount=secret", "db", &format!("password={canary}")]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));

    let verify = sc.ctl(&["verify", "-e", &sc.env_file(), "--sample", "0"]);
    assert_eq!(verify.status, 0, "{}\n{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("HTTP 403"), "{}", verify.stdout);

    // Issue: only a wrapping token comes out; unwrapping it yields the real secret-id.
    let issued = sc.ctl(&["approle", "issue", "-e", &sc.env_file(), &a, "app", "--wrap-ttl", "2m"]);
    assert_eq!(issued.status, 0, "{}", issued.stderr);
    let wrapping = issued.stdout.trim().to_string();
    assert!(!wrapping.is_empty());
    let unwrapped = bao_cli(stack, Some(&a), &["unwrap", "-field=secret_id", &wrapping]);
    assert!(unwrapped.status.success(), "{}", String::from_utf8_lossy(&unwrapped.stderr));
    let secret_id = String::from_utf8_lossy(&unwrapped.stdout).trim().to_string();
    assert!(!secret_id.is_empty());
    sc.canary(&secret_id);
    // Single use: a second unwrap fails.
    assert!(!bao_cli(stack, Some(&a), &["unwrap", &wrapping]).status.success());

    // Plans and plan files after all that: still nothing secret anywhere.
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &sc.path("p.json")]).status, 0);
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--markdown"]).status, 0);
    sc.assert_no_canary();
}

#[test]
fn bad_input_is_located_and_makes_no_api_call() {
    // A listener that records whether anyone connected: ctl must not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let cases: &[(&str, &str, &str)] = &[
        ("unknown key", "workspaces:\n  - { name: a, colour: blue }\n", "test.yaml:5:"),
        ("bad duration", "workspaces:\n  - name: a\n    approle: { roles: { r: { token_ttl: 1x } } }\n", "invalid duration"),
        ("bad cidr", "workspaces:\n  - name: a\n    approle: { roles: { r: { token_bound_cidrs: [10.0.0.300/8] } } }\n", "test.yaml:6:"),
        ("slash", "workspaces:\n  - { name: a, namespace: a/b }\n", "'/'"),
        ("duplicate", "workspaces:\n  - { name: a }\n  - { name: a }\n", "test.yaml:6:"),
        ("ttl order", "workspaces:\n  - name: a\n    approle: { roles: { r: { token_ttl: 4h, token_max_ttl: 1h } } }\n", "exceeds token_max_ttl"),
        ("syntax", "workspaces:\n  - { name: a\n", "test.yaml:"),
    ];
    for (what, body, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("environments")).unwrap();
        let file = dir.path().join("environments/test.yaml");
        std::fs::write(&file, format!("openbao:\n  address: {address}\n  token_env: NOPE_TOKEN\n{body}")).unwrap();
        for cmd in ["validate", "plan"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctl"))
                .args([cmd, "-e", file.to_str().unwrap()])
                .env("NOPE_TOKEN", "x")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}/{cmd}: {stderr}");
            assert!(stderr.contains("test.yaml:"), "{what}/{cmd}: names the file: {stderr}");
            assert!(stderr.contains(expect), "{what}/{cmd}: expected {expect:?} in {stderr}");
        }
    }
    assert!(listener.accept().is_err(), "ctl contacted the server despite invalid input");
}

/// A foreign mount squatting on a declared mount's path (KV and transit share one path
/// space) is a conflict at plan time: apply refuses before any call and the squatter stays.
#[test]
fn a_foreign_mount_on_a_declared_path_is_a_conflict() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("p");
    let sc = Scenario::new(stack, &unique("env"), &format!("workspaces:\n  - {{ name: {a} }}\n"));
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).status, 0);
    let squat = bao_cli(stack, Some(&a), &["secrets", "enable", "-path=transit", "kv"]);
    assert!(squat.status.success(), "{}", String::from_utf8_lossy(&squat.stderr));

    sc.write_env(&env_body(&[&a]));
    let plan = plan_json(&sc);
    let conflicts = plan["conflicts"].as_array().unwrap();
    assert!(conflicts.iter().any(|c| c["address"] == format!("workspace.{a}.transit")), "{plan:#}");
    assert!(plan["unmanaged"].as_array().unwrap().iter().any(|u| u["name"] == "transit" && u["scope"]["namespace"] == a.as_str()));
    let refused = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(refused.status, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains(&format!("workspace.{a}.transit")), "{}", refused.stderr);
    let mounts = bao_cli(stack, Some(&a), &["read", "-format=json", "sys/mounts/transit"]);
    assert!(String::from_utf8_lossy(&mounts.stdout).contains("\"kv\""), "the squatter is untouched");

    assert!(bao_cli(stack, Some(&a), &["secrets", "disable", "transit"]).status.success());
    let rerun = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(rerun.status, 0, "{}", rerun.stderr);
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0);
}

/// A change that fails at apply time (OpenBao rejects a policy's HCL) fails alone: its
/// dependents are skipped, the rest is applied; once the cause is fixed a re-run converges.
#[test]
fn failed_apply_is_partial_consistent_and_rerun_converges() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("p");
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[&a]));
    let good = std::fs::read_to_string(sc.dir().join("templates/policies/kv-read.hbs")).unwrap();
    sc.write_file("templates/policies/kv-read.hbs", "path \"{{kv_path}}/data/*\" { capabilities = [\"read\"\n");

    let failed = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(failed.status, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(failed.stderr.contains(&format!("workspace.{a}.policy.app-read")), "{}", failed.stderr);
    assert!(failed.stderr.contains(&format!("workspace.{a}.approle.app skipped")), "{}", failed.stderr);
    // Everything not depending on the rejected policy was applied.
    let plan = plan_json(&sc);
    let pending: Vec<String> = changes(&plan).iter().map(|c| c["address"].as_str().unwrap().to_string()).collect();
    assert_eq!(pending, vec![format!("workspace.{a}.approle.app"), format!("workspace.{a}.policy.app-read")]);

    sc.write_file("templates/policies/kv-read.hbs", &good);
    let rerun = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(rerun.status, 0, "{}", rerun.stderr);
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0);
}

#[test]
fn unreachable_server_is_a_clear_error_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    let file = dir.path().join("environments/down.yaml");
    std::fs::write(&file, format!("openbao:\n  address: http://127.0.0.1:{port}\n  token_env: T\nworkspaces:\n  - {{ name: a }}\n")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates/policies")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctl"))
        .args(["plan", "-e", file.to_str().unwrap()])
        .env("T", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot reach OpenBao at http://127.0.0.1:{port} after 6 attempts")), "{stderr}");
}

/// Debug logs in JSON (what CI collects) carry no secret either.
#[test]
fn json_trace_logs_carry_no_secrets() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("l");
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[&a]));
    let out = sc.ctl_with_env(&["--log-format", "json", "apply", "-e", &sc.env_file(), "--auto-approve"], &[("RUST_LOG", "trace")]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.lines().filter(|l| !l.trim().is_empty()).all(|l| l.starts_with('{')), "{}", out.stderr);
    let issued = sc.ctl_with_env(&["--log-format", "json", "approle", "issue", "-e", &sc.env_file(), &a, "app"], &[("RUST_LOG", "trace")]);
    assert_eq!(issued.status, 0, "{}", issued.stderr);
    let secret_id = bao_cli(stack, Some(&a), &["unwrap", "-field=secret_id", issued.stdout.trim()]);
    sc.canary(String::from_utf8_lossy(&secret_id.stdout).trim());
    // Without a terminal and without --auto-approve, apply refuses instead of hanging.
    sc.write_env(&env_body(&[&a, &unique("m")]));
    let refused = sc.ctl(&["apply", "-e", &sc.env_file()]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("--auto-approve"), "{}", refused.stderr);
    sc.assert_no_canary();
}

/// A policy change is shown as what it grants differently, read back from OpenBao (whose text
/// carries ctl's marker line): in text, markdown and JSON.
#[test]
fn a_policy_change_shows_capabilities_not_text() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("p");
    let body = |template: &str| format!("workspaces:\n  - {{ name: {a}, policies: [ {{ name: app, template: {template} }} ] }}\n");
    let sc = Scenario::new(stack, &unique("env"), &body("kv-read"));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    sc.write_env(&body("kv-write"));
    let text = sc.ctl(&["plan", "-e", &sc.env_file()]);
    text.assert_success();
    for line in ["+ create on secret/data/*", "+ update on secret/metadata/*", "+ delete on secret/data/*"] {
        assert!(text.stdout.contains(line), "{line} missing:\n{}", text.stdout);
    }
    assert!(!text.stdout.contains("policy: \""), "the text is not shown without --detail:\n{}", text.stdout);
    let md = sc.ctl(&["plan", "-e", &sc.env_file(), "--markdown"]);
    assert!(md.stdout.contains("      + create on secret/data/*"), "{}", md.stdout);
    let json: Value = serde_json::from_str(&sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]).stdout).unwrap();
    let change = json["changes"].as_array().unwrap().iter().find(|c| c["kind"] == "policy").expect("a policy change");
    let lines: Vec<&str> = change["capabilities"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(lines.contains(&"+ delete on secret/metadata/*"), "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with('+')), "kv-write only adds to kv-read: {lines:?}");
}

/// A policy that grants sudo under sys/ is a plan warning; `--deny-warnings` (or
/// `policy_lint.deny_warnings`) fails the plan and saves nothing, and an allowance in
/// `policy_lint.allow` accepts that finding on purpose. `ctl validate` lists them offline.
#[test]
fn policy_lint_warnings_can_fail_the_plan() {
    let stack = stack(BaoVersion::V2_6);
    let a = unique("lint");
    let sc = Scenario::new(stack, &unique("env"), &format!("workspaces:\n  - {{ name: {a} }}\n"));
    sc.write_file("templates/policies/ops.hbs", "path \"sys/mounts/*\" {\n  capabilities = [\"read\", \"sudo\"]\n}\npath \"{{kv_path}}/data/*\" {\n  capabilities = [\"read\"]\n}\n");
    let body = |lint: &str| format!("workspaces:\n  - {{ name: {a}, policies: [ {{ name: ops, template: ops }} ] }}\n{lint}");
    sc.write_env(&body(""));
    let e = sc.env_file();
    let plan = sc.ctl(&["plan", "-e", &e]);
    plan.assert_success();
    let address = format!("workspace.{a}.policy.ops");
    for line in [
        format!("{address}: grants sudo on sys/mounts/* (root-protected endpoints) [sudo]"),
        format!("{address}: grants read, sudo on sys/mounts/*, under sys/ (OpenBao's own configuration, tokens or identities) [system-path]"),
    ] {
        assert!(plan.stdout.contains(&line), "{line:?} missing from:\n{}", plan.stdout);
    }
    let md = sc.ctl(&["plan", "-e", &e, "--markdown"]);
    assert!(md.stdout.contains("**⚠ 2 policy warning(s):**") && md.stdout.contains("(`sudo`)"), "{}", md.stdout);
    let out = sc.path("plan.json");
    let denied = sc.ctl(&["plan", "-e", &e, "--deny-warnings", "--out", &out]);
    denied.assert_status(1);
    assert!(denied.stderr.contains("2 policy warning(s) and --deny-warnings"), "{}", denied.stderr);
    assert!(!std::path::Path::new(&out).exists(), "nothing saved");
    let validate = sc.ctl(&["validate", "-e", &e, "--deny-warnings"]);
    validate.assert_status(1);
    assert!(validate.stdout.contains("[sudo]"), "{}", validate.stdout);

    // In the file: apply refuses too; one finding accepted leaves the other.
    sc.write_env(&body("policy_lint: { deny_warnings: true, allow: [ { rule: sudo } ] }\n"));
    let apply = sc.ctl(&["apply", "-e", &e, "--auto-approve"]);
    apply.assert_status(1);
    assert!(apply.stderr.contains("1 policy warning(s) and policy_lint.deny_warnings: true"), "{}", apply.stderr);
    sc.write_env(&body(&format!("policy_lint:\n  deny_warnings: true\n  allow: [ {{ rule: sudo }}, {{ rule: system-path, workspace: {a}, path: \"sys/mounts/*\" }} ]\n")));
    sc.ctl(&["apply", "-e", &e, "--auto-approve"]).assert_success();
    sc.ctl(&["validate", "-e", &e, "--deny-warnings"]).assert_success();
}

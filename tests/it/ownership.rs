//! Issue 12's promise against a real OpenBao: an object without ctl's marker is never
//! modified, deleted or stamped; a saved plan runs only as reviewed; adoption is explicit.
//! Each test reproduces one reported way around it.

use crate::harness::{bao_cli, stack, unique, Scenario, TestStack};
use ctl::dev::BaoVersion;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn body(workspaces: &[(&str, &str)]) -> String {
    let mut s = String::from(
        r#"
classes:
  std:
    kv: { path: secret, max_versions: 10 }
    policies:
      - { name: app-read, template: kv-read }
    approle:
      roles:
        app: { token_policies: [app-read], token_ttl: 1h }
    transit: { keys: [ { name: app } ] }
    quota: { rate: 100 }
workspaces:
"#,
    );
    for (name, extra) in workspaces {
        s.push_str(&format!("  - {{ name: {name}, class: std{extra} }}\n"));
    }
    s
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "bao failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bao_write_stdin(stack: &TestStack, ns: &str, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut cmd = std::process::Command::new(&stack.bao_bin);
    cmd.args(args)
        .env("BAO_ADDR", &stack.addr)
        .env("BAO_TOKEN", stack.token())
        .env("BAO_NAMESPACE", ns)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn plan_json(sc: &Scenario) -> Value {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn conflict_addresses(plan: &Value) -> Vec<String> {
    plan["conflicts"].as_array().unwrap().iter().map(|c| c["address"].as_str().unwrap().to_string()).collect()
}

const FOREIGN_POLICY: &str = "path \"secret/data/team-owned/*\" { capabilities = [\"read\"] }\n";

/// Reproduction 1: a same-named foreign policy (and role, transit key, quota) is a conflict,
/// never overwritten; `ctl adopt` takes over exactly the addresses named.
#[test]
fn same_named_foreign_objects_are_conflicts_until_adopted() {
    let stack = stack(BaoVersion::V2_6);
    let o1 = unique("o1");
    let sc = Scenario::new(stack, &unique("env"), &body(&[(&o1, "")]));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();

    // By hand, in ctl's namespace and mounts: a policy, a role, a key, before they are declared.
    bao_write_stdin(stack, &o1, &["policy", "write", "extra", "-"], FOREIGN_POLICY);
    ok(bao_cli(stack, Some(&o1), &["write", "auth/approle/role/handmade", "token_ttl=2h"]));
    ok(bao_cli(stack, Some(&o1), &["write", "-f", "transit/keys/handkey", "type=aes256-gcm96"]));

    let declared = r#", policies: [ { name: app-read, template: kv-read }, { name: extra, template: kv-read } ],
      approle: { roles: { app: { token_policies: [app-read] }, handmade: { token_policies: [app-read] } } },
      transit: { keys: [ { name: app }, { name: handkey } ] }"#;
    sc.write_env(&body(&[(&o1, declared)]));
    let plan = plan_json(&sc);
    let mut conflicts = conflict_addresses(&plan);
    conflicts.sort();
    assert_eq!(
        conflicts,
        vec![
            format!("workspace.{o1}.approle.handmade"),
            format!("workspace.{o1}.policy.extra"),
            format!("workspace.{o1}.transit_key.handkey"),
        ],
        "{plan:#}"
    );
    let planned: Vec<&str> = plan["changes"].as_array().unwrap().iter().map(|c| c["address"].as_str().unwrap()).collect();
    assert!(planned.iter().all(|a| !a.ends_with(".extra") && !a.ends_with(".handmade") && !a.ends_with(".handkey")), "{planned:?}");

    let refused = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert!(refused.stderr.contains(&format!("workspace.{o1}.policy.extra")), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was applied"), "{}", refused.stderr);
    let text = ok(bao_cli(stack, Some(&o1), &["policy", "read", "extra"]));
    assert_eq!(text.trim(), FOREIGN_POLICY.trim(), "the foreign policy is unchanged");
    assert!(ok(bao_cli(stack, Some(&o1), &["read", "-field=token_ttl", "auth/approle/role/handmade"])).trim() == "7200");

    // Adoption is explicit and per address: only the policy and the role.
    let not_declared = sc.ctl(&["adopt", "-e", &sc.env_file(), &format!("workspace.{o1}.policy.nope")]);
    assert_eq!(not_declared.status, 1);
    assert!(not_declared.stderr.contains("not declared"), "{}", not_declared.stderr);
    let adopt = sc.ctl(&[
        "adopt",
        "-e",
        &sc.env_file(),
        &format!("workspace.{o1}.policy.extra"),
        &format!("workspace.{o1}.approle.handmade"),
    ]);
    adopt.assert_success();
    assert!(adopt.stdout.contains(&format!("~ workspace.{o1}.policy.extra")), "{}", adopt.stdout);
    // Adopting writes the marker only: the policy's rules are still the foreign ones.
    let text = ok(bao_cli(stack, Some(&o1), &["policy", "read", "extra"]));
    assert!(text.starts_with(&format!("# managed by ctl: workspace.{o1}.policy.extra")), "{text}");
    assert!(text.contains("team-owned"), "{text}");

    let plan = plan_json(&sc);
    assert_eq!(conflict_addresses(&plan), vec![format!("workspace.{o1}.transit_key.handkey")]);
    // The transit key stays foreign; apply still refuses until it is adopted too.
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).status, 1);
    sc.ctl(&["adopt", "-e", &sc.env_file(), &format!("workspace.{o1}.transit_key.handkey")]).assert_success();
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0);
    assert!(ok(bao_cli(stack, Some(&o1), &["policy", "read", "extra"])).contains("secret/data/*"));
    sc.assert_no_canary();
}

/// Reproduction 2: a namespace created by hand between plan and apply is not stamped.
#[test]
fn a_foreign_namespace_created_after_the_plan_is_not_adopted() {
    let stack = stack(BaoVersion::V2_6);
    let o2 = unique("o2");
    let sc = Scenario::new(stack, &unique("env"), &body(&[(&o2, "")]));
    let plan_file = sc.path("p.json");
    sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &plan_file]).assert_success();

    ok(bao_cli(stack, None, &["namespace", "create", &o2]));
    ok(bao_cli(stack, Some(&o2), &["secrets", "enable", "-path=data", "kv-v2"]));
    ok(bao_cli(stack, Some(&o2), &["kv", "put", "-mount=data", "x", "k=v"]));

    let refused = sc.ctl(&["apply", &plan_file, "-e", &sc.env_file()]);
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert!(refused.stderr.contains("nothing was applied"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("workspace.{o2}.namespace")), "{}", refused.stderr);
    assert!(refused.stderr.contains("not managed by ctl"), "{}", refused.stderr);
    let meta = ok(bao_cli(stack, None, &["read", "-format=json", &format!("sys/namespaces/{o2}")]));
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert!(meta["data"]["custom_metadata"].as_object().is_none_or(|m| m.is_empty()), "not stamped: {meta:#}");
    // Nothing inside it either.
    assert!(!ok(bao_cli(stack, Some(&o2), &["policy", "list"])).contains("app-read"));
}

/// The self-hash of a plan document, as ctl computes it.
fn rehash(plan: &mut Value) {
    let signature = plan.as_object_mut().unwrap().remove("signature");
    plan["fingerprint"] = Value::from("absent");
    let digest = hex::encode(Sha256::digest(serde_json::to_vec(plan).unwrap()));
    plan["fingerprint"] = Value::from(digest);
    if let Some(s) = signature {
        plan["signature"] = s;
    }
}

/// Reproduction 3: a saved plan edited (sudo added to a policy) with its self-hash recomputed
/// is refused: its signature no longer matches; an unsigned plan is refused too.
#[test]
fn a_tampered_or_unsigned_saved_plan_is_refused() {
    let stack = stack(BaoVersion::V2_6);
    let o3 = unique("o3");
    let sc = Scenario::new(stack, &unique("env"), &body(&[(&o3, "")]));
    let plan_file = sc.path("p.json");
    sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &plan_file]).assert_success();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert!(original["signature"].as_str().is_some_and(|s| s.starts_with("vault:v1:")), "{original:#}");

    let mut tampered = original.clone();
    let change = tampered["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["kind"] == "policy")
        .expect("a policy change");
    let text = change["after"]["attrs"]["policy"].as_str().unwrap().to_string();
    change["after"]["attrs"]["policy"] = Value::from(format!("{text}\npath \"sys/*\" {{ capabilities = [\"sudo\", \"create\", \"update\"] }}\n"));
    rehash(&mut tampered);
    let edited = sc.path("edited.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&tampered).unwrap()).unwrap();
    let refused = sc.ctl(&["apply", &edited, "-e", &sc.env_file()]);
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert!(refused.stderr.contains("signature does not match"), "{}", refused.stderr);

    let mut unsigned = original.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    let unsigned_file = sc.path("unsigned.json");
    std::fs::write(&unsigned_file, serde_json::to_string_pretty(&unsigned).unwrap()).unwrap();
    let refused = sc.ctl(&["apply", &unsigned_file, "-e", &sc.env_file()]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("is not signed"), "{}", refused.stderr);

    // Nothing was applied by either; the genuine plan applies.
    assert!(!ok(bao_cli(stack, None, &["namespace", "list"])).contains(&o3));
    sc.ctl(&["apply", &plan_file, "-e", &sc.env_file()]).assert_success();
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 0);
}

/// Reproduction 5: roles and keys made by hand inside ctl's mounts are reported as unmanaged,
/// never planned for deletion, and survive applies.
#[test]
fn foreign_children_of_managed_mounts_are_never_deleted() {
    let stack = stack(BaoVersion::V2_6);
    let acme = unique("acme");
    let sc = Scenario::new(stack, &unique("env"), &body(&[(&acme, "")]));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    ok(bao_cli(stack, Some(&acme), &["write", "auth/approle/role/handmade", "token_ttl=1h"]));
    ok(bao_cli(stack, Some(&acme), &["write", "-f", "transit/keys/handkey", "type=aes256-gcm96"]));

    let plan = plan_json(&sc);
    assert!(plan["changes"].as_array().unwrap().is_empty(), "nothing to delete: {plan:#}");
    let unmanaged: Vec<String> = plan["unmanaged"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_string()).collect();
    assert!(unmanaged.contains(&"approle/handmade".to_string()), "{unmanaged:?}");
    assert!(unmanaged.contains(&"transit/handkey".to_string()), "{unmanaged:?}");
    let text = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(text.status, 0, "{}", text.stdout);
    assert!(!text.stdout.contains("handmade (no longer declared)"), "{}", text.stdout);

    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    // Removing the whole approle section deletes ctl's role, not the hand-made one.
    sc.write_env(&body(&[(&acme, ", approle: { roles: {} }")]));
    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    apply.assert_success();
    assert!(apply.stdout.contains(&format!("- workspace.{acme}.approle.app")), "{}", apply.stdout);
    ok(bao_cli(stack, Some(&acme), &["read", "auth/approle/role/handmade"]));
    ok(bao_cli(stack, Some(&acme), &["read", "transit/keys/handkey"]));
    assert!(!bao_cli(stack, Some(&acme), &["read", "auth/approle/role/app"]).status.success(), "ctl's own role is gone");
}

/// The other kinds of reproduction 1: an auth mount and the workspace's quota made by hand
/// before ctl declares them are conflicts; nothing of them is changed.
#[test]
fn a_foreign_auth_mount_and_quota_are_conflicts() {
    let stack = stack(BaoVersion::V2_6);
    let q = unique("q");
    let bare = format!("workspaces:\n  - {{ name: {q}, kv: {{ path: secret }} }}\n");
    let sc = Scenario::new(stack, &unique("env"), &bare);
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    ok(bao_cli(stack, Some(&q), &["auth", "enable", "approle"]));
    ok(bao_cli(stack, None, &["write", &format!("sys/quotas/rate-limit/ctl-{q}"), &format!("path={q}/"), "rate=5"]));

    sc.write_env(&format!(
        "workspaces:\n  - {{ name: {q}, kv: {{ path: secret }}, approle: {{ roles: {{ app: {{ token_policies: [default] }} }} }}, quota: {{ rate: 100 }} }}\n"
    ));
    let plan = plan_json(&sc);
    let mut conflicts = conflict_addresses(&plan);
    conflicts.sort();
    assert_eq!(conflicts, vec![format!("workspace.{q}.auth"), format!("workspace.{q}.quota")], "{plan:#}");
    assert!(plan["changes"].as_array().unwrap().is_empty(), "the role waits for its mount: {plan:#}");
    let refused = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    let rate = ok(bao_cli(stack, None, &["read", "-field=rate", &format!("sys/quotas/rate-limit/ctl-{q}")]));
    assert_eq!(rate.trim(), "5", "the foreign quota is unchanged");
    let mounts = ok(bao_cli(stack, Some(&q), &["read", "-format=json", "sys/auth/approle"]));
    assert!(!mounts.contains("managed by ctl"), "the foreign mount is not stamped: {mounts}");
}

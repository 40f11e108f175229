//! The OpenBao kind template, on transit keys (a kind without a marker field: its namespace
//! records it). Every OpenBao kind's test makes the same three checks:
//! 1. create from nothing → the next plan is empty;
//! 2. out-of-band drift of one field → the plan shows exactly that field, apply converges;
//! 3. a same-named object ctl did not make → a conflict: apply refuses and leaves it alone.

use crate::harness::{bao_cli, stack, unique, Scenario};
use ctl::dev::BaoVersion;
use serde_json::Value;

fn body(keyed: &str, bare: &str, bare_declares_key: bool) -> String {
    let key = "{ keys: [ { name: app, auto_rotate_period: 720h } ] }";
    let bare_transit = if bare_declares_key { key } else { "{ keys: [] }" };
    format!("workspaces:\n  - {{ name: {keyed}, transit: {key} }}\n  - {{ name: {bare}, transit: {bare_transit} }}\n")
}

fn plan(sc: &Scenario) -> Value {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

#[track_caller]
fn assert_in_sync(sc: &Scenario) {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(out.status, 0, "expected no changes:\n{}\n{}", out.stdout, out.stderr);
}

#[track_caller]
fn apply(sc: &Scenario) -> crate::harness::CtlOutput {
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"])
}

#[test]
fn transit_key_create_drift_and_foreign() {
    let stack = stack(BaoVersion::V2_6);
    let (keyed, bare) = (unique("tk"), unique("tb"));
    let sc = Scenario::new(stack, &unique("env"), &body(&keyed, &bare, false));

    // 1. From nothing.
    let out = apply(&sc);
    assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
    assert_in_sync(&sc);

    // 2. Drift: the rotation period changed by hand. Exactly that field; apply restores it.
    let out = bao_cli(stack, Some(&keyed), &["write", "transit/keys/app/config", "auto_rotate_period=24h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let drift = plan(&sc);
    let changes = drift["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{drift:#}");
    assert_eq!((changes[0]["address"].as_str(), changes[0]["action"].as_str()), (Some(format!("workspace.{keyed}.transit_key.app").as_str()), Some("update")));
    let fields = changes[0]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "auto_rotate_period");
    let out = apply(&sc);
    assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
    assert_in_sync(&sc);

    // 3. A key of the same name made by hand where one is now declared: a conflict.
    let out = bao_cli(stack, Some(&bare), &["write", "-f", "transit/keys/app"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    sc.write_env(&body(&keyed, &bare, true));
    let conflicted = plan(&sc);
    let conflicts = conflicted["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicted:#}");
    assert_eq!(conflicts[0]["address"], format!("workspace.{bare}.transit_key.app"));
    let refused = apply(&sc);
    assert_eq!(refused.status, 1, "{}\n{}", refused.stdout, refused.stderr);
    let key = bao_cli(stack, Some(&bare), &["read", "-format=json", "transit/keys/app"]);
    let key: Value = serde_json::from_slice(&key.stdout).expect("the foreign key is still there");
    assert_eq!(key["data"]["auto_rotate_period"], 0, "and untouched (the declaration asks for 720h)");
}

//! The GitOps guard rails against a real OpenBao: the apply lock (check-and-set in KV v2),
//! plan expiry and commit binding, the audit journal, drift exit codes.

use crate::harness::{bao_cli, stack, unique, Scenario};
use ctl::dev::BaoVersion;

fn body(ws: &str) -> String {
    format!("workspaces:\n  - {{ name: {ws}, kv: {{ max_versions: 7 }} }}\n")
}

#[test]
fn second_apply_fails_clearly_while_locked_and_break_is_journaled() {
    let stack = stack(BaoVersion::V2_6);
    let env = unique("env");
    let first = unique("k");
    let sc = Scenario::new(stack, &env, &body(&first));
    // Make sure the state mount exists (first apply creates it), then plant a live lock.
    assert_eq!(sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).status, 0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let lock = format!(r#"{{"id":"deadbeef","owner":"someone-else","acquired_at":{now},"expires_at":{}}}"#, now + 300);
    sc.write_file("lock.json", &lock);
    let put = bao_cli(stack, None, &["kv", "put", "-mount=ctl-state", &format!("locks/{env}"), &format!("@{}", sc.path("lock.json"))]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));

    let status = sc.ctl(&["lock", "status", "-e", &sc.env_file()]);
    assert!(status.stdout.contains("owner someone-else"), "{}", status.stdout);

    sc.write_env(&format!("{}  - {{ name: {} }}\n", body(&first), unique("m")));
    let blocked = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--lock-wait", "2s"]);
    assert_eq!(blocked.status, 1);
    assert!(blocked.stderr.contains("is locked by someone-else (lock deadbeef"), "{}", blocked.stderr);
    // Planning takes no lock.
    assert_eq!(sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).status, 2);

    assert_eq!(sc.ctl(&["lock", "break", "-e", &sc.env_file(), "--id", "wrong"]).status, 1);
    let broke = sc.ctl(&["lock", "break", "-e", &sc.env_file(), "--id", "deadbeef"]);
    assert_eq!(broke.status, 0, "{}", broke.stderr);
    let ok = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--lock-wait", "2s"]);
    assert_eq!(ok.status, 0, "{}", ok.stderr);
    assert!(sc.ctl(&["lock", "status", "-e", &sc.env_file()]).stdout.contains("unlocked"), "released after apply");

    let journal = sc.ctl(&["journal", "-e", &sc.env_file(), "--json"]);
    let events: Vec<serde_json::Value> = journal.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["apply", "lock-break", "apply"], "{}", journal.stdout);
    let last = events.last().unwrap();
    assert!(last["changes"].as_array().unwrap().iter().all(|c| c["outcome"] == "done"));
    assert!(!journal.stdout.contains("max_versions"), "the journal records addresses, never values");
}

#[test]
fn saved_plans_expire_and_are_bound_to_their_commit() {
    let stack = stack(BaoVersion::V2_6);
    let ws = unique("e");
    let sc = Scenario::new(stack, &unique("env"), &body(&ws));
    let plan = sc.path("p.json");
    let made = sc.ctl_with_env(&["plan", "-e", &sc.env_file(), "--out", &plan, "--max-age", "1s"], &[("CTL_GIT_COMMIT", "aaa")]);
    assert_eq!(made.status, 0, "{}", made.stderr);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = sc.ctl_with_env(&["apply", &plan, "-e", &sc.env_file()], &[("CTL_GIT_COMMIT", "aaa")]);
    assert_eq!(expired.status, 1);
    assert!(expired.stderr.contains("expired"), "{}", expired.stderr);

    assert_eq!(sc.ctl_with_env(&["plan", "-e", &sc.env_file(), "--out", &plan], &[("CTL_GIT_COMMIT", "aaa")]).status, 0);
    let other = sc.ctl_with_env(&["apply", &plan, "-e", &sc.env_file()], &[("CTL_GIT_COMMIT", "bbb")]);
    assert_eq!(other.status, 1);
    assert!(other.stderr.contains("made from commit aaa, but this checkout is at bbb"), "{}", other.stderr);
    let same = sc.ctl_with_env(&["apply", &plan, "-e", &sc.env_file()], &[("CTL_GIT_COMMIT", "aaa")]);
    assert_eq!(same.status, 0, "{}", same.stderr);

    // Drift: exit 0 in sync, 2 after an out-of-band change.
    assert_eq!(sc.ctl(&["drift", "-e", &sc.env_file()]).status, 0);
    assert!(bao_cli(stack, Some(&ws), &["write", "secret/config", "max_versions=2"]).status.success());
    assert_eq!(sc.ctl(&["drift", "-e", &sc.env_file()]).status, 2);
}

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

/// `ctl apply` at its confirmation prompt, on a pseudo-terminal (`script`), with stdin ours.
fn apply_at_prompt(sc: &Scenario, ttl: &str) -> (std::process::Child, std::path::PathBuf) {
    let out = sc.dir().join("prompt.out");
    let cmd = format!("{} apply -e {} --lock-ttl {ttl}", env!("CARGO_BIN_EXE_ctl"), sc.env_file());
    let child = std::process::Command::new("script")
        .args(["-qfec", &cmd])
        .arg(&out)
        .current_dir(sc.dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script(1) from util-linux");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&out).unwrap_or_default().contains("Only 'yes' is accepted") {
        assert!(std::time::Instant::now() < deadline, "no prompt: {}", std::fs::read_to_string(&out).unwrap_or_default());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (child, out)
}

/// The lock is renewed while `ctl apply` waits at its prompt (it used to block the runtime and
/// let a 120 s lock run out), and a lock lost meanwhile stops the apply before its first change.
#[test]
fn the_lock_is_renewed_at_the_prompt_and_a_lost_lock_stops_the_apply() {
    use std::io::Write;
    let stack = stack(BaoVersion::V2_6);
    let ws = unique("prompt");
    let sc = Scenario::new(stack, &unique("env"), &body(&ws));
    // The state mount exists before the prompt (the first apply creates it).
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    let more = unique("prompt");
    sc.write_env(&format!("{}  - {{ name: {more} }}\n", body(&ws)));

    let (mut child, out) = apply_at_prompt(&sc, "3s");
    std::thread::sleep(std::time::Duration::from_secs(5)); // past the TTL
    let status = sc.ctl(&["lock", "status", "-e", &sc.env_file()]);
    assert!(status.stdout.starts_with("locked"), "the waiting apply's lock expired: {}", status.stdout);

    let id = status.stdout.split_whitespace().nth(2).unwrap().to_string();
    sc.ctl(&["lock", "break", "-e", &sc.env_file(), "--id", &id]).assert_success();
    std::thread::sleep(std::time::Duration::from_secs(3)); // a renewal finds it gone
    child.stdin.as_mut().unwrap().write_all(b"yes\n").unwrap();
    let exit = child.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exit.code(), Some(1), "{text}");
    assert!(text.contains("lock was lost"), "{text}");
    let listed = bao_cli(stack, None, &["namespace", "list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&more), "nothing was created after the lock was lost");
}

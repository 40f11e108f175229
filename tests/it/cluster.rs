//! A 3-node raft cluster of OpenBao 2.6.2 started from configs that `ctl render openbao-config`
//! wrote (retry_join on loopback ports, awskms seal on moto so every node auto-unseals), then
//! ctl's workspace apply pointed at a NON-leader node: the following plan must be empty.
//! Then the leader is killed (SIGKILL) in the middle of an apply of many workspaces through that
//! standby: the apply either finishes after the failover or stops with a clear error; a re-run
//! converges (when OpenBao 2.6.2 leaves crash debris, after the runbook's step-down:
//! runbooks/leader_failover.md), the plan after it is empty, and every namespace exists once.
//! `CTL_LEADER_KILL_WORKSPACES` sets how many (default 120; the 1,000 is a manual run).

use crate::harness::{stack, unique, Scenario};
use crate::seal::{
    cluster_section, free_ports, get_json, init, kms_iam_body, put_json, render_node, test_stack, wait, wait_active, BaoNode,
};
use ctl::dev::{BaoVersion, Tools};
use serde_json::Value;

/// The active node's API address as `addr` sees it ("" while there is none).
fn leader_of(addr: &str) -> String {
    get_json(&format!("{addr}/v1/sys/leader"), None)
        .and_then(|l| l["leader_address"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn raft_servers(addr: &str, token: &str) -> Option<Vec<Value>> {
    let body = get_json(&format!("{addr}/v1/sys/storage/raft/configuration"), Some(token))?;
    body["data"]["config"]["servers"].as_array().cloned()
}

// The apply goes through a standby: it must forward writes, and ctl must wait out a new
// mount's route/upgrade delay there (src/openbao/state.rs) and KV v2's upgrade.
#[test]
fn three_node_cluster_applies_through_a_standby() {
    let s = stack(BaoVersion::V2_6);
    let moto = s.moto_endpoint.clone().expect("the 2.6 stack runs moto");
    let env = unique("raft");
    let dir = tempfile::Builder::new().prefix("ctl-raft-").tempdir().unwrap();
    let ports = free_ports(6);
    let (api, cluster) = ports.split_at(3);
    let sections = format!("{}{}", kms_iam_body(&env, &moto), cluster_section(dir.path(), api, cluster, true));

    // The unseal key comes from ctl (applied through the shared stack's OpenBao connection).
    let setup = Scenario::new(s, &env, &sections);
    let apply = setup.ctl(&["apply", "-e", &setup.env_file(), "--auto-approve"]);
    assert_eq!(apply.status, 0, "{}\n{}", apply.stdout, apply.stderr);
    let configs: Vec<_> = (1..=3).map(|n| render_node(&setup, dir.path(), n)).collect();
    let hcl = std::fs::read_to_string(&configs[1]).unwrap();
    assert_eq!(hcl.matches("retry_join {").count(), 2, "{hcl}");

    let bin = Tools::discover(BaoVersion::V2_6).expect("bao 2.6.2 (make venv)").bao;
    let mut nodes: Vec<BaoNode> = (0..3)
        .map(|i| {
            let addr = format!("http://127.0.0.1:{}", api[i]);
            BaoNode::start(&bin, &configs[i], &dir.path().join(format!("node-{}.log", i + 1)), &addr)
        })
        .collect();
    let token = init(&mut nodes[0]);
    wait_active(&mut nodes[0]);
    let leader_addr = nodes[0].addr.clone();

    // Every node joins and auto-unseals; every server becomes a voter.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let servers = loop {
        for n in nodes.iter_mut() {
            n.assert_running();
        }
        let servers = raft_servers(&leader_addr, &token);
        if let Some(s) = servers.as_ref().filter(|s| s.len() == 3 && s.iter().all(|x| x["voter"] == true)) {
            break s.clone();
        }
        if std::time::Instant::now() > deadline {
            let tail = |n: &BaoNode| {
                n.log_text()
                    .lines()
                    .filter(|l| !l.contains("stored unseal keys"))
                    .take(60)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "timed out waiting for 3 raft voters; last configuration: {servers:?}\n--- node-1\n{}\n--- node-2\n{}",
                tail(&nodes[0]),
                tail(&nodes[1])
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for n in nodes.iter_mut() {
        let status = wait(60, &format!("{} unsealed", n.addr), || n.seal_status().filter(|s| s["sealed"] == false));
        assert_eq!(status["type"], "awskms", "{status}");
    }
    let leader_id =
        servers.iter().find(|x| x["leader"] == true).expect("a leader")["node_id"].as_str().unwrap().to_string();
    let standby =
        servers.iter().find(|x| x["node_id"] != leader_id.as_str()).unwrap()["node_id"].as_str().unwrap().to_string();
    let standby_index: usize = standby.strip_prefix("node-").unwrap().parse::<usize>().unwrap() - 1;
    let standby_addr = nodes[standby_index].addr.clone();
    let health = get_json(&format!("{standby_addr}/v1/sys/health?standbyok=true"), None).expect("standby health");
    assert_eq!(health["standby"], true, "{standby_addr} must be a standby: {health}");

    // ctl against the standby: workspaces apply, and the plan after it is empty.
    let token_file = dir.path().join("root-token");
    std::fs::write(&token_file, &token).unwrap();
    let target = test_stack(&standby_addr, &token_file, &moto, dir.path());
    let ws = unique("ws");
    let body = format!(
        "{sections}workspaces:\n  - {{ name: {ws}, kv: {{ max_versions: 5 }}, policies: [ {{ name: app-read, template: kv-read }} ] }}\n"
    );
    let sc = Scenario::new(&target, &env, &body);
    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(apply.status, 0, "apply through the standby failed:\n{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stdout.contains(&format!("workspace.{ws}.namespace")), "{}", apply.stdout);
    let plan = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(plan.status, 0, "the plan after apply must be empty:\n{}\n{}", plan.stdout, plan.stderr);
    // The leader sees what went through the standby.
    let namespaces = get_json(&format!("{leader_addr}/v1/sys/namespaces?list=true"), Some(&token)).expect("namespaces");
    let keys: Vec<&str> = namespaces["data"]["keys"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(keys.contains(&format!("{ws}/").as_str()), "{keys:?}");

    // The leader dies in the middle of a big apply through the standby.
    let n: usize = std::env::var("CTL_LEADER_KILL_WORKSPACES").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let prefix = unique("lk");
    let mut many = body.to_string();
    for i in 0..n {
        many.push_str(&format!("  - {{ name: {prefix}-{i:04}, kv: {{ max_versions: 5 }}, policies: [ {{ name: app-read, template: kv-read }} ] }}\n"));
    }
    sc.write_env(&many);
    let leader_index: usize = leader_id.strip_prefix("node-").unwrap().parse::<usize>().unwrap() - 1;
    let ours = |addr: &str| -> Vec<String> {
        get_json(&format!("{addr}/v1/sys/namespaces?list=true"), Some(&token))
            .and_then(|b| b["data"]["keys"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| k.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    };
    let t = std::time::Instant::now();
    let mut child = sc.ctl_spawn("leader-kill-apply", &["apply", "-e", &sc.env_file(), "--auto-approve"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        if ours(&standby_addr).len() >= n / 3 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let (stdout, stderr) = sc.spawned_output("leader-kill-apply");
            panic!("apply ended ({status}) before a third of the namespaces existed:\n{stdout}\n{stderr}");
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            let (stdout, stderr) = sc.spawned_output("leader-kill-apply");
            panic!("{} of {n} namespaces after 300 s; apply output:\n{stdout}\n{stderr}", ours(&standby_addr).len());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let created_before_kill = ours(&standby_addr).len();
    nodes[leader_index].kill();
    let status = child.wait().expect("ctl apply");
    let (stdout, stderr) = sc.spawned_output("leader-kill-apply");
    eprintln!(
        "leader kill: {created_before_kill} of {n} namespaces existed at the kill; first apply exit {:?} after {:.1}s",
        status.code(),
        t.elapsed().as_secs_f64()
    );
    if !status.success() {
        // A clear error, naming what failed; never a panic or a silent partial success.
        assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains("failed") || stdout.contains("failed"), "no clear error:\n{stdout}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // Namespaces whose creation the dying leader did not finish are left tainted by OpenBao
        // 2.6.2 (the new leader does not finish the rollback); the re-run resumes their deletion
        // (they carry this environment's markers) and creates them again.
        // An operator re-runs once the cluster has a leader again.
        let killed = nodes[leader_index].addr.clone();
        wait(120, "a new leader", || Some(leader_of(&standby_addr)).filter(|a| !a.is_empty() && *a != killed));
        let again = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--lock-wait", "30s"]);
        eprintln!("leader kill: re-run: {}", again.stdout.lines().find(|l| l.starts_with("Finished")).unwrap_or("no interrupted deletions finished"));
        if again.status != 0 {
            // Sometimes OpenBao 2.6.2 never completes the deletion of a namespace tainted by the
            // crash, however often it is re-issued. ctl must then say exactly that, name it as
            // a conflict and touch nothing else, pointing at the remedy (a step-down).
            // Or, once deleted, OpenBao refuses to create it again because the crash left its
            // token mount in the root mount table ("new namespace conflicts with existing mount").
            let never_deleted = again.stderr.contains("still exists") && again.stderr.contains("after DELETE");
            assert!(again.stderr.contains("bao operator step-down"), "names the remedy:\n{}", again.stderr);
            let stray_mount = again.stderr.contains("new namespace conflicts with existing mount");
            assert!(never_deleted || stray_mount, "not an OpenBao leftover:\n{}\n{}", again.stdout, again.stderr);
            if never_deleted {
                assert!(again.stdout.contains("deletion in progress (ctl's own, interrupted"), "{}", again.stdout);
            }
            assert!(!again.stderr.contains("panicked"), "{}", again.stderr);
            let names = ours(&standby_addr);
            let mut unique_names = names.clone();
            unique_names.sort();
            unique_names.dedup();
            assert_eq!(unique_names.len(), names.len(), "no namespace twice");
            eprintln!(
                "leader kill: OpenBao left crash debris ({}); ctl stopped with a clear error naming it",
                if never_deleted { "a deletion it never finishes" } else { "a stray token mount" }
            );
            // The runbook's remedy (runbooks/leader_failover.md): step the active node down and
            // re-run. The next active node finishes the dropped deletions; it may then hold the
            // dead namespaces' mounts in memory ("conflicts with existing mount"), which the
            // next step-down clears. Observed: at most two step-downs. A restart of every node
            // is the runbook's fallback.
            let mut remedies = vec![];
            for remedy in ["step-down", "step-down", "restart"] {
                let leader_before = leader_of(&standby_addr);
                if remedy == "step-down" {
                    let (code, body) = put_json(&format!("{standby_addr}/v1/sys/step-down"), Some(&token), &Value::Null);
                    assert!(code < 300, "step-down: {code} {body}");
                } else {
                    for node in nodes.iter_mut() {
                        node.restart();
                    }
                    for node in nodes.iter_mut() {
                        wait(120, "unsealed after the restart", || node.seal_status().filter(|s| s["sealed"] == false));
                    }
                }
                // Usually another node takes over; the same one re-acquiring leadership has also
                // gone through a teardown and reload, so after a while any leader will do.
                let t = std::time::Instant::now();
                wait(120, "a leader after the remedy", || {
                    Some(leader_of(&standby_addr)).filter(|l| {
                        !l.is_empty() && (remedy != "step-down" || *l != leader_before || t.elapsed().as_secs() > 15)
                    })
                });
                let next = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--lock-wait", "30s"]);
                remedies.push(remedy);
                eprintln!("leader kill: after {}, apply exit {}", remedies.join(" + "), next.status);
                if next.status == 0 {
                    break;
                }
                assert!(!next.stderr.contains("panicked"), "{}", next.stderr);
                assert!(
                    next.stderr.contains("bao operator step-down") && remedy != "restart",
                    "after {}: not converged and not an OpenBao leftover:\n{}\n{}",
                    remedies.join(" + "),
                    next.stdout,
                    next.stderr
                );
            }
        }
    }
    let plan = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(plan.status, 0, "the plan after the failover must be empty:\n{}\n{}", plan.stdout, plan.stderr);
    let mut names = ours(&standby_addr);
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!((total, names.len()), (n, n), "every namespace exactly once");
    sc.assert_no_canary();
}

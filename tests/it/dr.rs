//! Disaster recovery against a private OpenBao 2.6.2 (awskms seal on moto KMS) + moto:
//! snapshot, then the three faults of the issue, then a rebuild that is killed and resumed.
//!
//! 1. apply workspaces + network + RDS; write two KV versions (canaries); `ctl dr snapshot`;
//! 2. sidecar tampered in S3 → rebuild refuses, and OpenBao still serves the data (untouched);
//! 3. disaster: bao killed and its raft data deleted, the DB instance deleted;
//! 4. KMS key disabled → rebuild stops at step 1 with the reason; nothing was started/restored;
//! 5. rebuild killed (SIGKILL) right after `openbao-start` → the same command resumes from
//!    `openbao-restore`, and refuses to converge a declaration that would replace a KV mount
//!    (the destroy guard applies to rebuilds too); with the declaration restored it finishes (7 runs in all, the refusals included); both versions read back, the DB is restored encrypted with
//!    30-day retention, and the next plan is empty.

use crate::harness::{bao_cli, fresh_stack, runtime, unique, Scenario};
use ctl::aws::Aws;
use ctl::config::AwsConnection;
use ctl::dev::BaoVersion;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Stops the bao that `ctl dr rebuild` started (detached) in the stack dir, even on panic.
struct StopRebuiltBao(PathBuf);

impl Drop for StopRebuiltBao {
    fn drop(&mut self) {
        if let Ok(state) = ctl::dev::StackState::load(&self.0) {
            runtime().block_on(state.stop_bao());
        }
    }
}

fn manifest_file(dir: &Path) -> String {
    let dr = dir.join(".ctl/dr");
    let found: Vec<_> = std::fs::read_dir(&dr)
        .unwrap_or_else(|e| panic!("{}: {e}", dr.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .collect();
    assert_eq!(found.len(), 1, "one manifest in {}", dr.display());
    found[0].display().to_string()
}

fn kv_get(stack: &ctl::dev::StackState, bao_bin: &Path, token_file: &Path, ns: &str, version: u32) -> std::process::Output {
    Command::new(bao_bin)
        .args(["kv", "get", "-field=v", &format!("-version={version}"), "secret/app"])
        .env("BAO_ADDR", &stack.bao_addr)
        .env("BAO_TOKEN", std::fs::read_to_string(token_file).unwrap())
        .env("BAO_NAMESPACE", ns)
        .stdin(Stdio::null())
        .output()
        .expect("bao kv get")
}

#[test]
fn dr_snapshot_refusals_then_killed_rebuild_resumes() {
    let stack = fresh_stack(BaoVersion::V2_6);
    let _stop = StopRebuiltBao(stack.dir.clone());
    let moto = stack.moto_endpoint.clone().expect("awskms stack runs moto");
    let state = ctl::dev::StackState::load(&stack.dir).expect("stack.json");
    let seal_key = state.kms_key_id.clone().expect("seal key");
    let env = unique("dr");
    let bucket = unique("dr-bucket");
    let db = unique("db");
    let sc = Scenario::new(&stack, &env, "");
    let q = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap();
    let yaml = format!(
        r#"openbao: {{ dev_stack: {dir} }}
aws: {{ dev_stack: {dir} }}
dr: {{ bucket: {bucket} }}
classes:
  std:
    kv: {{ path: secret, max_versions: 10 }}
    policies: [ {{ name: app-read, template: kv-read }} ]
    approle: {{ roles: {{ app: {{ token_policies: [app-read], token_ttl: 30m, token_max_ttl: 1h, secret_id_ttl: 1h, secret_id_num_uses: 1 }} }} }}
workspaces:
  - {{ name: {env}-a, class: std }}
  - {{ name: {env}-b, class: std }}
network:
  vpc_cidr: 10.60.0.0/16
  private_subnets:
    - {{ name: private-a, cidr: 10.60.10.0/24, az: us-east-1a }}
    - {{ name: private-b, cidr: 10.60.11.0/24, az: us-east-1b }}
  security_groups:
    openbao: {{ ingress: [ {{ port: 8200, cidr: 10.60.0.0/16 }} ] }}
rds:
  identifier: {db}
  engine: postgres
  instance_class: db.t3.micro
  allocated_storage: 20
  backup_retention_period: 30
  subnets: [private-a, private-b]
  kms_key: {seal_key}
"#,
        dir = q(&stack.dir)
    );
    sc.write_file(&sc.env_file(), &yaml);
    let e = sc.env_file();
    sc.ctl(&["apply", "-e", &e, "--auto-approve"]).assert_success();

    // Two versions of one secret, as canaries.
    let ns = format!("{env}-a");
    let (v1, v2) = (unique("canary-one-"), unique("canary-two-"));
    sc.canary(v1.clone());
    sc.canary(v2.clone());
    for v in [&v1, &v2] {
        let out = bao_cli(&stack, Some(&ns), &["kv", "put", "secret/app", &format!("v={v}")]);
        assert!(out.status.success(), "kv put: {}", String::from_utf8_lossy(&out.stderr));
    }

    let out = sc.ctl(&["dr", "snapshot", "-e", &e]);
    out.assert_success();
    assert!(out.stdout.contains(&format!("rds      {db} → snapshot")), "{}", out.stdout);
    let manifest = manifest_file(sc.dir());
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["seal"]["kms_key_id"], seal_key.as_str());
    assert_eq!(m["workspaces"], 2);

    let dry = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest, "--dry-run"]);
    dry.assert_success();
    assert!(dry.stdout.contains(" 1. kms") && dry.stdout.contains("12. alarms"), "{}", dry.stdout);

    let aws = runtime()
        .block_on(Aws::connect(&AwsConnection::Account { region: "us-east-1".into(), endpoint: Some(moto.clone()) }, &env))
        .expect("aws");
    let s3 = aws_sdk_s3::Client::new(&aws.sdk);
    let sidecar_key = m["openbao"]["sidecar_key"].as_str().unwrap().to_string();
    let put_sidecar = |text: String| {
        runtime()
            .block_on(s3.put_object().bucket(&bucket).key(&sidecar_key).body(text.into_bytes().into()).send())
            .expect("put sidecar");
    };

    // A rebuild against the healthy stack would throw away live data: refused without a flag.
    let out = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest]);
    out.assert_status(1);
    assert!(out.stderr.contains("running with live data") && out.stderr.contains("--replace-live-openbao"), "{}", out.stderr);

    // An apply holds the lock: a rebuild would replace the state it works on → refused, even
    // with --replace-live-openbao (a raft restore used to replace the lock silently).
    let now = ctl::openbao::state::now_secs();
    sc.write_file("lock.json", &format!(r#"{{"id":"feedface","owner":"someone-else","acquired_at":{now},"expires_at":{}}}"#, now + 300));
    let put = bao_cli(&stack, None, &["kv", "put", "-mount=ctl-state", &format!("locks/{env}"), &format!("@{}", sc.path("lock.json"))]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let out = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest, "--replace-live-openbao"]);
    out.assert_status(1);
    assert!(out.stderr.contains("is locked by someone-else") && out.stderr.contains("nothing was touched"), "{}", out.stderr);
    sc.ctl(&["lock", "break", "-e", &e, "--id", "feedface"]).assert_success();

    // Fault: the sidecar no longer matches → refused, nothing touched.
    put_sidecar(format!("{}  raft.snap\n", "0".repeat(64)));
    let out = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest, "--replace-live-openbao"]);
    out.assert_status(1);
    assert!(out.stderr.contains("sidecar mismatch") && out.stderr.contains("refusing to restore"), "{}", out.stderr);
    let still = kv_get(&state, &stack.bao_bin, &stack.token_file, &ns, 2);
    assert_eq!(String::from_utf8_lossy(&still.stdout).trim(), v2, "OpenBao untouched after the refusal");
    put_sidecar(format!("{}  raft.snap\n", m["openbao"]["sha256"].as_str().unwrap()));

    // The disaster: OpenBao's data and the database are gone.
    runtime().block_on(ctl::dev::wipe_bao_data(&stack.dir)).expect("wipe");
    let rds = aws_sdk_rds::Client::new(&aws.sdk);
    runtime()
        .block_on(rds.delete_db_instance().db_instance_identifier(&db).skip_final_snapshot(true).send())
        .expect("delete db");
    let kms = aws_sdk_kms::Client::new(&aws.sdk);

    // Fault: the seal key is disabled → stop at step 1, before anything is created or started.
    runtime().block_on(kms.disable_key().key_id(&seal_key).send()).expect("disable key");
    let out = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest]);
    out.assert_status(1);
    assert!(out.stderr.contains("is disabled") && out.stderr.contains("nothing was touched"), "{}", out.stderr);
    assert!(!out.stdout.contains("[ 3/12]"), "no step after the KMS check ran: {}", out.stdout);
    assert!(!ctl::dev::StackState::load(&stack.dir).unwrap().bao_alive(), "bao was not started");
    assert!(!runtime().block_on(ctl::aws::rds::instance_exists(&aws, &db)).unwrap(), "the DB was not restored");
    runtime().block_on(kms.enable_key().key_id(&seal_key).send()).expect("enable key");

    // Killed right after OpenBao was started on empty storage.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctl"))
        .args(["dr", "rebuild", "-e", &e, "--from", &manifest])
        .current_dir(sc.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ctl dr rebuild");
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let stop = line.contains("openbao-start");
        seen.push(line);
        if stop {
            child.kill().expect("kill");
            break;
        }
    }
    child.wait().expect("reap");
    assert!(seen.iter().any(|l| l.contains("rds") && l.contains("restored")), "{seen:#?}");

    // The declaration now moves a workspace's KV mount: converging would replace it and lose
    // the data just restored. The rebuild goes through the apply engine's guard and refuses.
    let moved = yaml.replace(&format!("  - {{ name: {env}-a, class: std }}"), &format!("  - {{ name: {env}-a, class: std, kv: {{ path: moved }} }}"));
    assert_ne!(moved, yaml);
    sc.write_file(&e, &moved);
    let out = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest]);
    out.assert_status(1);
    assert!(out.stderr.contains("refusing to destroy data") && out.stderr.contains(&format!("workspace.{env}-a.kv")), "{}", out.stderr);
    assert!(out.stdout.contains("openbao-restore") && out.stdout.contains("unsealed by KMS"), "{}", out.stdout);
    let state_now = ctl::dev::StackState::load(&stack.dir).unwrap();
    let kept = kv_get(&state_now, &stack.bao_bin, &stack.token_file, &ns, 2);
    assert_eq!(String::from_utf8_lossy(&kept.stdout).trim(), v2, "the restored data was not destroyed");
    sc.write_file(&e, &yaml);

    let out = sc.ctl(&["dr", "rebuild", "-e", &e, "--from", &manifest]);
    out.assert_success();
    for slug in ["snapshot", "network", "rds", "openbao-start", "openbao-restore"] {
        assert!(
            out.stdout.lines().any(|l| l.contains(slug) && l.contains("done in an earlier run")),
            "{slug} not resumed past:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("in 7 run(s)") && out.stdout.contains("RTO") && out.stdout.contains("RPO"), "{}", out.stdout);

    let state = ctl::dev::StackState::load(&stack.dir).unwrap();
    for (version, want) in [(1, &v1), (2, &v2)] {
        let got = kv_get(&state, &stack.bao_bin, &stack.token_file, &ns, version);
        assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), want.as_str(), "version {version} after the rebuild");
    }
    let p = runtime().block_on(ctl::aws::rds::protection(&aws, &db)).unwrap().expect("DB restored");
    assert!(p.storage_encrypted, "restored DB is encrypted");
    assert_eq!(p.backup_retention_period, 30);
    let plan = sc.ctl(&["plan", "-e", &e, "--detailed-exitcode"]);
    assert_eq!(plan.status, 0, "no changes after the rebuild:\n{}\n{}", plan.stdout, plan.stderr);
    sc.assert_no_canary();
}

//! `ctl dr restore-workspace` against a private OpenBao 2.6.2 (awskms seal on moto KMS) + moto:
//! one workspace's secrets come back from a snapshot as new versions; the other workspace, the
//! live versions and the keys created since are untouched. ctl logs in as CI does (JWT, role
//! `ctl-<env>-restore`), live and in the scratch server booted from the snapshot.

use crate::harness::{bao_cli, fresh_stack, runtime, unique, Scenario};
use ctl::aws::Aws;
use ctl::config::AwsConnection;
use ctl::dev::BaoVersion;
use serde_json::Value;

fn kv(stack: &crate::harness::TestStack, ns: &str, args: &[&str]) -> String {
    let out = bao_cli(stack, Some(ns), args);
    assert!(out.status.success(), "bao {args:?} in {ns}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn metadata(stack: &crate::harness::TestStack, ns: &str, key: &str) -> Value {
    serde_json::from_str(&kv(stack, ns, &["kv", "metadata", "get", "-format=json", "-mount=secret", key])).expect("metadata json")
}

fn value(stack: &crate::harness::TestStack, ns: &str, key: &str, version: Option<u64>) -> String {
    let v = version.map(|v| format!("-version={v}"));
    let mut args = vec!["kv", "get", "-field=v", "-mount=secret"];
    args.extend(v.as_deref());
    args.push(key);
    kv(stack, ns, &args)
}

#[test]
fn restore_one_workspace_from_a_snapshot() {
    let stack = fresh_stack(BaoVersion::V2_6);
    let state = ctl::dev::StackState::load(&stack.dir).expect("stack.json");
    let seal_key = state.kms_key_id.clone().expect("seal key");
    let env = unique("rs");
    let bucket = unique("rs-bucket");
    let q = |p: &std::path::Path| serde_json::to_string(&p.display().to_string()).unwrap();
    let body = |extra: &str| {
        format!(
            r#"aws: {{ dev_stack: {dir} }}
dr: {{ bucket: {bucket} }}
classes:
  std: {{ kv: {{ path: secret, max_versions: 5 }} }}
  strict: {{ kv: {{ path: secret, max_versions: 5, cas_required: true }} }}
workspaces:
  - {{ name: {env}-a, class: strict }}
  - {{ name: {env}-b, class: std }}
{extra}"#,
            dir = q(&stack.dir)
        )
    };
    let sc = Scenario::new(&stack, &env, &body(""));
    let e = sc.env_file();
    sc.ctl(&["apply", "-e", &e, "--auto-approve"]).assert_success();
    let (a, b) = (format!("{env}-a"), format!("{env}-b"));

    // Before the snapshot. Workspace a requires check-and-set.
    let canary = |name: &str| {
        let v = unique(&format!("canary-{name}-"));
        sc.canary(v.clone());
        v
    };
    let put = |ns: &str, key: &str, cas: Option<u32>| -> String {
        let v = canary(key.trim_start_matches("app/"));
        let cas = cas.map(|c| format!("-cas={c}"));
        let mut args = vec!["kv", "put", "-mount=secret"];
        args.extend(cas.as_deref());
        let pair = format!("v={v}");
        args.extend([key, pair.as_str()]);
        kv(&stack, ns, &args);
        v
    };
    let ov1 = put(&a, "app/overwritten", Some(0));
    let ov2 = put(&a, "app/overwritten", Some(1));
    let del1 = put(&a, "app/deleted", Some(0));
    let gone1 = put(&a, "app/gone", Some(0));
    kv(&stack, &a, &["kv", "metadata", "put", "-mount=secret", "-custom-metadata=owner=team-a", "app/gone"]);
    let ds1 = put(&a, "app/destroyed", Some(0));
    let same1 = put(&a, "app/same", Some(0));
    let full: Vec<String> = (0..5).map(|i| put(&a, "app/full", Some(i))).collect();
    put(&b, "app/x", None);

    // The snapshot, through the dev stack's root token (the manifest records its seal key).
    sc.write_file(&format!("snap/{env}.yaml"), &format!("openbao: {{ dev_stack: {} }}\n{}", q(&stack.dir), body("")));
    let out = sc.ctl(&["dr", "snapshot", "-e", &format!("snap/{env}.yaml")]);
    out.assert_success();
    let manifest = std::fs::read_dir(sc.dir().join(".ctl/dr"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .expect("manifest")
        .display()
        .to_string();

    // The mistakes, after the snapshot.
    let ov3 = put(&a, "app/overwritten", Some(2));
    kv(&stack, &a, &["kv", "delete", "-mount=secret", "app/deleted"]);
    kv(&stack, &a, &["kv", "metadata", "delete", "-mount=secret", "app/gone"]);
    kv(&stack, &a, &["kv", "destroy", "-mount=secret", "-versions=1", "app/destroyed"]);
    let f6 = put(&a, "app/full", Some(5));
    let new1 = put(&a, "app/new", Some(0));
    let bx2 = put(&b, "app/x", None);
    let b_before = metadata(&stack, &b, "app/x");

    let restore = |extra: &[&str]| {
        let mut args = vec!["dr", "restore-workspace", a.as_str(), "-e", e.as_str(), "--from", manifest.as_str()];
        args.extend(extra);
        sc.ctl(&args)
    };

    // A new version of app/full would evict live v2: refused unless allowed for that key.
    let out = restore(&["--auto-approve"]);
    out.assert_status(1);
    assert!(out.stderr.contains("app/full (drops live v2)") && out.stderr.contains("--allow-eviction"), "{}", out.stderr);
    for line in [
        "+ app/gone  missing live: recreate from snapshot v1 with its custom metadata",
        "~ app/deleted  live v1 is deleted: write snapshot v1 as v2",
        "~ app/overwritten  live v3 differs from snapshot v2: write it as v4",
        "~ app/destroyed  live v1 is destroyed: write snapshot v1 as v2",
        "~ app/full  live v6 differs from snapshot v5: write it as v7; drops live v2 (max_versions)",
    ] {
        assert!(out.stdout.contains(line), "{line:?} missing from:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("app/same"), "unchanged keys are not listed:\n{}", out.stdout);
    assert!(out.stdout.contains("1 key(s) created since the snapshot are left as they are"), "{}", out.stdout);
    assert!(!bao_cli(&stack, Some(&a), &["kv", "metadata", "get", "-mount=secret", "app/gone"]).status.success(), "nothing was written");

    let out = restore(&["--auto-approve", "--allow-eviction", "app/full"]);
    out.assert_success();
    assert!(out.stdout.contains("Restored 5 key(s)"), "{}", out.stdout);
    assert_eq!(value(&stack, &a, "app/overwritten", None), ov2);
    assert_eq!(value(&stack, &a, "app/overwritten", Some(3)), ov3, "live versions are never rewritten");
    assert_eq!(value(&stack, &a, "app/deleted", None), del1);
    assert_eq!(value(&stack, &a, "app/gone", None), gone1);
    assert_eq!(metadata(&stack, &a, "app/gone")["data"]["custom_metadata"]["owner"], "team-a");
    assert_eq!(value(&stack, &a, "app/destroyed", None), ds1);
    assert_eq!(value(&stack, &a, "app/full", None), full[4]);
    assert_eq!(value(&stack, &a, "app/full", Some(6)), f6);
    assert_eq!(value(&stack, &a, "app/new", None), new1, "a key created since is left alone");
    assert_eq!(metadata(&stack, &a, "app/same")["data"]["current_version"], 1);
    assert_eq!(value(&stack, &a, "app/same", None), same1);
    assert_eq!(metadata(&stack, &b, "app/x")["data"], b_before["data"], "the other workspace is untouched");
    assert_eq!(value(&stack, &b, "app/x", None), bx2);

    // Idempotent.
    let out = restore(&["--auto-approve"]);
    out.assert_success();
    assert!(out.stdout.contains("0 to restore, 6 already as in the snapshot"), "{}", out.stdout);

    // The scheduled drill: the snapshot restores and holds what was counted when it was taken
    // (2 namespaces; 6 + 1 keys; 2+1+1+1+1+5 + 1 versions written).
    let out = sc.ctl(&["dr", "verify-snapshot", "-e", &e, "--from", "latest"]);
    out.assert_success();
    for line in ["ok  2 namespaces, 7 KV keys, 12 versions written", "sampled versions read back", "unsealed by KMS key", "Time to readable"] {
        assert!(out.stdout.contains(line), "{line:?} missing from:
{}", out.stdout);
    }
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert!(!m["census"]["sample"].as_array().unwrap().is_empty(), "{m}");
    m["census"]["before"]["keys"] = 100.into();
    m["census"]["after"]["keys"] = 100.into();
    sc.write_file("miscounted.json", &serde_json::to_string(&m).unwrap());
    let out = sc.ctl(&["dr", "verify-snapshot", "-e", &e, "--from", "miscounted.json"]);
    out.assert_status(1);
    assert!(out.stderr.contains("KV keys: 7 in the snapshot, 100 counted live when it was taken"), "{}", out.stderr);

    // --as-of: the version in effect then (v1 of app/overwritten), only for the given path.
    let t1 = metadata(&stack, &a, "app/overwritten")["data"]["versions"]["1"]["created_time"].as_str().unwrap().to_string();
    let out = restore(&["--auto-approve", "--as-of", &t1, "--path", "app/over*"]);
    out.assert_success();
    assert!(out.stdout.contains("live v4 differs from snapshot v1: write it as v5") && out.stdout.contains("Restored 1 key(s)"), "{}", out.stdout);
    assert_eq!(value(&stack, &a, "app/overwritten", None), ov1);

    // Refusals, before anything is written.
    let out = sc.ctl(&["dr", "restore-workspace", "nope", "-e", &e, "--from", &manifest, "--auto-approve"]);
    out.assert_status(1);
    assert!(out.stderr.contains("no workspace \"nope\""), "{}", out.stderr);
    let out = restore(&["--as-of", "yesterday"]);
    out.assert_status(1);
    assert!(out.stderr.contains("--as-of") && out.stderr.contains("RFC 3339"), "{}", out.stderr);
    // A tampered manifest: the snapshot no longer matches.
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["openbao"]["sha256"] = Value::String("0".repeat(64));
    sc.write_file("tampered.json", &serde_json::to_string(&m).unwrap());
    let out = sc.ctl(&["dr", "restore-workspace", &a, "-e", &e, "--from", "tampered.json", "--auto-approve"]);
    out.assert_status(1);
    assert!(out.stderr.contains("sidecar mismatch") && out.stderr.contains("refusing to restore"), "{}", out.stderr);
    // The seal key is disabled: the snapshot cannot be unsealed.
    let aws = runtime()
        .block_on(Aws::connect(&AwsConnection::Account { region: "us-east-1".into(), endpoint: stack.moto_endpoint.clone() }, &env))
        .expect("aws");
    let kms = aws_sdk_kms::Client::new(&aws.sdk);
    runtime().block_on(kms.disable_key().key_id(&seal_key).send()).expect("disable key");
    let out = restore(&["--auto-approve"]);
    runtime().block_on(kms.enable_key().key_id(&seal_key).send()).expect("enable key");
    out.assert_status(1);
    assert!(out.stderr.contains("is disabled"), "{}", out.stderr);
    // A workspace the snapshot does not have.
    sc.write_env(&body(&format!("  - {{ name: {env}-c, class: std }}\n")));
    sc.ctl(&["apply", "-e", &e, "--auto-approve"]).assert_success();
    let out = sc.ctl(&["dr", "restore-workspace", &format!("{env}-c"), "-e", &e, "--from", &manifest, "--auto-approve"]);
    out.assert_status(1);
    assert!(out.stderr.contains("the snapshot has no namespace") && out.stderr.contains("nothing was written"), "{}", out.stderr);

    let leftovers: Vec<_> = std::fs::read_dir(sc.dir().join(".ctl/dr")).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.path()).collect();
    assert!(leftovers.is_empty(), "scratch servers leave nothing behind: {leftovers:?}");
    sc.assert_no_canary();
}

//! ctl's own access to OpenBao: JWT and AppRole logins, the plan/apply policies `ctl bootstrap`
//! writes (read-only plans; every path of the apply policy needed), `BAO_*` defaults, and
//! login tokens revoked at exit. Every other test runs ctl the same way (see the harness).

use crate::harness::{bao_cli, fresh_stack, oidc, push_to_main, stack, unique, Scenario, TestStack};
use ctl::dev::BaoVersion;

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "bao failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn namespaces(stack: &TestStack, parent: Option<&str>) -> String {
    String::from_utf8_lossy(&bao_cli(stack, parent, &["namespace", "list", "-format=json"]).stdout).into_owned()
}

/// Every kind, in two workspaces (so `ctl verify` has a pair), one policy templated.
fn body(workspaces: &[&str], max_versions: u32, ttl: &str, rate: u32) -> String {
    let mut s = format!(
        r#"classes:
  std:
    kv: {{ path: secret, max_versions: {max_versions} }}
    policies:
      - {{ name: app-read, template: kv-read }}
    approle:
      roles:
        app: {{ token_policies: [app-read], token_ttl: {ttl}, token_max_ttl: 4h }}
    transit: {{ keys: [ {{ name: app, auto_rotate_period: {ttl} }} ] }}
    quota: {{ rate: {rate} }}
workspaces:
"#
    );
    for w in workspaces {
        s.push_str(&format!("  - {{ name: {w}, class: std }}\n"));
    }
    s
}

#[test]
fn jwt_roles_bind_plans_to_reviews_and_the_plan_policy_cannot_write() {
    let stack = stack(BaoVersion::V2_6);
    let env = unique("env");
    let ws = unique("w");
    let sc = Scenario::new(stack, &env, &body(&[&ws], 5, "1h", 100));
    // A pull request's token logs in to the plan role, plans and signs, but cannot apply.
    let pr = oidc().token(&serde_json::json!({"repository": "ctl/tests", "event_name": "pull_request", "ref": "refs/pull/7/merge"}));
    sc.canary(pr.clone());
    sc.write_file("ci/pr.jwt", &pr);
    sc.write_env_auth("{ method: jwt, jwt_file: ci/pr.jwt }", &body(&[&ws], 5, "1h", 100));
    sc.ctl(&["plan", "-e", &sc.env_file(), "--out", "plan.json"]).assert_status(0);
    let refused = sc.ctl(&["apply", "plan.json", "-e", &sc.env_file()]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains(&format!("role ctl-{env}-apply")) && refused.stderr.contains("bound claim"),
        "{}",
        refused.stderr
    );
    // Even a push token, told to use the plan role, cannot write: the policy has no write path.
    sc.write_env_auth(&format!("{{ method: jwt, role: ctl-{env}-plan, jwt_file: ci/oidc.jwt }}"), &body(&[&ws], 5, "1h", 100));
    let denied = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    denied.assert_status(1);
    assert!(denied.stderr.contains("permission denied: ctl's token needs"), "{}", denied.stderr);
    assert!(denied.stderr.contains("on path \"ctl-state/config\""), "{}", denied.stderr);
    assert!(!namespaces(stack, None).contains(&ws), "nothing was written");
    // The policies it ran under are the rendered ones.
    let rendered = sc.ctl(&["render", "ctl-policy", "-e", &sc.env_file(), "--role", "plan"]);
    let live = ok(bao_cli(stack, None, &["policy", "read", &format!("ctl-{env}-plan")]));
    assert!(live.contains(rendered.stdout.trim()), "{live}");
    // Its one write: the record of a clean full drift check (what `--refresh changed` trusts).
    let stanzas: Vec<&str> = rendered.stdout.split("\n\n").filter(|st| !st.contains(&format!("path \"ctl-state/data/refresh/{env}\""))).collect();
    assert_eq!(stanzas.len() + 1, rendered.stdout.split("\n\n").count(), "{}", rendered.stdout);
    for line in stanzas.iter().flat_map(|st| st.lines()).filter(|l| l.contains("capabilities")) {
        assert!(!["create", "delete", "patch", "sudo"].iter().any(|c| line.contains(c)), "{line}");
    }
    // The apply role applies.
    sc.write_env(&body(&[&ws], 5, "1h", 100));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    sc.assert_no_canary();
}

#[test]
fn bootstrap_is_idempotent_and_its_dry_run_changes_nothing() {
    let stack = stack(BaoVersion::V2_7);
    let env = unique("env");
    let sc = Scenario::new(stack, &env, "workspaces: []\n");
    let pubkey = oidc().public_key_file().display().to_string();
    let file = sc.env_file();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let base = ["bootstrap", "-e", &file, "--jwt-issuer", crate::harness::OIDC_ISSUER, "--jwt-validation-pubkey", &pubkey];
        base.iter().map(|s| s.to_string()).chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let root = stack.token();
    let run = |extra: &[&'static str], token: Option<&str>| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        match token {
            Some(t) => sc.ctl_with_env(&a, &[("BAO_TOKEN", t)]),
            None => sc.ctl(&a),
        }
    };
    // The harness bootstrapped with --bound-claims; without it the roles change: dry run first.
    let dry = run(&["--dry-run"], Some(&root));
    dry.assert_success();
    assert!(dry.stdout.contains(&format!("update  JWT role auth/jwt/role/ctl-{env}-plan")), "{}", dry.stdout);
    assert!(dry.stdout.contains("Nothing was changed (--dry-run)"), "{}", dry.stdout);
    let role = ok(bao_cli(stack, None, &["read", "-format=json", &format!("auth/jwt/role/ctl-{env}-apply")]));
    assert!(role.contains("ctl/tests"), "the dry run changed the role: {role}");
    run(&[], Some(&root)).assert_success();
    let again = run(&[], Some(&root));
    again.assert_success();
    assert!(again.stdout.contains("0 created, 0 updated"), "{}", again.stdout);
    // Without a token, bootstrap says what it needs.
    let bare = run(&[], None);
    bare.assert_status(1);
    assert!(bare.stderr.contains("$BAO_TOKEN"), "{}", bare.stderr);
    sc.assert_no_canary();
}

/// JWT roles have no field for a marker: bootstrap records the ones it creates and leaves any
/// other role of its names alone, until told to adopt it.
#[test]
fn bootstrap_leaves_login_roles_it_has_no_record_of_alone() {
    let stack = stack(BaoVersion::V2_6);
    let env = unique("env");
    let sc = Scenario::new(stack, &env, "workspaces: []\n");
    let pubkey = oidc().public_key_file().display().to_string();
    let file = sc.env_file();
    let root = stack.token();
    let run = |extra: &[&str]| {
        let mut a = vec!["bootstrap", "-e", &file, "--jwt-issuer", crate::harness::OIDC_ISSUER, "--jwt-validation-pubkey", &pubkey, "--bound-claims", "repository=ctl/tests"];
        a.extend(extra);
        sc.ctl_with_env(&a, &[("BAO_TOKEN", &root)])
    };
    run(&[]).assert_success();
    // As an older ctl left them, or someone made them: roles of ctl's names, no records.
    ok(bao_cli(stack, None, &["kv", "metadata", "delete", "-mount=ctl-state", &format!("bootstrap/{env}")]));
    let restore = format!("auth/jwt/role/ctl-{env}-restore");
    ok(bao_cli(stack, None, &["write", &restore, "role_type=jwt", "user_claim=sub", "bound_audiences=someone-else", "token_policies=default"]));

    let kept = run(&[]);
    kept.assert_success();
    assert!(kept.stdout.contains(&format!("keep    JWT role {restore}")), "{}", kept.stdout);
    assert!(kept.stdout.contains("--adopt-jwt-roles"), "{}", kept.stdout);
    assert!(kept.stdout.contains("0 created, 0 updated"), "{}", kept.stdout);
    let role = ok(bao_cli(stack, None, &["read", "-format=json", &restore]));
    assert!(role.contains("someone-else"), "a role ctl has no record of was rewritten: {role}");

    // Adopting is explicit; afterwards the roles are ctl's and converge.
    let adopted = run(&["--adopt-jwt-roles"]);
    adopted.assert_success();
    assert!(adopted.stdout.contains(&format!("update  JWT role {restore}")), "{}", adopted.stdout);
    let role = ok(bao_cli(stack, None, &["read", "-format=json", &restore]));
    assert!(!role.contains("someone-else"), "{role}");
    let again = run(&[]);
    again.assert_success();
    assert!(again.stdout.contains("0 created, 0 updated") && !again.stdout.contains("keep    JWT role"), "{}", again.stdout);
}

#[test]
fn approle_login_unwraps_a_wrapped_secret_id_once() {
    let stack = stack(BaoVersion::V2_6);
    let env = unique("env");
    let ws = unique("w");
    let sc = Scenario::new(stack, &env, &body(&[&ws], 5, "1h", 100));
    let mount = unique("ctl-ar");
    ok(bao_cli(stack, None, &["auth", "enable", &format!("-path={mount}"), "approle"]));
    let role = format!("auth/{mount}/role/ctl");
    ok(bao_cli(stack, None, &["write", &role, &format!("token_policies=ctl-{env}-apply"), "token_ttl=10m"]));
    let role_id = ok(bao_cli(stack, None, &["read", "-field=role_id", &format!("{role}/role-id")]));
    let wrapped = ok(bao_cli(stack, None, &["write", "-f", "-wrap-ttl=120s", "-field=wrapping_token", &format!("{role}/secret-id")]));
    sc.canary(wrapped.trim());
    sc.write_file("ci/role-id", role_id.trim());
    sc.write_file("ci/secret-id", wrapped.trim());
    let auth = format!("{{ method: approle, mount: {mount}, role_id_file: ci/role-id, secret_id_file: ci/secret-id }}");
    sc.write_env_auth(&auth, &body(&[&ws], 5, "1h", 100));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    assert!(namespaces(stack, None).contains(&ws));
    // The wrapping token was single-use.
    let again = sc.ctl(&["plan", "-e", &sc.env_file()]);
    again.assert_status(1);
    assert!(again.stderr.contains(&format!("with AppRole (auth/{mount})")), "{}", again.stderr);
    // A plain secret-id works every time.
    let plain = ok(bao_cli(stack, None, &["write", "-f", "-field=secret_id", &format!("{role}/secret-id")]));
    sc.canary(plain.trim());
    sc.write_file("ci/secret-id", plain.trim());
    sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).assert_status(0);
    sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]).assert_status(0);
    sc.assert_no_canary();
}

/// `openbao: {}`: the address, namespace and token come from `BAO_ADDR`, `BAO_NAMESPACE` and
/// `BAO_TOKEN`; with a namespace, everything ctl does (its policies, state, workspaces) is
/// inside it.
#[test]
fn bao_variables_fill_what_the_file_leaves_open() {
    let stack = stack(BaoVersion::V2_6);
    let env = unique("env");
    let ws = unique("w");
    let platform = unique("plat");
    ok(bao_cli(stack, None, &["namespace", "create", &platform]));
    let sc = Scenario::new(stack, &env, "workspaces: []\n");
    // Quotas live in the root namespace only: refused inside one (after bootstrap, below).
    let with_quota = format!("openbao: {{}}\n{}", body(&[&ws], 5, "1h", 100));
    let yaml = with_quota.replace("    quota: { rate: 100 }\n", "");
    sc.write_file(&sc.env_file(), &yaml);
    let root = stack.token();
    let pubkey = oidc().public_key_file();
    let vars = [("BAO_ADDR", stack.addr.as_str()), ("BAO_NAMESPACE", platform.as_str()), ("BAO_TOKEN", root.as_str())];
    let args = ["bootstrap", "-e", &sc.env_file(), "--jwt-issuer", crate::harness::OIDC_ISSUER, "--jwt-validation-pubkey", pubkey.to_str().unwrap()];
    sc.ctl_with_env(&args, &vars).assert_success();
    // A JWT login token of the apply role, in BAO_TOKEN.
    let jwt = oidc().token(&push_to_main());
    sc.canary(jwt.clone());
    let login = bao_cli(stack, Some(&platform), &["write", "-field=token", "auth/jwt/login", &format!("role=ctl-{env}-apply"), &format!("jwt={jwt}")]);
    let token = ok(login).trim().to_string();
    sc.canary(token.clone());
    let vars = [("BAO_ADDR", stack.addr.as_str()), ("BAO_NAMESPACE", platform.as_str()), ("BAO_TOKEN", token.as_str())];
    sc.ctl_with_env(&["apply", "-e", &sc.env_file(), "--auto-approve"], &vars).assert_success();
    assert!(namespaces(stack, Some(&platform)).contains(&ws), "{}", namespaces(stack, Some(&platform)));
    assert!(!namespaces(stack, None).contains(&ws));
    sc.ctl_with_env(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"], &vars).assert_status(0);
    sc.write_file(&sc.env_file(), &with_quota);
    let quota = sc.ctl_with_env(&["plan", "-e", &sc.env_file()], &vars);
    quota.assert_status(1);
    assert!(quota.stderr.contains(&format!("workspace.{ws}.quota is a rate-limit quota")), "{}", quota.stderr);
    // Nothing set: one clear line.
    let bare = sc.ctl(&["plan", "-e", &sc.env_file()]);
    bare.assert_status(1);
    assert!(bare.stderr.contains("set openbao.address or BAO_ADDR"), "{}", bare.stderr);
    sc.assert_no_canary();
}

/// A token ctl obtains by logging in is revoked when it exits (counted on a server of its own).
#[test]
fn login_tokens_are_revoked_at_exit() {
    let owned = fresh_stack(BaoVersion::V2_7);
    let env = unique("env");
    let sc = Scenario::new(&owned, &env, &body(&[&unique("w")], 5, "1h", 100));
    let count = || ok(bao_cli(&owned, None, &["list", "-format=json", "auth/token/accessors"])).matches('"').count() / 2;
    let before = count();
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    sc.ctl(&["plan", "-e", &sc.env_file()]).assert_success();
    assert_eq!(count(), before, "ctl left login tokens behind");
    // The count does see a login that is not revoked.
    let jwt = oidc().token(&push_to_main());
    ok(bao_cli(&owned, None, &["write", "auth/jwt/login", &format!("role=ctl-{env}-plan"), &format!("jwt={jwt}")]));
    assert_eq!(count(), before + 1);
}

/// The policy without the stanza of `path` (and the comment lines above it).
fn without(policy: &str, path: &str) -> String {
    let stanzas: Vec<&str> = policy.split("\n\n").collect();
    let kept: Vec<&str> = stanzas.into_iter().filter(|s| !s.contains(&format!("path \"{path}\" {{"))).collect();
    kept.join("\n\n")
}

/// Plan, apply, verify, read the journal and lock, adopt foreign mounts, update every kind,
/// delete two workspaces: everything ctl's apply policy is for. With `removed`, that path is
/// taken out of both policies first. Returns whether every command succeeded, and the
/// transcript.
fn exercise(stack: &TestStack, removed: Option<&str>) -> (bool, String) {
    let env = unique("min");
    let [w1, w2, w3] = [unique("m"), unique("m"), unique("m")];
    let sc = Scenario::new(stack, &env, &body(&[&w1, &w2], 5, "1h", 100));
    if let Some(path) = removed {
        let path = &path.replace("{env}", &env);
        for role in ["plan", "apply"] {
            let policy = sc.ctl(&["render", "ctl-policy", "-e", &sc.env_file(), "--role", role]).stdout;
            let file = format!("{role}.hcl");
            sc.write_file(&file, &without(&policy, path));
            ok(bao_cli(stack, None, &["policy", "write", &format!("ctl-{env}-{role}"), &sc.path(&file)]));
        }
        sc.keep_policies();
    }
    // A namespace with a KV mount and an AppRole mount ctl did not create.
    ok(bao_cli(stack, None, &["namespace", "create", &w3]));
    ok(bao_cli(stack, Some(&w3), &["secrets", "enable", "-path=secret", "kv-v2"]));
    ok(bao_cli(stack, Some(&w3), &["auth", "enable", "approle"]));
    let file = sc.env_file();
    let steps: Vec<Box<dyn Fn() -> bool>> = vec![
        Box::new(|| sc.ctl(&["plan", "-e", &file, "--out", "plan.json"]).success()),
        Box::new(|| sc.ctl(&["apply", "plan.json", "-e", &file, "--lock-wait", "1s"]).success()),
        Box::new(|| sc.ctl(&["verify", "-e", &file]).success()),
        Box::new(|| sc.ctl(&["journal", "-e", &file]).success()),
        Box::new(|| sc.ctl(&["lock", "status", "-e", &file]).success()),
        Box::new(|| {
            sc.write_env(&body(&[&w1, &w2, &w3], 5, "1h", 100));
            // The namespace first: ctl looks inside a namespace only once it is its own.
            let namespace = ["adopt", "-e", &file, &format!("workspace.{w3}.namespace")];
            let mounts = ["adopt", "-e", &file, &format!("workspace.{w3}.kv"), &format!("workspace.{w3}.auth")];
            sc.ctl(&namespace).success() && sc.ctl(&mounts).success() && sc.ctl(&["apply", "-e", &file, "--auto-approve", "--lock-wait", "1s"]).success()
        }),
        Box::new(|| {
            sc.write_env(&body(&[&w1, &w2, &w3], 7, "2h", 200));
            sc.ctl(&["apply", "-e", &file, "--auto-approve", "--lock-wait", "1s"]).success()
        }),
        Box::new(|| {
            sc.write_env(&body(&[&w1], 7, "2h", 200));
            let destroy = ["apply", "-e", &file, "--auto-approve", "--lock-wait", "1s", "--allow-destroy", &format!("workspace.{w2}.namespace"), "--allow-destroy", &format!("workspace.{w3}.namespace")];
            sc.ctl(&destroy).success()
        }),
        Box::new(|| sc.ctl(&["plan", "-e", &file, "--detailed-exitcode"]).status == 0),
        // That clean full plan recorded the drift check a pull request's plan trusts digests on.
        Box::new(|| {
            let out = sc.ctl(&["plan", "-e", &file, "--refresh", "changed", "--detailed-exitcode"]);
            out.status == 0 && out.stdout.contains("trusted as applied")
        }),
    ];
    let all = steps.iter().all(|step| step());
    (all, sc.transcript())
}

/// Minimality: the full apply policy runs the whole exercise; without any one of its paths,
/// some command fails and a permission error names that path.
#[test]
fn every_path_of_the_apply_policy_is_needed() {
    let stack = stack(BaoVersion::V2_6);
    let (all, transcript) = exercise(stack, None);
    assert!(all, "the full policy does not run the exercise:\n{transcript}");
    let probe_env = unique("env");
    let probe = Scenario::new(stack, &probe_env, "workspaces: []\n");
    let policy = probe.ctl(&["render", "ctl-policy", "-e", &probe.env_file()]).stdout;
    // With the environment's name as a placeholder: each exercise has its own environment.
    let paths: Vec<String> = policy
        .lines()
        .filter_map(|l| l.strip_prefix("path \"")?.split('"').next().map(|p| p.replace(&probe_env, "{env}")))
        .collect();
    assert!(paths.len() >= 25, "{policy}");
    let next = std::sync::Mutex::new(paths.clone());
    let unneeded = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let Some(path) = next.lock().unwrap().pop() else { return };
                let (all, transcript) = exercise(stack, Some(&path));
                let env = transcript.split("-e environments/").nth(1).and_then(|t| t.split(".yaml").next()).unwrap_or_default();
                let named = transcript.contains(&format!("on path \"{}\"", path.replace("{env}", env)));
                if all || !named {
                    unneeded.lock().unwrap().push(format!("{path}: every command {}, permission error naming it: {named}\n{transcript}", if all { "succeeded" } else { "did not succeed" }));
                }
            });
        }
    });
    let unneeded = unneeded.into_inner().unwrap();
    assert!(unneeded.is_empty(), "{} of {} paths are not shown to be needed:\n{}", unneeded.len(), paths.len(), unneeded.join("\n"));
}

//! Unit tests: loading, merging, every validation error with its exact position, the value
//! types, and the locate trick. No network.

use super::*;
use std::path::{Path, PathBuf};

/// A scratch tree: `environments/test.yaml` plus any other files, relative to a temp dir.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        for (rel, text) in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
        }
        Tree { _tmp: tmp, root }
    }

    fn env(&self) -> PathBuf {
        self.root.join("environments/test.yaml")
    }

    fn load(&self) -> Result<Environment, ConfigErrors> {
        load(&self.env())
    }

    fn errors(&self) -> Vec<ConfigError> {
        match self.load() {
            Ok(env) => panic!("expected errors, loaded {} workspaces", env.workspaces.len()),
            Err(e) => e.0,
        }
    }

    fn one_error(&self) -> ConfigError {
        let errors = self.errors();
        assert_eq!(errors.len(), 1, "expected exactly one error, got:\n{}", ConfigErrors(errors.clone()));
        errors.into_iter().next().expect("one error")
    }
}

const DEV: &str = "openbao:\n  dev_stack: ../.ctl/dev\n";

/// Only an environment file: `DEV` followed by `body`.
fn env_only(body: &str) -> Tree {
    Tree::new(&[("environments/test.yaml", &format!("{DEV}{body}"))])
}

#[track_caller]
fn assert_at(e: &ConfigError, file_ends_with: &str, line: usize, column: usize, fragment: &str) {
    assert!(e.file.ends_with(file_ends_with), "file {} should end with {file_ends_with}: {e}", e.file.display());
    assert_eq!((e.line, e.column), (line, column), "position of: {e}");
    assert!(e.message.contains(fragment), "message should contain {fragment:?}: {e}");
}

fn ws<'a>(env: &'a Environment, name: &str) -> &'a Workspace {
    env.workspaces.iter().find(|w| w.name == name).unwrap_or_else(|| panic!("no workspace {name}"))
}

// ---------------------------------------------------------------------------------------------
// A good environment.

const GOOD_ENV: &str = "\
openbao:
  dev_stack: ../.ctl/dev
classes:
  standard:
    kv: { path: secret, max_versions: 10, cas_required: true, delete_version_after: 1h }
    policies:
      - { name: app-read, template: kv-read }
      - { name: app-write, template: kv-write, vars: { extra: \"x\" } }
    approle:
      roles:
        app: { token_policies: [app-read], token_ttl: 1h, token_max_ttl: 4h, token_bound_cidrs: [10.0.0.0/8] }
    transit: { keys: [ { name: app, auto_rotate_period: 720h } ] }
    quota: { rate: 100 }
workspaces:
  - name: zeta
    class: standard
    kv: { max_versions: 20 }
  - name: alpha
    class: standard
    namespace: alpha-ns
    policies:
      - { name: only, template: kv-read }
    approle: { mount: ar, roles: { r1: { token_policies: [only, default] } } }
    quota: { rate: 1.5, interval: 1m, block_interval: 30s }
workspaces_dir: ws
";

const GOOD_WS_FILE: &str = "\
name: mid
kv: { path: kv }
transit: { mount: crypto, keys: [ { name: k, type: ed25519 } ] }
";

fn good_tree() -> Tree {
    Tree::new(&[
        ("environments/test.yaml", GOOD_ENV),
        ("environments/ws/mid.yaml", GOOD_WS_FILE),
        ("environments/ws/ignored.txt", "not yaml: ["),
    ])
}

#[test]
fn good_file_merges_classes() {
    let tree = good_tree();
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env.name, "test");
    assert_eq!(env.file, tree.env());
    assert_eq!(env.dir, tree.root.join("environments"));
    assert_eq!(env.openbao, Connection::DevStack { dir: tree.root.join(".ctl/dev") });
    let names: Vec<&str> = env.workspaces.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["alpha", "mid", "zeta"], "sorted by name");

    // kv merges field by field; other sections come whole from the class.
    let zeta = ws(&env, "zeta");
    assert_eq!(zeta.namespace, "zeta");
    assert_eq!(zeta.class.as_deref(), Some("standard"));
    assert_eq!(
        zeta.kv,
        Kv { path: "secret".into(), max_versions: 20, cas_required: true, delete_version_after: Duration(3600) }
    );
    assert_eq!(zeta.policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["app-read", "app-write"]);
    assert_eq!(zeta.policies[1].vars.get("extra").map(String::as_str), Some("x"));
    let policy_origin = &zeta.policies[1].origin;
    assert_eq!(policy_origin.file, tree.env());
    assert_eq!(
        policy_origin.yaml_path,
        [PathSeg::key("classes"), PathSeg::key("standard"), PathSeg::key("policies"), PathSeg::Index(1)]
    );
    let approle = zeta.approle.as_ref().expect("approle from class");
    assert_eq!(approle.mount, "approle", "default mount");
    let role = &approle.roles["app"];
    assert_eq!((role.token_ttl, role.token_max_ttl), (Duration(3600), Duration(4 * 3600)));
    assert_eq!(role.token_bound_cidrs, ["10.0.0.0/8".parse::<Cidr>().expect("cidr")]);
    assert_eq!(role.secret_id_num_uses, 0);
    let transit = zeta.transit.as_ref().expect("transit from class");
    assert_eq!(transit.mount, "transit", "default mount");
    assert_eq!(
        transit.keys,
        [TransitKey { name: "app".into(), key_type: "aes256-gcm96".into(), auto_rotate_period: Duration(720 * 3600) }]
    );
    assert_eq!(zeta.quota, Some(Quota { rate: 100.0, interval: Duration(1), block_interval: Duration(0) }));
    assert_eq!(zeta.origin, Origin::new(tree.env(), vec![PathSeg::key("workspaces"), PathSeg::Index(0)]));

    // Sections set by the workspace replace the class's.
    let alpha = ws(&env, "alpha");
    assert_eq!(alpha.namespace, "alpha-ns");
    assert_eq!(alpha.kv.max_versions, 10, "kv still inherited");
    assert_eq!(alpha.policies.len(), 1);
    assert_eq!(alpha.policies[0].origin.yaml_path[..2], [PathSeg::key("workspaces"), PathSeg::Index(1)]);
    let approle = alpha.approle.as_ref().expect("own approle");
    assert_eq!(approle.mount, "ar");
    assert_eq!(approle.roles.keys().collect::<Vec<_>>(), ["r1"]);
    assert_eq!(alpha.quota, Some(Quota { rate: 1.5, interval: Duration(60), block_interval: Duration(30) }));
    assert!(alpha.transit.is_some());

    // A workspace without a class gets the defaults.
    let mid = ws(&env, "mid");
    assert_eq!(mid.kv, Kv { path: "kv".into(), ..Kv::default() });
    assert!(mid.policies.is_empty() && mid.approle.is_none() && mid.quota.is_none());
    assert_eq!(mid.transit.as_ref().map(|t| t.keys[0].key_type.as_str()), Some("ed25519"));
    assert_eq!(mid.origin, Origin::new(tree.root.join("environments/ws/mid.yaml"), vec![]));
}

#[test]
fn sources_and_digest() {
    let tree = good_tree();
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env.sources, [tree.env(), tree.root.join("environments/ws/mid.yaml")]);
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (rel, text) in [("test.yaml", GOOD_ENV), ("ws/mid.yaml", GOOD_WS_FILE)] {
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    assert_eq!(env.source_digest, hex::encode(h.finalize()));

    // Any byte changed in any source changes the digest.
    std::fs::write(tree.root.join("environments/ws/mid.yaml"), format!("{GOOD_WS_FILE}# comment\n")).expect("write");
    let changed = tree.load().unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(changed.source_digest, env.source_digest);
}

#[test]
fn server_connection() {
    let tree = Tree::new(&[
        ("environments/test.yaml", "openbao:\n  address: https://bao.example.com:8200/\n  token_file: ../secrets/token\n"),
    ]);
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        env.openbao,
        Connection::Server {
            address: "https://bao.example.com:8200".into(),
            token: TokenSource::File(tree.root.join("secrets/token")),
        }
    );
    let tree = Tree::new(&[("environments/test.yaml", "openbao: { address: \"http://[::1]:8200\", token_env: BAO_TOKEN }\n")]);
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        env.openbao,
        Connection::Server { address: "http://[::1]:8200".into(), token: TokenSource::Env("BAO_TOKEN".into()) }
    );
}

#[test]
fn example_local_environment_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/local.yaml");
    let env = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = env.workspaces.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["acme", "globex", "hooli", "initech", "umbrella"]);
    assert_eq!(ws(&env, "initech").kv.max_versions, 20);
    assert_eq!(ws(&env, "acme").kv.max_versions, 10);
    assert_eq!(env.sources.len(), 3);
    match &env.openbao {
        Connection::DevStack { dir } => assert!(dir.is_absolute() && dir.ends_with(".ctl/dev"), "{}", dir.display()),
        other => panic!("expected dev stack, got {other:?}"),
    }
    // Every template the example names exists.
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/policies");
    for p in env.workspaces.iter().flat_map(|w| &w.policies) {
        assert!(templates.join(format!("{}.hbs", p.template)).is_file(), "missing template {}", p.template);
    }
}

// ---------------------------------------------------------------------------------------------
// serde-level errors: syntax, types, unknown keys, missing fields, per-value checks.

#[test]
fn yaml_syntax_error() {
    let tree = env_only("workspaces:\n  - name: a\n   bad: [\n");
    let e = tree.one_error();
    assert_eq!(e.file, tree.env());
    assert!(e.line >= 4, "{e}");
}

#[test]
fn yaml_syntax_error_position() {
    let tree = env_only("workspaces: [ { name: a }\n");
    let e = tree.one_error();
    assert_at(&e, "test.yaml", 4, 1, "did not find expected");
}

#[test]
fn unknown_key() {
    let tree = env_only("workspaces:\n  - name: a\n    kv: { colour: red }\n");
    let e = tree.one_error();
    assert_at(&e, "environments/test.yaml", 5, 11, "unknown field `colour`");
    assert!(e.message.contains("expected one of"), "{e}");
    assert_eq!(e.to_string(), format!("{}:5:11: {}", tree.env().display(), e.message));
}

#[test]
fn unknown_top_level_key() {
    let e = env_only("workspace:\n  - name: a\n").one_error();
    assert_at(&e, "test.yaml", 3, 1, "unknown field `workspace`");
}

#[test]
fn missing_required_field() {
    let e = env_only("workspaces:\n  - class: x\n    namespace: y\n").one_error();
    assert_at(&e, "test.yaml", 4, 5, "missing field `name`");
}

#[test]
fn wrong_type() {
    let e = env_only("workspaces:\n  - name: a\n    kv: { max_versions: lots }\n").one_error();
    assert_at(&e, "test.yaml", 5, 25, "invalid type");
}

#[test]
fn bad_duration() {
    let e = env_only("classes:\n  c:\n    approle:\n      roles:\n        app: { token_ttl: 1x }\n").one_error();
    assert_at(
        &e,
        "test.yaml",
        7,
        27,
        "invalid duration \"1x\": expected a number with unit s, m, h or d (e.g. 30s, 5m, 1h)",
    );
}

#[test]
fn bad_cidr() {
    let e = env_only("classes:\n  c:\n    approle:\n      roles:\n        app:\n          token_bound_cidrs: [10.0.0.0/8, nope/8]\n")
        .one_error();
    assert_at(&e, "test.yaml", 8, 43, "\"nope\" is not an IPv4 or IPv6 address");
}

#[test]
fn cidr_host_bits() {
    let e = env_only("classes:\n  c:\n    approle:\n      roles:\n        app:\n          secret_id_bound_cidrs:\n            - 10.0.0.1/8\n")
        .one_error();
    assert_at(&e, "test.yaml", 9, 15, "host bits set in 10.0.0.1/8; did you mean 10.0.0.0/8?");
}

#[test]
fn reserved_namespace() {
    let e = env_only("workspaces:\n  - name: a\n    namespace: sys\n").one_error();
    assert_at(&e, "test.yaml", 5, 16, "namespace \"sys\" is invalid: it is reserved by OpenBao");
}

#[test]
fn slash_in_namespace() {
    let e = env_only("workspaces:\n  - name: a\n    namespace: a/b\n").one_error();
    assert_at(
        &e,
        "test.yaml",
        5,
        16,
        "namespace \"a/b\" is invalid: must not contain '/' (one namespace per workspace, no nesting)",
    );
}

#[test]
fn space_in_workspace_name() {
    let e = env_only("workspaces:\n  - name: \"my app\"\n").one_error();
    assert_at(&e, "test.yaml", 4, 11, "workspace name \"my app\" is invalid: must not contain spaces");
}

#[test]
fn name_rules() {
    let e = env_only("workspaces:\n  - name: Acme\n").one_error();
    assert_at(&e, "test.yaml", 4, 11, "must be lowercase");
    let e = env_only("workspaces:\n  - name: -x\n").one_error();
    assert_at(&e, "test.yaml", 4, 11, "must start with a lowercase letter or a digit");
    let long = "a".repeat(64);
    let e = env_only(&format!("workspaces:\n  - name: {long}\n")).one_error();
    assert_at(&e, "test.yaml", 4, 11, "at most 63 characters");
    let e = env_only("workspaces:\n  - name: a\n    kv: { path: sys }\n").one_error();
    assert_at(&e, "test.yaml", 5, 17, "mount path \"sys\" is invalid: it is reserved");
    let e = env_only("workspaces:\n  - name: a\n    kv: { path: a/b }\n").one_error();
    assert_at(&e, "test.yaml", 5, 17, "single path segment");
    let e = env_only("workspaces:\n  - name: a\n    policies: [ { name: root, template: t } ]\n").one_error();
    assert_at(&e, "test.yaml", 5, 25, "policy name \"root\" is invalid");
    let e = env_only("workspaces:\n  - name: a\n    transit: { keys: [ { name: k, type: des } ] }\n").one_error();
    assert_at(&e, "test.yaml", 5, 41, "unsupported transit key type \"des\"");
}

#[test]
fn duplicate_map_key() {
    let e = env_only("classes:\n  c:\n    approle:\n      roles:\n        app: {}\n        app: {}\n").one_error();
    assert_at(&e, "test.yaml", 8, 9, "duplicate key \"app\"");
}

#[test]
fn bad_workspace_file() {
    let tree = Tree::new(&[
        ("environments/test.yaml", &format!("{DEV}workspaces_dir: ws\n")),
        ("environments/ws/a.yaml", "name: a\nkv:\n  max_versions: -1\n"),
        ("environments/ws/b.yaml", "name: b\nbogus: 1\n"),
        ("environments/ws/c.yml", "name: c\n"),
    ]);
    let errors = tree.errors();
    assert_eq!(errors.len(), 2, "{}", ConfigErrors(errors.clone()));
    assert_at(&errors[0], "ws/a.yaml", 3, 17, "integer `-1`, expected u32");
    assert_at(&errors[1], "ws/b.yaml", 2, 1, "unknown field `bogus`");
}

#[test]
fn missing_workspaces_dir() {
    let e = env_only("workspaces_dir: nowhere\n").one_error();
    assert_at(&e, "test.yaml", 3, 17, "cannot read workspaces_dir");
}

#[test]
fn unreadable_environment_file() {
    let errors = load(Path::new("/nonexistent/ctl/test.yaml")).expect_err("missing file");
    assert_eq!(errors.len(), 1);
    assert_at(&errors.0[0], "test.yaml", 1, 1, "cannot read environment file");
}

// ---------------------------------------------------------------------------------------------
// Cross-field checks.

#[test]
fn duplicate_workspace_across_inline_and_dir() {
    let tree = Tree::new(&[
        ("environments/test.yaml", &format!("{DEV}workspaces:\n  - name: b\n  - name: acme\nworkspaces_dir: ws\n")),
        ("environments/ws/acme.yaml", "# the same name again\nname: acme\nnamespace: other\n"),
    ]);
    let e = tree.one_error();
    assert_at(&e, "ws/acme.yaml", 2, 7, "duplicate workspace \"acme\": already declared at ");
    assert!(e.message.ends_with(&format!("{}:5", tree.env().display())), "{e}");
}

#[test]
fn duplicate_namespace() {
    let e = env_only("workspaces:\n  - name: a\n  - name: b\n    namespace: a\n").one_error();
    assert_at(&e, "test.yaml", 6, 16, "namespace \"a\" is already used by workspace \"a\"");
}

#[test]
fn duplicate_policy_and_transit_key() {
    let errors = env_only(
        "workspaces:\n  - name: a\n    policies:\n      - { name: p, template: t }\n      - { name: p, template: t }\n    transit:\n      keys:\n        - name: k\n        - name: k\n",
    )
    .errors();
    assert_eq!(errors.len(), 2, "{}", ConfigErrors(errors.clone()));
    assert_at(&errors[0], "test.yaml", 7, 17, "duplicate policy name \"p\": already declared at ");
    assert!(errors[0].message.ends_with("test.yaml:6"), "{}", errors[0]);
    assert_at(&errors[1], "test.yaml", 11, 17, "duplicate transit key name \"k\"");
}

#[test]
fn ttl_ordering() {
    let e = env_only(
        "workspaces:\n  - name: a\n    approle:\n      roles:\n        app:\n          token_ttl: 4h\n          token_max_ttl: 1h\n",
    )
    .one_error();
    assert_at(&e, "test.yaml", 8, 22, "token_ttl (4h) exceeds token_max_ttl (1h)");
    // No max: any ttl is fine.
    env_only("workspaces:\n  - name: a\n    approle: { roles: { app: { token_ttl: 4h } } }\n")
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unknown_class() {
    let e = env_only("classes:\n  big: {}\n  small: {}\nworkspaces:\n  - name: a\n    class: medium\n").one_error();
    assert_at(&e, "test.yaml", 8, 12, "unknown class \"medium\"; defined classes: big, small");
    let e = env_only("workspaces:\n  - name: a\n    class: medium\n").one_error();
    assert_at(&e, "test.yaml", 5, 12, "defines no classes");
}

#[test]
fn undeclared_token_policy() {
    let e = env_only(
        "workspaces:\n  - name: a\n    policies: [ { name: reader, template: kv-read } ]\n    approle:\n      roles:\n        app: { token_policies: [default, reader, writer] }\n",
    )
    .one_error();
    assert_at(&e, "test.yaml", 8, 50, "token policy \"writer\", which workspace \"a\" does not declare");
    assert!(e.message.contains("declared: reader"), "{e}");
}

#[test]
fn undeclared_token_policy_class_checked_once() {
    let body = "classes:\n  c:\n    policies: [ { name: r, template: t } ]\n    approle: { roles: { app: { token_policies: [w] } } }\nworkspaces:\n  - { name: a, class: c }\n  - { name: b, class: c }\n";
    let e = env_only(body).one_error();
    assert_at(&e, "test.yaml", 6, 49, "which class \"c\" does not declare");
}

#[test]
fn token_policy_from_class_vs_workspace_policies() {
    // The class's role refers to app-read, but this workspace replaced the policies.
    let body = "classes:\n  c:\n    policies: [ { name: app-read, template: t } ]\n    approle: { roles: { app: { token_policies: [app-read] } } }\nworkspaces:\n  - { name: a, class: c }\n  - { name: b, class: c, policies: [ { name: other, template: t } ] }\n";
    let e = env_only(body).one_error();
    assert_at(&e, "test.yaml", 6, 49, "which workspace \"b\" does not declare");
}

#[test]
fn quota_rate_must_be_positive() {
    let e = env_only("workspaces:\n  - name: a\n    quota: { rate: 0 }\n").one_error();
    assert_at(&e, "test.yaml", 5, 20, "quota rate must be a positive number");
    let e = env_only("workspaces:\n  - name: a\n    quota: { interval: 1s }\n").one_error();
    assert_at(&e, "test.yaml", 5, 12, "missing field `rate`");
}

#[test]
fn kv_and_transit_mounts_differ() {
    let e = env_only("workspaces:\n  - name: a\n    transit: { mount: secret }\n").one_error();
    assert_at(&e, "test.yaml", 5, 23, "transit mount \"secret\" is the same path as the KV mount");
}

#[test]
fn auto_rotate_period_minimum() {
    let e = env_only("workspaces:\n  - name: a\n    transit: { keys: [ { name: k, auto_rotate_period: 30m } ] }\n").one_error();
    assert_at(&e, "test.yaml", 5, 55, "auto_rotate_period (30m) must be 0s (never) or at least 1h");
}

#[test]
fn openbao_exactly_one() {
    let t = |openbao: &str| Tree::new(&[("environments/test.yaml", openbao)]).one_error();
    assert_at(&t("openbao: {}\n"), "test.yaml", 1, 10, "openbao needs either dev_stack");
    assert_at(
        &t("openbao:\n  dev_stack: x\n  address: http://a:1\n  token_env: T\n"),
        "test.yaml",
        3,
        12,
        "either dev_stack or address, not both",
    );
    assert_at(&t("openbao:\n  address: http://a:1\n"), "test.yaml", 2, 12, "address needs a token source");
    assert_at(
        &t("openbao:\n  address: http://a:1\n  token_env: T\n  token_file: f\n"),
        "test.yaml",
        4,
        15,
        "exactly one of token_env or token_file",
    );
    assert_at(&t("openbao:\n  dev_stack: d\n  token_env: T\n"), "test.yaml", 3, 14, "token_env is only used with address");
    assert_at(&t("openbao:\n  address: bao:8200\n  token_env: T\n"), "test.yaml", 2, 12, "scheme must be http or https");
    assert_at(&t("openbao:\n  address: https://bao\n  token_env: T\n"), "test.yaml", 2, 12, "missing port");
    assert_at(&t("openbao:\n  address: https://b:1/v1\n  token_env: T\n"), "test.yaml", 2, 12, "must not have a path");
}

#[test]
fn collects_every_error() {
    let tree = Tree::new(&[
        (
            "environments/test.yaml",
            "openbao: {}\nclasses:\n  c: { quota: { rate: -1 } }\nworkspaces:\n  - { name: a, class: nope }\n  - { name: a }\nworkspaces_dir: ws\n",
        ),
        ("environments/ws/x.yaml", "name: x\nkv: { max_versions: 1h }\n"),
        ("environments/ws/y.yaml", "name: y\napprole: { roles: { r: { token_ttl: 2h, token_max_ttl: 1h } } }\n"),
    ]);
    let errors = tree.errors();
    let summary: Vec<(String, usize)> = errors
        .iter()
        .map(|e| (e.file.file_name().expect("name").to_string_lossy().into_owned(), e.line))
        .collect();
    let expect = [("test.yaml", 1), ("test.yaml", 3), ("test.yaml", 5), ("test.yaml", 6), ("x.yaml", 2), ("y.yaml", 2)];
    let expect: Vec<(String, usize)> = expect.iter().map(|(f, l)| (f.to_string(), *l)).collect();
    assert_eq!(summary, expect, "\n{}", ConfigErrors(errors.clone()));
    // Display: one per line.
    assert_eq!(ConfigErrors(errors).to_string().lines().count(), 6);
}

// ---------------------------------------------------------------------------------------------
// locate and Origin::error.

fn path(segs: &[&str]) -> Vec<PathSeg> {
    segs.iter().map(|s| s.parse::<usize>().map_or_else(|_| PathSeg::key(*s), PathSeg::Index)).collect()
}

#[test]
fn locate_nested_values() {
    let src = "# comment\na:\n  b: 1\n  c:\n    - x\n    - { d: 2, e: [1, \"two\"] }\n    - f: 3\n      g: [4]\nh: {}\n";
    let file = Path::new("f.yaml");
    let at = |segs: &[&str]| locate(file, src, &path(segs));
    assert_eq!(at(&["a", "b"]), (3, 6), "scalar value in a nested map");
    assert_eq!(at(&["a", "c", "0"]), (5, 7), "scalar list item");
    assert_eq!(at(&["a", "c", "1", "d"]), (6, 12), "value in a flow map in a list");
    assert_eq!(at(&["a", "c", "1", "e", "1"]), (6, 22), "quoted scalar in a flow list");
    assert_eq!(at(&["a", "c", "2", "g"]), (8, 10), "flow list value");
    assert_eq!(at(&["a", "c", "2"]), (7, 7), "block map in a list: its first key");
    assert_eq!(at(&["h"]), (9, 4), "empty flow map");
    assert_eq!(at(&["a", "missing"]), (3, 3), "missing key: the enclosing map");
    assert_eq!(at(&["a", "c", "9"]), (5, 5), "index out of range: the enclosing list");
    assert_eq!(at(&["a", "b", "deeper"]), (3, 6), "path through a scalar: the scalar");
    assert_eq!(at(&[]), (2, 1), "root");
    assert_eq!(locate(file, "", &path(&["a"])), (1, 1), "empty document");
}

#[test]
fn origin_error_rereads_file() {
    let tree = good_tree();
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    let e = ws(&env, "alpha").origin.error("boom");
    assert_eq!((e.file.clone(), e.line, e.column), (tree.env(), 18, 5));
    let e = ws(&env, "zeta").policies[1].origin.error("template failed");
    assert_at(&e, "test.yaml", 8, 9, "template failed");
    let e = ws(&env, "mid").origin.join([PathSeg::key("transit"), PathSeg::key("mount")]).error("x");
    assert_at(&e, "ws/mid.yaml", 3, 19, "x");
}

// ---------------------------------------------------------------------------------------------
// Value types.

#[test]
fn duration_parse_and_display() {
    let cases = [
        ("0", 0, "0s"),
        ("0s", 0, "0s"),
        ("90", 90, "1m30s"),
        ("30s", 30, "30s"),
        ("5m", 300, "5m"),
        ("1h", 3600, "1h"),
        ("1h30m", 5400, "1h30m"),
        ("2d", 172_800, "48h"),
        ("32d", 2_764_800, "768h"),
        ("1d1h1m1s", 90_061, "25h1m1s"),
        ("3601s", 3601, "1h1s"),
    ];
    for (text, secs, canonical) in cases {
        let d: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(d, Duration::from_secs(secs), "{text}");
        assert_eq!(d.as_secs(), secs);
        assert_eq!(d.to_string(), canonical, "{text}");
        assert_eq!(canonical.parse::<Duration>(), Ok(d), "round trip of {canonical}");
    }
    for bad in ["", "1x", "h", "1.5h", "-1s", "1h ", " 1h", "1hm", "s1"] {
        let err = bad.parse::<Duration>().expect_err(bad);
        assert!(err.to_string().starts_with(&format!("invalid duration {bad:?}")), "{err}");
    }
    assert_eq!(
        "1x".parse::<Duration>().expect_err("1x").to_string(),
        "invalid duration \"1x\": expected a number with unit s, m, h or d (e.g. 30s, 5m, 1h)"
    );
    assert!("99999999999999999999d".parse::<Duration>().is_err());
}

#[test]
fn duration_serde() {
    #[derive(serde::Deserialize)]
    struct T {
        a: Duration,
        b: Duration,
        c: Duration,
    }
    let t: T = serde_yaml::from_str("a: 90\nb: 1h\nc: \"15\"\n").expect("parse");
    assert_eq!((t.a, t.b, t.c), (Duration(90), Duration(3600), Duration(15)));
    assert!(serde_yaml::from_str::<T>("a: -1\nb: 1h\nc: 1\n").is_err());
    assert!(serde_yaml::from_str::<T>("a: 1.5\nb: 1h\nc: 1\n").is_err());
    assert_eq!(serde_yaml::to_string(&Duration(5400)).expect("ser").trim(), "1h30m");
}

#[test]
fn cidr_v4_and_v6() {
    let ok = [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.168.1.7/32", "192.168.1.7/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00::/8", "fd00::/8"),
        ("2001:db8:0:0::/64", "2001:db8::/64"),
        ("::1/128", "::1/128"),
    ];
    for (text, canonical) in ok {
        let c: Cidr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(c.to_string(), canonical);
        assert_eq!(canonical.parse::<Cidr>().as_ref(), Ok(&c));
    }
    let v6: Cidr = "fd00::/8".parse().expect("v6");
    assert!(v6.addr().is_ipv6());
    assert_eq!(v6.prefix_len(), 8);
    let bad = [
        ("10.0.0.1/8", "host bits set in 10.0.0.1/8; did you mean 10.0.0.0/8?"),
        ("fd00::1/8", "host bits set in fd00::1/8; did you mean fd00::/8?"),
        ("10.0.0.0/33", "prefix length 33 is out of range (0-32 for IPv4)"),
        ("fd00::/129", "prefix length 129 is out of range (0-128 for IPv6)"),
        ("10.0.0.0/x", "prefix length \"x\" is not a number"),
        ("10.0.0.0/", "is not a number"),
        ("10.0.0.1", "missing prefix length (e.g. 10.0.0.1/32)"),
        ("::1", "missing prefix length (e.g. ::1/128)"),
        ("example.com/8", "\"example.com\" is not an IPv4 or IPv6 address"),
        ("", "expected an address and prefix length"),
    ];
    for (text, fragment) in bad {
        let err = text.parse::<Cidr>().expect_err(text).to_string();
        assert!(err.starts_with(&format!("invalid CIDR {text:?}: ")), "{err}");
        assert!(err.contains(fragment), "{text}: {err}");
    }
    assert_eq!(serde_yaml::to_string(&v6).expect("ser").trim(), "fd00::/8");
}

// ---------------------------------------------------------------------------------------------
// Performance: `cargo test --release --lib config::tests::perf -- --ignored`.

/// 10,000 workspace files (each with its own policies, role and transit key) over a class.
fn big_tree(n: usize) -> Tree {
    let mut files: Vec<(String, String)> = vec![(
        "environments/test.yaml".into(),
        format!("{DEV}classes:\n  std:\n    kv: {{ max_versions: 10 }}\n    quota: {{ rate: 100 }}\nworkspaces_dir: ws\n"),
    )];
    for i in 0..n {
        files.push((
            format!("environments/ws/w{i:05}.yaml"),
            format!(
                "name: w{i:05}\nclass: std\nkv: {{ cas_required: true }}\npolicies:\n  - {{ name: app-read, template: kv-read }}\n  - {{ name: app-write, template: kv-write, vars: {{ team: t{i} }} }}\napprole:\n  roles:\n    app: {{ token_policies: [app-read], token_ttl: 1h, token_max_ttl: 4h, token_bound_cidrs: [10.0.0.0/8] }}\ntransit: {{ mount: crypto, keys: [ {{ name: app, auto_rotate_period: 720h }} ] }}\n"
            ),
        ));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Tree::new(&refs)
}

#[test]
#[ignore = "timing; run in release"]
fn perf_10k_workspace_files() {
    let tree = big_tree(10_000);
    let _warm = tree.load().unwrap_or_else(|e| panic!("{e}"));
    let runs = 5;
    let mut best = std::time::Duration::MAX;
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
        best = best.min(t.elapsed());
        assert_eq!(env.workspaces.len(), 10_000);
    }
    eprintln!("10k workspace files: best of {runs} = {best:?}");
    if !cfg!(debug_assertions) {
        assert!(best < std::time::Duration::from_millis(300), "{best:?}");
    }
}

#[test]
#[ignore = "timing; run in release"]
fn perf_10k_errors_in_one_file() {
    // Every workspace has an error: each is located by re-walking the environment file.
    let mut env = format!("{DEV}workspaces:\n");
    for i in 0..10_000 {
        env.push_str(&format!("  - {{ name: w{i:05}, quota: {{ rate: 0 }} }}\n"));
    }
    let tree = Tree::new(&[("environments/test.yaml", &env)]);
    let t = std::time::Instant::now();
    let errors = tree.errors();
    eprintln!("10k located errors in one file: {:?}", t.elapsed());
    assert_eq!(errors.len(), 10_000);
}

#[test]
#[ignore = "scratch"]
fn perf_breakdown() {
    let tree = big_tree(10_000);
    let dir = tree.root.join("environments/ws");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let texts: Vec<String> = names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        let read = t.elapsed();
        let t = std::time::Instant::now();
        let parsed: Vec<raw::RawWorkspace> = texts.iter().map(|s| serde_yaml::from_str(s).unwrap()).collect();
        let parse = t.elapsed();
        let t = std::time::Instant::now();
        let _v: Vec<serde_yaml::Value> = texts.iter().map(|s| serde_yaml::from_str(s).unwrap()).collect();
        let value = t.elapsed();
        let t = std::time::Instant::now();
        let env = tree.load().unwrap();
        let full = t.elapsed();
        eprintln!("read {read:?} parse {parse:?} (as Value {value:?}) full {full:?} {}", parsed.len() + env.workspaces.len());
    }
}

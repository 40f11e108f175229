//! Unit tests: loading, merging, every validation error with its exact position, the value
//! types, and the locate trick. No network.

use super::*;
use super::{fast, raw};
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
            address: Some("https://bao.example.com:8200".into()),
            namespace: None,
            auth: Some(Auth::Token(TokenSource::File(tree.root.join("secrets/token")))),
            tls: Default::default(),
        }
    );
    let tree = Tree::new(&[("environments/test.yaml", "openbao: { address: \"http://[::1]:8200\", token_env: BAO_TOKEN }\n")]);
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        env.openbao,
        Connection::Server {
            address: Some("http://[::1]:8200".into()),
            namespace: None,
            auth: Some(Auth::Token(TokenSource::Env("BAO_TOKEN".into()))),
            tls: Default::default()
        }
    );
}

#[test]
fn auth_methods_and_what_the_file_leaves_to_bao_variables() {
    let load = |openbao: &str| Tree::new(&[("environments/test.yaml", &format!("openbao:\n{openbao}"))]).load();
    let server = |yaml: &str| match load(yaml).unwrap_or_else(|e| panic!("{e}")).openbao {
        Connection::Server { address, namespace, auth, .. } => (address, namespace, auth),
        other => panic!("{other:?}"),
    };
    // Everything open: BAO_ADDR, BAO_NAMESPACE and BAO_TOKEN at connect.
    assert_eq!(server("  {}\n"), (None, None, None));
    let (_, ns, auth) = server("  namespace: platform/\n  auth: { method: jwt, jwt_env: CI_OIDC_TOKEN }\n");
    assert_eq!(ns.as_deref(), Some("platform"));
    assert_eq!(auth, Some(Auth::Jwt { mount: "jwt".into(), role: None, jwt: TokenSource::Env("CI_OIDC_TOKEN".into()) }));
    let (_, _, auth) = server("  auth: { method: jwt, mount: gha, role: ctl-ci, jwt_file: ../ci.jwt }\n");
    let Some(Auth::Jwt { mount, role, jwt: TokenSource::File(file) }) = auth else { panic!("{auth:?}") };
    assert_eq!((mount.as_str(), role.as_deref()), ("gha", Some("ctl-ci")));
    assert!(file.ends_with("ci.jwt") && file.is_absolute());
    let (_, _, auth) = server("  auth: { method: approle, role_id_file: r, secret_id_file: s }\n");
    assert!(matches!(auth, Some(Auth::AppRole { ref mount, .. }) if mount == "approle"), "{auth:?}");

    // Each mistake is named at its line and column, before any API call.
    let err = |yaml: &str| load(yaml).unwrap_err().to_string();
    let e = err("  auth: { method: jwt, role: x }\n");
    assert!(e.contains("test.yaml:2:") && e.contains("method jwt needs jwt_env"), "{e}");
    let e = err("  auth:\n    method: jwt\n    jwt_env: T\n    secret_id_file: s\n");
    assert!(e.contains("test.yaml:5:") && e.contains("secret_id_file is not used by method jwt"), "{e}");
    let e = err("  auth: { method: approle, role_id_file: r }\n");
    assert!(e.contains("method approle needs secret_id_file"), "{e}");
    let e = err("  auth: { method: kerberos }\n");
    assert!(e.contains("test.yaml:2:") && e.contains("kerberos"), "{e}");
    let e = err("  token_env: T\n  auth: { method: jwt, jwt_env: J }\n");
    assert!(e.contains("token_env and auth both say how to log in"), "{e}");
    let e = err("  dev_stack: ../.ctl\n  auth: { method: jwt, jwt_env: J }\n");
    assert!(e.contains("auth is only used with a server"), "{e}");
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

const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const PEM_KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";

fn tls_env(extra: &str) -> Tree {
    let yaml = format!("openbao:\n  address: https://bao:8200\n  token_env: BAO_TOKEN\n{extra}");
    Tree::new(&[
        ("environments/test.yaml", yaml.as_str()),
        ("tls/ca.pem", PEM_CERT),
        ("tls/client.pem", PEM_CERT),
        ("tls/client-key.pem", PEM_KEY),
        ("tls/not-pem.txt", "hello\n"),
    ])
}

#[test]
fn tls_files_are_resolved_relative_to_the_file() {
    let tree = tls_env(
        "  ca_cert: ../tls/ca.pem\n  client_cert: ../tls/client.pem\n  client_key: ../tls/client-key.pem\n  tls_server_name: bao.internal\n",
    );
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    let Connection::Server { tls, .. } = env.openbao else { panic!("server") };
    assert_eq!(tls.ca_cert, Some(tree.root.join("tls/ca.pem")));
    assert_eq!(tls.client, Some((tree.root.join("tls/client.pem"), tree.root.join("tls/client-key.pem"))));
    assert_eq!(tls.server_name.as_deref(), Some("bao.internal"));
}

#[test]
fn tls_problems_are_located() {
    let e = tls_env("  ca_cert: ../tls/missing.pem\n").one_error();
    assert_at(&e, "test.yaml", 4, 12, "cannot read");
    let e = tls_env("  ca_cert: ../tls/not-pem.txt\n").one_error();
    assert_at(&e, "test.yaml", 4, 12, "is not a PEM certificate");
    let e = tls_env("  client_cert: ../tls/client.pem\n").one_error();
    assert_at(&e, "test.yaml", 4, 16, "client_cert needs client_key");
    let e = tls_env("  client_key: ../tls/ca.pem\n  client_cert: ../tls/client.pem\n").one_error();
    assert_at(&e, "test.yaml", 4, 15, "not a PEM private key");
    let e = tls_env("  tls_server_name: \"a b\"\n").one_error();
    assert_at(&e, "test.yaml", 4, 20, "not a DNS name");
    let tree = Tree::new(&[("environments/test.yaml", "openbao:\n  address: http://bao:8200\n  token_env: T\n  tls_server_name: x\n")]);
    assert_at(&tree.one_error(), "test.yaml", 4, 20, "needs an https:// address");
    let tree = Tree::new(&[("environments/test.yaml", "openbao:\n  dev_stack: ../.ctl/dev\n  ca_cert: ca.pem\n")]);
    assert_at(&tree.one_error(), "test.yaml", 3, 12, "only used with an https:// address");
}

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
    assert_at(
        &t("openbao:\n  dev_stack: x\n  address: http://a:1\n"),
        "test.yaml",
        3,
        12,
        "address is only used with a server; dev_stack manages its own address and token",
    );
    assert_at(
        &t("openbao:\n  address: http://a:1\n  token_env: T\n  token_file: f\n"),
        "test.yaml",
        4,
        15,
        "exactly one of token_env or token_file",
    );
    assert_at(&t("openbao:\n  dev_stack: d\n  token_env: T\n"), "test.yaml", 3, 14, "token_env is only used with a server");
    assert_at(&t("openbao:\n  address: bao:8200\n  token_env: T\n"), "test.yaml", 2, 12, "scheme must be http or https");
    assert_at(&t("openbao:\n  address: https://bao\n  token_env: T\n"), "test.yaml", 2, 12, "missing port");
    assert_at(&t("openbao:\n  address: https://b:1/v1\n  token_env: T\n"), "test.yaml", 2, 12, "must not have a path");
}

#[test]
fn collects_every_error() {
    let tree = Tree::new(&[
        (
            "environments/test.yaml",
            "openbao: { dev_stack: d, namespace: n }\nclasses:\n  c: { quota: { rate: -1 } }\nworkspaces:\n  - { name: a, class: nope }\n  - { name: a }\nworkspaces_dir: ws\n",
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

#[test]
fn origin_errors_in_bulk() {
    let tree = good_tree();
    let env = tree.load().unwrap_or_else(|e| panic!("{e}"));
    let items: Vec<(&Origin, String)> = env.workspaces.iter().map(|w| (&w.origin, format!("bad {}", w.name))).collect();
    let bulk = Origin::errors(items.iter().map(|(o, m)| (*o, m.clone())));
    let one_by_one: Vec<ConfigError> = items.iter().map(|(o, m)| o.error(m.clone())).collect();
    assert_eq!(bulk, one_by_one);
    assert_at(&bulk[0], "test.yaml", 18, 5, "bad alpha");
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
        env.push_str(&format!("  - {{ name: w{i:05}, namespace: shared, class: nope, quota: {{ rate: 0 }} }}\n"));
    }
    let tree = Tree::new(&[("environments/test.yaml", &env)]);
    let t = std::time::Instant::now();
    let errors = tree.errors();
    eprintln!("30k located errors in one file: {:?}", t.elapsed());
    assert_eq!(errors.len(), 30_000 - 1, "every unknown class and rate, every namespace but the first");
}

// ---------------------------------------------------------------------------------------------
// The fast path must agree with serde_yaml whenever it answers at all.

fn node_to_value(node: fast::Node<'_>) -> serde_yaml::Value {
    use serde_yaml::{Mapping, Number, Value};
    match node {
        fast::Node::Empty | fast::Node::Null => Value::Null,
        fast::Node::Bool(b) => Value::Bool(b),
        fast::Node::U64(n) => Value::Number(Number::from(n)),
        fast::Node::I64(n) => Value::Number(Number::from(n)),
        fast::Node::F64(n) => Value::Number(Number::from(n)),
        fast::Node::Str(s) => Value::String(s.into_owned()),
        fast::Node::Seq(items) => Value::Sequence(items.into_iter().map(node_to_value).collect()),
        fast::Node::Map(entries) => {
            let mut map = Mapping::new();
            for (k, v) in entries {
                map.insert(node_to_value(k), node_to_value(v));
            }
            Value::Mapping(map)
        }
    }
}

/// If the fast path parses `text`, serde_yaml parses it to the same value, and typed
/// deserialization through either path gives the same result. Returns whether it parsed.
#[track_caller]
fn assert_fast_agrees(text: &str) -> bool {
    let Some(node) = fast::parse(text) else { return false };
    let slow: serde_yaml::Value =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("fast path accepted what serde_yaml rejects ({e}):\n{text}"));
    assert_eq!(node_to_value(node), slow, "different values for:\n{text}");
    if let Some(fast_ws) = fast::from_str::<raw::RawWorkspace>(text) {
        let slow_ws: raw::RawWorkspace =
            serde_yaml::from_str(text).unwrap_or_else(|e| panic!("typed: serde_yaml rejects ({e}):\n{text}"));
        assert_eq!(format!("{fast_ws:?}"), format!("{slow_ws:?}"), "typed results differ for:\n{text}");
    }
    if let Some(fast_env) = fast::from_str::<raw::RawEnv>(text) {
        let slow_env: raw::RawEnv =
            serde_yaml::from_str(text).unwrap_or_else(|e| panic!("typed: serde_yaml rejects ({e}):\n{text}"));
        assert_eq!(format!("{fast_env:?}"), format!("{slow_env:?}"), "typed results differ for:\n{text}");
    }
    true
}

#[test]
fn fast_path_handles_the_example_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    let mut files = vec![root.join("local.yaml")];
    for entry in std::fs::read_dir(root.join("workspaces/local")).expect("example dir") {
        files.push(entry.expect("entry").path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read example");
        assert!(assert_fast_agrees(&text), "example {} should take the fast path", file.display());
    }
    for text in [GOOD_ENV, GOOD_WS_FILE] {
        assert!(assert_fast_agrees(text));
    }
}

#[test]
fn fast_path_cases() {
    let accepted = [
        "a: 1\n",
        "a: -1\nb: 0\nc: 1.5\nd: 1e3\ne: 1.\nf: .5\n",
        "a: 0s\nb: 1h30m\nc: 10.0.0.0/8\nd: fd00::/8\ne: ../.ctl/dev\nf: -x\n",
        "a: yes\nb: no\nc: on\nd: y\n",
        "a: true\nb: False\nc: null\nd: ~\ne:\nf: NULL\n",
        "a: 'it''s'\nb: \"q\"\nc: 'a # b'\nd: x#y\ne: a, b\nf: a]\n",
        "a: x # comment\n# full line\n  # indented comment\n\nb: [a, b] # c\n",
        "a:\n- x\n- y\nb:\n  - { c: 1 }\n  - [1, [2, 3], {}]\n",
        "a:\n  - b: 1\n    c: 2\n  -\n    d: 3\n  -\n",
        "a:\n  roles:\n  keys:\n  b: []\n",
        "  a: 1\n  b:\n      c: 2\n",
        "a: { b: 'x, y', c: \"[z]\", d: [fd00::/8, 10.0.0.0/8], e: a:b }\n",
        "a: [ ]\nb: { }\nc: []\n",
        "1: a\nnull: b\ntrue: c\n",
        "a: 123456789012345678\nb: -123456789012345678\n",
    ];
    for text in accepted {
        assert!(assert_fast_agrees(text), "should take the fast path:\n{text}");
    }
    let left_to_serde_yaml = [
        "a: &x 1\nb: *x\n",
        "a: !tag 1\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: \"esc\\n\"\n",
        "a: multi\n  line\n",
        "a: [1,\n  2]\n",
        "a: 1\na: 2\n",
        "a: { b: 1, b: 2 }\n",
        "a: 0x1f\n",
        "a: -0\n",
        "a:\n  - - x\n",
        "a: 007\n",
        "a: +1\n",
        "a: .inf\n",
        "a: 99999999999999999999\n",
        "a:\tb\n",
        "a: é\n",
        "---\na: 1\n",
        "'a': 1\n",
        "a: b: c\n",
        "- a\n",
        "",
        "# only a comment\n",
        "a: [a, ]\n",
        "a: [a: b]\n",
        "a: {a:1}\n",
        "a: -\n",
        "a: 1\n b: 2\n",
        "a:\n  b: 1\n c: 2\n",
        "a: 'unclosed\n",
        "a: [x] y\n",
        "a: x\r\n",
    ];
    for text in left_to_serde_yaml {
        assert!(!assert_fast_agrees(text), "should be left to serde_yaml:\n{text}");
    }
}

/// A tiny deterministic PRNG for the differential test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SCALARS: &[&str] = &[
    "acme", "1h", "0s", "10", "-5", "0", "007", "0x1f", "+1", "1.5", ".5", "1e3", "1_000", "true", "False", "null",
    "~", "yes", "inf", ".inf", "-x", "x #c", "x#c", "10.0.0.0/8", "fd00::/8", "'it''s'", "'a # b'", "\"q\"",
    "\"a\\nb\"", "a b", "a:b", "-1.5e3", "1.", "..", "nan", "12:30", "'", "\"", "é", "a, b", "a]",
];
const KEYS: &[&str] = &["name", "class", "kv", "a", "b", "1", "null", "a b", "a:b", "'q'", "-k", "true", "x#y", "path"];

/// A random document: mostly valid YAML in random styles, sometimes mutated.
fn random_doc(rng: &mut Rng) -> String {
    let mut out = String::new();
    random_block(rng, &mut out, 0, 0);
    if rng.below(3) == 0 && !out.is_empty() {
        let at = rng.below(out.len());
        if out.is_char_boundary(at) {
            let mutations = [":", " ", "#", "-", "'", "\"", "[", "{", "\n", "  ", ",", ""];
            let insert = rng.pick(&mutations);
            let remove = rng.below(2);
            let end = (at + remove).min(out.len());
            if out.is_char_boundary(end) {
                out.replace_range(at..end, insert);
            }
        }
    }
    out
}

fn random_block(rng: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    let pad = " ".repeat(indent);
    let entries = 1 + rng.below(4);
    let as_sequence = depth > 0 && rng.below(3) == 0;
    for i in 0..entries {
        if rng.below(6) == 0 {
            out.push_str(&format!("{pad}# comment\n"));
        }
        if rng.below(8) == 0 {
            out.push('\n');
        }
        let key = if as_sequence { "-".to_string() } else { format!("{}:", if i == 0 { "name" } else { rng.pick(KEYS) }) };
        match rng.below(6) {
            0 if depth < 3 => {
                out.push_str(&format!("{pad}{key}\n"));
                let child = indent + if !as_sequence && rng.below(3) == 0 { 0 } else { 1 + rng.below(3) };
                if child == indent {
                    // A sequence at the key's indentation.
                    for _ in 0..1 + rng.below(3) {
                        out.push_str(&format!("{pad}- {}\n", random_inline(rng, depth + 1)));
                    }
                } else {
                    random_block(rng, out, child, depth + 1);
                }
            }
            1 if as_sequence && depth < 3 => {
                // A compact mapping in a sequence item.
                out.push_str(&format!("{pad}- {}: {}\n", rng.pick(KEYS), random_inline(rng, depth + 1)));
                out.push_str(&format!("{pad}  {}: {}\n", rng.pick(KEYS), random_inline(rng, depth + 1)));
            }
            _ => {
                let comment = if rng.below(5) == 0 { " # trailing" } else { "" };
                out.push_str(&format!("{pad}{key} {}{comment}\n", random_inline(rng, depth + 1)));
            }
        }
    }
}

fn random_inline(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth < 4 { 6 } else { 4 }) {
        4 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| random_inline(rng, depth + 1)).collect();
            format!("[{}]", items.join(", "))
        }
        5 => {
            let items: Vec<String> =
                (0..rng.below(4)).map(|_| format!("{}: {}", rng.pick(KEYS), random_inline(rng, depth + 1))).collect();
            format!("{{ {} }}", items.join(", "))
        }
        _ => rng.pick(SCALARS).to_string(),
    }
}

#[test]
fn fast_path_differential() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let iterations = if cfg!(debug_assertions) { 20_000 } else { 300_000 };
    let mut fast = 0;
    for _ in 0..iterations {
        let doc = random_doc(&mut rng);
        if assert_fast_agrees(&doc) {
            fast += 1;
        }
    }
    assert!(fast > iterations / 10, "the generator should exercise the fast path ({fast} of {iterations})");
}

/// A document tree for the shaped generator: raw scalar text, mapping, list, or nothing.
enum Gen {
    S(String),
    M(Vec<(String, Gen)>),
    L(Vec<Gen>),
    E,
}

const VALUE_SPELLINGS: &[&str] = &[
    "acme", "app-read", "kv-read", "secret", "1h", "30m", "0s", "720h", "10", "0", "-1", "1.5", "100", "true",
    "false", "null", "~", "'quoted'", "\"dq\"", "10.0.0.0/8", "fd00::/8", "10.0.0.1/8", "ed25519", "aes256-gcm96",
    "default", "x y", "Acme", "a/b", "sys", "'10'", "'true'", "1e2", "1x",
];

fn shaped_scalar(rng: &mut Rng) -> Gen {
    if rng.below(12) == 0 {
        Gen::E
    } else {
        Gen::S(rng.pick(VALUE_SPELLINGS).to_string())
    }
}

/// Usually a value that fits the field, sometimes any spelling.
fn fitting(rng: &mut Rng, good: &[&str]) -> Gen {
    if rng.below(8) == 0 {
        shaped_scalar(rng)
    } else {
        Gen::S(rng.pick(good).to_string())
    }
}

fn name_value(r: &mut Rng) -> Gen {
    fitting(r, &["acme", "app-read", "'quoted'", "\"dq\"", "a1", "k"])
}

fn duration_value(r: &mut Rng) -> Gen {
    fitting(r, &["1h", "30m", "0s", "720h", "90", "0", "'15'", "1h30m"])
}

fn count_value(r: &mut Rng) -> Gen {
    fitting(r, &["0", "1", "10", "4294967295"])
}

fn cidr_value(r: &mut Rng) -> Gen {
    fitting(r, &["10.0.0.0/8", "fd00::/8", "127.0.0.0/8", "'192.168.0.0/16'"])
}

/// Makes the value of one field.
type Field = (&'static str, fn(&mut Rng) -> Gen);

fn shaped_map(rng: &mut Rng, fields: &[Field]) -> Gen {
    let mut entries = Vec::new();
    for (name, make) in fields {
        if *name == "name" || rng.below(3) != 0 {
            let key = if rng.below(100) == 0 { format!("{name}x") } else { name.to_string() };
            entries.push((key, make(rng)));
        }
    }
    if rng.below(30) == 0 {
        Gen::E
    } else {
        Gen::M(entries)
    }
}

fn shaped_list(rng: &mut Rng, item: fn(&mut Rng) -> Gen) -> Gen {
    match rng.below(30) {
        0 => Gen::E,
        _ => Gen::L((0..rng.below(3)).map(|_| item(rng)).collect()),
    }
}

fn shaped_workspace(rng: &mut Rng) -> Gen {
    shaped_map(
        rng,
        &[
            ("name", name_value),
            ("class", |r| fitting(r, &["std", "small", "nope"])),
            ("namespace", name_value),
            ("kv", |r| {
                shaped_map(
                    r,
                    &[
                        ("path", name_value),
                        ("max_versions", count_value),
                        ("cas_required", |r| fitting(r, &["true", "false", "True"])),
                        ("delete_version_after", duration_value),
                    ],
                )
            }),
            ("policies", |r| {
                shaped_list(r, |r| {
                    shaped_map(
                        r,
                        &[
                            ("name", name_value),
                            ("template", name_value),
                            ("vars", |r| shaped_map(r, &[("a", name_value), ("b", shaped_scalar)])),
                        ],
                    )
                })
            }),
            ("approle", |r| {
                shaped_map(
                    r,
                    &[
                        ("mount", name_value),
                        ("roles", |r| {
                            let role = |r: &mut Rng| {
                                shaped_map(
                                    r,
                                    &[
                                        ("token_policies", |r| shaped_list(r, name_value)),
                                        ("token_ttl", duration_value),
                                        ("token_max_ttl", duration_value),
                                        ("secret_id_num_uses", count_value),
                                        ("token_bound_cidrs", |r| shaped_list(r, cidr_value)),
                                    ],
                                )
                            };
                            shaped_map(r, &[("app", role), ("ci", role)])
                        }),
                    ],
                )
            }),
            ("transit", |r| {
                shaped_map(
                    r,
                    &[
                        ("mount", |r| fitting(r, &["transit", "crypto"])),
                        ("keys", |r| {
                            shaped_list(r, |r| {
                                shaped_map(
                                    r,
                                    &[
                                        ("name", name_value),
                                        ("type", |r| fitting(r, &["ed25519", "aes256-gcm96", "rsa-4096"])),
                                        ("auto_rotate_period", duration_value),
                                    ],
                                )
                            })
                        }),
                    ],
                )
            }),
            ("quota", |r| {
                shaped_map(r, &[("rate", |r| fitting(r, &["100", "1.5", "0.25", "7"])), ("interval", duration_value), ("block_interval", duration_value)])
            }),
        ],
    )
}

/// Render in a random mix of block and flow style.
fn render(rng: &mut Rng, gen: &Gen, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match gen {
        Gen::M(entries) => {
            for (key, value) in entries {
                match value {
                    Gen::M(inner) if !inner.is_empty() && rng.below(2) == 0 => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        render(rng, value, indent + 2, out);
                    }
                    Gen::L(items) if !items.is_empty() && rng.below(2) == 0 => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        let item_indent = if rng.below(2) == 0 { indent } else { indent + 2 };
                        render_items(rng, items, item_indent, out);
                    }
                    _ => out.push_str(&format!("{pad}{key}: {}\n", flow(value))),
                }
            }
        }
        Gen::L(items) => render_items(rng, items, indent, out),
        other => out.push_str(&format!("{pad}{}\n", flow(other))),
    }
}

fn render_items(rng: &mut Rng, items: &[Gen], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Gen::M(entries) if !entries.is_empty() && rng.below(2) == 0 => {
                // "- first: x" then the other keys aligned under "first".
                let mut nested = String::new();
                render(rng, item, indent + 2, &mut nested);
                out.push_str(&format!("{pad}- {}", &nested[indent + 2..]));
            }
            _ => out.push_str(&format!("{pad}- {}\n", flow(item))),
        }
    }
}

fn flow(gen: &Gen) -> String {
    match gen {
        Gen::S(s) => s.clone(),
        Gen::E => String::new(),
        Gen::L(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Gen::M(entries) => {
            let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {}", flow(v))).collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

#[test]
fn fast_path_differential_shaped() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let iterations = if cfg!(debug_assertions) { 5_000 } else { 100_000 };
    let (mut fast, mut typed) = (0, 0);
    for _ in 0..iterations {
        let mut doc = String::new();
        let tree = shaped_workspace(&mut rng);
        render(&mut rng, &tree, 0, &mut doc);
        if assert_fast_agrees(&doc) {
            fast += 1;
        }
        if fast::from_str::<raw::RawWorkspace>(&doc).is_some() {
            typed += 1;
        }
    }
    assert!(fast > iterations / 2, "the generator should exercise the fast path ({fast} of {iterations})");
    assert!(typed > iterations / 10, "and typed deserialization ({typed} of {iterations})");
}

/// Every path in a document (string keys only), plus a few that do not exist.
fn all_paths(value: &serde_yaml::Value, prefix: &mut Vec<PathSeg>, out: &mut Vec<Vec<PathSeg>>) {
    out.push(prefix.clone());
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    prefix.push(PathSeg::key(k));
                    all_paths(v, prefix, out);
                    prefix.pop();
                }
            }
            prefix.push(PathSeg::key("no-such-key"));
            out.push(prefix.clone());
            prefix.pop();
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(PathSeg::Index(i));
                all_paths(v, prefix, out);
                prefix.pop();
            }
            prefix.push(PathSeg::Index(items.len()));
            out.push(prefix.clone());
            prefix.pop();
        }
        _ => {
            prefix.push(PathSeg::Index(0));
            out.push(prefix.clone());
            prefix.pop();
        }
    }
}

#[test]
fn locate_many_agrees_with_locate() {
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let file = Path::new("x.yaml");
    let mut docs: Vec<String> = vec![GOOD_ENV.to_string(), GOOD_WS_FILE.to_string(), "just a scalar\n".into(), "".into()];
    for _ in 0..if cfg!(debug_assertions) { 300 } else { 5_000 } {
        let tree = shaped_workspace(&mut rng);
        let mut doc = String::new();
        render(&mut rng, &tree, 0, &mut doc);
        docs.push(doc);
        docs.push(random_doc(&mut rng));
    }
    let mut checked = 0;
    for doc in &docs {
        let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(doc) else { continue };
        let mut paths = Vec::new();
        all_paths(&value, &mut Vec::new(), &mut paths);
        let refs: Vec<&[PathSeg]> = paths.iter().map(Vec::as_slice).collect();
        let many = locate_many(file, doc, &refs);
        for (path, at) in paths.iter().zip(many) {
            assert_eq!(at, locate(file, doc, path), "path {path:?} in:\n{doc}");
            checked += 1;
        }
    }
    assert!(checked > 1_000, "{checked}");
}

#[test]
fn policy_lint_allowances_name_declared_workspaces_and_known_rules() {
    let tree = env_only("workspaces: [ { name: a } ]\npolicy_lint:\n  allow:\n    - { rule: sudo, workspace: b }\n");
    assert_at(&tree.one_error(), "test.yaml", 6, 32, "no workspace \"b\" is declared");
    let tree = env_only("workspaces: [ { name: a } ]\npolicy_lint:\n  allow:\n    - { rule: everything }\n");
    let e = tree.one_error();
    assert_eq!(e.line, 6, "{e}");
    assert!(e.message.contains("everything") && e.message.contains("sudo"), "{e}");
    let env = env_only("workspaces: [ { name: a } ]\npolicy_lint: { deny_warnings: true, allow: [ { rule: root-glob, workspace: a, path: \"*\" } ] }\n").load().unwrap();
    let lint = env.policy_lint.unwrap();
    assert!(lint.deny_warnings);
    assert_eq!(lint.allow[0], crate::config::LintAllow { rule: crate::policy::LintRule::RootGlob, workspace: Some("a".into()), path: Some("*".into()) });
}

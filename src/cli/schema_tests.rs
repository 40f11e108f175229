//! The schemas in `schemas/` against the loader: the repository's files validate, bad documents
//! are rejected by both, and every object's keys are exactly the keys the loader accepts.
//!
//! Validation uses the small validator below (the keywords these schemas use, nothing else: an
//! unknown keyword fails the test, so a schema edit cannot silently go unchecked).

use super::{ENVIRONMENT, WORKSPACE};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// A minimal JSON Schema (2020-12) validator for the keywords used in schemas/.

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &["$schema", "$id", "$defs", "title", "description"];

struct Validator<'a> {
    root: &'a Value,
}

impl<'a> Validator<'a> {
    /// Every error found in `doc`, each as `<json pointer>: <what>`.
    fn errors(&self, doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.check(self.root, doc, "", &mut out);
        out
    }

    fn resolve(&self, reference: &str) -> &'a Value {
        let name = reference.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        self.root["$defs"].get(name).unwrap_or_else(|| panic!("$ref to missing $defs/{name}"))
    }

    fn check(&self, schema: &'a Value, doc: &Value, at: &str, out: &mut Vec<String>) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return out.push(format!("{at}: not allowed")),
            Value::Object(schema) => schema,
            other => panic!("schema at {at} is not an object: {other}"),
        };
        for (keyword, arg) in schema {
            match keyword.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$ref" => self.check(self.resolve(arg.as_str().unwrap()), doc, at, out),
                "type" => {
                    let types: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                        other => panic!("bad type {other}"),
                    };
                    if !types.iter().any(|t| has_type(doc, t)) {
                        out.push(format!("{at}: {doc} is not of type {}", types.join("|")));
                    }
                }
                "enum" => {
                    if !arg.as_array().unwrap().iter().any(|v| v == doc) {
                        out.push(format!("{at}: {doc} is not one of {arg}"));
                    }
                }
                "const" => {
                    if arg != doc {
                        out.push(format!("{at}: {doc} is not {arg}"));
                    }
                }
                "pattern" => {
                    if let Value::String(s) = doc {
                        let re = regex::Regex::new(arg.as_str().unwrap()).unwrap();
                        if !re.is_match(s) {
                            out.push(format!("{at}: {s:?} does not match {arg}"));
                        }
                    }
                }
                "minLength" | "maxLength" => {
                    if let Value::String(s) = doc {
                        let (n, limit) = (s.chars().count() as u64, arg.as_u64().unwrap());
                        if (keyword == "minLength" && n < limit) || (keyword == "maxLength" && n > limit) {
                            out.push(format!("{at}: length {n} violates {keyword} {limit}"));
                        }
                    }
                }
                "minimum" | "maximum" | "exclusiveMinimum" => {
                    if let (Some(n), Some(limit)) = (doc.as_f64(), arg.as_f64()) {
                        let ok = match keyword.as_str() {
                            "minimum" => n >= limit,
                            "maximum" => n <= limit,
                            _ => n > limit,
                        };
                        if !ok {
                            out.push(format!("{at}: {n} violates {keyword} {limit}"));
                        }
                    }
                }
                "required" => {
                    if let Value::Object(map) = doc {
                        for key in arg.as_array().unwrap() {
                            if !map.contains_key(key.as_str().unwrap()) {
                                out.push(format!("{at}: missing required {key}"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let Value::Object(map) = doc {
                        for (key, sub) in arg.as_object().unwrap() {
                            if let Some(value) = map.get(key) {
                                self.check(sub, value, &format!("{at}/{key}"), out);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Value::Object(map) = doc {
                        let known = schema.get("properties").and_then(Value::as_object);
                        for (key, value) in map {
                            if !known.is_some_and(|k| k.contains_key(key)) {
                                self.check(arg, value, &format!("{at}/{key}"), out);
                            }
                        }
                    }
                }
                "propertyNames" => {
                    if let Value::Object(map) = doc {
                        for key in map.keys() {
                            self.check(arg, &Value::String(key.clone()), &format!("{at}/{key} (key)"), out);
                        }
                    }
                }
                "items" => {
                    if let Value::Array(items) = doc {
                        for (i, item) in items.iter().enumerate() {
                            self.check(arg, item, &format!("{at}/{i}"), out);
                        }
                    }
                }
                "anyOf" | "oneOf" => {
                    let passing = arg
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|sub| {
                            let mut errs = Vec::new();
                            self.check(sub, doc, at, &mut errs);
                            errs.is_empty()
                        })
                        .count();
                    if passing == 0 || (keyword == "oneOf" && passing > 1) {
                        out.push(format!("{at}: {passing} of the {keyword} alternatives match"));
                    }
                }
                "not" => {
                    let mut errs = Vec::new();
                    self.check(arg, doc, at, &mut errs);
                    if errs.is_empty() {
                        out.push(format!("{at}: {doc} matches the excluded {arg}"));
                    }
                }
                "allOf" => {
                    for sub in arg.as_array().unwrap() {
                        self.check(sub, doc, at, out);
                    }
                }
                "if" => {
                    let mut errs = Vec::new();
                    self.check(arg, doc, at, &mut errs);
                    let branch = if errs.is_empty() { schema.get("then") } else { schema.get("else") };
                    if let Some(branch) = branch {
                        self.check(branch, doc, at, out);
                    }
                }
                // Applied through "if".
                "then" | "else" => {}
                other => panic!("schema keyword {other:?} (at {at}) is not supported by the test validator"),
            }
        }
    }
}

fn has_type(doc: &Value, t: &str) -> bool {
    match t {
        "object" => doc.is_object(),
        "array" => doc.is_array(),
        "string" => doc.is_string(),
        "boolean" => doc.is_boolean(),
        "null" => doc.is_null(),
        "number" => doc.is_number(),
        "integer" => doc.is_i64() || doc.is_u64(),
        other => panic!("unknown type {other}"),
    }
}

fn schema(text: &str) -> Value {
    serde_json::from_str(text).expect("schema is valid JSON")
}

fn yaml_to_json(text: &str) -> Value {
    serde_yaml::from_str(text).expect("YAML document converts to JSON")
}

fn env_errors(doc: &Value) -> Vec<String> {
    let root = schema(ENVIRONMENT);
    Validator { root: &root }.errors(doc)
}

fn ws_errors(doc: &Value) -> Vec<String> {
    let root = schema(WORKSPACE);
    Validator { root: &root }.errors(doc)
}

/// The loader's verdict on `text` as an environment file (no workspaces_dir is read).
fn load(text: &str) -> Result<(), String> {
    crate::config::load_str(Path::new("/nonexistent-ctl-schema-test/env.yaml"), text).map(|_| ()).map_err(|e| e.to_string())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if recursive {
                yaml_files(&path, true, out);
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
}

// ---------------------------------------------------------------------------------------------
// The validator itself can fail.

#[test]
fn validator_rejects_what_it_should() {
    let root = json!({
        "type": "object", "additionalProperties": false, "required": ["a"],
        "properties": { "a": { "type": "string", "pattern": "^x+$", "maxLength": 3 },
                        "b": { "anyOf": [ { "type": "integer", "minimum": 1 }, { "enum": ["z"] } ] } }
    });
    let v = Validator { root: &root };
    assert!(v.errors(&json!({ "a": "xx", "b": 2 })).is_empty());
    assert!(v.errors(&json!({ "a": "xx", "b": "z" })).is_empty());
    for bad in [json!({}), json!({ "a": "y" }), json!({ "a": "xxxx" }), json!({ "a": "x", "c": 1 }), json!({ "a": "x", "b": 0 }), json!([])] {
        assert!(!v.errors(&bad).is_empty(), "{bad} should be rejected");
    }
}

// ---------------------------------------------------------------------------------------------
// The repository's files.

#[test]
fn every_environment_file_validates() {
    let mut files = Vec::new();
    yaml_files(&repo().join("environments"), false, &mut files);
    assert!(!files.is_empty(), "no environment files found");
    for file in files {
        let doc = yaml_to_json(&std::fs::read_to_string(&file).unwrap());
        let errors = env_errors(&doc);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn every_workspace_file_validates() {
    let mut files = Vec::new();
    yaml_files(&repo().join("environments/workspaces"), true, &mut files);
    assert!(!files.is_empty(), "no workspace files found");
    for file in files {
        let doc = yaml_to_json(&std::fs::read_to_string(&file).unwrap());
        let errors = ws_errors(&doc);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn local_yaml_names_the_schema_for_editors() {
    let text = std::fs::read_to_string(repo().join("environments/local.yaml")).unwrap();
    let first = text.lines().next().unwrap();
    let target = first.strip_prefix("# yaml-language-server: $schema=").expect("modeline on the first line");
    let resolved = repo().join("environments").join(target);
    assert_eq!(std::fs::read_to_string(resolved).unwrap(), ENVIRONMENT);
}

#[test]
fn workspace_schema_is_the_environment_schemas_workspace() {
    let (env, ws) = (schema(ENVIRONMENT), schema(WORKSPACE));
    assert_eq!(ws["$ref"], json!("#/$defs/workspace"));
    assert_eq!(env["properties"]["workspaces"]["items"], json!({ "$ref": "#/$defs/workspace" }));
    for (name, def) in ws["$defs"].as_object().unwrap() {
        assert_eq!(Some(def), env["$defs"].get(name), "$defs/{name} differs between the two schemas");
    }
    // Every definition the workspace schema reaches is in it.
    let text = WORKSPACE.to_string();
    for part in text.split("\"#/$defs/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(ws["$defs"].get(name).is_some(), "workspace schema lacks $defs/{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Loader and schema agree on documents.

/// Every section and key, valid: the loader and the schema both accept it.
const KITCHEN_SINK: &str = r#"
openbao: { address: "https://bao.example.com:8200", token_env: BAO_TOKEN }
aws: { region: us-east-1, endpoint: "http://127.0.0.1:5000" }
classes:
  std:
    kv: { path: secret, max_versions: 10, cas_required: true, delete_version_after: 1h30m }
    policies: [ { name: app-read, template: kv-read, vars: { note: hello } } ]
    approle:
      mount: approle
      roles:
        app: { token_policies: [app-read], token_ttl: 1h, token_max_ttl: 4h, secret_id_ttl: 0,
               secret_id_num_uses: 1, token_bound_cidrs: [10.0.0.0/8], secret_id_bound_cidrs: ["fd00::/8"] }
    transit: { mount: transit, keys: [ { name: app, type: ed25519, auto_rotate_period: 720h } ] }
    quota: { rate: 2.5, interval: 1s, block_interval: 30 }
workspaces:
  - { name: acme, class: std, namespace: acme-ns, kv: { max_versions: 3 } }
network:
  vpc_cidr: 10.20.0.0/16
  public_subnets: [ { name: public-a, cidr: 10.20.0.0/24, az: us-east-1a } ]
  private_subnets: [ { name: private-a, cidr: 10.20.10.0/24, az: us-east-1a },
                     { name: private-b, cidr: 10.20.11.0/24, az: us-east-1b } ]
  nat: { instance_type: t3.micro, ami: ami-1e749f67, subnet: public-a }
  s3_endpoint: true
  security_groups:
    api: { description: API, ingress: [ { port: 443, to_port: 444, protocol: tcp, cidr: 0.0.0.0/0 } ] }
    openbao: { ingress: [ { port: 8200, from: api } ] }
instances:
  api: { subnet: public-a, instance_type: t3.small, ami: ami-1e749f67, security_group: api,
         kms_key: "1234abcd-12ab-34cd-56ef-1234567890ab", user_data_template: api, count: 2,
         public_ip: true, root_volume_size: 16, artifacts: [caddy], vars: { domain: example.com } }
rds:
  identifier: ctl-main
  engine: postgres
  instance_class: db.t3.micro
  allocated_storage: 20
  backup_retention_period: 7
  subnets: [ private-a, private-b ]
  kms_key: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  master_username: ctl
artifacts:
  bucket: ctl-artifacts
  prefix: boot/
  items:
    - { name: caddy, version: "2.8.4", file: caddy, sha256: "0000000000000000000000000000000000000000000000000000000000000000", size: 1000 }
    - { name: kms-plugin, version: "1", file: plugin, sha256: "1111111111111111111111111111111111111111111111111111111111111111" }
kms:
  unseal: { alias: alias/ctl-unseal, description: seal, openbao_role: openbao, extra_principals: [rds] }
iam:
  roles:
    openbao: { description: nodes, trusted_services: [ec2.amazonaws.com], max_session_duration: 2h, instance_profile: true }
openbao_cluster:
  nodes: 3
  api_addresses: [ "https://10.20.10.10:8200", "https://10.20.10.11:8200", "https://10.20.10.12:8200" ]
  cluster_addresses: [ "https://10.20.10.10:8201", "https://10.20.10.11:8201", "https://10.20.10.12:8201" ]
  listen_address: "0.0.0.0:8200"
  tls_cert_file: /etc/openbao/tls.crt
  tls_key_file: /etc/openbao/tls.key
  data_dir: /opt/openbao/data
  audit_file: /var/log/openbao/audit.log
  performance_multiplier: 1
  plugin_directory: /usr/local/lib/openbao/plugins
  kms_plugin: { artifact: kms-plugin, command: openbao-plugin-kms }
alarms:
  sns: { topic: oncall, webhook: { url_env: ALARM_WEBHOOK_URL } }
  alarms:
    - { name: api-5xx, kind: api_5xx, threshold: 5, period: 300, evaluation_periods: 3, datapoints_to_alarm: 2,
        treat_missing_data: notBreaching, runbook_url: "https://runbooks.example.com/api-5xx", statistic: Sum,
        dimensions: { ApiName: secrets-api } }
    - { name: healthz, kind: route53_health, threshold: 1, period: 60, evaluation_periods: 1,
        runbook_url: "https://runbooks.example.com/healthz", health_check: { fqdn: bao.example.com, path: /healthz } }
    - { name: db-conn, kind: rds_connections, threshold: 160, period: 60, evaluation_periods: 5,
        max_connections: 200, runbook_url: "https://runbooks.example.com/db", dimensions: { DBInstanceIdentifier: ctl-main } }
dr: { bucket: ctl-dr, prefix: dr/ }
policy_lint:
  deny_warnings: true
  allow:
    - { rule: sudo, workspace: acme, path: "sys/*" }
    - { rule: system-path }
"#;

#[test]
fn kitchen_sink_is_accepted_by_both() {
    load(KITCHEN_SINK).unwrap_or_else(|e| panic!("loader rejects the kitchen sink:\n{e}"));
    let errors = env_errors(&yaml_to_json(KITCHEN_SINK));
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn bad_documents_are_rejected_by_both() {
    let base = "openbao: { dev_stack: ../.ctl/dev }\n";
    let cases = [
        ("unknown top-level key", format!("{base}workspace: []\n")),
        ("unknown nested key", format!("{base}workspaces: [ {{ name: a, kv: {{ max_version: 3 }} }} ]\n")),
        ("unknown key in openbao", "openbao: { dev_stack: x, tokn_env: T }\n".to_string()),
        ("wrong type: string for u32", format!("{base}workspaces: [ {{ name: a, kv: {{ max_versions: ten }} }} ]\n")),
        ("wrong type: list for map", format!("{base}classes: [ a ]\n")),
        ("wrong type: string for bool", format!("{base}workspaces: [ {{ name: a, kv: {{ cas_required: 'yes' }} }} ]\n")),
        ("bad enum: transit key type", format!("{base}workspaces: [ {{ name: a, transit: {{ keys: [ {{ name: k, type: aes512 }} ] }} }} ]\n")),
        ("bad enum: alarm kind", format!("{base}aws: {{ dev_stack: x }}\nalarms: {{ sns: {{ topic: t, webhook: {{ url_env: W }} }}, alarms: [ {{ name: a, kind: cpu, threshold: 1, period: 60, evaluation_periods: 1, runbook_url: 'https://r.example.com' }} ] }}\n")),
        ("literal webhook URL", format!("{base}aws: {{ dev_stack: x }}\nalarms: {{ sns: {{ topic: t, webhook: 'https://h.example.com/x' }} }}\n")),
        ("webhook with both sources", format!("{base}aws: {{ dev_stack: x }}\nalarms: {{ sns: {{ topic: t, webhook: {{ url_env: W, url_kv: {{ mount: secret, path: p, field: f }} }} }} }}\n")),
        ("bad duration unit", format!("{base}workspaces: [ {{ name: a, approle: {{ roles: {{ r: {{ token_ttl: 1x }} }} }} }} ]\n")),
        ("bad duration order", format!("{base}workspaces: [ {{ name: a, kv: {{ delete_version_after: h1 }} }} ]\n")),
        ("negative duration", format!("{base}workspaces: [ {{ name: a, quota: {{ rate: 1, interval: -5 }} }} ]\n")),
        ("reserved workspace name", format!("{base}workspaces: [ {{ name: sys }} ]\n")),
        ("uppercase name", format!("{base}workspaces: [ {{ name: Acme }} ]\n")),
        ("bad CIDR", format!("{base}workspaces: [ {{ name: a, approle: {{ roles: {{ r: {{ token_bound_cidrs: [10.0.0.0] }} }} }} }} ]\n")),
        ("address without port", "openbao: { address: 'https://bao.example.com', token_env: T }\n".to_string()),
        ("port out of range", format!("{base}aws: {{ dev_stack: x }}\nnetwork: {{ vpc_cidr: 10.0.0.0/16, security_groups: {{ a: {{ ingress: [ {{ port: 70000, cidr: 0.0.0.0/0 }} ] }} }} }}\n")),
        ("nodes not odd", format!("{base}openbao_cluster: {{ nodes: 2, api_addresses: ['https://a:8200', 'https://b:8200'] }}\n")),
        ("missing required openbao", "workspaces: []\n".to_string()),
        ("both dev_stack and address", "openbao: { dev_stack: x, address: 'https://b:8200', token_env: T }\n".to_string()),
        ("bucket with '..'", format!("{base}aws: {{ dev_stack: x }}\ndr: {{ bucket: 'a..b' }}\n")),
        ("prefix without trailing /", format!("{base}aws: {{ dev_stack: x }}\ndr: {{ bucket: abc, prefix: dr }}\n")),
        ("unknown lint rule", format!("{base}policy_lint: {{ allow: [ {{ rule: everything }} ] }}\n")),
        ("unknown key in a lint allowance", format!("{base}policy_lint: {{ allow: [ {{ rule: sudo, paths: [a] }} ] }}\n")),
        ("sha256 too short", format!("{base}artifacts: {{ bucket: abc, items: [ {{ name: a, version: '1', file: a, sha256: 'abc' }} ] }}\n")),
    ];
    for (what, doc) in cases {
        assert!(load(&doc).is_err(), "{what}: the loader accepts\n{doc}");
        let errors = env_errors(&yaml_to_json(&doc));
        assert!(!errors.is_empty(), "{what}: the schema accepts\n{doc}");
    }
    // Workspace files: the same rules at the top level.
    for bad in ["name: a\nkvv: {}\n", "name: a\nkv: { max_versions: -1 }\n", "class: std\n"] {
        assert!(!ws_errors(&yaml_to_json(bad)).is_empty(), "workspace schema accepts {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Key sets: each object in the schema has exactly the keys the loader's struct accepts.

/// A step from a container to a nested object in a document.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item,
    /// A value of a map whose keys are names (classes, roles, instances, …).
    Entry,
}

/// Every object schema with `properties` reachable from `schema`, with the steps to it.
fn objects<'a>(root: &'a Value, schema: &'a Value, path: Vec<Step>, out: &mut Vec<(Vec<Step>, &'a Map<String, Value>)>) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::String(r)) = map.get("$ref") {
        let name = r.trim_start_matches("#/$defs/");
        return objects(root, &root["$defs"][name], path, out);
    }
    for alt in ["anyOf", "oneOf"] {
        for sub in map.get(alt).and_then(Value::as_array).into_iter().flatten() {
            objects(root, sub, path.clone(), out);
        }
    }
    if let Some(items) = map.get("items") {
        let mut p = path.clone();
        p.push(Step::Item);
        objects(root, items, p, out);
    }
    if let (Some(values @ Value::Object(_)), true) = (map.get("additionalProperties"), map.contains_key("propertyNames")) {
        let mut p = path.clone();
        p.push(Step::Entry);
        objects(root, values, p, out);
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        assert_eq!(map.get("additionalProperties"), Some(&Value::Bool(false)), "object at {path:?} allows unknown keys");
        out.push((path.clone(), map));
        for (key, sub) in props {
            let mut p = path.clone();
            p.push(Step::Key(key.clone()));
            objects(root, sub, p, out);
        }
    }
}

/// A document that puts `leaf` at `path`.
fn document_at(path: &[Step], leaf: Value) -> Value {
    path.iter().rev().fold(leaf, |inner, step| match step {
        Step::Key(k) => json!({ k.as_str(): inner }),
        Step::Item => json!([inner]),
        Step::Entry => json!({ "a": inner }),
    })
}

/// The keys serde lists in "unknown field `x`, expected one of `a`, `b`" (or "`a` or `b`", "`a`").
fn expected_keys(message: &str) -> BTreeSet<String> {
    let after = message
        .split("unknown field `zz_not_a_key`, expected ")
        .nth(1)
        .unwrap_or_else(|| panic!("not an unknown-field error: {message}"));
    let list = after.lines().next().unwrap();
    list.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn schema_keys_are_exactly_the_loaders_keys() {
    let root = schema(ENVIRONMENT);
    let mut found = Vec::new();
    objects(&root, &root, Vec::new(), &mut found);
    assert!(found.len() >= 30, "only {} objects found in the schema", found.len());
    let mut seen = BTreeSet::new();
    for (path, object) in found {
        let described: Vec<String> = path.iter().map(|s| format!("{s:?}")).collect();
        if !seen.insert(described.join("/")) {
            continue;
        }
        let doc = document_at(&path, json!({ "zz_not_a_key": 1 }));
        let text = serde_json::to_string(&doc).unwrap();
        let message = load(&text).expect_err(&format!("loader accepts an unknown key at {path:?}: {text}"));
        let loader: BTreeSet<String> = expected_keys(&message);
        let schema: BTreeSet<String> = object["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(schema, loader, "keys at {path:?} (schema left, loader right)");
        for key in object.get("required").and_then(Value::as_array).into_iter().flatten() {
            assert!(schema.contains(key.as_str().unwrap()), "required {key} at {path:?} is not a property");
        }
    }
}

#[test]
fn every_key_has_a_description() {
    let root = schema(ENVIRONMENT);
    let mut found = Vec::new();
    objects(&root, &root, Vec::new(), &mut found);
    for (path, object) in found {
        for (key, sub) in object["properties"].as_object().unwrap() {
            let described = sub.get("description").is_some()
                || sub.get("$ref").is_some_and(|r| root["$defs"][r.as_str().unwrap().trim_start_matches("#/$defs/")].get("description").is_some());
            assert!(described, "{key} at {path:?} has no description");
        }
    }
}

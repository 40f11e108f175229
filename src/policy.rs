//! OpenBao ACL policies as data, for reviewers: path → capabilities (and parameter
//! constraints), parsed from HCL (with `hcl-rs`) or OpenBao's JSON form, and the difference of two
//! policies as lines such as `+ delete on secret/data/*`. Pure: plans call it on the policy texts
//! they already hold.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What one `path` stanza grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub capabilities: BTreeSet<String>,
    /// `required_parameters`, `allowed_parameters`, `denied_parameters`, `min_wrapping_ttl`,
    /// `max_wrapping_ttl`, …: each as compact JSON, compared as such.
    pub constraints: BTreeMap<String, String>,
}

/// A policy: its rules by path. Stanzas repeating a path are merged, as OpenBao does.
pub type Rules = BTreeMap<String, Rule>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("not a policy: {0}")]
    Syntax(String),
    #[error("{0}")]
    Shape(String),
}

/// The capabilities the legacy `policy = "…"` shorthand stands for.
fn legacy(level: &str) -> &'static [&'static str] {
    match level {
        "deny" => &["deny"],
        "read" => &["read", "list"],
        "write" => &["create", "read", "update", "delete", "list"],
        "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
        _ => &[],
    }
}

fn strings(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| PolicyError::Shape(format!("capability {i} is not a string"))))
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        other => Err(PolicyError::Shape(format!("capabilities must be a list of strings, not {other}"))),
    }
}

/// One stanza's settings (a JSON object either way) merged into `rules` under `path`.
fn add(rules: &mut Rules, path: &str, settings: &serde_json::Map<String, Value>) -> Result<(), PolicyError> {
    let rule = rules.entry(path.to_string()).or_default();
    for (key, value) in settings {
        match key.as_str() {
            "capabilities" => rule.capabilities.extend(strings(value)?),
            "policy" => {
                let level = value.as_str().unwrap_or_default();
                let caps = legacy(level);
                if caps.is_empty() {
                    return Err(PolicyError::Shape(format!("path {path:?}: unknown policy level {value}")));
                }
                rule.capabilities.extend(caps.iter().map(|c| c.to_string()));
            }
            _ => {
                rule.constraints.insert(key.clone(), value.to_string());
            }
        }
    }
    Ok(())
}

/// An HCL value as JSON: strings, lists and objects of literals as such; anything else (a
/// template, a traversal…) as its HCL text, which still compares by value.
fn json_of(expr: &hcl::Expression) -> Value {
    use hcl::Expression as E;
    match expr {
        E::Null => Value::Null,
        E::Bool(b) => Value::Bool(*b),
        E::String(s) => Value::String(s.clone()),
        E::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or_else(|_| Value::String(n.to_string())),
        E::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        E::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        hcl::ObjectKey::Identifier(id) => id.to_string(),
                        hcl::ObjectKey::Expression(E::String(s)) => s.clone(),
                        other => other.to_string(),
                    };
                    (key, json_of(v))
                })
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}

/// Policies nest `path` blocks and parameter objects a few levels deep; deeper input is refused
/// before parsing, because the HCL parser's time grows steeply with the depth of unclosed
/// brackets (found by the `policy_parser` fuzz target: 537 bytes, 32 levels, over 10 s).
pub const MAX_DEPTH: usize = 10;

/// The deepest bracket nesting of `text` outside strings and comments.
fn depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '#' => while chars.next_if(|c| *c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|c| *c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '[' | '(' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parse a policy in HCL or JSON.
pub fn parse(text: &str) -> Result<Rules, PolicyError> {
    if depth(text) > MAX_DEPTH {
        return Err(PolicyError::Shape(format!("nested more than {MAX_DEPTH} levels deep; OpenBao policies need 3")));
    }
    let mut rules = Rules::new();
    if text.trim_start().starts_with('{') {
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        let paths = doc.get("path").and_then(Value::as_object).ok_or_else(|| PolicyError::Shape("JSON policy without a \"path\" object".into()))?;
        for (path, settings) in paths {
            let settings = settings.as_object().ok_or_else(|| PolicyError::Shape(format!("path {path:?} is not an object")))?;
            add(&mut rules, path, settings)?;
        }
        return Ok(rules);
    }
    let body = hcl::parse(text).map_err(|e| PolicyError::Syntax(e.to_string().lines().next().unwrap_or_default().to_string()))?;
    if let Some(attr) = body.attributes().next() {
        return Err(PolicyError::Shape(format!("unexpected top-level attribute {:?}", attr.key())));
    }
    for block in body.blocks() {
        if block.identifier() != "path" {
            return Err(PolicyError::Shape(format!("unexpected block {:?} (only path blocks)", block.identifier())));
        }
        let [label] = block.labels() else {
            return Err(PolicyError::Shape("a path block needs exactly one label, the path".into()));
        };
        let mut settings = serde_json::Map::new();
        for attr in block.body().attributes() {
            settings.insert(attr.key().to_string(), json_of(attr.expr()));
        }
        add(&mut rules, label.as_str(), &settings)?;
    }
    Ok(rules)
}

/// What changes between two policies, one line per capability or constraint, by path:
/// `+ delete on secret/data/*`, `- list on secret/metadata/*`,
/// `~ allowed_parameters on sys/x: {…} → {…}`.
pub fn difference(before: &Rules, after: &Rules) -> Vec<String> {
    let empty = Rule::default();
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        let (b, a) = (before.get(path).unwrap_or(&empty), after.get(path).unwrap_or(&empty));
        for cap in a.capabilities.difference(&b.capabilities) {
            out.push(format!("+ {cap} on {path}"));
        }
        for cap in b.capabilities.difference(&a.capabilities) {
            out.push(format!("- {cap} on {path}"));
        }
        let keys: BTreeSet<&String> = b.constraints.keys().chain(a.constraints.keys()).collect();
        for key in keys {
            match (b.constraints.get(key), a.constraints.get(key)) {
                (Some(x), Some(y)) if x != y => out.push(format!("~ {key} on {path}: {x} → {y}")),
                (None, Some(y)) => out.push(format!("+ {key} on {path}: {y}")),
                (Some(x), None) => out.push(format!("- {key} on {path}: {x}")),
                _ => {}
            }
        }
    }
    out
}

/// [`difference`] of two policy texts (`None`: no policy); a text that does not parse is one
/// line saying so (the plan still plans: OpenBao is the judge of what it accepts).
pub fn text_difference(before: Option<&str>, after: Option<&str>) -> Vec<String> {
    let read = |text: Option<&str>| match text {
        None => Ok(Rules::new()),
        Some(t) => parse(t),
    };
    match (read(before), read(after)) {
        (Ok(b), Ok(a)) => difference(&b, &a),
        (Err(e), _) => vec![format!("(the live policy does not parse: {e}; see the text with --detail)")],
        (_, Err(e)) => vec![format!("(the declared policy does not parse: {e}; see the text with --detail)")],
    }
}

/// A lint rule: something a reviewer must see before a policy grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LintRule {
    /// `sudo` on any path (root-protected endpoints).
    Sudo,
    /// Anything under `sys/`, `auth/token/` or `identity/`: OpenBao's own configuration, every
    /// token, every identity.
    SystemPath,
    /// A path starting with `+/` or `*`: it reaches into every child namespace.
    ChildNamespaces,
    /// A path whose first segment is another workspace's namespace.
    OtherWorkspace,
    /// `*` or `+` at the root of the path: everything the namespace holds.
    RootGlob,
}

impl LintRule {
    pub const ALL: [LintRule; 5] = [LintRule::Sudo, LintRule::SystemPath, LintRule::ChildNamespaces, LintRule::OtherWorkspace, LintRule::RootGlob];

    pub fn as_str(self) -> &'static str {
        match self {
            LintRule::Sudo => "sudo",
            LintRule::SystemPath => "system-path",
            LintRule::ChildNamespaces => "child-namespaces",
            LintRule::OtherWorkspace => "other-workspace",
            LintRule::RootGlob => "root-glob",
        }
    }
}

/// One finding of [`lint`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub rule: LintRule,
    pub path: String,
    pub message: String,
}

/// Lint a parsed policy of a workspace. `other_namespace`: whether a path's first segment is
/// the namespace of another workspace of the environment. Rules granting only `deny` restrict
/// and are never findings.
pub fn lint(rules: &Rules, other_namespace: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for (path, rule) in rules {
        let grants: Vec<&str> = rule.capabilities.iter().map(String::as_str).filter(|c| *c != "deny").collect();
        if grants.is_empty() {
            continue;
        }
        let caps = grants.join(", ");
        let mut find = |rule: LintRule, message: String| out.push(Finding { rule, path: path.clone(), message });
        if grants.contains(&"sudo") {
            find(LintRule::Sudo, format!("grants sudo on {path} (root-protected endpoints)"));
        }
        let first = path.split('/').next().unwrap_or_default();
        let root_glob = path == "+" || path.starts_with('*');
        if root_glob {
            find(LintRule::RootGlob, format!("grants {caps} on {path}: everything the namespace holds"));
        }
        let reaches = |area: &str| path == area || path.starts_with(&format!("{area}/")) || (path.ends_with('*') && area.starts_with(path.trim_end_matches('*')));
        if let Some(area) = ["sys", "auth/token", "identity"].into_iter().find(|a| reaches(a)).filter(|_| !root_glob) {
            find(LintRule::SystemPath, format!("grants {caps} on {path}, under {area}/ (OpenBao's own configuration, tokens or identities)"));
        }
        if path.starts_with("+/") || (first.contains('*') && path.contains('/')) {
            find(LintRule::ChildNamespaces, format!("grants {caps} on {path}, which reaches into every child namespace"));
        }
        if other_namespace(first) {
            find(LintRule::OtherWorkspace, format!("grants {caps} on {path}, inside workspace namespace {first}"));
        }
    }
    out
}

/// A plan warning: a finding about one declared policy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Warning {
    pub address: crate::model::Address,
    pub rule: LintRule,
    pub message: String,
}

/// Lint the declared policies of `env` (those among `only`, when given: a plan lints what it
/// changes), minus what `policy_lint.allow` accepts. A policy that does not parse is no
/// warning here (the plan says so under the change).
pub fn lint_declared(env: &crate::config::Environment, desired: &[crate::model::Resource], only: Option<&BTreeSet<&crate::model::Address>>) -> Vec<Warning> {
    use crate::model::Kind;
    let by_address: BTreeMap<&crate::model::Address, &crate::model::Resource> =
        desired.iter().filter(|r| r.kind == Kind::Policy).map(|r| (&r.address, r)).collect();
    let allow = env.policy_lint.as_ref().map(|p| p.allow.as_slice()).unwrap_or_default();
    let mut out = Vec::new();
    // First namespace segment → how many workspaces live under it (counted once: the
    // environment can have 10,000 workspaces).
    let first_segment = |ns: &'_ str| ns.split('/').next().unwrap_or_default().to_string();
    let mut under: BTreeMap<String, usize> = BTreeMap::new();
    for w in &env.workspaces {
        *under.entry(first_segment(&w.namespace)).or_default() += 1;
    }
    for ws in &env.workspaces {
        let own = first_segment(&ws.namespace);
        let others = |first: &str| under.get(first).copied().unwrap_or(0) > usize::from(first == own);
        let addrs = crate::openbao::resources::WorkspaceAddrs(&ws.name);
        for policy in &ws.policies {
            let address = addrs.policy(&policy.name);
            if only.is_some_and(|o| !o.contains(&address)) {
                continue;
            }
            let Some(text) = by_address.get(&address).and_then(|r| r.attrs.get("policy")).and_then(Value::as_str) else { continue };
            let Ok(rules) = parse(text) else { continue };
            for f in lint(&rules, &others) {
                let allowed = allow.iter().any(|a| a.rule == f.rule && a.workspace.as_ref().is_none_or(|w| *w == ws.name) && a.path.as_ref().is_none_or(|p| *p == f.path));
                if !allowed {
                    out.push(Warning { address: address.clone(), rule: f.rule, message: f.message });
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(rules: &Rules, path: &str) -> Vec<String> {
        rules[path].capabilities.iter().cloned().collect()
    }

    fn lint_text(text: &str) -> Vec<(LintRule, String)> {
        lint(&parse(text).unwrap(), &|first| first == "team-b").into_iter().map(|f| (f.rule, f.path)).collect()
    }

    #[test]
    fn lint_rules_find_what_reviewers_must_see() {
        use LintRule::*;
        let found = lint_text(
            r#"
path "secret/data/*" { capabilities = ["read"] }
path "sys/mounts/*" { capabilities = ["update", "sudo"] }
path "auth/token/create" { capabilities = ["update"] }
path "identity/entity/*" { capabilities = ["read"] }
path "+/secret/data/*" { capabilities = ["read"] }
path "*" { capabilities = ["list"] }
path "team-b/secret/data/*" { capabilities = ["read"] }
path "sys/raw/*" { capabilities = ["deny"] }
"#,
        );
        assert_eq!(
            found,
            [
                (RootGlob, "*".to_string()),
                (ChildNamespaces, "+/secret/data/*".to_string()),
                (SystemPath, "auth/token/create".to_string()),
                (SystemPath, "identity/entity/*".to_string()),
                (Sudo, "sys/mounts/*".to_string()),
                (SystemPath, "sys/mounts/*".to_string()),
                (OtherWorkspace, "team-b/secret/data/*".to_string()),
            ]
        );
        assert!(lint_text("path \"secret/data/*\" { capabilities = [\"create\", \"update\"] }").is_empty());
        assert!(lint_text("path \"sysx/data\" { capabilities = [\"read\"] }").is_empty(), "sysx is not sys");
        assert_eq!(lint_text("path \"s*\" { capabilities = [\"read\"] }").len(), 1, "a root glob reaching sys/ too");
    }

    #[test]
    fn every_shipped_template_lints_clean() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = crate::templates::Templates::load(&dir).unwrap();
        let vars = BTreeMap::new();
        let mut n = 0;
        for entry in std::fs::read_dir(dir.join("policies")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let ctx = crate::templates::PolicyContext { workspace: "team-a", namespace: "team-a", kv_path: "secret", environment: "prod", vars: &vars };
            let text = templates.render_policy(&name, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
            let found = lint(&parse(&text).unwrap(), &|first: &str| first == "team-b");
            assert!(found.is_empty(), "{name}: {found:?}");
            n += 1;
        }
        assert!(n >= 2);
    }

    #[test]
    fn every_shipped_template_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/policies");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let text = text.replace("{{kv_path}}", "secret").replace("{{", "").replace("}}", "");
            let rules = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert!(rules.contains_key("secret/data/*"), "{rules:?}");
            n += 1;
        }
        assert!(n >= 2);
    }

    #[test]
    fn comments_heredocs_legacy_json_and_duplicate_paths() {
        let hcl = r#"
# a comment
// another
path "secret/data/*" {
  capabilities = ["read", "list"] /* inline */
}
path "secret/data/*" { capabilities = ["update"] }
path "sys/policies/acl/x" {
  capabilities = ["update"]
  allowed_parameters = { "policy" = [] }
  min_wrapping_ttl = "1s"
}
path "old/*" { policy = "write" }
"#;
        let r = parse(hcl).unwrap();
        assert_eq!(caps(&r, "secret/data/*"), ["list", "read", "update"], "duplicate stanzas merge");
        assert_eq!(caps(&r, "old/*"), ["create", "delete", "list", "read", "update"]);
        assert_eq!(r["sys/policies/acl/x"].constraints["min_wrapping_ttl"], "\"1s\"");
        let json = r#"{"path": {"secret/data/*": {"capabilities": ["read"]}, "sys/*": {"policy": "sudo"}}}"#;
        let r = parse(json).unwrap();
        assert!(caps(&r, "sys/*").contains(&"sudo".to_string()));
        let heredoc = "path \"a/*\" {\n  capabilities = [\"read\"]\n  required_parameters = <<EOT\nx\nEOT\n}\n";
        assert!(parse(heredoc).is_ok(), "{:?}", parse(heredoc));
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        for bad in [
            "path {",
            "path \"a\" \"b\" { capabilities = [\"read\"] }",
            "path \"a\" { capabilities = [1] }",
            "path \"a\" { policy = \"everything\" }",
            "key \"a\" { capabilities = [\"read\"] }",
            "capabilities = [\"read\"]",
            "{\"path\": 3}",
            "{",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse("").unwrap(), Rules::new());
        // Deep nesting is refused before the parser sees it (the fuzz target's timeout).
        let deep = format!("path \"a\" {{\n{}", "x = {\n".repeat(40));
        let t = std::time::Instant::now();
        assert!(parse(&deep).unwrap_err().to_string().contains("nested more than"));
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
        // Brackets in strings and comments do not count.
        let fine = "# {{{{{{{{{{{{{{\n/* [[[[[[[[[[[[[[ */\npath \"a{{{{{{{{{{{{{{\" { capabilities = [\"read\"] } // ((((((((((((((\n";
        assert!(parse(fine).is_ok(), "{:?}", parse(fine));
        assert_eq!(depth("path \"a\" { x = { y = [1] } }"), 3);
    }

    #[test]
    fn the_difference_is_capabilities_not_text() {
        let before = "path \"secret/data/*\" { capabilities = [\"read\", \"list\"] }\npath \"secret/metadata/*\" { capabilities = [\"list\"] }\n";
        let after = "# reformatted\npath \"secret/data/*\" {\n  capabilities = [\"list\", \"read\", \"delete\"]\n}\npath \"sys/*\" { capabilities = [\"sudo\"] }\n";
        assert_eq!(
            text_difference(Some(before), Some(after)),
            ["+ delete on secret/data/*", "- list on secret/metadata/*", "+ sudo on sys/*"]
        );
        // Reordering and comments are no change at all.
        let same = "path \"secret/metadata/*\" { capabilities = [\"list\"] }\n# c\npath \"secret/data/*\" { capabilities = [\"list\", \"read\"] }";
        assert!(text_difference(Some(before), Some(same)).is_empty());
        assert_eq!(text_difference(None, Some("path \"a\" { capabilities = [\"read\"] }")), ["+ read on a"]);
        assert!(text_difference(Some("path {"), Some(after))[0].starts_with("(the live policy does not parse"));
    }
}

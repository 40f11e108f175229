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

/// Parse a policy in HCL or JSON.
pub fn parse(text: &str) -> Result<Rules, PolicyError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(rules: &Rules, path: &str) -> Vec<String> {
        rules[path].capabilities.iter().cloned().collect()
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

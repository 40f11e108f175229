//! The KMS and IAM kinds as typed attribute structs, shared by desired expansion
//! ([`desired`]) and observation (`kms.rs`, `iam.rs`), like `openbao/resources.rs`.
//!
//! Addresses: `aws.kms.<key>`, `aws.kms.<key>.alias`, `aws.iam.role.<role>`,
//! `aws.iam.instance_profile.<role>`. IAM names are `ctl-<environment>-<role>`.
//!
//! Key policies are compared statement by statement: each statement is one attribute
//! `policy.<Sid>` holding a canonical form (sorted principals, actions, resources and condition
//! values). Account-specific ARNs are written symbolically on both sides, so desired state needs
//! no AWS call: `account-root` (`arn:aws:iam::<account>:root`), `iam-role/<name>` (the role's
//! ARN) and `${account}` (the account id in conditions). Observation turns live ARNs of the key's
//! own account into these symbols; apply turns them back ([`Symbols`]).

use crate::config::{iam_name, AwsConnection, Environment, ServicePrincipal};
use crate::model::{Address, Attrs, Kind, Resource, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub use crate::model::{from_attrs, to_attrs};

/// Attribute-key prefix of key policy statements.
pub const STATEMENT_PREFIX: &str = "policy.";
pub const ACCOUNT_ROOT: &str = "account-root";
pub const ROLE_PREFIX: &str = "iam-role/";
pub const ACCOUNT_VAR: &str = "${account}";

/// Key administration without any use of the key (no Encrypt/Decrypt/GenerateDataKey).
pub const ADMIN_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
];
/// What the OpenBao servers' role may do: exactly what the awskms seal calls.
pub const OPENBAO_ACTIONS: &[&str] = &["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"];
/// What RDS needs to encrypt storage with a customer managed key.
pub const RDS_ACTIONS: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ListGrants",
    "kms:ReEncrypt*",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KmsKeyAttrs {
    pub description: String,
    pub key_spec: String,
    pub key_usage: String,
    pub enabled: bool,
    /// `policy.<Sid>` → canonical statement (see [`canonical_statement`]).
    #[serde(flatten)]
    pub policy: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KmsAliasAttrs {
    /// The address of the key it points at.
    pub target_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IamRoleAttrs {
    pub description: String,
    /// Services allowed to `sts:AssumeRole`, sorted. A trust statement of any other shape shows
    /// up here as `statement:<json>`, so it is a visible difference.
    pub trusted_services: Vec<String>,
    pub max_session_duration: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IamInstanceProfileAttrs {
    /// The AWS name of the role it carries ("" for none); several are joined with ",".
    pub role: String,
}

/// Addresses of the KMS and IAM kinds.
pub fn key_address(key: &str) -> Address {
    Address::new(format!("aws.kms.{key}"))
}
pub fn alias_address(key: &str) -> Address {
    Address::new(format!("aws.kms.{key}.alias"))
}
pub fn role_address(role: &str) -> Address {
    Address::new(format!("aws.iam.role.{role}"))
}
pub fn profile_address(role: &str) -> Address {
    Address::new(format!("aws.iam.instance_profile.{role}"))
}

/// The last segment of `aws.kms.<key>`.
pub fn key_name_of(address: &Address) -> String {
    address.as_str().strip_prefix("aws.kms.").unwrap_or(address.as_str()).to_string()
}

fn resource(address: Address, kind: Kind, name: &str, attrs: Attrs, depends_on: Vec<Address>) -> Resource {
    Resource { address, kind, scope: Scope::Root, name: name.to_string(), attrs, depends_on, container: None }
}

pub fn kms_key(address: Address, name: &str, a: &KmsKeyAttrs, depends_on: Vec<Address>) -> Resource {
    resource(address, Kind::KmsKey, name, to_attrs(a), depends_on)
}

pub fn kms_alias(address: Address, alias: &str, a: &KmsAliasAttrs) -> Resource {
    let deps = vec![Address::new(a.target_key.clone())];
    resource(address, Kind::KmsAlias, alias, to_attrs(a), deps)
}

pub fn iam_role(address: Address, name: &str, a: &IamRoleAttrs) -> Resource {
    resource(address, Kind::IamRole, name, to_attrs(a), vec![])
}

/// Depends on its role's address when the role is ctl's (`role_address`).
pub fn instance_profile(
    address: Address,
    name: &str,
    a: &IamInstanceProfileAttrs,
    role_address: Option<Address>,
) -> Resource {
    resource(address, Kind::IamInstanceProfile, name, to_attrs(a), role_address.into_iter().collect())
}

/// The region resources are created in.
pub fn region(env: &Environment) -> String {
    match &env.aws {
        Some(AwsConnection::Account { region, .. }) => region.clone(),
        _ => "us-east-1".to_string(),
    }
}

/// The desired KMS and IAM resources of `env` (pure; validated config cannot fail here).
pub fn desired(env: &Environment) -> Vec<Resource> {
    let cfg = &env.kms_iam;
    let mut out = Vec::new();
    for (name, role) in &cfg.iam_roles {
        let aws_name = iam_name(&env.name, name);
        out.push(iam_role(
            role_address(name),
            &aws_name,
            &IamRoleAttrs {
                description: role.description.clone(),
                trusted_services: role.trusted_services.clone(),
                max_session_duration: role.max_session_duration.to_string(),
            },
        ));
        if role.instance_profile {
            out.push(instance_profile(
                profile_address(name),
                &aws_name,
                &IamInstanceProfileAttrs { role: aws_name.clone() },
                Some(role_address(name)),
            ));
        }
    }
    let region = region(env);
    for (name, key) in &cfg.kms_keys {
        let role = iam_name(&env.name, &key.openbao_role);
        let mut policy = BTreeMap::new();
        let mut put = |sid: &str, stmt: Value| {
            policy.insert(format!("{STATEMENT_PREFIX}{sid}"), canonical_statement(&stmt, &Symbols::none()));
        };
        put("KeyAdministration", statement(&[ACCOUNT_ROOT], ADMIN_ACTIONS, None));
        put("OpenBaoUnseal", statement(&[&format!("{ROLE_PREFIX}{role}")], OPENBAO_ACTIONS, None));
        for extra in &key.extra_principals {
            match extra {
                ServicePrincipal::Rds => put(
                    "RdsViaService",
                    statement(
                        &["*"],
                        RDS_ACTIONS,
                        Some(json!({"StringEquals": {
                            "kms:CallerAccount": ACCOUNT_VAR,
                            "kms:ViaService": format!("rds.{region}.amazonaws.com"),
                        }})),
                    ),
                ),
            }
        }
        let attrs = KmsKeyAttrs {
            description: key.description.clone(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            enabled: true,
            policy,
        };
        out.push(kms_key(key_address(name), name, &attrs, vec![role_address(&key.openbao_role)]));
        out.push(kms_alias(
            alias_address(name),
            &key.alias,
            &KmsAliasAttrs { target_key: key_address(name).to_string() },
        ));
    }
    out
}

/// A policy statement in IAM JSON form (principals may be symbols).
fn statement(principals: &[&str], actions: &[&str], condition: Option<Value>) -> Value {
    let principal = if principals == ["*"] { json!({"AWS": "*"}) } else { json!({"AWS": principals}) };
    let mut s = json!({"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*"});
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Canonical policies.

/// How account-specific strings map to symbols: built from the key's account on observation.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    pub account: Option<String>,
    /// Role ARN → role name, for resolving `iam-role/<name>` back (apply).
    pub role_arns: BTreeMap<String, String>,
}

impl Symbols {
    pub fn none() -> Symbols {
        Symbols::default()
    }

    pub fn for_account(account: &str) -> Symbols {
        Symbols { account: Some(account.to_string()), role_arns: BTreeMap::new() }
    }

    /// Live → symbolic.
    pub fn symbolize(&self, s: &str) -> String {
        let Some(account) = &self.account else { return s.to_string() };
        if s == account {
            return ACCOUNT_VAR.to_string();
        }
        let iam_prefix = format!("arn:aws:iam::{account}:");
        match s.strip_prefix(&iam_prefix) {
            Some("root") => ACCOUNT_ROOT.to_string(),
            Some(rest) => match rest.strip_prefix("role/") {
                Some(path_and_name) => {
                    format!("{ROLE_PREFIX}{}", path_and_name.rsplit('/').next().unwrap_or(path_and_name))
                }
                None => s.to_string(),
            },
            None => s.to_string(),
        }
    }

    /// Symbolic → live. `role_arn` resolves a role name to its ARN.
    pub fn resolve(&self, s: &str) -> String {
        let account = self.account.as_deref().unwrap_or("");
        if s == ACCOUNT_ROOT {
            return format!("arn:aws:iam::{account}:root");
        }
        if s == ACCOUNT_VAR {
            return account.to_string();
        }
        if let Some(name) = s.strip_prefix(ROLE_PREFIX) {
            if let Some((arn, _)) = self.role_arns.iter().find(|(_, n)| n.as_str() == name) {
                return arn.clone();
            }
            return format!("arn:aws:iam::{account}:role/{name}");
        }
        s.to_string()
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect(),
        Value::Null => vec![],
        other => vec![other.to_string()],
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// The canonical form of one IAM policy statement: `effect`, `principals` (`*`, AWS principals
/// symbolized, `service:<name>`), `actions`, `resources`, `conditions` (operator → key → sorted
/// values, when present) and `other` (any other field as written, e.g. `NotAction`).
pub fn canonical_statement(stmt: &Value, symbols: &Symbols) -> Value {
    let mut out = Map::new();
    let get = |k: &str| stmt.get(k).cloned().unwrap_or(Value::Null);
    out.insert("effect".into(), Value::from(get("Effect").as_str().unwrap_or("").to_string()));
    let mut principals = Vec::new();
    match get("Principal") {
        Value::String(s) if s == "*" => principals.push("*".to_string()),
        Value::Object(m) => {
            for (kind, v) in m {
                for p in strings(&v) {
                    principals.push(match kind.as_str() {
                        "AWS" if p == "*" => "*".to_string(),
                        "AWS" => symbols.symbolize(&p),
                        "Service" => format!("service:{p}"),
                        other => format!("{}:{p}", other.to_ascii_lowercase()),
                    });
                }
            }
        }
        Value::Null => {}
        other => principals.push(other.to_string()),
    }
    out.insert("principals".into(), json!(sorted(principals)));
    out.insert("actions".into(), json!(sorted(strings(&get("Action")))));
    out.insert("resources".into(), json!(sorted(strings(&get("Resource")))));
    if let Value::Object(ops) = get("Condition") {
        let mut conditions = Map::new();
        let mut ops: Vec<(String, Value)> = ops.into_iter().collect();
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        for (op, keys) in ops {
            let mut by_key = Map::new();
            if let Value::Object(keys) = keys {
                let mut keys: Vec<(String, Value)> = keys.into_iter().collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, v) in keys {
                    let vals: Vec<String> = strings(&v).iter().map(|s| symbols.symbolize(s)).collect();
                    by_key.insert(k, json!(sorted(vals)));
                }
            }
            conditions.insert(op, Value::Object(by_key));
        }
        out.insert("conditions".into(), Value::Object(conditions));
    }
    let known = ["Sid", "Effect", "Principal", "Action", "Resource", "Condition"];
    let mut other = Map::new();
    if let Value::Object(m) = stmt {
        for (k, v) in m {
            if !known.contains(&k.as_str()) {
                other.insert(k.clone(), v.clone());
            }
        }
    }
    if !other.is_empty() {
        out.insert("other".into(), Value::Object(other));
    }
    Value::Object(out)
}

/// A live key policy document → `policy.<Sid>` attributes (statements without a Sid are
/// `policy.#<n>`, numbered in document order among themselves).
pub fn policy_attrs(doc: &Value, symbols: &Symbols) -> BTreeMap<String, Value> {
    let stmts = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => vec![],
    };
    let mut out = BTreeMap::new();
    let mut unnamed = 0;
    for s in &stmts {
        let sid = match s.get("Sid").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(sid) => sid.to_string(),
            None => {
                unnamed += 1;
                format!("#{unnamed}")
            }
        };
        out.insert(format!("{STATEMENT_PREFIX}{sid}"), canonical_statement(s, symbols));
    }
    out
}

/// `policy.<Sid>` attributes → a key policy document with live ARNs.
pub fn policy_document(policy: &BTreeMap<String, Value>, symbols: &Symbols) -> Value {
    let mut statements = Vec::new();
    for (key, c) in policy {
        let sid = key.strip_prefix(STATEMENT_PREFIX).unwrap_or(key);
        let mut s = Map::new();
        if !sid.starts_with('#') {
            s.insert("Sid".into(), json!(sid));
        }
        s.insert("Effect".into(), c["effect"].clone());
        let list = |v: &Value| -> Vec<String> { strings(v) };
        let principals = list(&c["principals"]);
        if !principals.is_empty() {
            let mut aws = Vec::new();
            let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for p in principals {
                if p == "*" {
                    aws.push("*".to_string());
                } else if let Some(svc) = p.strip_prefix("service:") {
                    by_kind.entry("Service".into()).or_default().push(svc.to_string());
                } else {
                    aws.push(symbols.resolve(&p));
                }
            }
            let mut principal = Map::new();
            if !aws.is_empty() {
                principal.insert("AWS".into(), if aws.len() == 1 { json!(aws[0]) } else { json!(aws) });
            }
            for (k, v) in by_kind {
                principal.insert(k, json!(v));
            }
            s.insert("Principal".into(), Value::Object(principal));
        }
        s.insert("Action".into(), c["actions"].clone());
        let resources = list(&c["resources"]);
        s.insert("Resource".into(), if resources.len() == 1 { json!(resources[0]) } else { json!(resources) });
        if let Some(Value::Object(ops)) = c.get("conditions") {
            let mut cond = Map::new();
            for (op, keys) in ops {
                let mut m = Map::new();
                if let Value::Object(keys) = keys {
                    for (k, v) in keys {
                        let vals: Vec<String> = list(v).iter().map(|x| symbols.resolve(x)).collect();
                        m.insert(k.clone(), if vals.len() == 1 { json!(vals[0]) } else { json!(vals) });
                    }
                }
                cond.insert(op.clone(), Value::Object(m));
            }
            s.insert("Condition".into(), Value::Object(cond));
        }
        if let Some(Value::Object(other)) = c.get("other") {
            for (k, v) in other {
                s.insert(k.clone(), v.clone());
            }
        }
        statements.push(Value::Object(s));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The trust policy of a role that `trusted_services` may assume.
pub fn trust_document(trusted_services: &[String]) -> Value {
    let services: Vec<&str> =
        trusted_services.iter().filter(|s| !s.starts_with("statement:")).map(String::as_str).collect();
    let mut statements: Vec<Value> = Vec::new();
    if !services.is_empty() {
        statements.push(json!({"Effect": "Allow", "Principal": {"Service": services}, "Action": "sts:AssumeRole"}));
    }
    for other in trusted_services.iter().filter_map(|s| s.strip_prefix("statement:")) {
        if let Ok(v) = serde_json::from_str::<Value>(other) {
            statements.push(v);
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A live trust policy → `trusted_services` (see [`IamRoleAttrs::trusted_services`]).
pub fn trusted_services(doc: &Value) -> Vec<String> {
    let stmts = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => vec![],
    };
    let mut out = Vec::new();
    for s in stmts {
        let simple = s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && strings(s.get("Action").unwrap_or(&Value::Null)) == ["sts:AssumeRole"]
            && s.get("Condition").is_none()
            && s.get("Principal").and_then(Value::as_object).is_some_and(|p| p.len() == 1 && p.contains_key("Service"));
        if simple {
            out.extend(strings(&s["Principal"]["Service"]));
        } else {
            let mut s = s.clone();
            if let Value::Object(m) = &mut s {
                m.remove("Sid");
            }
            out.push(format!("statement:{s}"));
        }
    }
    sorted(out)
}

/// IAM returns policy documents URL-encoded (real AWS) or plain (moto): accept both.
pub fn parse_policy_document(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let decoded: String = url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    serde_json::from_str(&decoded).unwrap_or(Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_policy_round_trips_through_symbols() {
        let symbols = Symbols::for_account("123456789012");
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "KeyAdministration", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": ["kms:Put*", "kms:Create*"], "Resource": "*"},
            {"Sid": "OpenBaoUnseal", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:role/ctl-p-openbao"]},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"StringEquals": {"kms:CallerAccount": "123456789012", "kms:ViaService": "rds.us-east-1.amazonaws.com"}}},
        ]});
        let attrs = policy_attrs(&doc, &symbols);
        assert_eq!(attrs["policy.KeyAdministration"]["principals"], json!(["account-root"]));
        assert_eq!(attrs["policy.KeyAdministration"]["actions"], json!(["kms:Create*", "kms:Put*"]));
        assert_eq!(attrs["policy.OpenBaoUnseal"]["principals"], json!(["iam-role/ctl-p-openbao"]));
        assert_eq!(attrs["policy.#1"]["principals"], json!(["*"]));
        assert_eq!(attrs["policy.#1"]["conditions"]["StringEquals"]["kms:CallerAccount"], json!(["${account}"]));
        // Back to a document and once more through observation: the same attributes.
        let again = policy_attrs(&policy_document(&attrs, &symbols), &symbols);
        assert_eq!(again, attrs);
        let text = policy_document(&attrs, &symbols).to_string();
        assert!(text.contains("arn:aws:iam::123456789012:role/ctl-p-openbao"), "{text}");
        assert!(!text.contains("iam-role/"), "{text}");
    }

    #[test]
    fn foreign_accounts_stay_literal() {
        let symbols = Symbols::for_account("111111111111");
        assert_eq!(symbols.symbolize("arn:aws:iam::222222222222:root"), "arn:aws:iam::222222222222:root");
        assert_eq!(symbols.symbolize("arn:aws:iam::111111111111:role/a/b/ctl-x"), "iam-role/ctl-x");
        assert_eq!(symbols.symbolize("arn:aws:iam::111111111111:user/alice"), "arn:aws:iam::111111111111:user/alice");
    }

    #[test]
    fn openbao_statement_grants_only_seal_actions() {
        let s = canonical_statement(&statement(&["iam-role/r"], OPENBAO_ACTIONS, None), &Symbols::none());
        assert_eq!(s["actions"], json!(["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"]));
        let admin = canonical_statement(&statement(&[ACCOUNT_ROOT], ADMIN_ACTIONS, None), &Symbols::none());
        let actions: Vec<String> = serde_json::from_value(admin["actions"].clone()).unwrap();
        for forbidden in ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:*"] {
            assert!(!actions.iter().any(|a| a == forbidden), "{forbidden} in admin actions");
        }
    }

    #[test]
    fn trust_policy_round_trips_and_odd_statements_show() {
        let doc = trust_document(&["ec2.amazonaws.com".to_string()]);
        assert_eq!(trusted_services(&doc), vec!["ec2.amazonaws.com"]);
        let odd = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole"}]});
        let t = trusted_services(&odd);
        assert!(t[0].starts_with("statement:"), "{t:?}");
        assert_eq!(trusted_services(&trust_document(&t)), t);
        let encoded = "%7B%22Statement%22%3A%5B%5D%7D";
        assert_eq!(parse_policy_document(encoded), json!({"Statement": []}));
    }

    #[test]
    fn attrs_round_trip_with_flattened_statements() {
        let mut policy = BTreeMap::new();
        policy.insert("policy.A".to_string(), json!({"effect": "Allow"}));
        let a =
            KmsKeyAttrs { description: "d".into(), key_spec: "S".into(), key_usage: "U".into(), enabled: true, policy };
        let attrs = to_attrs(&a);
        assert_eq!(attrs.keys().collect::<Vec<_>>(), ["description", "key_spec", "key_usage", "enabled", "policy.A"]);
        assert_eq!(from_attrs::<KmsKeyAttrs>(&attrs).unwrap(), a);
    }
}

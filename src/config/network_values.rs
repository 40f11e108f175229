//! The value types of the infrastructure sections, each checked while deserializing so an
//! error carries the value's own position (names, ports, protocols, retention, key references).

use super::names::{via_parse, Parse};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A name of a subnet, security group or instance group: lowercase letters, digits and '-',
/// starting with a letter, at most 40 characters (it becomes part of AWS names and tags).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct InfraName(pub String);

impl Parse for InfraName {
    const EXPECTING: &'static str = "a name such as private-a";
    fn parse(s: &str) -> Result<InfraName, String> {
        let why = if s.is_empty() {
            Some("must not be empty".to_string())
        } else if s.len() > 40 {
            Some(format!("must be at most 40 characters (has {})", s.len()))
        } else if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            Some("must start with a lowercase letter".to_string())
        } else {
            s.chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
                .map(|c| format!("contains {c:?}; allowed are a-z, 0-9, '-'"))
        };
        match why {
            Some(why) => Err(format!("name {s:?} is invalid: {why}")),
            None => Ok(InfraName(s.to_string())),
        }
    }
}
via_parse!(InfraName);

impl fmt::Display for InfraName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An RDS DB instance identifier: 1–63 letters, digits or hyphens, starting with a letter, no
/// two consecutive hyphens, not ending with one. Stored lowercase (as AWS does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DbIdentifier(pub String);

impl Parse for DbIdentifier {
    const EXPECTING: &'static str = "a DB identifier such as ctl-main";
    fn parse(s: &str) -> Result<DbIdentifier, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !s.contains("--")
            && !s.ends_with('-');
        if ok {
            Ok(DbIdentifier(s.to_ascii_lowercase()))
        } else {
            Err(format!(
                "DB identifier {s:?} is invalid: 1-63 letters, digits or hyphens, starting with a letter, \
                 no '--', not ending with '-'"
            ))
        }
    }
}
via_parse!(DbIdentifier);

/// The RDS engine: only `postgres` is supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Engine(pub String);

impl Parse for Engine {
    const EXPECTING: &'static str = "an engine (postgres)";
    fn parse(s: &str) -> Result<Engine, String> {
        if s == "postgres" {
            Ok(Engine(s.to_string()))
        } else {
            Err(format!("engine {s:?} is not supported: use postgres"))
        }
    }
}
via_parse!(Engine);

/// A TCP/UDP port, 1–65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let check = |n: i128| match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(format!("port {n} is out of range (1-65535)")),
        };
        d.deserialize_i64(IntVisitor {
            expecting: "a port number (1-65535)",
            check,
        })
    }
}

/// Checks an integer inside the visitor, so serde_yaml reports the value's own position.
struct IntVisitor<F> {
    expecting: &'static str,
    check: F,
}

impl<T, F: FnOnce(i128) -> Result<T, String>> serde::de::Visitor<'_> for IntVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        (self.check)(i128::from(v)).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        (self.check)(i128::from(v)).map_err(E::custom)
    }
}

/// `tcp` (default) or `udp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Protocol(pub String);

impl Default for Protocol {
    fn default() -> Protocol {
        Protocol("tcp".into())
    }
}

impl Parse for Protocol {
    const EXPECTING: &'static str = "tcp or udp";
    fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "tcp" | "udp" => Ok(Protocol(s.to_string())),
            _ => Err(format!("protocol {s:?} is not supported: use tcp or udp")),
        }
    }
}
via_parse!(Protocol);

/// Days of automated RDS backups kept: 1–35 (AWS's range; 0 would disable backups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetentionDays(pub u8);

impl Default for RetentionDays {
    fn default() -> RetentionDays {
        RetentionDays(30)
    }
}

impl<'de> Deserialize<'de> for RetentionDays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let check = |n: i128| {
            match u8::try_from(n) {
            Ok(days) if (1..=35).contains(&days) => Ok(RetentionDays(days)),
            _ => Err(format!("backup_retention_period {n} is out of range: RDS keeps automated backups for 1 to 35 days")),
        }
        };
        d.deserialize_i64(IntVisitor {
            expecting: "a number of days (1-35)",
            check,
        })
    }
}

/// A KMS key reference: a key id (UUID) or a key ARN, stored as the key id so what AWS reports
/// (an id or an ARN) compares equal; or the name of a key declared in `kms:` (checked against
/// that section when the environment is loaded), whose id is known only once it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KmsKeyRef(pub String);

/// Whether a `kms_key` value names a key of the `kms:` section (not an id or ARN).
pub fn is_declared_key(kms_key: &str) -> bool {
    kms_key_id(kms_key).is_none()
}

/// The key id of a key id or key ARN, if it is one.
pub fn kms_key_id(s: &str) -> Option<String> {
    let id = match s.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() != 5 || parts[1] != "kms" {
                return None;
            }
            parts[4].strip_prefix("key/")?
        }
        None => s,
    };
    let groups: Vec<&str> = id.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| id.to_ascii_lowercase())
}

impl Parse for KmsKeyRef {
    const EXPECTING: &'static str = "a KMS key id, key ARN or the name of a key in kms:";
    fn parse(s: &str) -> Result<KmsKeyRef, String> {
        let declared = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        kms_key_id(s).or_else(|| declared.then(|| s.to_string())).map(KmsKeyRef).ok_or_else(|| {
            format!(
                "kms_key {s:?} is invalid: expected a key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN \
                 (arn:aws:kms:<region>:<account>:key/<key id>) or the name of a key in kms:"
            )
        })
    }
}
via_parse!(KmsKeyRef);

/// A user-data template name: `templates/userdata/<name>.hbs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserDataTemplate(pub String);

impl Parse for UserDataTemplate {
    const EXPECTING: &'static str = "a template name (templates/userdata/<name>.hbs)";
    fn parse(s: &str) -> Result<UserDataTemplate, String> {
        InfraName::parse(s)
            .map(|n| UserDataTemplate(n.0))
            .map_err(|e| format!("user_data_template: {e} (templates/userdata/<name>.hbs)"))
    }
}
via_parse!(UserDataTemplate);


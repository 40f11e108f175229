//! Validated string newtypes used while deserializing: names, mount paths, addresses.
//!
//! Each is checked inside its serde visitor, so serde_yaml attaches the position of the offending
//! scalar to the error.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// A string type that validates itself; the error is the complete message.
pub(crate) trait Parse: Sized {
    /// What serde reports for a non-string value.
    const EXPECTING: &'static str;
    /// Validate `s`.
    fn parse(s: &str) -> Result<Self, String>;
}

struct ParseVisitor<T>(PhantomData<T>);

impl<T: Parse> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse(v).map_err(E::custom)
    }
}

/// Deserialize a [`Parse`] type from a YAML scalar.
pub(crate) fn deserialize_parse<'de, T: Parse, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_str(ParseVisitor::<T>(PhantomData))
}

/// `impl Deserialize` for a [`Parse`] type (errors carry the scalar's position).
macro_rules! via_parse {
    ($t:ty) => {
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::config::names::deserialize_parse(d)
            }
        }
    };
}
pub(crate) use via_parse;

/// How one kind of name is spelled.
pub(crate) struct Rule {
    kind: &'static str,
    max_len: Option<usize>,
    allow_dot: bool,
    slash: &'static str,
    reserved: &'static [&'static str],
    reserved_why: &'static str,
}

const NAME_SLASH: &str = "must not contain '/'";

pub(crate) const WORKSPACE: Rule = Rule {
    kind: "workspace name",
    max_len: Some(63),
    allow_dot: false,
    slash: NAME_SLASH,
    reserved: &["root", "sys", "audit", "auth", "cubbyhole", "identity"],
    reserved_why: "it is reserved by OpenBao",
};

pub(crate) const NAMESPACE: Rule = Rule {
    kind: "namespace",
    slash: "must not contain '/' (one namespace per workspace, no nesting)",
    ..WORKSPACE
};

pub(crate) const MOUNT: Rule = Rule {
    kind: "mount path",
    max_len: None,
    allow_dot: false,
    slash: "must be a single path segment (no '/')",
    reserved: &["sys", "auth", "cubbyhole", "identity", "token"],
    reserved_why: "it is reserved by OpenBao",
};

pub(crate) const POLICY: Rule = Rule {
    kind: "policy name",
    max_len: None,
    allow_dot: true,
    slash: NAME_SLASH,
    reserved: &["root", "default"],
    reserved_why: "it is a built-in OpenBao policy",
};

pub(crate) const TEMPLATE: Rule =
    Rule { kind: "template name", slash: "must not contain '/' (templates/policies/<name>.hbs)", reserved: &[], ..POLICY };

pub(crate) const ROLE: Rule =
    Rule { kind: "role name", max_len: None, allow_dot: false, slash: NAME_SLASH, reserved: &[], reserved_why: "" };

pub(crate) const TRANSIT_KEY: Rule = Rule { kind: "transit key name", ..ROLE };

pub(crate) const CLASS: Rule = Rule { kind: "class name", ..ROLE };

impl Rule {
    /// `Ok` if `s` is a valid name of this kind, else the full message saying why not.
    pub(crate) fn check(&self, s: &str) -> Result<(), String> {
        self.reason(s).map_or(Ok(()), |why| Err(format!("{} {s:?} is invalid: {why}", self.kind)))
    }

    fn reason(&self, s: &str) -> Option<String> {
        let extra = if self.allow_dot { "'-', '_', '.'" } else { "'-', '_'" };
        let Some(first) = s.chars().next() else {
            return Some("must not be empty".into());
        };
        if let Some(max) = self.max_len.filter(|max| s.chars().count() > *max) {
            return Some(format!("must be at most {max} characters (has {})", s.chars().count()));
        }
        if s.contains('/') {
            return Some(self.slash.to_string());
        }
        if s.chars().any(char::is_whitespace) {
            return Some("must not contain spaces".into());
        }
        if s.chars().any(|c| c.is_ascii_uppercase()) {
            return Some("must be lowercase".into());
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Some("must start with a lowercase letter or a digit".into());
        }
        if let Some(c) = s.chars().find(|c| !self.allowed(*c)) {
            return Some(format!("contains {c:?}; allowed are a-z, 0-9, {extra}"));
        }
        if self.reserved.contains(&s) {
            return Some(self.reserved_why.to_string());
        }
        None
    }

    fn allowed(&self, c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || (self.allow_dot && c == '.')
    }
}

/// Declare a `String` newtype validated by a [`Rule`].
macro_rules! rule_name {
    ($(#[$doc:meta])* $name:ident, $rule:expr, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) struct $name(pub String);

        impl Parse for $name {
            const EXPECTING: &'static str = $expecting;
            fn parse(s: &str) -> Result<Self, String> {
                $rule.check(s).map(|()| $name(s.to_string()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_parse(d)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

rule_name!(
    /// A workspace name.
    WorkspaceName, WORKSPACE, "a workspace name"
);
rule_name!(
    /// An OpenBao namespace (one path segment).
    NamespaceName, NAMESPACE, "a namespace name"
);
rule_name!(
    /// A secrets engine or auth mount path (one segment).
    MountPath, MOUNT, "a mount path"
);
rule_name!(
    /// An ACL policy name.
    PolicyName, POLICY, "a policy name"
);
rule_name!(
    /// A policy template name (`templates/policies/<name>.hbs`).
    TemplateName, TEMPLATE, "a template name"
);
rule_name!(
    /// An AppRole role name.
    RoleName, ROLE, "a role name"
);
rule_name!(
    /// A transit key name.
    KeyName, TRANSIT_KEY, "a transit key name"
);
rule_name!(
    /// A workspace class name.
    ClassName, CLASS, "a class name"
);

/// Transit key types OpenBao supports and `ctl` accepts.
pub(crate) const KEY_TYPES: &[&str] = &[
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
];

/// A transit key type from [`KEY_TYPES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyType(pub String);

impl Default for KeyType {
    fn default() -> KeyType {
        KeyType("aes256-gcm96".into())
    }
}

impl Parse for KeyType {
    const EXPECTING: &'static str = "a transit key type";
    fn parse(s: &str) -> Result<KeyType, String> {
        if KEY_TYPES.contains(&s) {
            Ok(KeyType(s.to_string()))
        } else {
            Err(format!("unsupported transit key type {s:?}; expected one of: {}", KEY_TYPES.join(", ")))
        }
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parse(d)
    }
}

/// A server address: `http(s)://host:port`, without path (a trailing `/` is dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Address(pub String);

impl Parse for Address {
    const EXPECTING: &'static str = "an address such as https://bao.example.com:8200";
    fn parse(s: &str) -> Result<Address, String> {
        let fail = |why: &str| Err(format!("invalid address {s:?}: {why} (expected http(s)://host:port)"));
        let trimmed = s.strip_suffix('/').unwrap_or(s);
        let Some(rest) = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")) else {
            return fail("scheme must be http or https");
        };
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return fail("must not have a path");
        }
        if rest.contains('@') || rest.chars().any(char::is_whitespace) {
            return fail("must be just host and port");
        }
        let Some((host, port)) = rest.rsplit_once(':') else {
            return fail("missing port");
        };
        let host_ok = !host.is_empty()
            && match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
                None => !host.contains(['[', ']', ':']),
            };
        if !host_ok {
            return fail("missing or malformed host");
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(Address(trimmed.to_string())),
            _ => fail("port must be a number from 1 to 65535"),
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parse(d)
    }
}

/// The name of an environment variable holding a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EnvVarName(pub String);

impl Parse for EnvVarName {
    const EXPECTING: &'static str = "an environment variable name";
    fn parse(s: &str) -> Result<EnvVarName, String> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(EnvVarName(s.to_string()))
        } else {
            Err(format!("invalid environment variable name {s:?}: expected letters, digits and '_' (e.g. BAO_TOKEN)"))
        }
    }
}

impl<'de> Deserialize<'de> for EnvVarName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parse(d)
    }
}

/// A non-empty string (file and directory paths).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NonEmpty(pub String);

impl Parse for NonEmpty {
    const EXPECTING: &'static str = "a non-empty string";
    fn parse(s: &str) -> Result<NonEmpty, String> {
        if s.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(NonEmpty(s.to_string()))
        }
    }
}

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parse(d)
    }
}

impl fmt::Display for NonEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

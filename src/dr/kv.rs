//! KV v2 as a restore sees it: a key's metadata ([`KeyMeta`]), which of its versions a
//! snapshot restores ([`source`]), what a restore does to the live key ([`decide`]), and the
//! reads both sides share ([`list_keys`], [`read_meta`], [`read_value`]). Values are held as
//! [`Sensitive`] and compared by [`digest`]; neither is ever printed.

use crate::openbao::client::{data, Bao, BaoError};
use crate::secret::Sensitive;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A point in time: nanoseconds since the Unix epoch.
pub type Nanos = i128;

/// Parse an RFC 3339 time as OpenBao writes it (`2026-12-02T04:17:41.123456789Z`).
pub fn parse_time(s: &str) -> Option<Nanos> {
    let t = aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime).ok()?;
    Some(i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos()))
}

/// One version's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionMeta {
    pub created: Nanos,
    /// Soft-deleted at (its data is kept and can be undeleted).
    pub deleted: Option<Nanos>,
    /// Its data is gone for good.
    pub destroyed: bool,
}

impl VersionMeta {
    fn readable(&self) -> bool {
        self.deleted.is_none() && !self.destroyed
    }
}

/// A key's metadata (`GET <mount>/metadata/<key>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMeta {
    pub current_version: u64,
    /// The key's own `max_versions` (0: the mount's).
    pub max_versions: u64,
    pub versions: BTreeMap<u64, VersionMeta>,
    pub custom_metadata: BTreeMap<String, String>,
}

impl KeyMeta {
    /// From the `data` of a metadata response.
    pub fn parse(data: &Value) -> Result<KeyMeta, String> {
        let number = |v: &Value| v.as_u64().ok_or_else(|| format!("{v} is not a number"));
        let mut versions = BTreeMap::new();
        for (n, v) in data.get("versions").and_then(Value::as_object).into_iter().flatten() {
            let n: u64 = n.parse().map_err(|_| format!("version {n:?} is not a number"))?;
            let time = |field: &str| -> Result<Option<Nanos>, String> {
                match v.get(field).and_then(Value::as_str).unwrap_or("") {
                    "" => Ok(None),
                    s => parse_time(s).map(Some).ok_or_else(|| format!("version {n}: {field} {s:?} is not RFC 3339")),
                }
            };
            let created = time("created_time")?.ok_or_else(|| format!("version {n} has no created_time"))?;
            let destroyed = v.get("destroyed").and_then(Value::as_bool).unwrap_or(false);
            versions.insert(n, VersionMeta { created, deleted: time("deletion_time")?, destroyed });
        }
        let custom_metadata = match data.get("custom_metadata") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(m) => serde_json::from_value(m.clone()).map_err(|e| format!("custom_metadata: {e}"))?,
        };
        Ok(KeyMeta {
            current_version: data.get("current_version").map(number).transpose()?.unwrap_or(0),
            max_versions: data.get("max_versions").map(number).transpose()?.unwrap_or(0),
            versions,
            custom_metadata,
        })
    }

    /// The current version, when its data can be read.
    pub fn current_readable(&self) -> Option<u64> {
        self.versions.get(&self.current_version).filter(|v| v.readable()).map(|_| self.current_version)
    }
}

/// Which version of a key in the snapshot a restore brings back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// This version's data.
    Version(u64),
    /// At the chosen time the key's latest version was deleted (or destroyed): the key did not
    /// hold a value then, so there is nothing to bring back.
    Absent(u64),
    /// The version in effect at the chosen time was destroyed before the snapshot: its data is
    /// not in the snapshot.
    Destroyed(u64),
    /// The key was created after the chosen time.
    NotYet,
}

/// The version in effect at `as_of` (the snapshot's latest when `None`).
pub fn source(meta: &KeyMeta, as_of: Option<Nanos>) -> Source {
    let Some((&n, v)) = meta.versions.iter().rev().find(|(_, v)| as_of.is_none_or(|t| v.created <= t)) else {
        return Source::NotYet;
    };
    let deleted_then = match (v.deleted, as_of) {
        (Some(_), None) => true,
        (Some(at), Some(t)) => at <= t,
        (None, _) => false,
    };
    if deleted_then {
        Source::Absent(n)
    } else if v.destroyed {
        Source::Destroyed(n)
    } else if v.deleted.is_some() {
        // Deleted after the chosen time but before the snapshot: the snapshot keeps the data,
        // readable only after an undelete, which a restore does not do in the scratch.
        Source::Absent(n)
    } else {
        Source::Version(n)
    }
}

/// A value's digest: SHA-256 of its canonical JSON (object keys sorted). Compared, never shown.
pub fn digest(value: &Value) -> [u8; 32] {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, &Value> = map.iter().collect();
                out.push('{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(value, &mut text);
    Sha256::digest(text.as_bytes()).into()
}

/// The live key as a restore finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    Missing,
    Present { meta: KeyMeta, current: Option<[u8; 32]> },
}

/// Why a key's value is written again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// No such key live (never created, or its metadata was deleted).
    Missing,
    /// The live current version is deleted.
    Deleted(u64),
    /// The live current version is destroyed.
    Destroyed(u64),
    /// The live current version holds another value.
    Differs(u64),
}

/// What a restore does to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Write the snapshot's value as a new version, check-and-set against this live version
    /// (0: the key must not exist).
    pub write: Option<(Why, u64)>,
    /// Set the key's custom metadata to the snapshot's.
    pub metadata: bool,
    /// Live versions that existed and were readable in the snapshot and are deleted or
    /// destroyed now (reported; the restore never touches old versions).
    pub lost_since: Vec<u64>,
    /// The write would push this many of the oldest live versions out (max_versions).
    pub evicts: Vec<u64>,
}

impl Decision {
    pub fn is_noop(&self) -> bool {
        self.write.is_none() && !self.metadata
    }
}

/// Decide what restoring `snap` (the snapshot's metadata; `value` the digest of the version
/// [`source`] chose) does to `live`. `mount_max_versions` is the live mount's setting (0: 10).
pub fn decide(snap: &KeyMeta, value: [u8; 32], live: &Live, mount_max_versions: u64) -> Decision {
    match live {
        Live::Missing => Decision {
            write: Some((Why::Missing, 0)),
            metadata: !snap.custom_metadata.is_empty(),
            lost_since: Vec::new(),
            evicts: Vec::new(),
        },
        Live::Present { meta, current } => {
            let cas = meta.current_version;
            let why = match (meta.versions.get(&cas), current) {
                (_, Some(d)) if *d == value => None,
                (Some(v), _) if v.destroyed => Some(Why::Destroyed(cas)),
                (Some(v), _) if v.deleted.is_some() => Some(Why::Deleted(cas)),
                _ => Some(Why::Differs(cas)),
            };
            let lost_since = snap
                .versions
                .iter()
                .filter(|(n, v)| v.readable() && meta.versions.get(n).is_some_and(|l| !l.readable()))
                .map(|(n, _)| *n)
                .collect();
            let max = match (meta.max_versions, mount_max_versions) {
                (0, 0) => 10,
                (0, m) => m,
                (k, _) => k,
            } as usize;
            let evicts = if why.is_some() && meta.versions.len() >= max {
                meta.versions.keys().take(meta.versions.len() + 1 - max).copied().collect()
            } else {
                Vec::new()
            };
            Decision { write: why.map(|w| (w, cas)), metadata: snap.custom_metadata != meta.custom_metadata, lost_since, evicts }
        }
    }
}

/// Whether `key` matches a `--path` glob: `*` any run of characters (across `/`), `?` one.
pub fn glob_match(pattern: &str, key: &str) -> bool {
    let (p, k): (Vec<char>, Vec<char>) = (pattern.chars().collect(), key.chars().collect());
    let (mut pi, mut ki, mut star, mut mark) = (0, 0, None, 0);
    while ki < k.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == k[ki]) {
            pi += 1;
            ki += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ki;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ki = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Every key of the KV v2 `mount` in namespace `ns`, depth first, sorted.
pub async fn list_keys(bao: &Bao, ns: &str, mount: &str) -> Result<Vec<String>, BaoError> {
    let mut keys = Vec::new();
    let mut folders = vec![String::new()];
    while let Some(prefix) = folders.pop() {
        let path = if prefix.is_empty() { format!("{mount}/metadata") } else { format!("{mount}/metadata/{}", prefix.trim_end_matches('/')) };
        for entry in bao.list(Some(ns), &path).await? {
            let full = format!("{prefix}{entry}");
            if full.ends_with('/') {
                folders.push(full);
            } else {
                keys.push(full);
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// A key's metadata; `None` when the key does not exist.
pub async fn read_meta(bao: &Bao, ns: &str, mount: &str, key: &str) -> Result<Option<KeyMeta>, BaoError> {
    let body = bao.read(Some(ns), format!("{mount}/metadata/{key}")).await?;
    match data(&body) {
        None => Ok(None),
        Some(d) => KeyMeta::parse(d).map(Some).map_err(|e| BaoError::Other(format!("{ns}/{mount}/metadata/{key}: {e}"))),
    }
}

/// The data of `version` of a key (the current one when `None`); `None` when it cannot be
/// read (missing, deleted or destroyed).
pub async fn read_value(bao: &Bao, ns: &str, mount: &str, key: &str, version: Option<u64>) -> Result<Option<Sensitive<Value>>, BaoError> {
    let path = match version {
        Some(v) => format!("{mount}/data/{key}?version={v}"),
        None => format!("{mount}/data/{key}"),
    };
    let body = bao.read(Some(ns), path).await?;
    Ok(data(&body).and_then(|d| d.get("data")).filter(|d| d.is_object()).cloned().map(Sensitive::new))
}

/// A KV mount's `max_versions` and `cas_required`.
pub async fn mount_config(bao: &Bao, ns: &str, mount: &str) -> Result<(u64, bool), BaoError> {
    let body = bao.read(Some(ns), format!("{mount}/config")).await?;
    let d = data(&body);
    Ok((
        d.and_then(|d| d.get("max_versions")).and_then(Value::as_u64).unwrap_or(0),
        d.and_then(|d| d.get("cas_required")).and_then(Value::as_bool).unwrap_or(false),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(versions: &[(u64, i128, Option<i128>, bool)]) -> KeyMeta {
        KeyMeta {
            current_version: versions.last().map(|v| v.0).unwrap_or(0),
            max_versions: 0,
            versions: versions.iter().map(|&(n, c, d, x)| (n, VersionMeta { created: c, deleted: d, destroyed: x })).collect(),
            custom_metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn parses_openbao_metadata() {
        let m = KeyMeta::parse(&json!({
            "current_version": 2, "max_versions": 0, "cas_required": false,
            "custom_metadata": {"owner": "team-a"},
            "versions": {
                "1": {"created_time": "2026-12-02T04:17:41.123456789Z", "deletion_time": "", "destroyed": false},
                "2": {"created_time": "2026-12-02T04:17:42Z", "deletion_time": "2026-12-02T05:00:00Z", "destroyed": false}
            }
        }))
        .unwrap();
        assert_eq!(m.current_version, 2);
        assert_eq!(m.custom_metadata["owner"], "team-a");
        assert_eq!(m.versions[&1].created % 1_000_000_000, 123_456_789);
        assert!(m.versions[&2].deleted.is_some());
        assert_eq!(m.current_readable(), None);
        assert!(KeyMeta::parse(&json!({"versions": {"x": {}}})).unwrap_err().contains("not a number"));
        assert!(KeyMeta::parse(&json!({"custom_metadata": null})).unwrap().custom_metadata.is_empty());
    }

    #[test]
    fn the_source_is_the_version_in_effect_at_the_chosen_time() {
        let m = meta(&[(1, 10, None, false), (2, 20, None, false), (3, 30, None, false)]);
        assert_eq!(source(&m, None), Source::Version(3));
        assert_eq!(source(&m, Some(25)), Source::Version(2));
        assert_eq!(source(&m, Some(20)), Source::Version(2));
        assert_eq!(source(&m, Some(5)), Source::NotYet);
        // Latest deleted in the snapshot: the key held no value then.
        let m = meta(&[(1, 10, None, false), (2, 20, Some(40), false)]);
        assert_eq!(source(&m, None), Source::Absent(2));
        assert_eq!(source(&m, Some(50)), Source::Absent(2));
        assert_eq!(source(&m, Some(30)), Source::Absent(2), "alive then, but only readable after an undelete");
        assert_eq!(source(&m, Some(15)), Source::Version(1));
        let m = meta(&[(1, 10, None, true)]);
        assert_eq!(source(&m, None), Source::Destroyed(1));
    }

    #[test]
    fn digests_ignore_key_order_and_see_values() {
        assert_eq!(digest(&json!({"a": 1, "b": {"x": [1, 2]}})), digest(&json!({"b": {"x": [1, 2]}, "a": 1})));
        assert_ne!(digest(&json!({"a": "1"})), digest(&json!({"a": 1})));
        assert_ne!(digest(&json!({"a": [1, 2]})), digest(&json!({"a": [2, 1]})));
    }

    #[test]
    fn decisions_write_only_what_differs_and_say_why() {
        let snap = meta(&[(1, 10, None, false), (2, 20, None, false)]);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        // Missing live: create (cas 0).
        let d = decide(&snap, a, &Live::Missing, 0);
        assert_eq!(d.write, Some((Why::Missing, 0)));
        assert!(!d.metadata);
        // Same value: nothing.
        let live = Live::Present { meta: meta(&[(1, 10, None, false), (2, 20, None, false)]), current: Some(a) };
        assert!(decide(&snap, a, &live, 0).is_noop());
        // Overwritten since (v3 differs), v1 destroyed since.
        let live = Live::Present { meta: meta(&[(1, 10, None, true), (2, 20, None, false), (3, 30, None, false)]), current: Some(b) };
        let d = decide(&snap, a, &live, 0);
        assert_eq!(d.write, Some((Why::Differs(3), 3)));
        assert_eq!(d.lost_since, vec![1]);
        // Current deleted / destroyed.
        let live = Live::Present { meta: meta(&[(1, 10, None, false), (2, 20, Some(30), false)]), current: None };
        assert_eq!(decide(&snap, a, &live, 0).write, Some((Why::Deleted(2), 2)));
        let live = Live::Present { meta: meta(&[(1, 10, None, false), (2, 20, None, true)]), current: None };
        assert_eq!(decide(&snap, a, &live, 0).write, Some((Why::Destroyed(2), 2)));
        // Custom metadata differs.
        let mut with_meta = snap.clone();
        with_meta.custom_metadata.insert("owner".into(), "a".into());
        let live = Live::Present { meta: meta(&[(1, 10, None, false), (2, 20, None, false)]), current: Some(a) };
        let d = decide(&with_meta, a, &live, 0);
        assert!(d.write.is_none() && d.metadata);
        assert!(decide(&with_meta, a, &Live::Missing, 0).metadata);
    }

    #[test]
    fn a_write_at_max_versions_names_the_versions_it_evicts() {
        let snap = meta(&[(1, 10, None, false)]);
        let live = Live::Present { meta: meta(&[(1, 10, None, false), (2, 20, None, false), (3, 30, None, false)]), current: Some([9; 32]) };
        assert_eq!(decide(&snap, [1; 32], &live, 3).evicts, vec![1]);
        assert!(decide(&snap, [1; 32], &live, 4).evicts.is_empty());
        assert!(decide(&snap, [1; 32], &live, 0).evicts.is_empty(), "0 means OpenBao's default of 10");
        assert!(decide(&snap, [9; 32], &live, 3).evicts.is_empty(), "no write, no eviction");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "a/b/c"));
        assert!(glob_match("app/*", "app/db"));
        assert!(glob_match("app/*", "app/x/y"));
        assert!(!glob_match("app/*", "other/db"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*db*", "prod/db-main"));
        assert!(glob_match("db", "db") && !glob_match("db", "dbx"));
    }
}

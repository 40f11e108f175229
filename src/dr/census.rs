//! What a snapshot should hold, counted live when it is taken and again in a scratch server
//! booted from it (`ctl dr verify-snapshot`): ctl's namespaces, the keys of their KV mounts,
//! the versions written (the sum of each key's `current_version`), and a sample of versions by
//! creation time. Counted just before and just after the raft snapshot, so writes made meanwhile
//! cannot fail a check: the snapshot's own count lies between the two.
//!
//! No value and no digest of a value is recorded: the manifest sits in S3, and a digest of a
//! short secret can be guessed offline. The sample proves the versions decrypt in the scratch.

use super::kv;
use crate::openbao::client::{data, Bao, BaoError};
use crate::openbao::resources::MOUNT_MARKER;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub namespaces: u64,
    pub keys: u64,
    pub versions: u64,
}

/// A version the verification reads back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampled {
    pub namespace: String,
    pub mount: String,
    pub key: String,
    pub version: u64,
    /// As OpenBao wrote it.
    pub created_time: String,
}

/// What the manifest records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Census {
    /// Counted just before the raft snapshot.
    pub before: Count,
    /// Counted just after it.
    pub after: Count,
    #[serde(default)]
    pub sample: Vec<Sampled>,
}

impl Census {
    /// Each count of `found` outside the range the two live counts span, as a message.
    pub fn mismatches(&self, found: &Count) -> Vec<String> {
        let check = |what: &str, a: u64, b: u64, got: u64| {
            let (lo, hi) = (a.min(b), a.max(b));
            (got < lo || got > hi).then(|| {
                let expected = if lo == hi { format!("{lo}") } else { format!("{lo}–{hi}") };
                format!("{what}: {got} in the snapshot, {expected} counted live when it was taken")
            })
        };
        [
            check("namespaces", self.before.namespaces, self.after.namespaces, found.namespaces),
            check("KV keys", self.before.keys, self.after.keys, found.keys),
            check("versions written", self.before.versions, self.after.versions, found.versions),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// ctl's namespaces of `environment` (how many) and their KV v2 mounts: (namespace, mount).
pub async fn kv_mounts(bao: &Bao, environment: &str) -> Result<(u64, Vec<(String, String)>), BaoError> {
    let (managed, _) = crate::openbao::observe::namespaces(bao, environment).await?;
    let namespaces = managed.len() as u64;
    let mut out = Vec::new();
    for m in managed {
        let mounts = bao.get(Some(&m.path), "sys/mounts").await?;
        for (path, mount) in data(&mounts).and_then(Value::as_object).into_iter().flatten() {
            let ours = mount.get("description").and_then(Value::as_str).is_some_and(|d| d.starts_with(MOUNT_MARKER));
            let kv2 = mount.get("type").and_then(Value::as_str) == Some("kv") && mount.pointer("/options/version").and_then(Value::as_str) == Some("2");
            if ours && kv2 {
                out.push((m.path.clone(), path.trim_end_matches('/').to_string()));
            }
        }
    }
    out.sort();
    Ok((namespaces, out))
}

/// Count ctl's namespaces, their KV keys and versions written; pick up to `sample` versions
/// spread over the keys (the current version of every n-th key).
pub async fn count(bao: &Bao, environment: &str, parallelism: usize, sample: usize) -> Result<(Count, Vec<Sampled>), BaoError> {
    let (namespaces, mounts) = kv_mounts(bao, environment).await?;
    let par = parallelism.max(1);
    let keyed: Vec<(String, String, String)> = stream::iter(mounts.iter().map(|(ns, mount)| async move {
        Ok::<_, BaoError>(kv::list_keys(bao, ns, mount).await?.into_iter().map(|k| (ns.clone(), mount.clone(), k)).collect::<Vec<_>>())
    }))
    .buffered(par)
    .try_collect::<Vec<_>>()
    .await?
    .into_iter()
    .flatten()
    .collect();
    let metas: Vec<Option<kv::KeyMeta>> = stream::iter(keyed.iter().map(|(ns, mount, key)| kv::read_meta(bao, ns, mount, key))).buffered(par).try_collect().await?;
    let versions = metas.iter().flatten().map(|m| m.current_version).sum();
    let step = (keyed.len() / sample.max(1)).max(1);
    let picked = keyed
        .iter()
        .zip(&metas)
        .step_by(step)
        .filter_map(|((ns, mount, key), meta)| {
            let meta = meta.as_ref()?;
            let v = meta.current_readable()?;
            let created = meta.versions.get(&v)?.created;
            Some(Sampled { namespace: ns.clone(), mount: mount.clone(), key: key.clone(), version: v, created_time: nanos_rfc3339(created) })
        })
        .take(sample)
        .collect();
    Ok((Count { namespaces, keys: keyed.len() as u64, versions }, picked))
}

/// Read every sampled version in `bao`: its metadata must show the same creation time and its
/// data must decrypt. Returns one message per failure.
pub async fn check_sample(bao: &Bao, sample: &[Sampled]) -> Result<Vec<String>, BaoError> {
    let mut failures = Vec::new();
    for s in sample {
        let at = format!("{}/{}/{} v{}", s.namespace, s.mount, s.key, s.version);
        let meta = kv::read_meta(bao, &s.namespace, &s.mount, &s.key).await?;
        let created = meta.as_ref().and_then(|m| m.versions.get(&s.version)).map(|v| v.created);
        if created != kv::parse_time(&s.created_time) {
            failures.push(format!("{at}: {} (expected created {})", if created.is_some() { "another version" } else { "missing" }, s.created_time));
            continue;
        }
        if kv::read_value(bao, &s.namespace, &s.mount, &s.key, Some(s.version)).await?.is_none() {
            failures.push(format!("{at}: its data cannot be read"));
        }
    }
    Ok(failures)
}

/// Nanoseconds since the epoch as RFC 3339 with nanoseconds (what [`kv::parse_time`] reads).
fn nanos_rfc3339(n: kv::Nanos) -> String {
    let secs = n.div_euclid(1_000_000_000) as i64;
    let nanos = n.rem_euclid(1_000_000_000) as u32;
    let base = crate::alarms::mute::rfc3339(secs);
    format!("{}.{nanos:09}Z", base.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_between_the_two_live_counts_pass() {
        let c = |namespaces, keys, versions| Count { namespaces, keys, versions };
        let census = Census { before: c(3, 10, 40), after: c(3, 12, 45), sample: vec![] };
        assert!(census.mismatches(&c(3, 11, 44)).is_empty());
        assert!(census.mismatches(&c(3, 12, 40)).is_empty());
        let m = census.mismatches(&c(2, 9, 46));
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0], "namespaces: 2 in the snapshot, 3 counted live when it was taken");
        assert_eq!(m[1], "KV keys: 9 in the snapshot, 10–12 counted live when it was taken");
    }

    #[test]
    fn sample_times_round_trip() {
        let t = kv::parse_time("2026-12-02T04:17:41.123456789Z").unwrap();
        assert_eq!(nanos_rfc3339(t), "2026-12-02T04:17:41.123456789Z");
        assert_eq!(kv::parse_time(&nanos_rfc3339(t)), Some(t));
    }
}

//! What `ctl plan --refresh changed` may trust, and the record that makes trusting safe.
//!
//! A workspace is trusted as applied when its namespace is ctl's and records the digest of
//! exactly the desired state declared now (`DIGEST_KEY`, written after every apply that left the
//! environment as declared). Nothing is trusted unless a full check found live state equal to
//! the files recently: `ctl drift` (and a full plan or apply that found or left no change)
//! records when, in `ctl-state/data/refresh/<env>`; a record older than `--max-trust-age`, or
//! one saying drift was found, trusts nothing.

use super::client::{Bao, BaoError};
use super::state;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

fn key(environment: &str) -> String {
    format!("refresh/{environment}")
}

/// The last full check of live state against the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullCheck {
    /// Seconds since the epoch.
    pub at: u64,
    /// Live state equalled the files (no change planned).
    pub in_sync: bool,
}

/// Record a full check (best effort: a missing record only means nothing is trusted).
pub async fn record_full_check(bao: &Bao, environment: &str, in_sync: bool) {
    let doc = json!({ "at": state::now_secs(), "in_sync": in_sync });
    let write = || async {
        let now = state::read(bao, &key(environment)).await?;
        state::write_cas(bao, &key(environment), now.version, &doc).await
    };
    let result = match write().await {
        // No state mount yet (`ctl bootstrap` makes it; a token that may, makes it now).
        Err(e) if e.is_not_found() || e.status() == Some(404) => match state::ensure_mount(bao).await {
            Ok(()) => write().await,
            Err(_) => Err(e),
        },
        other => other,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record the full drift check; --refresh changed plans will trust nothing until one is recorded");
    }
}

/// The last full check, if any was recorded.
pub async fn last_full_check(bao: &Bao, environment: &str) -> Result<Option<FullCheck>, BaoError> {
    let doc = state::read(bao, &key(environment)).await?;
    Ok(doc.data.and_then(|d| serde_json::from_value(d).ok()))
}

/// Why nothing may be trusted now (`None`: trusting is allowed).
pub fn distrust(check: Option<FullCheck>, now: u64, max_age_secs: u64) -> Option<String> {
    match check {
        None => Some("no full drift check is recorded (run `ctl drift`)".into()),
        Some(c) if !c.in_sync => Some("the last full drift check found drift".into()),
        Some(c) if now.saturating_sub(c.at) > max_age_secs => Some(format!(
            "the last full drift check is {} old, more than --max-trust-age {}",
            crate::alarms::backtest::human_seconds(now.saturating_sub(c.at) as i64),
            crate::alarms::backtest::human_seconds(max_age_secs as i64)
        )),
        Some(_) => None,
    }
}

/// The workspaces whose recorded digest equals the desired one: name → digest.
pub fn trusted(desired: &BTreeMap<String, String>, recorded: &[super::observe::ManagedNamespace]) -> BTreeMap<String, String> {
    recorded
        .iter()
        .filter_map(|m| {
            let want = desired.get(&m.workspace)?;
            (m.digest.as_ref() == Some(want)).then(|| (m.workspace.clone(), want.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_needs_a_recent_clean_full_check() {
        let hour = 3600;
        assert!(distrust(None, 10 * hour, 24 * hour).unwrap().contains("no full drift check"));
        assert!(distrust(Some(FullCheck { at: 9 * hour, in_sync: false }), 10 * hour, 24 * hour).unwrap().contains("found drift"));
        let old = distrust(Some(FullCheck { at: 0, in_sync: true }), 30 * hour, 24 * hour).unwrap();
        assert!(old.contains("1d 6h old") && old.contains("1d"), "{old}");
        assert_eq!(distrust(Some(FullCheck { at: 9 * hour, in_sync: true }), 10 * hour, 24 * hour), None);
    }

    #[test]
    fn only_matching_digests_are_trusted() {
        let ns = |ws: &str, digest: Option<&str>| super::super::observe::ManagedNamespace {
            workspace: ws.into(),
            path: ws.into(),
            custom_metadata: Default::default(),
            records: Default::default(),
            digest: digest.map(str::to_string),
        };
        let desired = BTreeMap::from([("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string()), ("c".to_string(), "3".to_string())]);
        let got = trusted(&desired, &[ns("a", Some("1")), ns("b", Some("old")), ns("c", None), ns("gone", Some("9"))]);
        assert_eq!(got, BTreeMap::from([("a".to_string(), "1".to_string())]));
    }
}

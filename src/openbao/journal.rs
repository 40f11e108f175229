//! ctl's audit journal: one KV v2 document per apply (and per lock break) in `ctl-state/`:
//! who, when, which plan and commit, and per address what was done and how it ended.
//! Never attribute values.

use super::client::{Bao, BaoError};
use super::state;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub at: u64,
    pub actor: String,
    pub event: String,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub changes: Vec<ChangeRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeRecord {
    pub address: String,
    pub action: String,
    pub outcome: String,
}

fn prefix(environment: &str) -> String {
    format!("journal/{environment}/")
}

pub async fn record(bao: &Bao, environment: &str, entry: &Entry) -> Result<(), BaoError> {
    state::ensure_mount(bao).await?;
    let tag = entry.plan.as_deref().map(|p| &p[..p.len().min(12)]).unwrap_or("none");
    // Zero-padded milliseconds first: LIST returns keys sorted, so the journal reads in order.
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let key = format!("{}{millis:015}-{}-{}", prefix(environment), entry.event, tag);
    let doc = serde_json::to_value(entry).expect("journal entry serializes");
    match state::write_cas(bao, &key, 0, &doc).await? {
        state::Cas::Written { .. } => Ok(()),
        state::Cas::Lost => Err(BaoError::Other(format!("journal entry {key} already exists"))),
    }
}

/// The newest `limit` entries, oldest first.
pub async fn read(bao: &Bao, environment: &str, limit: usize) -> Result<Vec<Entry>, BaoError> {
    let mut keys = state::list(bao, &prefix(environment)).await?;
    keys.sort();
    let start = keys.len().saturating_sub(limit);
    let mut out = Vec::new();
    for k in &keys[start..] {
        if let Some(d) = state::read(bao, &format!("{}{k}", prefix(environment))).await?.data {
            if let Ok(e) = serde_json::from_value(d) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

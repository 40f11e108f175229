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

/// Change records per journal document. OpenBao refuses JSON bodies with more than about 1,000
/// strings ("refused JSON input due to high complexity"; a record is 6), so a big apply (10,000
/// workspaces are 50,000 changes) is written as several documents with consecutive keys, each
/// carrying the same header. 150 records were accepted by 2.6.2, 300 refused.
pub const CHANGES_PER_DOCUMENT: usize = 150;

pub async fn record(bao: &Bao, environment: &str, entry: &Entry) -> Result<(), BaoError> {
    state::ensure_mount(bao).await?;
    let tag = entry.plan.as_deref().map(|p| &p[..p.len().min(12)]).unwrap_or("none");
    // Zero-padded milliseconds first: LIST returns keys sorted, so the journal reads in order.
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let base = format!("{}{millis:015}-{}-{}", prefix(environment), entry.event, tag);
    for (i, doc) in split(entry).iter().enumerate() {
        let key = if i == 0 { base.clone() } else { format!("{base}-part{:04}", i + 1) };
        let doc = serde_json::to_value(doc).expect("journal entry serializes");
        if let state::Cas::Lost = state::write_cas(bao, &key, 0, &doc).await? {
            return Err(BaoError::Other(format!("journal entry {key} already exists")));
        }
    }
    Ok(())
}

/// The documents one entry is written as: the header with at most [`CHANGES_PER_DOCUMENT`]
/// change records each (at least one document, even without changes).
fn split(entry: &Entry) -> Vec<Entry> {
    if entry.changes.len() <= CHANGES_PER_DOCUMENT {
        return vec![entry.clone()];
    }
    entry.changes.chunks(CHANGES_PER_DOCUMENT).map(|chunk| Entry { changes: chunk.to_vec(), ..entry.clone() }).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_entries_are_split_into_documents_of_bounded_size() {
        let change = |i: usize| ChangeRecord { address: format!("workspace.w{i}.namespace"), action: "create".into(), outcome: "done".into() };
        let entry = Entry {
            at: 1,
            actor: "ci".into(),
            event: "apply".into(),
            plan: Some("abc".into()),
            git_commit: None,
            changes: (0..1201).map(change).collect(),
        };
        let docs = split(&entry);
        let mut sizes = vec![CHANGES_PER_DOCUMENT; 1201 / CHANGES_PER_DOCUMENT];
        sizes.push(1201 % CHANGES_PER_DOCUMENT);
        assert_eq!(docs.iter().map(|d| d.changes.len()).collect::<Vec<_>>(), sizes);
        assert!(docs.iter().all(|d| d.actor == "ci" && d.plan.as_deref() == Some("abc")));
        let rejoined: Vec<_> = docs.into_iter().flat_map(|d| d.changes).collect();
        assert_eq!(rejoined, entry.changes);
        assert_eq!(split(&Entry { changes: vec![], ..entry }).len(), 1);
    }
}

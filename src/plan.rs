//! A plan: the diff plus everything needed to apply it safely later — the fingerprint of every
//! object read, the digest of the desired state, and a fingerprint of the plan itself.
//!
//! The saved JSON is the same versioned document `ctl plan --json` prints. It holds attribute
//! values (policy text, TTLs, CIDRs) but never secret material: no resource attribute is secret.

use crate::diff::{Action, Change, Conflict, Diff};
use crate::model::{Address, Fingerprint, Observed, Unmanaged};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bumped on any incompatible change to the plan document.
/// 2: unmanaged objects carry `scope` + `name` (their identity); saved plans carry `signature`.
/// 3: a change's `action` tags exactly the state it carries (`create`: `after`; `update` and
///    `replace`: `before`, `after`, `fields`; `recreate` (new: a create forced by a replaced
///    dependency, was `create` with a `before`): `before`, `after`; `delete`: `before`,
///    `implied_by`); `reason` is typed (`{"why": "differ", "fields": [...]}`, …), and so is
///    an unmanaged object's `reason` (`{"why": "stuck_deletion"}`, …).
pub const FORMAT_VERSION: u32 = 3;

/// How long a saved plan stays applicable unless `--max-age` says otherwise.
pub const DEFAULT_MAX_AGE_SECS: u64 = 24 * 3600;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Summary {
    pub fn total_changes(&self) -> usize {
        self.create + self.update + self.replace + self.delete
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub ctl_version: String,
    pub environment: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// sha256 over the environment's source files.
    pub desired_digest: String,
    /// The git commit the environment files were read from (`None` outside a git checkout).
    #[serde(default)]
    pub git_commit: Option<String>,
    /// Seconds since the Unix epoch after which `ctl apply` refuses the plan.
    pub expires_at: u64,
    pub summary: Summary,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub unmanaged: Vec<Unmanaged>,
    /// How live state was read, when not in full (`ctl plan --refresh changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshNote>,
    /// Policy lint findings on the policies this plan writes ([`crate::policy::lint_declared`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::policy::Warning>,
    /// What each address looked like when read (`absent` if it did not exist).
    pub observed: BTreeMap<Address, Fingerprint>,
    /// sha256 over all of the above; checked on load.
    pub fingerprint: Fingerprint,
    /// OpenBao transit HMAC of `fingerprint` under ctl's plan-signing key (saved plans only):
    /// whoever edits the plan and recomputes the fingerprint cannot recompute this without
    /// ctl's token. Not part of the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A `--refresh changed` plan: what it trusted instead of reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshNote {
    /// Workspaces not read: their recorded digest equals the desired one (name → digest; an
    /// apply of this plan refuses if one of them moved since).
    pub trusted: BTreeMap<String, String>,
    /// Their resources, counted as unchanged.
    pub trusted_resources: usize,
    /// When the last full check found live state equal to the files (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_check: Option<u64>,
    /// Why nothing was trusted (every workspace was read), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distrust: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write plan {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} is not a ctl plan: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("{path} has plan format {found}; this ctl reads format {FORMAT_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path} was modified after it was written (fingerprint mismatch)")]
    Tampered { path: String },
    #[error("{path} is malformed: {address}: {problem}")]
    Malformed { path: String, address: Address, problem: String },
}

/// How a saved plan differs from the plan re-derived at apply time (environment files as
/// checked by digest × live state re-read under the lock).
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// Something ctl does not own now sits where the plan creates or changes something.
    Conflict(Conflict),
    /// The re-derived plan has no such change (already done, or never declared).
    NotPlannedNow { address: Address },
    /// The change differs from what the environment files and live state call for: the plan
    /// file was edited, or live state moved in a way the fingerprints did not show.
    Differs { address: Address, field: &'static str },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Conflict(c) => write!(f, "{}: {}", c.address, c.message),
            Mismatch::NotPlannedNow { address } => {
                write!(f, "{address}: the saved plan changes it, but a plan made now would not")
            }
            Mismatch::Differs { address, field } => write!(
                f,
                "{address}: the saved change's {field} is not what the environment files and live state give now (was the plan file edited?)"
            ),
        }
    }
}

/// Why a saved plan may not be applied here and now.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("the plan expired {ago}s ago (plans are valid for {max_age}s); run `ctl plan` again")]
    Expired { ago: u64, max_age: u64 },
    #[error("the plan was made from commit {planned}, but this checkout is at {now}; plan again from this commit")]
    OtherCommit { planned: String, now: String },
    #[error("the plan was made from commit {planned}, but this directory is not a git checkout")]
    NoCommit { planned: String },
}

/// Why a saved plan no longer matches what is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stale {
    pub address: Address,
    pub planned: Fingerprint,
    pub now: Fingerprint,
}

impl Plan {
    pub fn new(environment: &str, desired_digest: &str, diff: Diff, observed: &Observed) -> Plan {
        let mut summary = Summary { unchanged: diff.unchanged, ..Summary::default() };
        for change in &diff.changes {
            match change.action() {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        let mut read: BTreeMap<Address, Fingerprint> =
            observed.resources.iter().map(|r| (r.address.clone(), r.fingerprint())).collect();
        for change in &diff.changes {
            read.entry(change.address.clone()).or_insert_with(Fingerprint::absent);
        }
        let mut plan = Plan {
            format_version: FORMAT_VERSION,
            ctl_version: env!("CARGO_PKG_VERSION").to_string(),
            environment: environment.to_string(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            desired_digest: desired_digest.to_string(),
            git_commit: None,
            expires_at: 0,
            summary,
            changes: diff.changes,
            conflicts: diff.conflicts,
            unmanaged: observed.unmanaged.clone(),
            warnings: Vec::new(),
            refresh: None,
            observed: read,
            fingerprint: Fingerprint::absent(),
            signature: None,
        };
        plan.expires_at = plan.created_at + DEFAULT_MAX_AGE_SECS;
        plan.fingerprint = plan.compute_fingerprint();
        plan
    }

    /// Attach how live state was read (re-signs it).
    pub fn with_refresh(mut self, note: RefreshNote) -> Plan {
        self.refresh = Some(note);
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// Attach policy lint warnings (re-signs it).
    pub fn with_warnings(mut self, warnings: Vec<crate::policy::Warning>) -> Plan {
        self.warnings = warnings;
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// Bind the plan to a git commit and a maximum age (re-signs it).
    pub fn bound_to(mut self, git_commit: Option<String>, max_age_secs: u64) -> Plan {
        self.git_commit = git_commit;
        self.expires_at = self.created_at + max_age_secs;
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// May this plan be applied at `now` (Unix seconds) from a checkout at `commit`?
    pub fn check_applicable(&self, now: u64, commit: Option<&str>) -> Result<(), Refusal> {
        if now > self.expires_at {
            return Err(Refusal::Expired {
                ago: now - self.expires_at,
                max_age: self.expires_at.saturating_sub(self.created_at),
            });
        }
        match (&self.git_commit, commit) {
            (Some(planned), Some(now)) if planned != now => {
                Err(Refusal::OtherCommit { planned: planned.clone(), now: now.to_string() })
            }
            (Some(planned), None) => Err(Refusal::NoCommit { planned: planned.clone() }),
            _ => Ok(()),
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The self-hash `fingerprint` must equal (public for the plan-loader fuzz target).
    pub fn compute_fingerprint(&self) -> Fingerprint {
        let mut unsigned = self.clone();
        unsigned.fingerprint = Fingerprint::absent();
        unsigned.signature = None;
        let bytes = serde_json::to_vec(&unsigned).expect("plan serializes");
        Fingerprint::of(&bytes)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serializes")
    }

    /// Write atomically: a crash never leaves half a plan.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        let err = |source| PlanError::Write { path: path.display().to_string(), source };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_json() + "\n").map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| PlanError::Read { path: shown.clone(), source })?;
        Plan::from_json(&text, &shown)
    }

    /// A plan document (`shown` names it in errors): version, self-hash and shape checked.
    pub fn from_json(text: &str, shown: &str) -> Result<Plan, PlanError> {
        let shown = shown.to_string();
        let probe: serde_json::Value = serde_json::from_str(text)
            .map_err(|source| PlanError::Parse { path: shown.clone(), source })?;
        let found = probe.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(PlanError::Version { path: shown, found });
        }
        let plan: Plan = serde_json::from_value(probe)
            .map_err(|source| PlanError::Parse { path: shown.clone(), source })?;
        if plan.compute_fingerprint() != plan.fingerprint {
            return Err(PlanError::Tampered { path: shown });
        }
        plan.check_shape().map_err(|(address, problem)| PlanError::Malformed { path: shown, address, problem })?;
        Ok(plan)
    }

    /// Every change's states describe its own address and kind (the `Op` type already gives
    /// each action exactly the states it needs): a hand-made file is refused here instead of
    /// failing half-way through an apply.
    fn check_shape(&self) -> Result<(), (Address, String)> {
        match self.changes.iter().find_map(|c| Some((c, c.stray_state()?))) {
            Some((c, (what, r))) => Err((c.address.clone(), format!("`{what}` describes {} ({:?})", r.address, r.kind))),
            None => Ok(()),
        }
    }

    /// Compare this saved plan with `now`, the diff re-derived at apply time over the same
    /// scope. Any conflict, and any saved change that `now` does not contain exactly, is a
    /// mismatch; changes only `now` has (drift since the plan) are not applied and not listed.
    pub fn mismatches(&self, now: &Diff) -> Vec<Mismatch> {
        let mut out: Vec<Mismatch> = now.conflicts.iter().cloned().map(Mismatch::Conflict).collect();
        let by_address: BTreeMap<&Address, &Change> = now.changes.iter().map(|c| (&c.address, c)).collect();
        for saved in &self.changes {
            let Some(fresh) = by_address.get(&saved.address) else {
                out.push(Mismatch::NotPlannedNow { address: saved.address.clone() });
                continue;
            };
            let differs = [
                ("action", std::mem::discriminant(&saved.op) != std::mem::discriminant(&fresh.op)),
                ("after", saved.after() != fresh.after()),
                ("before", saved.before() != fresh.before()),
                ("fields", saved.fields() != fresh.fields()),
                ("destroy flag", saved.destroys_data != fresh.destroys_data),
                ("implied_by", saved.implied_by() != fresh.implied_by()),
            ];
            if let Some((field, _)) = differs.iter().find(|(_, d)| *d) {
                out.push(Mismatch::Differs { address: saved.address.clone(), field });
            }
        }
        out
    }

    /// The addresses an apply touches or relies on: every change and its dependencies.
    pub fn touched(&self) -> BTreeSet<Address> {
        let mut out = BTreeSet::new();
        for change in &self.changes {
            out.insert(change.address.clone());
            for r in change.before().into_iter().chain(change.after()) {
                out.extend(r.depends_on.iter().cloned());
            }
        }
        out
    }

    /// The workspaces an apply touches (to limit the re-read before applying).
    pub fn touched_workspaces(&self) -> BTreeSet<String> {
        self.touched().iter().filter_map(|a| a.workspace_name().map(str::to_string)).collect()
    }

    /// Compare what the plan read with what is there now, for every touched address.
    pub fn stale(&self, now: &Observed) -> Vec<Stale> {
        let current: BTreeMap<&Address, Fingerprint> =
            now.resources.iter().map(|r| (&r.address, r.fingerprint())).collect();
        self.touched()
            .into_iter()
            .filter_map(|address| {
                let planned = self.observed.get(&address).cloned().unwrap_or_else(Fingerprint::absent);
                let now = current.get(&address).cloned().unwrap_or_else(Fingerprint::absent);
                (planned != now).then_some(Stale { address, planned, now })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::diff;
    use crate::model::{Kind, Resource, Scope};
    use serde_json::json;

    fn ns(name: &str, meta: &str) -> Resource {
        Resource {
            address: Address::workspace(name, &["namespace"]),
            kind: Kind::Namespace,
            scope: Scope::Root,
            name: name.into(),
            attrs: json!({"path": name, "custom_metadata": {"managed-by": meta}})
                .as_object()
                .unwrap()
                .clone(),
            depends_on: vec![],
            container: None,
        }
    }

    fn plan_for(desired: &[Resource], live: &[Resource]) -> Plan {
        let observed = Observed { resources: live.to_vec(), unmanaged: vec![] };
        Plan::new("test", "digest", diff(desired, live, &[]), &observed)
    }

    #[test]
    fn save_load_round_trip_and_tamper_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let plan = plan_for(&[ns("a", "ctl")], &[]);
        plan.save(&path).unwrap();
        let loaded = Plan::load(&path).unwrap();
        assert_eq!(loaded.fingerprint, plan.fingerprint);
        assert_eq!(loaded.summary.create, 1);

        let text = std::fs::read_to_string(&path).unwrap().replace("\"a\"", "\"b\"");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(Plan::load(&path), Err(PlanError::Tampered { .. })));
    }

    #[test]
    fn stale_when_a_touched_object_changed_or_appeared() {
        let live = [ns("a", "ctl")];
        let mut want = ns("a", "ctl");
        want.attrs.insert("custom_metadata".into(), json!({"managed-by": "ctl", "x": "1"}));
        let plan = plan_for(&[want, ns("b", "ctl")], &live);
        assert_eq!(plan.summary.update + plan.summary.create, 2);

        let same = Observed { resources: live.to_vec(), unmanaged: vec![] };
        assert!(plan.stale(&same).is_empty());

        let mut changed = ns("a", "ctl");
        changed.attrs.insert("custom_metadata".into(), json!({"managed-by": "ctl", "y": "2"}));
        let appeared = ns("b", "ctl");
        let now = Observed { resources: vec![changed, appeared], unmanaged: vec![] };
        let stale = plan.stale(&now);
        assert_eq!(stale.len(), 2);
        assert_eq!(stale[1].planned, Fingerprint::absent());
    }

    #[test]
    fn expiry_and_commit_binding() {
        let plan = plan_for(&[ns("a", "ctl")], &[]).bound_to(Some("abc".into()), 60);
        let t = plan.created_at;
        assert_eq!(plan.check_applicable(t + 10, Some("abc")), Ok(()));
        assert!(matches!(plan.check_applicable(t + 61, Some("abc")), Err(Refusal::Expired { ago: 1, max_age: 60 })));
        let other = plan.check_applicable(t, Some("def")).unwrap_err();
        assert!(other.to_string().contains("made from commit abc"), "{other}");
        assert!(matches!(plan.check_applicable(t, None), Err(Refusal::NoCommit { .. })));
        let unbound = plan_for(&[], &[]);
        assert_eq!(unbound.check_applicable(unbound.created_at, Some("x")), Ok(()));
    }

    #[test]
    fn a_change_without_its_state_or_with_another_objects_is_refused_at_load() {
        // A create with nothing to create cannot even be read: the action tags the state.
        let plan = plan_for(&[ns("a", "ctl")], &[]);
        let mut doc = serde_json::to_value(&plan).unwrap();
        doc["changes"][0].as_object_mut().unwrap().remove("after");
        let err = Plan::from_json(&doc.to_string(), "p.json").unwrap_err();
        assert!(matches!(err, PlanError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("missing field `after`"), "{err}");

        // A state that describes another object than the change's address.
        let mut plan = plan_for(&[ns("a", "ctl")], &[]);
        plan.changes[0].address = Address::workspace("b", &["namespace"]);
        plan.fingerprint = plan.compute_fingerprint();
        let err = Plan::from_json(&serde_json::to_string(&plan).unwrap(), "p.json").unwrap_err();
        assert!(matches!(err, PlanError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("`after` describes workspace.a.namespace"), "{err}");
    }

    #[test]
    fn an_edited_change_is_a_mismatch_with_the_rederived_plan() {
        let desired = [ns("a", "ctl")];
        let mut plan = plan_for(&desired, &[]);
        let now = diff(&desired, &[], &[]);
        assert!(plan.mismatches(&now).is_empty());

        // Someone edits the namespace's metadata in the file (and recomputes the self-hash).
        let crate::diff::Op::Create { after } = &mut plan.changes[0].op else { panic!("a create") };
        after.attrs.insert("custom_metadata".into(), json!({"managed-by": "ctl", "owner": "mallory"}));
        let m = plan.mismatches(&now);
        assert_eq!(m, vec![Mismatch::Differs { address: Address::workspace("a", &["namespace"]), field: "after" }]);

        // A change the environment does not call for at all.
        let mut extra = plan_for(&[ns("a", "ctl"), ns("b", "ctl")], &[]);
        extra.changes.retain(|c| c.address.workspace_name() == Some("b"));
        assert!(matches!(extra.mismatches(&now)[..], [Mismatch::NotPlannedNow { .. }]));

        // A foreign object appeared where the plan creates one.
        let foreign = crate::model::Unmanaged::root(Kind::Namespace, "a", crate::model::UnmanagedReason::no_marker("no marker"));
        let now = diff(&desired, &[], &[foreign]);
        assert!(matches!(plan_for(&desired, &[]).mismatches(&now)[..], [Mismatch::Conflict(_), Mismatch::NotPlannedNow { .. }]));
    }

    #[test]
    fn the_signature_is_not_part_of_the_fingerprint() {
        let mut plan = plan_for(&[ns("a", "ctl")], &[]);
        let before = plan.compute_fingerprint();
        plan.signature = Some("vault:v1:abc".into());
        assert_eq!(plan.compute_fingerprint(), before);
    }

    #[test]
    fn destroy_guard_lists_unallowed_data_loss() {
        // The guard every apply path uses (`engine::Guard`), on a plan's changes.
        let plan = plan_for(&[], &[ns("a", "ctl")]);
        let addr = Address::workspace("a", &["namespace"]);
        let refused = crate::engine::Guard::apply([]).check(&plan.changes, &plan.conflicts).unwrap_err();
        assert!(matches!(&refused, crate::engine::Refused::DataLoss(l) if l.len() == 1), "{refused}");
        assert_eq!(crate::engine::Guard::apply([addr]).check(&plan.changes, &plan.conflicts).unwrap().len(), 1);
        // A rebuild never deletes: the delete is left out, not run.
        assert!(crate::engine::Guard::rebuild().check(&plan.changes, &plan.conflicts).unwrap().is_empty());
    }
}

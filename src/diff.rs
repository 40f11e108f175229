//! The diff engine: desired resources × live resources → typed changes. Pure: no I/O, no SDK,
//! no knowledge of individual kinds beyond their [`KindSpec`](crate::model::KindSpec).
//!
//! Rules, in order:
//! 1. desired and absent → `Create`; live and not desired → `Delete`;
//! 2. both, attributes differ → `Update` with field-level before → after, or `Replace` when a
//!    differing field is in the kind's `replace_on`;
//! 3. a desired resource that depends (transitively) on something being replaced or deleted is
//!    destroyed along with it, so it is re-created (`Create`, with the reason);
//! 4. a live resource deleted because its container is deleted is marked `implied_by` that
//!    container: it needs no call of its own and no destroy flag of its own;
//! 5. a desired resource whose [`Identity`] (slot, scope, name: what the server keys the object
//!    by) matches something ctl saw but does not manage is a [`Conflict`]: ctl never adopts
//!    objects silently, nor renames one of its own onto a foreign object.
//! 6. an object is destroyed (replaced, re-created, deleted) only if nothing that depends on it
//!    live survives the plan; otherwise the plan refuses it ([`ConflictKind::BlockedReplace`])
//!    instead of the provider refusing the delete half-way through an apply (AWS:
//!    `DependencyViolation`). Rule 3 re-creates declared dependents, so this catches live
//!    dependents the declaration does not link to the object.

use crate::model::{Address, Identity, Kind, Resource, Unmanaged};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }
}

/// One attribute that differs.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replace: bool,
}

/// What a change does to its object, with exactly the state that needs: a create has no
/// `before`, a delete no `after`, so no consumer has to assume one is there.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Op {
    Create {
        after: Resource,
    },
    /// In place: only `fields` differ, none of them in the kind's `replace_on`.
    Update {
        before: Resource,
        after: Resource,
        fields: Vec<FieldChange>,
    },
    /// Delete and create again: a differing field cannot change in place.
    Replace {
        before: Resource,
        after: Resource,
        fields: Vec<FieldChange>,
    },
    /// Unchanged itself, but destroyed along with something it depends on (diff rule 3) and
    /// created again; shown as a create.
    Recreate {
        before: Resource,
        after: Resource,
    },
    Delete {
        before: Resource,
        /// Deleted together with this container (rule 4): nothing to execute on its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        implied_by: Option<Address>,
    },
}

/// Why the diff decided a change. Rendered to words in [`crate::render::words`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum ChangeReason {
    /// Declared, and not there.
    Absent,
    /// These fields differ and can change in place.
    Differ { fields: Vec<String> },
    /// These fields differ and cannot change in place.
    CannotChangeInPlace { fields: Vec<String> },
    /// Something it depends on is replaced or deleted.
    DependencyReplaced { dependency: Address },
    /// There, and no longer declared.
    NoLongerDeclared,
    /// Its container is deleted, and it with it.
    RemovedWith { container: Address },
}

/// One typed change with the reason it was decided.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub kind: Kind,
    #[serde(flatten)]
    pub op: Op,
    pub reason: ChangeReason,
    /// Deleting or replacing loses data: needs `--allow-destroy=<address>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destroys_data: bool,
    /// For a policy: what it grants differently, one line per capability
    /// (`+ delete on secret/data/*`; [`crate::policy::difference`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// For an alarm created or changed in how it evaluates: what it would have done over the
    /// last days of its metric (added by `ctl plan`, which reads the metric; never compared
    /// when a saved plan is applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<crate::alarms::backtest::PlanBacktest>,
}

impl Change {
    /// A change of `op` on the resource it names, with nothing attached yet.
    pub fn new(op: Op, reason: ChangeReason, destroys_data: bool) -> Change {
        let r = match &op {
            Op::Create { after } => after,
            Op::Update { before, .. } | Op::Replace { before, .. } | Op::Recreate { before, .. } | Op::Delete { before, .. } => before,
        };
        Change {
            address: r.address.clone(),
            kind: r.kind,
            op,
            reason,
            destroys_data,
            capabilities: Vec::new(),
            backtest: None,
        }
    }

    /// The action as shown and counted (a re-create is a create).
    pub fn action(&self) -> Action {
        match self.op {
            Op::Create { .. } | Op::Recreate { .. } => Action::Create,
            Op::Update { .. } => Action::Update,
            Op::Replace { .. } => Action::Replace,
            Op::Delete { .. } => Action::Delete,
        }
    }

    /// The live object as read (none for a create).
    pub fn before(&self) -> Option<&Resource> {
        match &self.op {
            Op::Create { .. } => None,
            Op::Update { before, .. } | Op::Replace { before, .. } | Op::Recreate { before, .. } | Op::Delete { before, .. } => Some(before),
        }
    }

    /// The desired object (none for a delete).
    pub fn after(&self) -> Option<&Resource> {
        match &self.op {
            Op::Delete { .. } => None,
            Op::Create { after } | Op::Update { after, .. } | Op::Replace { after, .. } | Op::Recreate { after, .. } => Some(after),
        }
    }

    /// Field-level differences (updates and replaces).
    pub fn fields(&self) -> &[FieldChange] {
        match &self.op {
            Op::Update { fields, .. } | Op::Replace { fields, .. } => fields,
            _ => &[],
        }
    }

    /// The container whose deletion removes this object too, for an implied delete.
    pub fn implied_by(&self) -> Option<&Address> {
        match &self.op {
            Op::Delete { implied_by, .. } => implied_by.as_ref(),
            _ => None,
        }
    }

    /// A state (`before` or `after`) that describes another object than this change's address
    /// and kind: possible only in a hand-edited plan file, refused wherever it could be used.
    pub fn stray_state(&self) -> Option<(&'static str, &Resource)> {
        [("before", self.before()), ("after", self.after())]
            .into_iter()
            .find_map(|(what, r)| r.filter(|r| r.address != self.address || r.kind != self.kind).map(|r| (what, r)))
    }

    /// The resource this change acts on (desired for create/update/replace, live for delete).
    pub fn resource(&self) -> &Resource {
        match &self.op {
            Op::Delete { before, .. } => before,
            Op::Create { after } | Op::Update { after, .. } | Op::Replace { after, .. } | Op::Recreate { after, .. } => after,
        }
    }
}

/// Why a plan cannot be applied as it stands.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A desired resource collides with something ctl does not manage (rule 5).
    #[default]
    Unmanaged,
    /// Replacing or deleting the resource would leave a live dependent behind (rule 6).
    BlockedReplace,
}

/// Something the plan refuses; apply does nothing while there is one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Conflict {
    pub address: Address,
    #[serde(default)]
    pub kind: ConflictKind,
    pub message: String,
}

/// The outcome of a diff.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Diff {
    /// Sorted by address.
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub unchanged: usize,
}

/// Compare desired with live. Both inputs may be in any order; addresses must be unique.
pub fn diff(desired: &[Resource], live: &[Resource], unmanaged: &[Unmanaged]) -> Diff {
    let live_by: BTreeMap<&Address, &Resource> = live.iter().map(|r| (&r.address, r)).collect();
    let desired_by: BTreeMap<&Address, &Resource> =
        desired.iter().map(|r| (&r.address, r)).collect();

    let foreign: BTreeMap<Identity, &Unmanaged> = unmanaged.iter().map(|u| (u.identity(), u)).collect();
    let mut changes: BTreeMap<Address, Change> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut unchanged = 0;

    for want in desired {
        let identity = want.identity();
        let have = live_by.get(&want.address);
        if let Some(u) = foreign.get(&identity).filter(|_| have.is_none_or(|h| h.identity() != identity)) {
            conflicts.push(Conflict {
                address: want.address.clone(),
                kind: ConflictKind::Unmanaged,
                message: format!(
                    "{:?} {:?} already exists and is not managed by ctl ({}); refusing to adopt it (`ctl adopt {}` takes it over explicitly)",
                    u.kind,
                    u.path(),
                    u.reason,
                    want.address
                ),
            });
            continue;
        }
        match have {
            None => {
                changes.insert(want.address.clone(), Change::new(Op::Create { after: want.clone() }, ChangeReason::Absent, false));
            }
            Some(have) => {
                let fields = field_changes(have, want);
                if fields.is_empty() {
                    unchanged += 1;
                    continue;
                }
                let (before, after) = ((*have).clone(), want.clone());
                let forced: Vec<String> = fields.iter().filter(|f| f.forces_replace).map(|f| f.field.clone()).collect();
                let change = if forced.is_empty() {
                    let reason = ChangeReason::Differ { fields: fields.iter().map(|f| f.field.clone()).collect() };
                    Change::new(Op::Update { before, after, fields }, reason, false)
                } else {
                    let reason = ChangeReason::CannotChangeInPlace { fields: forced };
                    Change::new(Op::Replace { before, after, fields }, reason, want.kind.spec().data_loss_on_delete)
                };
                changes.insert(want.address.clone(), change);
            }
        }
    }

    for have in live {
        if desired_by.contains_key(&have.address) {
            continue;
        }
        let delete = Op::Delete { before: have.clone(), implied_by: None };
        changes.insert(have.address.clone(), Change::new(delete, ChangeReason::NoLongerDeclared, have.kind.spec().data_loss_on_delete));
    }

    unchanged -= recreate_dependents(desired, &mut changes);
    mark_implied_deletes(&mut changes);
    withhold_conflicted(&conflicts, &mut changes);
    conflicts.extend(blocked_destroys(live, &changes));
    for c in changes.values_mut().filter(|c| c.kind == Kind::Policy) {
        let text = |r: Option<&Resource>| r.and_then(|r| r.attrs.get("policy")).and_then(|v| v.as_str()).map(str::to_string);
        c.capabilities = crate::policy::text_difference(text(c.before()).as_deref(), text(c.after()).as_deref());
    }

    Diff { changes: changes.into_values().collect(), conflicts, unchanged }
}

/// Field-level differences, in the desired attribute order, then fields only live has.
pub fn field_changes(have: &Resource, want: &Resource) -> Vec<FieldChange> {
    let replace_on = want.kind.spec().replace_on;
    let mut out = Vec::new();
    let mut push = |field: &str, before: Option<&Value>, after: Option<&Value>| {
        if before != after {
            out.push(FieldChange {
                field: field.to_string(),
                before: before.cloned(),
                after: after.cloned(),
                forces_replace: replace_on.contains(&field),
            });
        }
    };
    if have.name != want.name {
        push("name", Some(&Value::from(have.name.clone())), Some(&Value::from(want.name.clone())));
    }
    for (k, v) in &want.attrs {
        push(k, have.attrs.get(k), Some(v));
    }
    for (k, v) in &have.attrs {
        if !want.attrs.contains_key(k) {
            push(k, Some(v), None);
        }
    }
    out
}

/// Rule 3: a desired resource whose dependency is replaced or deleted is destroyed with it.
/// Returns how many previously unchanged resources this turned into re-creates.
fn recreate_dependents(desired: &[Resource], changes: &mut BTreeMap<Address, Change>) -> usize {
    let mut from_unchanged = 0;
    loop {
        let destroyed: BTreeSet<Address> =
            changes.values().filter(|c| destroys(c)).map(|c| c.address.clone()).collect();
        let mut grew = false;
        for want in desired {
            if matches!(changes.get(&want.address), Some(c) if c.action() == Action::Create) {
                continue;
            }
            let Some(dep) = want.depends_on.iter().find(|d| destroyed.contains(*d)) else {
                continue;
            };
            // Only something that exists now is destroyed along with its dependency.
            let before = match changes.get(&want.address) {
                Some(c) => c.before().cloned(),
                None => {
                    from_unchanged += 1;
                    Some(want.clone()) // unchanged: live equals desired
                }
            };
            let Some(before) = before else { continue };
            // Its data goes with it, unless its container's flag covers it (as in rule 4).
            let destroys_data =
                want.kind.spec().data_loss_on_delete && !want.container.as_ref().is_some_and(|k| destroyed.contains(k));
            let reason = ChangeReason::DependencyReplaced { dependency: dep.clone() };
            changes.insert(want.address.clone(), Change::new(Op::Recreate { before, after: want.clone() }, reason, destroys_data));
            grew = true;
        }
        if !grew {
            return from_unchanged;
        }
    }
}

/// Does this change destroy the live object (delete, replace, or re-create)?
fn destroys(c: &Change) -> bool {
    matches!(c.op, Op::Replace { .. } | Op::Recreate { .. } | Op::Delete { .. })
}

/// Rule 6: a destroyed object's live dependents must be destroyed too, or updated so that they
/// no longer refer to it (the executor runs those first).
fn blocked_destroys(live: &[Resource], changes: &BTreeMap<Address, Change>) -> Vec<Conflict> {
    let mut out = Vec::new();
    for c in changes.values().filter(|c| destroys(c)) {
        let kept: Vec<&str> = live
            .iter()
            .filter(|l| l.depends_on.contains(&c.address))
            .filter(|l| match changes.get(&l.address) {
                Some(d) if destroys(d) => false,
                Some(d) => d.after().is_some_and(|a| a.depends_on.contains(&c.address)),
                None => true,
            })
            .map(|l| l.address.as_str())
            .collect();
        if kept.is_empty() {
            continue;
        }
        let verb = if c.action() == Action::Delete { "delete" } else { "replace" };
        out.push(Conflict {
            address: c.address.clone(),
            kind: ConflictKind::BlockedReplace,
            message: format!(
                "cannot {verb} it: {} still depend{} on it and would be kept (the provider refuses to delete an object in use); \
                 make {} change with it in the declaration, or remove {} first",
                kept.join(", "),
                if kept.len() == 1 { "s" } else { "" },
                if kept.len() == 1 { "that dependent" } else { "those dependents" },
                if kept.len() == 1 { "it" } else { "them" },
            ),
        });
    }
    out
}

/// Rule 5, continued: nothing is planned inside, or on top of, an object ctl may not touch.
fn withhold_conflicted(conflicts: &[Conflict], changes: &mut BTreeMap<Address, Change>) {
    let mut blocked: BTreeSet<Address> = conflicts.iter().map(|c| c.address.clone()).collect();
    loop {
        let newly: Vec<Address> = changes
            .values()
            .filter(|c| {
                let r = c.resource();
                r.container.iter().chain(&r.depends_on).any(|a| blocked.contains(a))
            })
            .map(|c| c.address.clone())
            .collect();
        if newly.is_empty() {
            return;
        }
        for a in newly {
            changes.remove(&a);
            blocked.insert(a);
        }
    }
}

/// Rule 4: deletes whose container is deleted too.
fn mark_implied_deletes(changes: &mut BTreeMap<Address, Change>) {
    let deleted: BTreeSet<Address> = changes
        .values()
        .filter(|c| c.action() == Action::Delete)
        .map(|c| c.address.clone())
        .collect();
    for change in changes.values_mut() {
        let Op::Delete { before, implied_by } = &mut change.op else { continue };
        if let Some(container) = before.container.clone().filter(|k| deleted.contains(k)) {
            change.reason = ChangeReason::RemovedWith { container: container.clone() };
            *implied_by = Some(container);
            change.destroys_data = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;
    use serde_json::json;

    fn res(addr: &str, kind: Kind, attrs: Value) -> Resource {
        Resource {
            address: Address::new(addr),
            kind,
            scope: Scope::Namespace("acme".into()),
            name: addr.rsplit('.').next().unwrap().to_string(),
            attrs: attrs.as_object().unwrap().clone(),
            depends_on: vec![],
            container: None,
        }
    }

    fn ns() -> Resource {
        let mut r = res("workspace.acme.namespace", Kind::Namespace, json!({"path": "acme"}));
        r.scope = Scope::Root;
        r.name = "acme".into();
        r
    }

    fn kv(max_versions: u64) -> Resource {
        let mut r = res(
            "workspace.acme.kv",
            Kind::KvMount,
            json!({"path": "secret", "version": 2, "max_versions": max_versions}),
        );
        r.depends_on = vec![Address::new("workspace.acme.namespace")];
        r.container = Some(Address::new("workspace.acme.namespace"));
        r
    }

    #[test]
    fn empty_live_creates_everything() {
        let d = diff(&[ns(), kv(10)], &[], &[]);
        assert_eq!(d.changes.len(), 2);
        assert!(d.changes.iter().all(|c| c.action() == Action::Create));
        assert_eq!(d.unchanged, 0);
    }

    #[test]
    fn equal_is_no_change() {
        let d = diff(&[ns(), kv(10)], &[kv(10), ns()], &[]);
        assert!(d.changes.is_empty());
        assert_eq!(d.unchanged, 2);
    }

    #[test]
    fn one_field_update_names_exactly_that_field() {
        let d = diff(&[ns(), kv(10)], &[ns(), kv(3)], &[]);
        assert_eq!(d.changes.len(), 1);
        let c = &d.changes[0];
        assert_eq!(c.action(), Action::Update);
        assert_eq!(c.fields().len(), 1);
        assert_eq!(c.fields()[0].field, "max_versions");
        assert_eq!(c.fields()[0].before, Some(json!(3)));
        assert_eq!(c.fields()[0].after, Some(json!(10)));
        assert!(!c.destroys_data);
    }

    #[test]
    fn immutable_field_forces_replace_and_flags_data_loss() {
        let mut want = kv(10);
        want.attrs.insert("path".into(), json!("kv"));
        let d = diff(&[ns(), want], &[ns(), kv(10)], &[]);
        let c = &d.changes[0];
        assert_eq!(c.action(), Action::Replace);
        assert!(c.destroys_data);
        assert_eq!(c.reason, ChangeReason::CannotChangeInPlace { fields: vec!["path".into()] });
    }

    #[test]
    fn deleting_a_container_implies_its_children() {
        let d = diff(&[], &[ns(), kv(10)], &[]);
        let kv_change = d.changes.iter().find(|c| c.kind == Kind::KvMount).unwrap();
        assert_eq!(kv_change.implied_by(), Some(&Address::new("workspace.acme.namespace")));
        assert!(!kv_change.destroys_data, "the namespace's flag covers it");
        let ns_change = d.changes.iter().find(|c| c.kind == Kind::Namespace).unwrap();
        assert!(ns_change.destroys_data);
        assert_eq!(ns_change.implied_by(), None);
    }

    #[test]
    fn deleting_a_child_alone_is_not_implied() {
        let d = diff(&[ns()], &[ns(), kv(10)], &[]);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].action(), Action::Delete);
        assert!(d.changes[0].destroys_data);
    }

    #[test]
    fn dependents_of_a_replaced_resource_are_recreated() {
        let mount = |path: &str| {
            let mut r = res("workspace.acme.auth.approle", Kind::AuthMount, json!({"path": path}));
            r.depends_on = vec![Address::new("workspace.acme.namespace")];
            r
        };
        let mut role = res("workspace.acme.approle.app", Kind::AppRole, json!({"token_ttl": "1h"}));
        role.depends_on = vec![Address::new("workspace.acme.auth.approle")];
        let d = diff(
            &[ns(), mount("approle2"), role.clone()],
            &[ns(), mount("approle"), role],
            &[],
        );
        let role_change =
            d.changes.iter().find(|c| c.address.as_str() == "workspace.acme.approle.app").unwrap();
        assert_eq!(role_change.action(), Action::Create);
        assert_eq!(role_change.reason, ChangeReason::DependencyReplaced { dependency: Address::new("workspace.acme.auth.approle") });
        assert_eq!(d.unchanged, 1, "only the namespace stays untouched");
    }

    #[test]
    fn unmanaged_collision_is_a_conflict_not_a_create() {
        let u = Unmanaged::root(Kind::Namespace, "acme", crate::model::UnmanagedReason::no_marker("no managed-by"));
        let d = diff(&[ns(), kv(10)], &[], &[u]);
        assert!(d.changes.is_empty(), "nothing planned inside a foreign namespace");
        assert_eq!(d.conflicts.len(), 1);
        assert!(d.conflicts[0].message.contains("not managed by ctl"));
    }

    #[test]
    fn a_foreign_policy_in_a_managed_namespace_is_a_conflict() {
        // The reported bug: the unmanaged policy's path "acme/extra" was compared with the
        // bare name "extra", so the create went ahead and overwrote the foreign text.
        let mut policy = res("workspace.acme.policy.extra", Kind::Policy, json!({"policy": "x"}));
        policy.depends_on = vec![Address::new("workspace.acme.namespace")];
        let u = Unmanaged::in_namespace(Kind::Policy, "acme", "extra", crate::model::UnmanagedReason::no_marker("no marker"));
        let d = diff(&[ns(), policy.clone()], &[ns()], &[u]);
        assert!(d.changes.is_empty(), "{:?}", d.changes);
        assert_eq!(d.conflicts.len(), 1);
        assert_eq!(d.conflicts[0].address, policy.address);
        // The same name in another namespace is no collision.
        let elsewhere = Unmanaged::in_namespace(Kind::Policy, "other", "extra", crate::model::UnmanagedReason::no_marker("no marker"));
        assert_eq!(diff(&[ns(), policy], &[ns()], &[elsewhere]).conflicts.len(), 0);
    }

    #[test]
    fn kv_and_transit_mounts_share_one_path_space() {
        let mut transit = res("workspace.acme.transit", Kind::TransitMount, json!({"path": "secret"}));
        transit.name = "secret".into();
        let u = Unmanaged::in_namespace(Kind::KvMount, "acme", "secret", crate::model::UnmanagedReason::no_marker("no marker"));
        assert_eq!(diff(&[transit], &[], &[u]).conflicts.len(), 1);
    }

    #[test]
    fn roles_collide_only_under_the_same_mount() {
        let role = |mount: &str| res("workspace.acme.approle.app", Kind::AppRole, json!({"mount": mount}));
        let u = Unmanaged::in_namespace(Kind::AppRole, "acme", "approle/app", crate::model::UnmanagedReason::no_marker("not recorded"));
        assert_eq!(diff(&[role("approle")], &[], std::slice::from_ref(&u)).conflicts.len(), 1);
        assert_eq!(diff(&[role("other")], &[], &[u]).conflicts.len(), 0);
    }

    #[test]
    fn renaming_onto_a_foreign_object_is_a_conflict() {
        let mut want = kv(10);
        want.name = "kv2".into();
        want.attrs.insert("path".into(), json!("kv2"));
        let u = Unmanaged::in_namespace(Kind::KvMount, "acme", "kv2", crate::model::UnmanagedReason::no_marker("no marker"));
        let d = diff(&[ns(), want], &[ns(), kv(10)], &[u]);
        assert_eq!(d.conflicts.len(), 1, "{:?}", d.changes);
    }

    fn subnet_group(name: &str) -> Resource {
        res("rds.subnet_group", Kind::DbSubnetGroup, json!({"name": name}))
    }

    fn database() -> Resource {
        let mut db = res("rds.instance", Kind::DbInstance, json!({"identifier": "db"}));
        db.depends_on = vec![Address::new("rds.subnet_group")];
        db
    }

    #[test]
    fn recreated_dependent_that_loses_data_needs_its_own_flag() {
        let d = diff(&[subnet_group("new"), database()], &[subnet_group("old"), database()], &[]);
        let db = d.changes.iter().find(|c| c.kind == Kind::DbInstance).unwrap();
        assert!(matches!(db.op, Op::Recreate { .. }), "re-created");
        assert_eq!(db.action(), Action::Create, "shown as a create");
        assert!(db.destroys_data, "the database is deleted with its old subnet group");
        assert!(d.conflicts.is_empty(), "{:?}", d.conflicts);
    }

    #[test]
    fn destroying_what_a_kept_live_resource_depends_on_is_refused_at_plan_time() {
        // Live, the database refers to the subnet group (as AWS observe links references); the
        // declaration does not say so, so rule 3 keeps the database.
        let mut declared = database();
        declared.depends_on.clear();
        let d = diff(&[subnet_group("new"), declared.clone()], &[subnet_group("old"), database()], &[]);
        assert_eq!(d.conflicts.len(), 1, "{:?}", d.conflicts);
        let c = &d.conflicts[0];
        assert_eq!((c.address.as_str(), c.kind), ("rds.subnet_group", ConflictKind::BlockedReplace));
        assert!(c.message.contains("cannot replace it: rds.instance still depends on it"), "{}", c.message);

        // Deleting it is refused the same way; deleting the dependent too is fine.
        let d = diff(&[declared], &[subnet_group("old"), database()], &[]);
        assert_eq!(d.conflicts.len(), 1);
        assert!(d.conflicts[0].message.starts_with("cannot delete it"), "{}", d.conflicts[0].message);
        assert!(diff(&[], &[subnet_group("old"), database()], &[]).conflicts.is_empty());
    }
}

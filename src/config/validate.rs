//! Merging classes into workspaces, and the checks serde cannot do: cross-field and cross-file.
//!
//! Checks local to one section (duplicate policy names, TTL ordering, quota rate…) run once where
//! the section is written: in the class, or in the workspace. Checks that relate two sections
//! (token policies vs declared policies, KV path vs transit mount) run per workspace unless both
//! sections come from the class, in which case they run once, for the class.
//!
//! YAML paths of problems are only built when there is a problem: loading thousands of valid
//! workspaces allocates nothing for error reporting.

use super::problems::{Problems, Sources};
use super::names::{ClassName, MountPath};
use super::raw::*;
use super::{AppRole, Kv, Origin, PathSeg, Policy, Quota, Role, Transit, TransitKey, Workspace};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A workspace as declared: source file id, YAML path of its mapping, parsed content.
pub(crate) struct Decl<'a> {
    pub file: usize,
    pub base: Vec<PathSeg>,
    pub raw: &'a RawWorkspace,
}

/// One step below a [`Base`], borrowed until a problem needs it.
#[derive(Clone, Copy)]
enum Seg<'a> {
    K(&'a str),
    I(usize),
}

/// A node that sections hang off: a class or a workspace mapping in some file.
#[derive(Clone, Copy)]
struct Base<'a> {
    file: usize,
    path: &'a [PathSeg],
}

impl Base<'_> {
    fn path_to(&self, segs: &[Seg<'_>]) -> Vec<PathSeg> {
        let mut path = self.path.to_vec();
        path.extend(segs.iter().map(|s| match s {
            Seg::K(k) => PathSeg::key(*k),
            Seg::I(i) => PathSeg::Index(*i),
        }));
        path
    }

    /// Record `message` at the node `segs` below this base.
    fn report(&self, problems: &mut Problems, segs: &[Seg<'_>], message: String) {
        problems.at(self.file, self.path_to(segs), message);
    }

    /// `file:line` of the node `segs` below this base, for messages that point at it.
    fn describe(&self, sources: &Sources, segs: &[Seg<'_>]) -> String {
        sources.describe(self.file, &self.path_to(segs))
    }
}

/// A class as defined in the environment file.
struct Class<'a> {
    name: &'a str,
    raw: &'a RawClass,
    path: Vec<PathSeg>,
}

impl Class<'_> {
    fn base(&self) -> Base<'_> {
        Base { file: 0, path: &self.path }
    }
}

/// Who wrote a section: the class or the workspace itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Class,
    Workspace,
}

/// A section with where it is written (`base` + its key).
struct Sourced<'a, T: ?Sized> {
    value: &'a T,
    base: Base<'a>,
    owner: Owner,
}

fn is_class<T: ?Sized>(s: &Option<Sourced<'_, T>>) -> bool {
    s.as_ref().is_some_and(|s| s.owner == Owner::Class)
}

/// The effective `kv.path`: its value and where it is written (`None`: the default).
struct KvPath<'a> {
    value: &'a str,
    written: Option<(Base<'a>, Owner)>,
}

const DEFAULT_KV_PATH: &str = "secret";

/// The sections cross-checks look at, after merging.
struct View<'a> {
    /// Who is being checked, for messages: `class "standard"` or `workspace "acme"`.
    subject: String,
    kv_path: KvPath<'a>,
    policies: Option<Sourced<'a, [RawPolicy]>>,
    approle: Option<Sourced<'a, RawAppRole>>,
    transit: Option<Sourced<'a, RawTransit>>,
}

/// The sections a class or a workspace writes itself.
struct Sections<'a> {
    policies: Option<&'a [RawPolicy]>,
    approle: Option<&'a RawAppRole>,
    transit: Option<&'a RawTransit>,
    quota: Option<&'a RawQuota>,
}

impl<'a> Sections<'a> {
    fn of_class(c: &'a RawClass) -> Sections<'a> {
        Sections {
            policies: c.policies.as_deref(),
            approle: c.approle.as_ref(),
            transit: c.transit.as_ref(),
            quota: c.quota.as_ref(),
        }
    }

    fn of_workspace(w: &'a RawWorkspace) -> Sections<'a> {
        Sections {
            policies: w.policies.as_deref(),
            approle: w.approle.as_ref(),
            transit: w.transit.as_ref(),
            quota: w.quota.as_ref(),
        }
    }
}

/// Validate classes and workspaces; return the merged workspaces sorted by name. Problems go
/// to `problems` (the returned list is only meaningful if there are none).
pub(crate) fn workspaces(
    classes: &[(ClassName, RawClass)],
    decls: &[Decl<'_>],
    sources: &Sources,
    problems: &mut Problems,
) -> Vec<Workspace> {
    let classes: BTreeMap<&str, Class<'_>> = classes
        .iter()
        .map(|(name, raw)| {
            let path = vec![PathSeg::key("classes"), PathSeg::key(&name.0)];
            (name.0.as_str(), Class { name: &name.0, raw, path })
        })
        .collect();
    for class in classes.values() {
        check_class(class, sources, problems);
    }
    let merged = crate::par::map(decls, |decl| {
        let mut found = Problems::default();
        let ws = workspace(decl, &classes, sources, &mut found);
        (ws, found)
    });
    let mut out = Vec::with_capacity(merged.len());
    for (ws, found) in merged {
        out.push(ws);
        problems.append(found);
    }
    check_unique(decls, sources, problems);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Section checks of a class, and cross-checks between sections it defines itself.
fn check_class(class: &Class<'_>, sources: &Sources, problems: &mut Problems) {
    let base = class.base();
    let raw = class.raw;
    check_sections(base, &Sections::of_class(raw), sources, problems);
    let sourced = |value| Sourced { value, base, owner: Owner::Class };
    let view = View {
        subject: format!("class {:?}", class.name),
        kv_path: match raw.kv.as_ref().and_then(|kv| kv.path.as_ref()) {
            Some(p) => KvPath { value: &p.0, written: Some((base, Owner::Class)) },
            None => KvPath { value: DEFAULT_KV_PATH, written: None },
        },
        policies: raw.policies.as_deref().map(|value| Sourced { value, base, owner: Owner::Class }),
        approle: raw.approle.as_ref().map(sourced),
        transit: raw.transit.as_ref().map(|value| Sourced { value, base, owner: Owner::Class }),
    };
    if view.policies.is_some() {
        check_token_policies(&view, problems);
    }
    if view.kv_path.written.is_some() {
        check_mount_collision(&view, problems);
    }
}

/// Checks local to each section that is present.
fn check_sections(base: Base<'_>, sections: &Sections<'_>, sources: &Sources, problems: &mut Problems) {
    if let Some(policies) = sections.policies {
        check_policies(policies, base, sources, problems);
    }
    if let Some(approle) = sections.approle {
        check_approle(approle, base, problems);
    }
    if let Some(transit) = sections.transit {
        check_transit(transit, base, sources, problems);
    }
    if let Some(quota) = sections.quota {
        check_quota(quota, base, problems);
    }
}

fn check_policies(policies: &[RawPolicy], base: Base<'_>, sources: &Sources, problems: &mut Problems) {
    for (i, policy) in policies.iter().enumerate() {
        let name = policy.name.0.as_str();
        if let Some(first) = policies[..i].iter().position(|p| p.name.0 == name) {
            let first_at = base.describe(sources, &[Seg::K("policies"), Seg::I(first), Seg::K("name")]);
            let message = format!("duplicate policy name {name:?}: already declared at {first_at}");
            base.report(problems, &[Seg::K("policies"), Seg::I(i), Seg::K("name")], message);
        }
    }
}

fn check_approle(approle: &RawAppRole, base: Base<'_>, problems: &mut Problems) {
    for (name, role) in &approle.roles.0 {
        let (ttl, max) = (role.token_ttl, role.token_max_ttl);
        if max.0 > 0 && ttl > max {
            let message = format!("token_ttl ({ttl}) exceeds token_max_ttl ({max}) of role {:?}", name.0);
            base.report(problems, &[Seg::K("approle"), Seg::K("roles"), Seg::K(&name.0), Seg::K("token_ttl")], message);
        }
    }
}

fn check_transit(transit: &RawTransit, base: Base<'_>, sources: &Sources, problems: &mut Problems) {
    for (i, key) in transit.keys.iter().enumerate() {
        let name = key.name.0.as_str();
        let key_at = |field| [Seg::K("transit"), Seg::K("keys"), Seg::I(i), Seg::K(field)];
        if let Some(first) = transit.keys[..i].iter().position(|k| k.name.0 == name) {
            let first_at = base.describe(sources, &[Seg::K("transit"), Seg::K("keys"), Seg::I(first), Seg::K("name")]);
            let message = format!("duplicate transit key name {name:?}: already declared at {first_at}");
            base.report(problems, &key_at("name"), message);
        }
        let period = key.auto_rotate_period;
        if period.0 != 0 && period.0 < 3_600 {
            let message = format!("auto_rotate_period ({period}) must be 0s (never) or at least 1h");
            base.report(problems, &key_at("auto_rotate_period"), message);
        }
    }
}

fn check_quota(quota: &RawQuota, base: Base<'_>, problems: &mut Problems) {
    if !(quota.rate.is_finite() && quota.rate > 0.0) {
        let message = format!("quota rate must be a positive number of requests per interval, got {}", quota.rate);
        base.report(problems, &[Seg::K("quota"), Seg::K("rate")], message);
    }
}

/// Every role's token policy must be a policy of the same workspace, or `default`.
fn check_token_policies(view: &View<'_>, problems: &mut Problems) {
    let Some(approle) = &view.approle else { return };
    let declared = |name: &str| view.policies.as_ref().is_some_and(|p| p.value.iter().any(|p| p.name.0 == name));
    for (role, spec) in &approle.value.roles.0 {
        for (j, policy) in spec.token_policies.iter().enumerate() {
            if policy == "default" || declared(policy) {
                continue;
            }
            let message = format!(
                "role {:?} names token policy {policy:?}, which {} does not declare ({}; \"default\" is always allowed)",
                role.0,
                view.subject,
                declared_list(view)
            );
            let at = [Seg::K("approle"), Seg::K("roles"), Seg::K(&role.0), Seg::K("token_policies"), Seg::I(j)];
            approle.base.report(problems, &at, message);
        }
    }
}

/// "declared: a, b" or "it declares no policies".
fn declared_list(view: &View<'_>) -> String {
    let names: BTreeSet<&str> =
        view.policies.iter().flat_map(|p| p.value.iter()).map(|p| p.name.0.as_str()).collect();
    if names.is_empty() {
        "it declares no policies".to_string()
    } else {
        format!("declared: {}", names.into_iter().collect::<Vec<_>>().join(", "))
    }
}

/// The KV mount and the transit mount of a workspace must be different paths.
fn check_mount_collision(view: &View<'_>, problems: &mut Problems) {
    let Some(transit) = &view.transit else { return };
    let kv = &view.kv_path;
    if transit.value.mount.0 != kv.value {
        return;
    }
    let message = format!(
        "transit mount {:?} is the same path as the KV mount of {}; mounts in a workspace must differ",
        transit.value.mount.0, view.subject
    );
    // Point at whichever of the two the subject wrote itself (the transit mount by preference).
    match kv.written {
        Some((base, Owner::Workspace)) if transit.owner != Owner::Workspace => {
            base.report(problems, &[Seg::K("kv"), Seg::K("path")], message);
        }
        _ => transit.base.report(problems, &[Seg::K("transit"), Seg::K("mount")], message),
    }
}

/// Merge one workspace with its class; run its own section checks and cross-checks.
fn workspace(
    decl: &Decl<'_>,
    classes: &BTreeMap<&str, Class<'_>>,
    sources: &Sources,
    problems: &mut Problems,
) -> Workspace {
    let ws = decl.raw;
    let base = Base { file: decl.file, path: &decl.base };
    let class = ws.class.as_deref().and_then(|name| lookup_class(name, classes, base, problems));
    check_sections(base, &Sections::of_workspace(ws), sources, problems);

    let inherited = class.map(|c| (c.raw, c.base()));
    let view = View {
        subject: format!("workspace {:?}", ws.name.0),
        kv_path: kv_path(ws, inherited, base),
        policies: section(ws.policies.as_deref(), inherited.and_then(|(c, b)| Some((c.policies.as_deref()?, b))), base),
        approle: section(ws.approle.as_ref(), inherited.and_then(|(c, b)| Some((c.approle.as_ref()?, b))), base),
        transit: section(ws.transit.as_ref(), inherited.and_then(|(c, b)| Some((c.transit.as_ref()?, b))), base),
    };
    // Pairs written entirely by the class were checked once, with the class.
    if !(is_class(&view.approle) && is_class(&view.policies)) {
        check_token_policies(&view, problems);
    }
    if !(is_class(&view.transit) && matches!(view.kv_path.written, Some((_, Owner::Class)))) {
        check_mount_collision(&view, problems);
    }
    build(decl, class.map(|c| c.raw), &view, sources)
}

/// The class a workspace names, or a problem at its `class:` value listing the defined ones.
fn lookup_class<'c>(
    name: &str,
    classes: &'c BTreeMap<&str, Class<'c>>,
    base: Base<'_>,
    problems: &mut Problems,
) -> Option<&'c Class<'c>> {
    let found = classes.get(name);
    if found.is_none() {
        let message = if classes.is_empty() {
            format!("unknown class {name:?}: the environment file defines no classes")
        } else {
            let defined: Vec<&str> = classes.keys().copied().collect();
            format!("unknown class {name:?}; defined classes: {}", defined.join(", "))
        };
        base.report(problems, &[Seg::K("class")], message);
    }
    found
}

/// The workspace's own section if present, else the class's.
fn section<'a, T: ?Sized>(
    own: Option<&'a T>,
    inherited: Option<(&'a T, Base<'a>)>,
    base: Base<'a>,
) -> Option<Sourced<'a, T>> {
    match (own, inherited) {
        (Some(value), _) => Some(Sourced { value, base, owner: Owner::Workspace }),
        (None, Some((value, base))) => Some(Sourced { value, base, owner: Owner::Class }),
        (None, None) => None,
    }
}

/// Where `kv.path` is set: by the workspace, by its class, or nowhere (the default `secret`).
fn kv_path<'a>(ws: &'a RawWorkspace, class: Option<(&'a RawClass, Base<'a>)>, base: Base<'a>) -> KvPath<'a> {
    let path_of = |kv: &'a Option<RawKv>| -> Option<&'a MountPath> { kv.as_ref()?.path.as_ref() };
    if let Some(path) = path_of(&ws.kv) {
        return KvPath { value: &path.0, written: Some((base, Owner::Workspace)) };
    }
    match class.and_then(|(c, b)| Some((path_of(&c.kv)?, b))) {
        Some((path, b)) => KvPath { value: &path.0, written: Some((b, Owner::Class)) },
        None => KvPath { value: DEFAULT_KV_PATH, written: None },
    }
}

/// The merged workspace.
fn build(decl: &Decl<'_>, class: Option<&RawClass>, view: &View<'_>, sources: &Sources) -> Workspace {
    let ws = decl.raw;
    let file = sources.path(decl.file);
    let policies = view.policies.as_ref().map_or_else(Vec::new, |s| {
        let policies_path = s.base.path_to(&[Seg::K("policies")]);
        let file = sources.path(s.base.file);
        s.value
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut yaml_path = policies_path.clone();
                yaml_path.push(PathSeg::Index(i));
                policy(p, Origin::new(file, yaml_path))
            })
            .collect()
    });
    Workspace {
        name: ws.name.0.clone(),
        namespace: ws.namespace.as_ref().map_or_else(|| ws.name.0.clone(), |n| n.0.clone()),
        class: ws.class.clone(),
        kv: kv(view.kv_path.value, ws.kv.as_ref(), class.and_then(|c| c.kv.as_ref())),
        policies,
        approle: view.approle.as_ref().map(|s| approle(s.value)),
        transit: view.transit.as_ref().map(|s| transit(s.value)),
        quota: ws.quota.as_ref().or_else(|| class.and_then(|c| c.quota.as_ref())).map(quota),
        origin: Origin::new(file, decl.base.clone()),
    }
}

/// KV settings merged field by field: workspace, then class, then defaults.
fn kv(path: &str, own: Option<&RawKv>, inherited: Option<&RawKv>) -> Kv {
    let defaults = Kv::default();
    Kv {
        path: path.to_string(),
        max_versions: merged(own, inherited, |k| k.max_versions).unwrap_or(defaults.max_versions),
        cas_required: merged(own, inherited, |k| k.cas_required).unwrap_or(defaults.cas_required),
        delete_version_after: merged(own, inherited, |k| k.delete_version_after)
            .unwrap_or(defaults.delete_version_after),
    }
}

/// One KV field: the workspace's value, else the class's.
fn merged<T>(own: Option<&RawKv>, inherited: Option<&RawKv>, field: impl Fn(&RawKv) -> Option<T>) -> Option<T> {
    own.and_then(&field).or_else(|| inherited.and_then(&field))
}

fn policy(p: &RawPolicy, origin: Origin) -> Policy {
    let vars = p.vars.0.iter().map(|(k, v)| (k.0.clone(), v.clone())).collect();
    Policy { name: p.name.0.clone(), template: p.template.0.clone(), vars, origin }
}

fn approle(a: &RawAppRole) -> AppRole {
    let roles = a.roles.0.iter().map(|(name, r)| (name.0.clone(), role(r))).collect();
    AppRole { mount: a.mount.0.clone(), roles }
}

fn role(r: &RawRole) -> Role {
    Role {
        token_policies: r.token_policies.clone(),
        token_ttl: r.token_ttl,
        token_max_ttl: r.token_max_ttl,
        secret_id_ttl: r.secret_id_ttl,
        secret_id_num_uses: r.secret_id_num_uses,
        token_bound_cidrs: r.token_bound_cidrs.clone(),
        secret_id_bound_cidrs: r.secret_id_bound_cidrs.clone(),
    }
}

fn transit(t: &RawTransit) -> Transit {
    let key = |k: &RawTransitKey| TransitKey {
        name: k.name.0.clone(),
        key_type: k.key_type.0.clone(),
        auto_rotate_period: k.auto_rotate_period,
    };
    Transit { mount: t.mount.0.clone(), keys: t.keys.iter().map(key).collect() }
}

fn quota(q: &RawQuota) -> Quota {
    Quota { rate: q.rate, interval: q.interval, block_interval: q.block_interval }
}

/// Workspace names and namespaces are unique across the inline list and the directory; a repeat
/// is reported at the later declaration, naming the first.
fn check_unique(decls: &[Decl<'_>], sources: &Sources, problems: &mut Problems) {
    fn base<'d>(d: &'d Decl<'_>) -> Base<'d> {
        Base { file: d.file, path: &d.base }
    }
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(decls.len());
    let mut namespaces: HashMap<&str, usize> = HashMap::with_capacity(decls.len());
    for (i, decl) in decls.iter().enumerate() {
        let name = decl.raw.name.0.as_str();
        if let Some(&first) = names.get(name) {
            let first_at = base(&decls[first]).describe(sources, &[Seg::K("name")]);
            let message = format!("duplicate workspace {name:?}: already declared at {first_at}");
            base(decl).report(problems, &[Seg::K("name")], message);
            continue;
        }
        names.insert(name, i);
        let namespace = decl.raw.namespace.as_ref().map_or(name, |n| n.0.as_str());
        if let Some(&first) = namespaces.get(namespace) {
            let other = &decls[first];
            let other_at = base(other).describe(sources, &[Seg::K("name")]);
            let message = format!(
                "namespace {namespace:?} is already used by workspace {:?} ({other_at}); each workspace needs its own namespace",
                other.raw.name.0,
            );
            let key = if decl.raw.namespace.is_some() { "namespace" } else { "name" };
            base(decl).report(problems, &[Seg::K(key)], message);
            continue;
        }
        namespaces.insert(namespace, i);
    }
}

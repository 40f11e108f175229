//! Merging classes into workspaces, and the checks serde cannot do: cross-field and cross-file.
//!
//! Checks local to one section (duplicate policy names, TTL ordering, quota rate…) run once where
//! the section is written: in the class, or in the workspace. Checks that relate two sections
//! (token policies vs declared policies, KV path vs transit mount) run per workspace unless both
//! sections come from the same class, in which case they run once for the class.

use super::load::{Problems, Sources};
use super::names::ClassName;
use super::raw::*;
use super::{AppRole, Kv, Origin, PathSeg, Policy, Quota, Role, Transit, TransitKey, Workspace};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const DEFAULT_KV_PATH: &str = "secret";

/// A workspace as declared: source file id, YAML path of its mapping, parsed content.
pub(crate) struct Decl<'a> {
    pub file: usize,
    pub base: Vec<PathSeg>,
    pub raw: &'a RawWorkspace,
}

/// A node: source file id and YAML path.
#[derive(Clone, Debug)]
struct At {
    file: usize,
    path: Vec<PathSeg>,
}

impl At {
    fn key(&self, key: &str) -> At {
        self.join([PathSeg::key(key)])
    }

    fn join(&self, segs: impl IntoIterator<Item = PathSeg>) -> At {
        let mut path = self.path.clone();
        path.extend(segs);
        At { file: self.file, path }
    }
}

/// Who wrote a section: the class (by name) or the workspace itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Class,
    Workspace,
}

fn is_class<T>(s: &Option<Sourced<'_, T>>) -> bool {
    s.as_ref().is_some_and(|s| s.owner == Owner::Class)
}

/// The effective `kv.path`: where it is written, if anywhere (else it is the default).
struct KvPath<'a> {
    value: &'a str,
    at: Option<At>,
    owner: Option<Owner>,
}

/// A section with where it is written.
struct Sourced<'a, T> {
    value: &'a T,
    at: At,
    owner: Owner,
}

/// The sections cross-checks look at, after merging.
struct View<'a> {
    /// Who is being checked, for messages: `class "standard"` or `workspace "acme"`.
    subject: String,
    kv_path: KvPath<'a>,
    policies: Option<Sourced<'a, Vec<RawPolicy>>>,
    approle: Option<Sourced<'a, RawAppRole>>,
    transit: Option<Sourced<'a, RawTransit>>,
}

/// Validate classes and workspaces; return the merged workspaces sorted by name. Problems go
/// to `problems` (the returned list is only meaningful if there are none).
pub(crate) fn workspaces(
    classes: &BTreeMap<ClassName, RawClass>,
    decls: &[Decl<'_>],
    sources: &Sources,
    problems: &mut Problems,
) -> Vec<Workspace> {
    for (name, class) in classes {
        check_class(name, class, sources, problems);
    }
    let mut out: Vec<Workspace> = decls.iter().map(|d| workspace(d, classes, sources, problems)).collect();
    check_unique(decls, sources, problems);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn class_at(name: &ClassName) -> At {
    At { file: 0, path: vec![PathSeg::key("classes"), PathSeg::key(&name.0)] }
}

/// Section checks of a class, and cross-checks between sections it defines itself.
fn check_class(name: &ClassName, class: &RawClass, sources: &Sources, problems: &mut Problems) {
    let at = class_at(name);
    check_sections(&at, &Sections::of_class(class), sources, problems);
    let sourced = |key: &str| at.key(key);
    let view = View {
        subject: format!("class {:?}", name.0),
        kv_path: match class.kv.as_ref().and_then(|kv| kv.path.as_ref()) {
            Some(p) => KvPath { value: &p.0, at: Some(sourced("kv").key("path")), owner: Some(Owner::Class) },
            None => KvPath { value: DEFAULT_KV_PATH, at: None, owner: None },
        },
        policies: class.policies.as_ref().map(|v| Sourced { value: v, at: sourced("policies"), owner: Owner::Class }),
        approle: class.approle.as_ref().map(|v| Sourced { value: v, at: sourced("approle"), owner: Owner::Class }),
        transit: class.transit.as_ref().map(|v| Sourced { value: v, at: sourced("transit"), owner: Owner::Class }),
    };
    if view.policies.is_some() {
        check_token_policies(&view, problems);
    }
    if view.kv_path.owner.is_some() {
        check_mount_collision(&view, problems);
    }
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

/// Checks local to each section that is present.
fn check_sections(at: &At, sections: &Sections<'_>, sources: &Sources, problems: &mut Problems) {
    let Sections { policies, approle, transit, quota } = sections;
    if let Some(policies) = policies {
        check_policies(policies, &at.key("policies"), sources, problems);
    }
    if let Some(approle) = approle {
        check_approle(approle, &at.key("approle"), problems);
    }
    if let Some(transit) = transit {
        check_transit(transit, &at.key("transit"), sources, problems);
    }
    if let Some(quota) = quota {
        check_quota(quota, &at.key("quota"), problems);
    }
}

fn check_policies(policies: &[RawPolicy], at: &At, sources: &Sources, problems: &mut Problems) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, policy) in policies.iter().enumerate() {
        if let Some(&first) = seen.get(policy.name.0.as_str()) {
            let first_at = at.join([PathSeg::Index(first), PathSeg::key("name")]);
            let message = format!(
                "duplicate policy name {:?}: already declared at {}",
                policy.name.0,
                sources.describe(first_at.file, &first_at.path)
            );
            problems.at(at.file, at.join([PathSeg::Index(i), PathSeg::key("name")]).path, message);
        } else {
            seen.insert(&policy.name.0, i);
        }
    }
}

fn check_approle(approle: &RawAppRole, at: &At, problems: &mut Problems) {
    for (name, role) in &approle.roles.0 {
        let (ttl, max) = (role.token_ttl, role.token_max_ttl);
        if max.0 > 0 && ttl > max {
            let path = at.join([PathSeg::key("roles"), PathSeg::key(&name.0), PathSeg::key("token_ttl")]).path;
            problems.at(at.file, path, format!("token_ttl ({ttl}) exceeds token_max_ttl ({max}) of role {:?}", name.0));
        }
    }
}

fn check_transit(transit: &RawTransit, at: &At, sources: &Sources, problems: &mut Problems) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, key) in transit.keys.iter().enumerate() {
        let key_at = at.join([PathSeg::key("keys"), PathSeg::Index(i)]);
        if let Some(&first) = seen.get(key.name.0.as_str()) {
            let first_at = at.join([PathSeg::key("keys"), PathSeg::Index(first), PathSeg::key("name")]);
            let message = format!(
                "duplicate transit key name {:?}: already declared at {}",
                key.name.0,
                sources.describe(first_at.file, &first_at.path)
            );
            problems.at(at.file, key_at.key("name").path, message);
        } else {
            seen.insert(&key.name.0, i);
        }
        let period = key.auto_rotate_period;
        if period.0 != 0 && period.0 < 3_600 {
            let message = format!("auto_rotate_period ({period}) must be 0s (never) or at least 1h");
            problems.at(at.file, key_at.key("auto_rotate_period").path, message);
        }
    }
}

fn check_quota(quota: &RawQuota, at: &At, problems: &mut Problems) {
    if !(quota.rate.is_finite() && quota.rate > 0.0) {
        let message = format!("quota rate must be a positive number of requests per interval, got {}", quota.rate);
        problems.at(at.file, at.key("rate").path, message);
    }
}

/// Every role's token policy must be a policy of the same workspace, or `default`.
fn check_token_policies(view: &View<'_>, problems: &mut Problems) {
    let Some(approle) = &view.approle else { return };
    let declared: BTreeSet<&str> =
        view.policies.iter().flat_map(|p| p.value.iter()).map(|p| p.name.0.as_str()).collect();
    let listed = if declared.is_empty() {
        "it declares no policies".to_string()
    } else {
        format!("declared: {}", declared.iter().copied().collect::<Vec<_>>().join(", "))
    };
    for (role, spec) in &approle.value.roles.0 {
        for (j, policy) in spec.token_policies.iter().enumerate() {
            if policy == "default" || declared.contains(policy.as_str()) {
                continue;
            }
            let at = approle.at.join([
                PathSeg::key("roles"),
                PathSeg::key(&role.0),
                PathSeg::key("token_policies"),
                PathSeg::Index(j),
            ]);
            let message = format!(
                "role {:?} names token policy {policy:?}, which {} does not declare ({listed}; \"default\" is always allowed)",
                role.0, view.subject
            );
            problems.at(at.file, at.path, message);
        }
    }
}

/// The KV mount and the transit mount of a workspace must be different paths.
fn check_mount_collision(view: &View<'_>, problems: &mut Problems) {
    let Some(transit) = &view.transit else { return };
    let kv = &view.kv_path;
    if transit.value.mount.0 != kv.value {
        return;
    }
    // Point at whichever of the two the subject wrote itself (the transit mount by preference).
    let at = match &kv.at {
        Some(kv_at) if transit.owner != Owner::Workspace && kv.owner == Some(Owner::Workspace) => kv_at.clone(),
        _ => transit.at.key("mount"),
    };
    let message = format!(
        "transit mount {:?} is the same path as the KV mount of {}; mounts in a workspace must differ",
        transit.value.mount.0, view.subject
    );
    problems.at(at.file, at.path, message);
}

/// Merge one workspace with its class; run its own section checks and cross-checks.
fn workspace(
    decl: &Decl<'_>,
    classes: &BTreeMap<ClassName, RawClass>,
    sources: &Sources,
    problems: &mut Problems,
) -> Workspace {
    let ws = decl.raw;
    let at = At { file: decl.file, path: decl.base.clone() };
    let class = ws.class.as_ref().and_then(|name| lookup_class(name, classes, &at, problems));
    check_sections(&at, &Sections::of_workspace(ws), sources, problems);

    let view = View {
        subject: format!("workspace {:?}", ws.name.0),
        kv_path: kv_path_source(ws, class, &at),
        policies: section(ws.policies.as_ref(), class.and_then(|(_, c)| c.policies.as_ref()), &at, class, "policies"),
        approle: section(ws.approle.as_ref(), class.and_then(|(_, c)| c.approle.as_ref()), &at, class, "approle"),
        transit: section(ws.transit.as_ref(), class.and_then(|(_, c)| c.transit.as_ref()), &at, class, "transit"),
    };
    // Pairs written entirely by the class were checked once, with the class.
    if !(is_class(&view.approle) && is_class(&view.policies)) {
        check_token_policies(&view, problems);
    }
    if !(is_class(&view.transit) && view.kv_path.owner == Some(Owner::Class)) {
        check_mount_collision(&view, problems);
    }
    build(decl, class.map(|(_, c)| c), &view, sources)
}

/// The class a workspace names, or a problem at its `class:` value listing the defined ones.
fn lookup_class<'c>(
    name: &str,
    classes: &'c BTreeMap<ClassName, RawClass>,
    at: &At,
    problems: &mut Problems,
) -> Option<(&'c ClassName, &'c RawClass)> {
    let found = classes.get_key_value(name);
    if found.is_none() {
        let defined: Vec<&str> = classes.keys().map(|k| k.0.as_str()).collect();
        let message = if defined.is_empty() {
            format!("unknown class {name:?}: the environment file defines no classes")
        } else {
            format!("unknown class {name:?}; defined classes: {}", defined.join(", "))
        };
        problems.at(at.file, at.key("class").path, message);
    }
    found
}

/// The workspace's own section if present, else the class's.
fn section<'a, T>(
    own: Option<&'a T>,
    inherited: Option<&'a T>,
    at: &At,
    class: Option<(&ClassName, &RawClass)>,
    key: &str,
) -> Option<Sourced<'a, T>> {
    match (own, inherited, class) {
        (Some(value), _, _) => Some(Sourced { value, at: at.key(key), owner: Owner::Workspace }),
        (None, Some(value), Some((name, _))) => Some(Sourced { value, at: class_at(name).key(key), owner: Owner::Class }),
        _ => None,
    }
}

/// Where `kv.path` is set: by the workspace, by its class, or nowhere (the default `secret`).
fn kv_path_source<'a>(ws: &'a RawWorkspace, class: Option<(&ClassName, &'a RawClass)>, at: &At) -> KvPath<'a> {
    if let Some(path) = ws.kv.as_ref().and_then(|kv| kv.path.as_ref()) {
        return KvPath { value: &path.0, at: Some(at.key("kv").key("path")), owner: Some(Owner::Workspace) };
    }
    let inherited = class.and_then(|(name, c)| Some((name, c.kv.as_ref()?.path.as_ref()?)));
    match inherited {
        Some((name, path)) => {
            KvPath { value: &path.0, at: Some(class_at(name).key("kv").key("path")), owner: Some(Owner::Class) }
        }
        None => KvPath { value: DEFAULT_KV_PATH, at: None, owner: None },
    }
}

/// The merged workspace.
fn build(decl: &Decl<'_>, class: Option<&RawClass>, view: &View<'_>, sources: &Sources) -> Workspace {
    let ws = decl.raw;
    let origin = |at: &At, segs: Vec<PathSeg>| Origin::new(sources.path(at.file), at.join(segs).path);
    let policies = view.policies.as_ref().map_or_else(Vec::new, |s| {
        s.value.iter().enumerate().map(|(i, p)| policy(p, origin(&s.at, vec![PathSeg::Index(i)]))).collect()
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
        origin: Origin::new(sources.path(decl.file), decl.base.clone()),
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
    Policy { name: p.name.0.clone(), template: p.template.0.clone(), vars: p.vars.0.iter().map(|(k, v)| (k.0.clone(), v.clone())).collect(), origin }
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
    let keys = t
        .keys
        .iter()
        .map(|k| TransitKey { name: k.name.0.clone(), key_type: k.key_type.0.clone(), auto_rotate_period: k.auto_rotate_period })
        .collect();
    Transit { mount: t.mount.0.clone(), keys }
}

fn quota(q: &RawQuota) -> Quota {
    Quota { rate: q.rate, interval: q.interval, block_interval: q.block_interval }
}

/// Workspace names and namespaces are unique across the inline list and the directory; a repeat
/// is reported at the later declaration, naming the first.
fn check_unique(decls: &[Decl<'_>], sources: &Sources, problems: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(decls.len());
    let mut namespaces: HashMap<&str, usize> = HashMap::with_capacity(decls.len());
    let name_at = |d: &Decl<'_>| At { file: d.file, path: d.base.clone() }.key("name");
    for (i, decl) in decls.iter().enumerate() {
        let name = decl.raw.name.0.as_str();
        if let Some(&first) = names.get(name) {
            let first_at = name_at(&decls[first]);
            let message = format!(
                "duplicate workspace {name:?}: already declared at {}",
                sources.describe(first_at.file, &first_at.path)
            );
            problems.at(decl.file, name_at(decl).path, message);
            continue;
        }
        names.insert(name, i);
        let namespace = decl.raw.namespace.as_ref().map_or(name, |n| n.0.as_str());
        if let Some(&first) = namespaces.get(namespace) {
            let other = &decls[first];
            let other_at = name_at(other);
            let at = At { file: decl.file, path: decl.base.clone() };
            let at = if decl.raw.namespace.is_some() { at.key("namespace") } else { at.key("name") };
            let message = format!(
                "namespace {namespace:?} is already used by workspace {:?} ({}); each workspace needs its own namespace",
                other.raw.name.0,
                sources.describe(other_at.file, &other_at.path)
            );
            problems.at(at.file, at.path, message);
            continue;
        }
        namespaces.insert(namespace, i);
    }
}

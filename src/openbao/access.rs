//! Every OpenBao endpoint ctl calls, in one table: who needs it (a plan, an apply, a snapshot,
//! the one-time bootstrap, …) and with which capabilities. The client refuses any request the
//! table does not list ([`Catalogue::check`]), so the policies rendered from it
//! (`ctl render ctl-policy`, written by `ctl bootstrap`) cover every call ctl can make, and a
//! `403` names the policy path that allows the call.
//!
//! Paths are relative to ctl's namespace (`openbao.namespace`, else the root). `{ns}` is a
//! workspace namespace (one segment, `+` in a policy: a workspace removed from the file must
//! still be deletable, so policies cannot list today's namespaces), `+` any one segment (mount
//! paths and object names, for the same reason), `{env}` the environment's name, and a trailing
//! `*` any rest. ctl's ownership markers, not the policy, keep it off objects it does not own.

use rustify::enums::RequestMethod;
use std::collections::BTreeMap;
use std::fmt;

/// A policy capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    Create,
    Read,
    Update,
    Patch,
    Delete,
    List,
    /// Needed on root-protected paths (auth mounts, raft snapshots) on top of the others.
    Sudo,
}

impl Cap {
    pub fn as_str(self) -> &'static str {
        match self {
            Cap::Create => "create",
            Cap::Read => "read",
            Cap::Update => "update",
            Cap::Patch => "patch",
            Cap::Delete => "delete",
            Cap::List => "list",
            Cap::Sudo => "sudo",
        }
    }

    /// Whether a request with `method` is allowed by this capability (POST/PUT: create or
    /// update, as the endpoint's existence check decides).
    fn allows(self, method: &RequestMethod) -> bool {
        matches!(
            (self, method),
            (Cap::Read, RequestMethod::GET | RequestMethod::HEAD)
                | (Cap::List, RequestMethod::LIST)
                | (Cap::Create | Cap::Update, RequestMethod::POST | RequestMethod::PUT)
                | (Cap::Patch, RequestMethod::PATCH)
                | (Cap::Delete, RequestMethod::DELETE)
        )
    }
}

/// Who needs an endpoint, i.e. which policy grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Reading live state and signing a saved plan: the `plan` policy (and `apply`, which
    /// re-reads).
    Plan,
    /// Writing: the `apply` policy.
    Apply,
    /// `ctl dr snapshot`: the `apply` policy when the environment declares `dr:`.
    Snapshot,
    /// Reading the alarm webhook URL from KV (`alarms.sns.webhook.url_kv`): both policies, for
    /// exactly the declared path.
    WebhookKv,
    /// `ctl dr restore-workspace` and `ctl dr verify-snapshot`: a workspace's KV data, read in a
    /// scratch server and written back live: the `restore` policy (with the `plan` one).
    Restore,
    /// What `ctl bootstrap` does once with an admin token (and ctl does lazily with one).
    Bootstrap,
    /// Operator-only work (restore, drills, benchmarks) done with an admin or throw-away token.
    Operator,
    /// Calls made with another token (a login, a wrapping token, a workload's AppRole token).
    NotCtlToken,
    /// Granted to every token by OpenBao's `default` policy (the JWT roles keep it).
    DefaultPolicy,
}

/// The policies ctl renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Read-only: plan, drift, show the lock and journal, sign a saved plan.
    Plan,
    /// Everything an apply, adopt, verify or snapshot needs.
    Apply,
    /// Read-only plus tenants' KV data: restore one workspace's secrets from a snapshot, count
    /// and sample a snapshot's secrets. The only role that reads secret values.
    Restore,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Plan => "plan",
            Role::Apply => "apply",
            Role::Restore => "restore",
        }
    }
}

use Cap::*;
use Need::*;

/// (who, capabilities, path, why). POST endpoints that create or update an object get both
/// `create` and `update` (which one OpenBao checks depends on the backend's existence check
/// and on whether the object is there); actions (HMAC, tune, renew) get `update`.
const TABLE: &[(Need, &[Cap], &str, &str)] = &[
    // Reading live state.
    (Plan, &[List], "sys/namespaces", "list the namespaces and their custom_metadata (ownership records)"),
    (Plan, &[Read], "{ns}/sys/mounts", "the workspace's secrets engines"),
    (Plan, &[Read], "{ns}/sys/auth", "the workspace's auth mounts"),
    (Plan, &[List], "{ns}/sys/policies/acl", "the workspace's policies"),
    (Plan, &[Read], "{ns}/sys/policies/acl/+", "a policy's text"),
    (Plan, &[Read], "{ns}/+/config", "a KV mount's settings"),
    (Plan, &[List], "{ns}/+/keys", "a transit mount's keys"),
    (Plan, &[Read], "{ns}/+/keys/+", "a transit key's settings"),
    (Plan, &[List], "{ns}/auth/+/role", "an AppRole mount's roles"),
    (Plan, &[Read], "{ns}/auth/+/role/+", "an AppRole role's settings"),
    (Plan, &[List], "sys/quotas/rate-limit", "the rate-limit quotas"),
    (Plan, &[Read], "sys/quotas/rate-limit/+", "a quota's settings"),
    // ctl's own token, lock, journal and plan signatures.
    (Plan, &[Read], "ctl-state/data/locks/{env}", "the environment's apply lock (`ctl lock status`)"),
    (Plan, &[List], "ctl-state/metadata/journal/{env}", "the audit journal (`ctl journal`)"),
    (Plan, &[Read], "ctl-state/data/journal/{env}/+", "a journal entry"),
    (Plan, &[Update], "ctl-signing/hmac/plans-{env}/sha2-256", "sign a saved plan (`ctl plan --out`)"),
    (Plan, &[Create, Read, Update], "ctl-state/data/refresh/{env}", "when a full drift check last found live state as declared (`ctl drift`; `--refresh changed` trusts digests only after one)"),
    // Writing.
    (Apply, &[Read], "ctl-state/config", "is ctl's state mount there (`ctl bootstrap` creates it)?"),
    (Apply, &[Create, Update], "ctl-state/data/locks/{env}", "take and renew the apply lock (check-and-set)"),
    (Apply, &[Delete], "ctl-state/metadata/locks/{env}", "release the apply lock"),
    (Apply, &[Create, Update], "ctl-state/data/journal/{env}/+", "record an apply in the audit journal"),
    (Apply, &[Update], "ctl-signing/verify/plans-{env}/sha2-256", "check a saved plan's signature (`ctl apply PLAN`)"),
    (Apply, &[Create, Read, Update, Patch, Delete], "sys/namespaces/+", "create, record ownership in, and delete workspace namespaces"),
    (Apply, &[Create, Read, Update, Delete], "{ns}/sys/mounts/+", "enable, inspect and disable KV and transit mounts"),
    (Apply, &[Update], "{ns}/sys/mounts/+/tune", "set a mount's description (ctl's marker)"),
    (Apply, &[Create, Read, Update, Delete, Sudo], "{ns}/sys/auth/+", "enable, inspect and disable auth mounts (root-protected: sudo)"),
    (Apply, &[Update, Sudo], "{ns}/sys/auth/+/tune", "set an auth mount's description (ctl's marker; root-protected: sudo)"),
    (Apply, &[Create, Update, Delete], "{ns}/sys/policies/acl/+", "write (check-and-set) and delete policies"),
    (Apply, &[Create, Update], "{ns}/+/config", "KV mount settings"),
    (Apply, &[Create, Update, Delete], "{ns}/auth/+/role/+", "AppRole roles"),
    (Apply, &[Read], "{ns}/auth/+/role/+/role-id", "a role's role-id (`ctl approle`, `ctl verify`)"),
    (Apply, &[Update], "{ns}/auth/+/role/+/secret-id", "issue a response-wrapped secret-id (`ctl approle`, `ctl verify`)"),
    (Apply, &[Create, Update, Delete], "{ns}/+/keys/+", "create and delete transit keys"),
    (Apply, &[Update], "{ns}/+/keys/+/config", "transit key settings (and allowing its deletion)"),
    (Apply, &[Create, Update], "sys/quotas/rate-limit/+", "rate-limit quotas"),
    (Apply, &[Delete], "sys/quotas/rate-limit/+", "delete a quota"),
    (Apply, &[Create, Update], "{ns}/+/data/ctl-verify/probe", "`ctl verify`: seed the isolation probe"),
    (Apply, &[Delete], "{ns}/+/metadata/ctl-verify/probe", "`ctl verify`: remove the isolation probe"),
    (Restore, &[List], "{ns}/+/metadata", "list a KV mount's keys (restore-workspace, verify-snapshot)"),
    (Restore, &[List, Read], "{ns}/+/metadata/*", "a key's versions and custom metadata (restore-workspace, verify-snapshot)"),
    (Restore, &[Read], "{ns}/+/data/*", "a version's value, compared by digest, never shown (restore-workspace)"),
    (Restore, &[Create, Update], "{ns}/+/data/*", "write the snapshot's value back as a new version, check-and-set (restore-workspace)"),
    (Restore, &[Create, Update], "{ns}/+/metadata/*", "recreate a key's custom metadata (restore-workspace)"),
    (Restore, &[Read], "ctl-state/config", "is ctl's state mount there (for the journal)?"),
    (Restore, &[Create, Update], "ctl-state/data/journal/{env}/+", "record a restore in the audit journal"),
    (Snapshot, &[List], "{ns}/+/metadata", "`ctl dr snapshot` counts the KV keys the snapshot holds"),
    (Snapshot, &[List, Read], "{ns}/+/metadata/*", "`ctl dr snapshot` counts versions (metadata only, never values)"),
    (Snapshot, &[Read, Sudo], "sys/storage/raft/snapshot", "`ctl dr snapshot` (root-protected: sudo)"),
    (WebhookKv, &[Read], "{webhook}", "the alarm webhook URL (alarms.sns.webhook.url_kv)"),
    // Once, with an admin token: `ctl bootstrap` (ctl also does the first three lazily when its
    // token may).
    (Bootstrap, &[Create, Update], "sys/mounts/ctl-state", "ctl's state mount (locks, journal)"),
    (Bootstrap, &[Create, Update], "sys/mounts/ctl-signing", "the transit mount of plan-signing keys"),
    (Bootstrap, &[Create, Read, Update], "ctl-signing/keys/plans-{env}", "the environment's plan-signing key"),
    (Bootstrap, &[Create, Read, Update], "sys/policies/acl/+", "ctl's own policies"),
    (Bootstrap, &[Read], "sys/auth", "find the JWT auth mount"),
    (Bootstrap, &[Create, Update, Sudo], "sys/auth/+", "enable the JWT auth mount"),
    (Bootstrap, &[Create, Read, Update], "auth/+/config", "configure the JWT auth mount"),
    (Bootstrap, &[Create, Read, Update], "auth/+/role/+", "ctl's JWT login roles"),
    (Bootstrap, &[Create, Read, Update], "ctl-state/data/bootstrap/{env}", "the JWT login roles bootstrap created (roles have no field for a marker)"),
    // Every token's own: OpenBao's `default` policy grants these.
    (DefaultPolicy, &[Read], "auth/token/lookup-self", "the token's TTL, to renew it during long runs"),
    (DefaultPolicy, &[Update], "auth/token/renew-self", "keep the token alive during long runs"),
    (DefaultPolicy, &[Update], "auth/token/revoke-self", "revoke ctl's login token at exit"),
    // Operators' tokens.
    (Operator, &[Create, Update], "sys/storage/raft/snapshot-force", "`ctl dr rebuild` restores a snapshot"),
    (Operator, &[Create, Update], "{ns}/+/data/+", "`ctl dr drill` seeds canary secrets"),
    (Operator, &[Delete], "{ns}/+/metadata/+", "`ctl bench restore` simulates a tenant's mistake"),
    (Operator, &[Create, Update], "sys/namespaces/+", "`ctl bench` creates workspaces"),
    (Operator, &[Create, Update], "{ns}/sys/mounts/+", "`ctl bench`"),
    (Operator, &[Create, Update], "{ns}/sys/auth/+", "`ctl bench`"),
    (Operator, &[Create, Update], "{ns}/sys/policies/acl/+", "`ctl bench`"),
    (Operator, &[Create, Update], "{ns}/auth/+/role/+", "`ctl bench`"),
    // Other tokens: logins, unwrapping, a workload's own reads (`ctl verify`), the version.
    (NotCtlToken, &[Read], "sys/seal-status", "the server version, checked at connect (no token)"),
    (NotCtlToken, &[Update], "auth/+/login", "ctl's own JWT or AppRole login"),
    (NotCtlToken, &[Update], "{ns}/auth/+/login", "`ctl verify` logs in as a workload"),
    (NotCtlToken, &[Update], "sys/wrapping/lookup", "is a secret-id file response-wrapped?"),
    (NotCtlToken, &[Update], "sys/wrapping/unwrap", "unwrap ctl's own wrapped secret-id"),
    (NotCtlToken, &[Update], "{ns}/sys/wrapping/unwrap", "`ctl verify` unwraps as the workload would"),
    (NotCtlToken, &[Read], "{ns}/+/data/ctl-verify/probe", "`ctl verify` reads as a workload"),
    (NotCtlToken, &[Update], "{ns}/auth/token/revoke-self", "`ctl verify` revokes the workload's token"),
];

/// One segment of a path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// Any one segment (`+`, `{ns}`).
    One,
    /// A segment starting with this (`plans-{env}` when the environment is not known).
    Prefix(String),
    /// Anything from here on, at least one character (`*` at the end).
    Rest,
}

#[derive(Clone, Debug)]
struct Entry {
    need: Need,
    caps: &'static [Cap],
    /// Rendered for the environment (`{env}` replaced), for policies and messages.
    path: String,
    segs: Vec<Seg>,
    why: &'static str,
}

/// The endpoint table for one environment (or for any, when ctl is used without one).
#[derive(Clone, Debug)]
pub struct Catalogue {
    entries: Vec<Entry>,
}

/// Why the client refused to send a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Uncatalogued {
    pub method: &'static str,
    pub path: String,
}

impl fmt::Display for Uncatalogued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ctl refused to send {} {}: the endpoint is not in src/openbao/access.rs, so no policy ctl renders allows it (a bug in ctl)",
            self.method, self.path
        )
    }
}

fn segments(pattern: &str, env: Option<&str>) -> Vec<Seg> {
    pattern
        .split('/')
        .map(|s| match s {
            "+" | "{ns}" => Seg::One,
            "*" => Seg::Rest,
            s if s.contains("{env}") => match env {
                Some(env) => Seg::Lit(s.replace("{env}", env)),
                None => Seg::Prefix(s.split("{env}").next().unwrap_or_default().to_string()),
            },
            s => Seg::Lit(s.to_string()),
        })
        .collect()
}

fn matches(segs: &[Seg], path: &[&str]) -> bool {
    match (segs.first(), path.first()) {
        (Some(Seg::Rest), Some(_)) => true,
        (None, None) => true,
        (Some(seg), Some(p)) => {
            let ok = match seg {
                Seg::Lit(l) => l == p,
                Seg::One => !p.is_empty(),
                Seg::Prefix(pre) => p.starts_with(pre.as_str()),
                Seg::Rest => unreachable!(),
            };
            ok && matches(&segs[1..], &path[1..])
        }
        _ => false,
    }
}

impl Catalogue {
    /// The table for environment `env`; `webhook_kv` is the declared `url_kv` read path
    /// (`[<namespace>/]<mount>/data/<path>`), if any.
    pub fn for_env(env: &str, webhook_kv: Option<String>) -> Catalogue {
        Catalogue::build(Some(env), webhook_kv)
    }

    /// The table for any environment (the client of a command without an environment file).
    pub fn any() -> Catalogue {
        Catalogue::build(None, Some("*".into()))
    }

    fn build(env: Option<&str>, webhook_kv: Option<String>) -> Catalogue {
        let entries = TABLE
            .iter()
            .filter_map(|&(need, caps, pattern, why)| {
                let pattern = if pattern == "{webhook}" { webhook_kv.clone()? } else { pattern.to_string() };
                let path = match env {
                    Some(env) => pattern.replace("{env}", env),
                    None => pattern.clone(),
                };
                // A LIST is checked against the path with a trailing slash: `P/` allows it
                // whatever other rules match `P/+` (a rule for `P` would lose to them).
                let slash = if caps.contains(&List) && !pattern.ends_with('*') { "/" } else { "" };
                Some(Entry { need, caps, path: path.replace("{ns}", "+") + slash, segs: segments(&pattern, env), why })
            })
            .collect();
        Catalogue { entries }
    }

    /// The first entry `pick` accepts that allows `method` on `path` (relative to ctl's
    /// namespace; `namespace` is the workspace namespace the request goes to, if any).
    fn find(&self, method: &RequestMethod, namespace: Option<&str>, path: &str, pick: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        let parts: Vec<&str> = namespace.into_iter().flat_map(|n| n.split('/')).chain(path.trim_matches('/').split('/')).collect();
        self.entries.iter().find(|e| pick(e) && e.caps.iter().any(|c| c.allows(method)) && matches(&e.segs, &parts))
    }

    /// Whether ctl may send this request at all.
    pub fn check(&self, method: &RequestMethod, method_name: &'static str, namespace: Option<&str>, path: &str) -> Result<(), Uncatalogued> {
        match self.find(method, namespace, path, |_| true) {
            Some(_) => Ok(()),
            None => Err(Uncatalogued { method: method_name, path: join(namespace, path) }),
        }
    }

    /// The policy path (and capabilities) that allows this request in ctl's own policies,
    /// for a permission-denied message.
    pub fn grant(&self, method: &RequestMethod, namespace: Option<&str>, path: &str) -> Option<(String, String)> {
        let e = self.find(method, namespace, path, |e| e.need < Bootstrap)?;
        let caps: Vec<&str> = e.caps.iter().filter(|c| c.allows(method)).map(|c| c.as_str()).collect();
        let sudo = if e.caps.contains(&Sudo) { "\" and \"sudo" } else { "" };
        Some((e.path.clone(), format!("{}{sudo}", caps.join("\" or \""))))
    }

    /// The policy for `role`, as HCL: one stanza per path, capabilities merged, sorted by
    /// path, each with why ctl needs it. `snapshot`: the environment declares `dr:`.
    pub fn policy(&self, role: Role, snapshot: bool) -> String {
        let mut out = String::new();
        for (path, (caps, whys)) in self.stanzas(role, snapshot) {
            for why in whys {
                out.push_str(&format!("# {why}\n"));
            }
            let caps: Vec<String> = caps.iter().map(|c| format!("\"{}\"", c.as_str())).collect();
            out.push_str(&format!("path \"{path}\" {{\n  capabilities = [{}]\n}}\n\n", caps.join(", ")));
        }
        out.trim_end().to_string() + "\n"
    }

    /// The policy paths of `role`, in the order [`Catalogue::policy`] writes them.
    pub fn policy_paths(&self, role: Role, snapshot: bool) -> Vec<String> {
        self.stanzas(role, snapshot).into_keys().map(str::to_string).collect()
    }

    /// The policy of `role` by path: its capabilities (merged, sorted) and why ctl needs them.
    fn stanzas(&self, role: Role, snapshot: bool) -> BTreeMap<&str, (Vec<Cap>, Vec<&'static str>)> {
        let wanted = |n: Need| match role {
            Role::Plan => matches!(n, Plan | WebhookKv),
            Role::Apply => matches!(n, Plan | WebhookKv | Apply) || (n == Snapshot && snapshot),
            Role::Restore => matches!(n, Plan | Restore),
        };
        let mut paths: BTreeMap<&str, (Vec<Cap>, Vec<&'static str>)> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| wanted(e.need)) {
            let (caps, whys) = paths.entry(e.path.as_str()).or_default();
            caps.extend(e.caps);
            whys.push(e.why);
        }
        for (caps, _) in paths.values_mut() {
            caps.sort();
            caps.dedup();
        }
        paths
    }
}

fn join(namespace: Option<&str>, path: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{}", path.trim_start_matches('/')),
        None => path.trim_start_matches('/').to_string(),
    }
}

/// The name of ctl's policy and JWT role for `role` in environment `env`.
pub fn name(env: &str, role: Role) -> String {
    format!("ctl-{env}-{}", role.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalogue {
        Catalogue::for_env("prod", Some("ops/secret/data/alarms/webhook".into()))
    }

    #[test]
    fn requests_match_their_entries_and_others_are_refused() {
        let c = cat();
        assert!(c.check(&RequestMethod::GET, "GET", Some("team-a"), "sys/mounts").is_ok());
        assert!(c.check(&RequestMethod::POST, "POST", Some("team-a"), "sys/policies/acl/app").is_ok());
        assert!(c.check(&RequestMethod::POST, "POST", None, "ctl-signing/hmac/plans-prod/sha2-256").is_ok());
        assert!(c.check(&RequestMethod::GET, "GET", Some("ops"), "secret/data/alarms/webhook").is_ok());
        // Another environment's key, a KV secret, a nested namespace: not ctl's business.
        let refused = c.check(&RequestMethod::POST, "POST", None, "ctl-signing/hmac/plans-dev/sha2-256").unwrap_err();
        assert_eq!(refused.path, "ctl-signing/hmac/plans-dev/sha2-256");
        assert!(c.check(&RequestMethod::DELETE, "DELETE", Some("team-a"), "secret/data/db").is_err());
        assert!(c.check(&RequestMethod::GET, "GET", Some("team-a/b"), "sys/mounts").is_err());
        assert!(c.check(&RequestMethod::DELETE, "DELETE", Some("team-a"), "sys/mounts").is_err());
    }

    #[test]
    fn the_plan_policy_reads_and_signs_but_writes_nothing() {
        let plan = cat().policy(Role::Plan, true);
        assert!(plan.contains("path \"+/sys/mounts\" {\n  capabilities = [\"read\"]\n}"), "{plan}");
        assert!(plan.contains("path \"+/sys/policies/acl/\" {\n  capabilities = [\"list\"]\n}"), "{plan}");
        assert!(plan.contains("path \"ctl-signing/hmac/plans-prod/sha2-256\" {\n  capabilities = [\"update\"]"), "{plan}");
        assert!(plan.contains("path \"ops/secret/data/alarms/webhook\""), "{plan}");
        // The one record a read-only role writes: when a full drift check last found no drift.
        let (record, rest): (Vec<&str>, Vec<&str>) = plan.split("\n\n").partition(|stanza| stanza.contains("path \"ctl-state/data/refresh/prod\""));
        assert_eq!(record.len(), 1, "{plan}");
        let rest = rest.join("\n\n");
        for line in rest.lines().filter(|l| l.contains("capabilities")) {
            assert!(!line.contains("create") && !line.contains("delete") && !line.contains("patch"), "{line}");
        }
        assert!(!plan.contains("raft"));
        let updates: Vec<&str> = rest.lines().filter(|l| l.contains("\"update\"")).collect();
        assert_eq!(updates.len(), 1, "only the HMAC: {rest}");
    }

    #[test]
    fn the_apply_policy_merges_capabilities_per_path_and_snapshots_only_with_dr() {
        let apply = cat().policy(Role::Apply, false);
        assert!(apply.contains("path \"+/sys/policies/acl/+\" {\n  capabilities = [\"create\", \"read\", \"update\", \"delete\"]"), "{apply}");
        assert!(!apply.contains("raft"));
        assert!(cat().policy(Role::Apply, true).contains("path \"sys/storage/raft/snapshot\""));
        // Operator and bootstrap endpoints are in no policy.
        assert!(!apply.contains("snapshot-force") && !apply.contains("sys/mounts/ctl-state") && !apply.contains("+/+/data/+"));
        let paths = cat().policy_paths(Role::Apply, true);
        let mut sorted = paths.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn a_denied_request_names_the_policy_path_that_allows_it() {
        let c = cat();
        let (path, caps) = c.grant(&RequestMethod::POST, Some("team-a"), "sys/mounts/secret/tune").unwrap();
        assert_eq!((path.as_str(), caps.as_str()), ("+/sys/mounts/+/tune", "update"));
        let (path, caps) = c.grant(&RequestMethod::POST, Some("team-a"), "sys/mounts/secret").unwrap();
        assert_eq!((path.as_str(), caps.as_str()), ("+/sys/mounts/+", "create\" or \"update"));
    }
}

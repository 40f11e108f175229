//! `ctl bootstrap`: what an admin sets up once so that CI runs ctl with short-lived,
//! least-privilege tokens: ctl's state and signing mounts, the environment's signing key, the
//! `ctl-<env>-plan` / `ctl-<env>-apply` policies (rendered from [`super::access`]), and a JWT
//! auth mount with one login role per policy. Each step reads first and writes only what
//! differs, so a second run changes nothing; a dry run only reads.

use super::access::{self, Catalogue, Role};
use super::client::{data, Bao, BaoError};
use super::resources::{MOUNT_MARKER, POLICY_MARKER};
use super::{signing, state};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How the JWT auth mount checks tokens.
#[derive(Clone, Debug)]
pub enum JwtKeys {
    /// An OIDC issuer's discovery document (GitHub, GitLab).
    Discovery(String),
    /// Fixed PEM public keys (offline issuers, tests).
    Pubkeys(Vec<String>),
}

/// The JWT side of a bootstrap.
#[derive(Clone, Debug)]
pub struct Jwt {
    pub mount: String,
    /// `bound_issuer`; also the discovery URL unless `keys` are fixed.
    pub issuer: Option<String>,
    pub keys: Option<JwtKeys>,
    pub audience: String,
    /// Claims each role requires (a value list: any of them).
    pub plan_claims: BTreeMap<String, Vec<String>>,
    pub apply_claims: BTreeMap<String, Vec<String>>,
    pub restore_claims: BTreeMap<String, Vec<String>>,
    pub token_ttl: String,
    pub token_max_ttl: String,
}

pub struct Options<'a> {
    pub environment: &'a str,
    pub catalogue: &'a Catalogue,
    /// The environment declares `dr:` (the apply policy may take raft snapshots).
    pub snapshot: bool,
    pub jwt: Jwt,
    pub dry_run: bool,
    /// Take over existing login roles of ctl's names that bootstrap has no record of creating
    /// (`--adopt-jwt-roles`; roles made by a ctl from before the records, or by hand).
    pub adopt_jwt_roles: bool,
}

/// What one step found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Present and not ctl's: left as it is (with why).
    Kept(String),
}

#[derive(Clone, Debug)]
pub struct Step {
    pub what: String,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Bao(#[from] BaoError),
    #[error("{0}")]
    Refused(String),
}

/// Run every step in order, reporting each to `on_step`.
pub async fn run(bao: &Bao, opts: &Options<'_>, on_step: &mut dyn FnMut(&Step)) -> Result<(), BootstrapError> {
    let mut report = |what: String, outcome: Outcome| on_step(&Step { what, outcome });

    // ctl's state mount (locks, journal) and plan-signing key.
    let state_there = bao.read(None, format!("{}/config", state::STATE_MOUNT)).await?.is_some();
    if !state_there && !opts.dry_run {
        state::ensure_mount(bao).await?;
    }
    report(format!("mount {}/ (KV v2: apply locks, audit journal)", state::STATE_MOUNT), created_or(state_there));
    let key = format!("{}/keys/plans-{}", signing::SIGNING_MOUNT, opts.environment);
    let key_there = match bao.read(None, &key).await {
        Ok(found) => found.is_some(),
        Err(e) if e.status() == Some(400) => false,
        Err(e) => return Err(e.into()),
    };
    if !key_there && !opts.dry_run {
        signing::ensure_key(bao, opts.environment).await?;
    }
    report(format!("transit key {key} (signs saved plans)"), created_or(key_there));

    // ctl's policies.
    for role in [Role::Plan, Role::Apply, Role::Restore] {
        let name = access::name(opts.environment, role);
        let text = policy_text(opts, role);
        let path = format!("sys/policies/acl/{name}");
        let live = bao.read(None, &path).await?;
        let live_text = data(&live).and_then(|d| d.get("policy")).and_then(Value::as_str);
        let outcome = match live_text {
            None => Outcome::Created,
            Some(t) if t == text => Outcome::Unchanged,
            Some(t) if t.starts_with(POLICY_MARKER) => Outcome::Updated,
            Some(_) => {
                return Err(BootstrapError::Refused(format!(
                    "policy {name} exists and was not written by ctl (its text does not start with {POLICY_MARKER:?}); \
                     rename or remove it, then run bootstrap again; nothing after the signing key was changed"
                )))
            }
        };
        if outcome != Outcome::Unchanged && !opts.dry_run {
            bao.write(None, &path, &json!({"policy": text})).await?;
        }
        report(format!("policy {name} ({} paths)", opts.catalogue.policy_paths(role, opts.snapshot).len()), outcome);
    }

    // The JWT auth mount and its configuration.
    let jwt = &opts.jwt;
    let mounts = bao.get(None, "sys/auth").await?;
    let mount = data(&mounts).and_then(|d| d.get(format!("{}/", jwt.mount)));
    let ours = match mount {
        None => {
            if jwt.keys.is_none() {
                return Err(BootstrapError::Refused(format!(
                    "there is no auth mount {}/: give --jwt-issuer URL (the CI system's OIDC issuer) or --jwt-validation-pubkey FILE to create it",
                    jwt.mount
                )));
            }
            if !opts.dry_run {
                let body = json!({"type": "jwt", "description": format!("{MOUNT_MARKER}JWT logins of ctl's CI jobs")});
                match bao.write(None, format!("sys/auth/{}", jwt.mount), &body).await {
                    // Another bootstrap enabled it a moment ago.
                    Err(e) if e.is_already_in_use() => {}
                    other => other.map(drop)?,
                }
            }
            report(format!("auth mount {}/ (jwt)", jwt.mount), Outcome::Created);
            true
        }
        Some(m) if m.get("type").and_then(Value::as_str) != Some("jwt") => {
            return Err(BootstrapError::Refused(format!(
                "auth mount {}/ exists and is not a JWT mount; choose another with --jwt-mount",
                jwt.mount
            )))
        }
        Some(m) => {
            let marked = m.get("description").and_then(Value::as_str).is_some_and(|d| d.starts_with(MOUNT_MARKER));
            let outcome = if marked { Outcome::Unchanged } else { Outcome::Kept("not ctl's: its configuration is left alone".into()) };
            report(format!("auth mount {}/ (jwt)", jwt.mount), outcome);
            marked
        }
    };
    if ours {
        if let Some(keys) = &jwt.keys {
            let mut want = Map::new();
            match keys {
                JwtKeys::Discovery(url) => want.insert("oidc_discovery_url".into(), json!(url)),
                JwtKeys::Pubkeys(pems) => want.insert("jwt_validation_pubkeys".into(), json!(pems)),
            };
            want.insert("bound_issuer".into(), json!(jwt.issuer.clone().unwrap_or_default()));
            let path = format!("auth/{}/config", jwt.mount);
            let live = if mount.is_some() { bao.read(None, &path).await? } else { None };
            converge(bao, &path, live, Value::Object(want), opts.dry_run, &mut report, format!("JWT config {path}")).await?;
        }
    }

    // One login role per policy. Roles have no field for a marker: bootstrap records the ones
    // it creates (before creating them) and never touches a role of that name it has no record
    // of, unless told to adopt it.
    let record_key = format!("bootstrap/{}", opts.environment);
    let record = state::read(bao, &record_key).await?;
    let mut recorded: BTreeSet<String> = record
        .data
        .as_ref()
        .and_then(|d| d.get("jwt_roles"))
        .and_then(Value::as_array)
        .map(|roles| roles.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut version = record.version;
    for (role, claims) in [(Role::Plan, &jwt.plan_claims), (Role::Apply, &jwt.apply_claims), (Role::Restore, &jwt.restore_claims)] {
        let name = access::name(opts.environment, role);
        let path = format!("auth/{}/role/{name}", jwt.mount);
        let want = json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": [jwt.audience],
            "bound_claims_type": "string",
            "bound_claims": claims,
            "token_policies": [name],
            "token_ttl": jwt.token_ttl,
            "token_max_ttl": jwt.token_max_ttl,
        });
        let live = if mount.is_some() { bao.read(None, &path).await? } else { None };
        let what = format!("JWT role {path} → policy {name}");
        let ours = recorded.contains(&path);
        if data(&live).is_some() && !ours && !opts.adopt_jwt_roles {
            let why = "a role of that name exists and ctl bootstrap has no record of creating it: left alone (`ctl bootstrap --adopt-jwt-roles` takes it over)";
            report(what, Outcome::Kept(why.into()));
            continue;
        }
        if !ours && !opts.dry_run {
            recorded.insert(path.clone());
            match state::write_cas(bao, &record_key, version, &json!({ "jwt_roles": recorded })).await? {
                state::Cas::Written { version: now } => version = now,
                state::Cas::Lost => {
                    return Err(BootstrapError::Refused(format!(
                        "another `ctl bootstrap` of {} ran at the same time (its role records changed); run it again",
                        opts.environment
                    )))
                }
            }
        }
        converge(bao, &path, live, want, opts.dry_run, &mut report, what).await?;
    }
    Ok(())
}

fn created_or(there: bool) -> Outcome {
    if there {
        Outcome::Unchanged
    } else {
        Outcome::Created
    }
}

/// The policy text bootstrap writes: the rendered policy under ctl's marker.
pub fn policy_text(opts: &Options<'_>, role: Role) -> String {
    format!(
        "{POLICY_MARKER}{} (ctl bootstrap; `ctl render ctl-policy --role {}` prints it)\n{}",
        access::name(opts.environment, role),
        role.as_str(),
        opts.catalogue.policy(role, opts.snapshot)
    )
}

/// Write `want` at `path` unless every field of it already has that value live. Durations
/// are compared as OpenBao returns them (seconds).
async fn converge(
    bao: &Bao,
    path: &str,
    live: Option<Value>,
    want: Value,
    dry_run: bool,
    report: &mut dyn FnMut(String, Outcome),
    what: String,
) -> Result<(), BootstrapError> {
    let outcome = match data(&live) {
        None => Outcome::Created,
        Some(have) if same(have, &want) => Outcome::Unchanged,
        Some(_) => Outcome::Updated,
    };
    if outcome != Outcome::Unchanged && !dry_run {
        bao.write(None, path, &want).await?;
    }
    report(what, outcome);
    Ok(())
}

fn same(have: &Value, want: &Value) -> bool {
    let Some(want) = want.as_object() else { return false };
    want.iter().all(|(k, w)| {
        let h = have.get(k).unwrap_or(&Value::Null);
        match (k.as_str(), w) {
            ("token_ttl" | "token_max_ttl", Value::String(s)) => {
                s.parse::<crate::config::Duration>().ok().map(|d| d.as_secs()) == h.as_u64()
            }
            // Scalars come back as one-element lists where OpenBao stores lists.
            (_, Value::Object(wm)) => h.as_object().is_some_and(|hm| {
                wm.len() == hm.len() && wm.iter().all(|(ck, cv)| hm.get(ck).is_some_and(|hv| as_list(hv) == as_list(cv)))
            }),
            _ => h == w,
        }
    })
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// Claims per role.
pub type Claims = BTreeMap<String, Vec<String>>;

/// The claims a CI system's tokens carry for pull requests (plan), for pushes to the
/// protected branch (apply), and for a manually started or scheduled job on that branch
/// (restore: an incident action or the scheduled `dr verify-snapshot`, never run by a push or
/// a review). The plan role also serves the read-only steps of
/// the apply and drift jobs.
pub fn ci_claims(ci: &str, branch: &str) -> (Claims, Claims, Claims) {
    let map = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect()
    };
    let r#ref = format!("refs/heads/{branch}");
    match ci {
        "gitlab" => (
            map(&[("pipeline_source", &["merge_request_event", "push", "schedule"])]),
            map(&[("ref", &[branch]), ("ref_protected", &["true"]), ("pipeline_source", &["push"])]),
            map(&[("ref", &[branch]), ("ref_protected", &["true"]), ("pipeline_source", &["web", "schedule"])]),
        ),
        _ => (
            map(&[("event_name", &["pull_request", "push", "schedule"])]),
            map(&[("ref", &[&r#ref]), ("event_name", &["push"])]),
            map(&[("ref", &[&r#ref]), ("event_name", &["workflow_dispatch", "schedule"])]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_read_back_in_openbao_s_shape_is_unchanged() {
        let want = json!({"token_ttl": "20m", "bound_audiences": ["openbao"], "bound_claims": {"event_name": ["push"], "ref": ["refs/heads/main"]}});
        let have = json!({"token_ttl": 1200, "bound_audiences": ["openbao"], "bound_claims": {"event_name": "push", "ref": ["refs/heads/main"]}, "other": 1});
        assert!(same(&have, &want));
        let moved = json!({"token_ttl": 1200, "bound_audiences": ["openbao"], "bound_claims": {"event_name": "push", "ref": "refs/heads/dev"}});
        assert!(!same(&moved, &want));
        let longer = json!({"token_ttl": 3600, "bound_audiences": ["openbao"], "bound_claims": {"event_name": "push", "ref": "refs/heads/main"}});
        assert!(!same(&longer, &want));
    }

    #[test]
    fn ci_presets_bind_plan_to_reviews_and_apply_to_the_branch() {
        let (plan, apply, restore) = ci_claims("github", "main");
        assert_eq!(plan["event_name"], ["pull_request", "push", "schedule"]);
        assert_eq!(apply["ref"], ["refs/heads/main"]);
        assert_eq!((restore["ref"].clone(), restore["event_name"].clone()), (apply["ref"].clone(), vec!["workflow_dispatch".to_string(), "schedule".to_string()]));
        let (plan, apply, restore) = ci_claims("gitlab", "main");
        assert!(plan["pipeline_source"].contains(&"merge_request_event".to_string()));
        assert_eq!(apply["ref_protected"], ["true"]);
        assert_eq!(restore["pipeline_source"], ["web", "schedule"]);
    }
}

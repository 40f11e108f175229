//! Desired state → resources: expands each configured workspace into the typed resources of
//! [`crate::openbao::resources`], rendering its policies from templates. Pure apart from the
//! templates it was given; errors point at the workspace's file, line and column.

use crate::config::{ConfigError, ConfigErrors, Environment, Workspace};
use crate::model::Resource;
use crate::openbao::resources::*;
use crate::templates::{PolicyContext, Templates};
use std::collections::BTreeMap;

pub fn expand(env: &Environment, templates: &Templates) -> Result<Vec<Resource>, ConfigErrors> {
    let mut out = Vec::with_capacity(env.workspaces.len() * 6);
    let mut errors: Vec<ConfigError> = Vec::new();
    // Workspaces expand independently (policy rendering dominates): in parallel, in order.
    for expanded in crate::par::map(&env.workspaces, |ws| workspace(&env.name, ws, templates)) {
        match expanded {
            Ok(resources) => out.extend(resources),
            Err(e) => errors.extend(e.0),
        }
    }
    out.extend(crate::aws::network::desired_infra(env, templates.dir(), &mut errors));
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    out.extend(crate::alarms::resources::desired(env));
    out.extend(crate::aws::resources::desired(env));
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

/// The resources of one workspace.
pub fn workspace(environment: &str, ws: &Workspace, templates: &Templates) -> Result<Vec<Resource>, ConfigErrors> {
    let b = WorkspaceBuilder { workspace: &ws.name, namespace: &ws.namespace };
    let addrs = WorkspaceAddrs(&ws.name);
    let marker = |addr: crate::model::Address| format!("{MOUNT_MARKER}{addr}");

    let mut out = vec![b.namespace(&NamespaceAttrs {
        path: ws.namespace.clone(),
        custom_metadata: BTreeMap::from([
            (MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string()),
            ("environment".to_string(), environment.to_string()),
            ("workspace".to_string(), ws.name.clone()),
        ]),
    })];

    out.push(b.kv(&KvMountAttrs {
        path: ws.kv.path.clone(),
        version: 2,
        description: marker(addrs.kv()),
        max_versions: u64::from(ws.kv.max_versions),
        cas_required: ws.kv.cas_required,
        delete_version_after: ws.kv.delete_version_after.to_string(),
    }));

    let mut errors = Vec::new();
    for policy in &ws.policies {
        let ctx = PolicyContext {
            workspace: &ws.name,
            namespace: &ws.namespace,
            kv_path: &ws.kv.path,
            environment,
            vars: &policy.vars,
        };
        match templates.render_policy(&policy.template, &ctx) {
            Ok(text) => {
                let text = format!("{POLICY_MARKER}{}\n{text}", addrs.policy(&policy.name));
                out.push(b.policy(&policy.name, &PolicyAttrs { policy: text }));
            }
            Err(e) => errors.push(policy.origin.error(e.to_string())),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }

    if let Some(approle) = &ws.approle {
        out.push(b.auth(&AuthMountAttrs {
            path: approle.mount.clone(),
            kind: "approle".into(),
            description: marker(addrs.auth()),
        }));
        for (name, role) in &approle.roles {
            let sorted = |mut v: Vec<String>| {
                v.sort();
                v.dedup();
                v
            };
            let attrs = AppRoleAttrs {
                mount: approle.mount.clone(),
                token_policies: sorted(role.token_policies.clone()),
                token_ttl: role.token_ttl.to_string(),
                token_max_ttl: role.token_max_ttl.to_string(),
                secret_id_ttl: role.secret_id_ttl.to_string(),
                secret_id_num_uses: u64::from(role.secret_id_num_uses),
                token_bound_cidrs: sorted(role.token_bound_cidrs.iter().map(ToString::to_string).collect()),
                secret_id_bound_cidrs: sorted(role.secret_id_bound_cidrs.iter().map(ToString::to_string).collect()),
            };
            let deps: Vec<String> = attrs.token_policies.iter().filter(|p| *p != "default").cloned().collect();
            out.push(b.role(name, &attrs, &deps));
        }
    }

    if let Some(transit) = &ws.transit {
        out.push(b.transit(&TransitMountAttrs { path: transit.mount.clone(), description: marker(addrs.transit()) }));
        for key in &transit.keys {
            out.push(b.transit_key(
                &key.name,
                &TransitKeyAttrs {
                    mount: transit.mount.clone(),
                    key_type: key.key_type.clone(),
                    auto_rotate_period: key.auto_rotate_period.to_string(),
                },
            ));
        }
    }

    if let Some(q) = &ws.quota {
        out.push(b.quota(&QuotaAttrs {
            path: format!("{}/", ws.namespace),
            rate: q.rate,
            interval: q.interval.to_string(),
            block_interval: q.block_interval.to_string(),
        }));
    }
    // Sorted here, in parallel, so the environment-wide sort in `expand` meets long sorted runs.
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

/// Per workspace, the digest of its desired resources after expansion (classes merged,
/// policies rendered): SHA-256 over each resource, sorted by address, as address, kind,
/// attributes and dependencies, plus ctl's version (a ctl that expands differently re-reads
/// everything once). Offline, and never over a secret: desired attributes hold none.
pub fn workspace_digests(desired: &[Resource]) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut by_ws: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for r in desired {
        if let Some(ws) = r.address.workspace_name() {
            by_ws.entry(ws).or_default().push(r);
        }
    }
    by_ws
        .into_iter()
        .map(|(ws, mut rs)| {
            rs.sort_by(|a, b| a.address.cmp(&b.address));
            let mut h = Sha256::new();
            h.update(env!("CARGO_PKG_VERSION").as_bytes());
            for r in rs {
                h.update(b"\0");
                h.update(r.address.as_str().as_bytes());
                h.update(b"\0");
                h.update(serde_json::to_string(&r.kind).unwrap_or_default().as_bytes());
                h.update(b"\0");
                // Attrs are an ordered map: the same attributes serialize the same.
                h.update(serde_json::to_string(&r.attrs).unwrap_or_default().as_bytes());
                for d in &r.depends_on {
                    h.update(b"\0");
                    h.update(d.as_str().as_bytes());
                }
            }
            (ws.to_string(), hex::encode(h.finalize()))
        })
        .collect()
}

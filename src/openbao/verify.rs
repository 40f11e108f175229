//! Tenant-isolation probe: as workspace A's AppRole, read A's KV (must work) and B's KV
//! (must be 403). The probe secret is random, held as [`Sensitive`], and removed afterwards.

use super::approle::{issue_wrapped_secret_id, login, role_id, unwrap_secret_id};
use super::client::{Bao, BaoError, Idempotency};
use crate::config::Workspace;
use crate::secret::Sensitive;
use rustify::enums::RequestMethod;
use serde_json::json;

const PROBE_PATH: &str = "ctl-verify/probe";

pub struct Probe {
    pub role: String,
    pub own_read: bool,
    pub cross_status: u16,
}

fn random_value() -> Sensitive<String> {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        out.push_str(&format!("{:016x}", h.finish()));
    }
    Sensitive::new(out)
}

/// Up to `n` workspaces with an AppRole role (0 = all), spread evenly over the sorted list;
/// each is probed against the next one. Fewer than two candidates: an empty sample.
pub fn sample(workspaces: &[Workspace], n: usize) -> Vec<&Workspace> {
    let candidates: Vec<&Workspace> =
        workspaces.iter().filter(|w| w.approle.as_ref().is_some_and(|a| !a.roles.is_empty())).collect();
    if candidates.len() < 2 {
        return Vec::new();
    }
    let n = if n == 0 { candidates.len() } else { n.clamp(2, candidates.len()) };
    let step = candidates.len() as f64 / n as f64;
    (0..n).map(|i| candidates[(i as f64 * step) as usize]).collect()
}

pub async fn verify_workspace(bao: &Bao, ws: &Workspace, other: &Workspace) -> Result<Probe, BaoError> {
    let approle = ws.approle.as_ref().ok_or_else(|| BaoError::Other(format!("{} has no AppRole", ws.name)))?;
    let role = approle.roles.keys().next().cloned().ok_or_else(|| BaoError::Other(format!("{} has no role", ws.name)))?;
    let ns = ws.namespace.as_str();

    // Seed the probe as the operator (ctl's token), in both workspaces. `cas: 0` (create only)
    // satisfies mounts with `cas_required`; a probe left by an interrupted run is removed first.
    let value = random_value();
    for w in [ws, other] {
        bao.delete(Some(&w.namespace), format!("{}/metadata/{PROBE_PATH}", w.kv.path)).await?;
        let body = json!({"options": {"cas": 0}, "data": {"probe": value.expose()}});
        bao.write(Some(&w.namespace), format!("{}/data/{PROBE_PATH}", w.kv.path), &body).await?;
    }

    // Log in the way a workload does: wrapped secret-id → unwrap → login.
    let rid = role_id(bao, ns, &approle.mount, &role).await?;
    let wrapped = issue_wrapped_secret_id(bao, ns, &approle.mount, &role, "60s").await?;
    let secret_id = unwrap_secret_id(bao, ns, &wrapped.token).await?;
    let token = login(bao, ns, &approle.mount, &rid, &secret_id).await?;

    let own = bao.scoped_as(Some(ns), &token);
    let own_path = format!("{}/data/{PROBE_PATH}", ws.kv.path);
    let own_read = match bao.call(&own, RequestMethod::GET, &own_path, None, Idempotency::Idempotent).await {
        Ok(body) => body.as_ref().and_then(|b| b.pointer("/data/data/probe")).and_then(|v| v.as_str()) == Some(value.expose().as_str()),
        Err(_) => false,
    };
    let cross = bao.scoped_as(Some(&other.namespace), &token);
    let cross_path = format!("{}/data/{PROBE_PATH}", other.kv.path);
    let cross_status = match bao.call(&cross, RequestMethod::GET, &cross_path, None, Idempotency::Idempotent).await {
        Ok(_) => 200,
        Err(e) => e.status().unwrap_or(0),
    };

    // Clean up: revoke the workload token, remove the probes.
    // Revoking twice is harmless (the second is refused, and ignored).
    let _ = bao.call(&own, RequestMethod::POST, "auth/token/revoke-self", Some(&json!({})), Idempotency::Idempotent).await;
    for w in [ws, other] {
        bao.delete(Some(&w.namespace), format!("{}/metadata/{PROBE_PATH}", w.kv.path)).await?;
    }
    Ok(Probe { role, own_read, cross_status })
}

//! ACL policies, marked by their first line (`# managed by ctl: <address>`) and written with
//! check-and-set so a policy changed or taken over between read and write is never clobbered.

use crate::model::Resource;
use crate::openbao::apply::{attrs, not_owned, ns};
use crate::openbao::resources::{PolicyAttrs, POLICY_MARKER};
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;

pub struct Policy;

#[async_trait::async_trait]
impl KindHandler<Bao> for Policy {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: PolicyAttrs = attrs(r)?;
        let path = format!("sys/policies/acl/{}", r.name);
        // cas 0: only if absent. A policy already there is fine only if it is ours (a retry).
        match bao.write(ns(r), &path, &json!({"policy": a.policy, "cas": 0})).await {
            Err(e) if e.is_cas_mismatch() => rewrite(bao, r, &a).await,
            other => other.map(drop),
        }
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        rewrite(bao, u.after, &attrs(u.after)?).await
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        bao.delete(ns(r), format!("sys/policies/acl/{}", r.name)).await.map(drop)
    }
}

/// Rewrite one of ctl's policies: check-and-set on the version read, and only if that version
/// still carries this address's marker line.
async fn rewrite(bao: &Bao, r: &Resource, a: &PolicyAttrs) -> Result<(), BaoError> {
    let path = format!("sys/policies/acl/{}", r.name);
    let body = bao.read(ns(r), &path).await?;
    let live = crate::openbao::client::data(&body);
    let text = live.and_then(|d| d.get("policy")).and_then(|v| v.as_str()).unwrap_or_default();
    let version = live.and_then(|d| d.get("version")).and_then(|v| v.as_u64());
    let marker = format!("{POLICY_MARKER}{}", r.address);
    match version {
        Some(v) if text.lines().next() == Some(marker.as_str()) => {
            bao.write(ns(r), &path, &json!({"policy": a.policy, "cas": v})).await.map(drop)
        }
        Some(_) => Err(not_owned(r, "the policy there does not carry ctl's marker line for this address")),
        None => bao.write(ns(r), &path, &json!({"policy": a.policy, "cas": 0})).await.map(drop),
    }
}

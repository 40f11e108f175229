//! Workspace namespaces: created with ctl's markers in `custom_metadata`, which also holds the
//! records of the objects inside that have no marker field of their own.

use crate::model::Resource;
use crate::openbao::apply::{attrs, delete_namespace, not_owned, patch_metadata, CRASH_LEFTOVER_REMEDY, STRAY_MOUNT};
use crate::openbao::resources::{NamespaceAttrs, MANAGED_BY_KEY, MANAGED_BY_VALUE};
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;
use std::collections::BTreeMap;

pub struct Namespace;

#[async_trait::async_trait]
impl KindHandler<Bao> for Namespace {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: NamespaceAttrs = attrs(r)?;
        // The namespace POST is an upsert: it would stamp ctl's marker onto a foreign one.
        if let Some(existing) = bao.read(None, format!("sys/namespaces/{}", a.path)).await? {
            let meta = |k: &str| existing.pointer(&format!("/data/custom_metadata/{k}")).and_then(|v| v.as_str()).map(str::to_string);
            let ours = meta(MANAGED_BY_KEY).as_deref() == Some(MANAGED_BY_VALUE)
                && meta("environment") == a.custom_metadata.get("environment").cloned();
            if !ours {
                return Err(not_owned(r, "a namespace without this environment's managed-by marker exists there"));
            }
            // A retried create of our own namespace: bring its metadata in line, keep records.
            return patch_metadata(bao, &a.path, &a.custom_metadata, &BTreeMap::new()).await;
        }
        bao.write(None, format!("sys/namespaces/{}", a.path), &json!({"custom_metadata": a.custom_metadata}))
            .await
            .map_err(|e| match e.to_string() {
                m if m.contains(STRAY_MOUNT) => BaoError::Other(format!("{m}; {CRASH_LEFTOVER_REMEDY}")),
                _ => e,
            })?;
        Ok(())
    }

    /// Set the declared metadata keys, remove the ones no longer declared; ctl's records of
    /// the objects inside are neither.
    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        let a: NamespaceAttrs = attrs(u.after)?;
        let mut gone = attrs::<NamespaceAttrs>(u.before)?.custom_metadata;
        gone.retain(|k, _| !a.custom_metadata.contains_key(k));
        patch_metadata(bao, &a.path, &a.custom_metadata, &gone).await
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        delete_namespace(bao, &r.name).await
    }
}

//! A workspace's KV v2 mount and its configuration (`<mount>/config`).

use crate::model::Resource;
use crate::openbao::apply::{attrs, mount, ns, tune};
use crate::openbao::resources::KvMountAttrs;
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;

pub struct KvMount;

#[async_trait::async_trait]
impl KindHandler<Bao> for KvMount {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: KvMountAttrs = attrs(r)?;
        let body = json!({"type": "kv", "description": a.description, "options": {"version": a.version.to_string()}});
        mount(bao, ns(r), &format!("sys/mounts/{}", a.path), &body).await?;
        write_config(bao, r, &a).await
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        let r = u.after;
        let a: KvMountAttrs = attrs(r)?;
        if u.changed("description") {
            tune(bao, ns(r), &format!("sys/mounts/{}/tune", a.path), &a.description).await?;
        }
        if ["max_versions", "cas_required", "delete_version_after"].iter().any(|f| u.changed(f)) {
            write_config(bao, r, &a).await?;
        }
        Ok(())
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        bao.delete(ns(r), format!("sys/mounts/{}", r.name)).await.map(drop)
    }
}

async fn write_config(bao: &Bao, r: &Resource, a: &KvMountAttrs) -> Result<(), BaoError> {
    let body = json!({
        "max_versions": a.max_versions,
        "cas_required": a.cas_required,
        "delete_version_after": a.delete_version_after,
    });
    bao.write(ns(r), format!("{}/config", a.path), &body).await.map(drop)
}

//! Transit mounts and their keys (keys have no marker field: recorded in the namespace).

use crate::model::Resource;
use crate::openbao::apply::{attrs, claim, mount, ns, tune, unrecord};
use crate::openbao::resources::{TransitKeyAttrs, TransitMountAttrs};
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;

pub struct TransitMount;

#[async_trait::async_trait]
impl KindHandler<Bao> for TransitMount {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: TransitMountAttrs = attrs(r)?;
        let body = json!({"type": "transit", "description": a.description});
        mount(bao, ns(r), &format!("sys/mounts/{}", a.path), &body).await
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        let a: TransitMountAttrs = attrs(u.after)?;
        tune(bao, ns(u.after), &format!("sys/mounts/{}/tune", a.path), &a.description).await
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        bao.delete(ns(r), format!("sys/mounts/{}", r.name)).await.map(drop)
    }
}

pub struct TransitKey;

#[async_trait::async_trait]
impl KindHandler<Bao> for TransitKey {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: TransitKeyAttrs = attrs(r)?;
        let path = format!("{}/keys/{}", a.mount, r.name);
        claim(bao, r, &path).await?;
        bao.write(ns(r), &path, &json!({"type": a.key_type})).await?;
        write_config(bao, r, &a).await
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        write_config(bao, u.after, &attrs(u.after)?).await
    }

    /// Keys refuse deletion until `deletion_allowed` is set on them.
    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: TransitKeyAttrs = attrs(r)?;
        let config = format!("{}/keys/{}/config", a.mount, r.name);
        match bao.write(ns(r), &config, &json!({"deletion_allowed": true})).await {
            Err(e) if e.is_not_found() => {}
            other => {
                other?;
                bao.delete(ns(r), format!("{}/keys/{}", a.mount, r.name)).await?;
            }
        };
        unrecord(bao, r).await
    }
}

async fn write_config(bao: &Bao, r: &Resource, a: &TransitKeyAttrs) -> Result<(), BaoError> {
    let body = json!({"auto_rotate_period": a.auto_rotate_period});
    bao.write(ns(r), format!("{}/keys/{}/config", a.mount, r.name), &body).await.map(drop)
}

//! Auth mounts (the workspace's AppRole mount).

use crate::model::Resource;
use crate::openbao::apply::{attrs, mount, ns, tune};
use crate::openbao::resources::AuthMountAttrs;
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;

pub struct AuthMount;

#[async_trait::async_trait]
impl KindHandler<Bao> for AuthMount {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: AuthMountAttrs = attrs(r)?;
        let body = json!({"type": a.kind, "description": a.description});
        mount(bao, ns(r), &format!("sys/auth/{}", a.path), &body).await
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        let a: AuthMountAttrs = attrs(u.after)?;
        tune(bao, ns(u.after), &format!("sys/auth/{}/tune", a.path), &a.description).await
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        bao.delete(ns(r), format!("sys/auth/{}", r.name)).await.map(drop)
    }
}

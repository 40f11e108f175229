//! AppRole roles: no marker field, so the namespace records them (`claim` before the create,
//! `unrecord` after the delete).

use crate::model::Resource;
use crate::openbao::apply::{attrs, claim, ns, unrecord};
use crate::openbao::resources::AppRoleAttrs;
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;

pub struct AppRole;

#[async_trait::async_trait]
impl KindHandler<Bao> for AppRole {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: AppRoleAttrs = attrs(r)?;
        claim(bao, r, &format!("auth/{}/role/{}", a.mount, r.name)).await?;
        write(bao, r, &a).await
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        write(bao, u.after, &attrs(u.after)?).await
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        let a: AppRoleAttrs = attrs(r)?;
        bao.delete(ns(r), format!("auth/{}/role/{}", a.mount, r.name)).await?;
        unrecord(bao, r).await
    }
}

async fn write(bao: &Bao, r: &Resource, a: &AppRoleAttrs) -> Result<(), BaoError> {
    let body = json!({
        "token_policies": a.token_policies,
        "token_ttl": a.token_ttl,
        "token_max_ttl": a.token_max_ttl,
        "secret_id_ttl": a.secret_id_ttl,
        "secret_id_num_uses": a.secret_id_num_uses,
        "token_bound_cidrs": a.token_bound_cidrs,
        "secret_id_bound_cidrs": a.secret_id_bound_cidrs,
    });
    bao.write(ns(r), format!("auth/{}/role/{}", a.mount, r.name), &body).await.map(drop)
}

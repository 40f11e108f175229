//! Rate-limit quotas on a workspace's namespace. They live at the root and are recorded in
//! their workspace's namespace.

use crate::model::Resource;
use crate::openbao::apply::{attrs, claim, unrecord};
use crate::openbao::resources::QuotaAttrs;
use crate::openbao::{Bao, BaoError};
use crate::providers::{KindHandler, Update};
use serde_json::json;

pub struct RateLimitQuota;

#[async_trait::async_trait]
impl KindHandler<Bao> for RateLimitQuota {
    async fn create(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        claim(bao, r, &format!("sys/quotas/rate-limit/{}", r.name)).await?;
        write(bao, r).await
    }

    async fn update(&self, bao: &Bao, u: Update<'_>) -> Result<(), BaoError> {
        write(bao, u.after).await
    }

    async fn delete(&self, bao: &Bao, r: &Resource) -> Result<(), BaoError> {
        bao.delete(None, format!("sys/quotas/rate-limit/{}", r.name)).await?;
        unrecord(bao, r).await
    }
}

async fn write(bao: &Bao, r: &Resource) -> Result<(), BaoError> {
    let a: QuotaAttrs = attrs(r)?;
    let body = json!({
        "path": a.path,
        "rate": a.rate,
        "interval": a.interval,
        "block_interval": a.block_interval,
    });
    bao.write(None, format!("sys/quotas/rate-limit/{}", r.name), &body).await.map(drop)
}

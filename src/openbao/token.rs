//! Keeping ctl's own token alive during a long apply: CI logs in with a short-lived token
//! (JWT/AppRole), which is renewed at half its remaining TTL while work goes on.

use super::client::{data, Bao, BaoError, Idempotency};
use rustify::enums::RequestMethod;
use serde_json::{json, Value};
use std::time::Duration;

/// Renew the token until `done` changes. A non-renewable or non-expiring token (e.g. root)
/// needs nothing; a failed renewal is logged, and the apply fails on its own if the token dies.
pub async fn keep_alive(bao: &Bao, mut done: tokio::sync::watch::Receiver<bool>) -> Result<(), BaoError> {
    let root = bao.scoped(None);
    let me = bao.call(&root, RequestMethod::GET, "auth/token/lookup-self", None, Idempotency::Idempotent).await?;
    let ttl = |body: &Option<Value>| data(body).and_then(|d| d.get("ttl")).and_then(Value::as_u64).unwrap_or(0);
    let renewable = data(&me).and_then(|d| d.get("renewable")).and_then(Value::as_bool).unwrap_or(false);
    let mut remaining = ttl(&me);
    if !renewable || remaining == 0 {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs((remaining / 2).max(1))) => {
                // Renewing twice just restarts the TTL again: idempotent.
                let renewed = bao.call(&root, RequestMethod::POST, "auth/token/renew-self", Some(&json!({})), Idempotency::Idempotent).await?;
                remaining = renewed
                    .as_ref()
                    .and_then(|b| b.pointer("/auth/lease_duration"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                tracing::info!(ttl = remaining, "renewed ctl's OpenBao token");
                if remaining == 0 {
                    return Ok(());
                }
            }
            _ = done.changed() => return Ok(()),
        }
    }
}

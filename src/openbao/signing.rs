//! Saved plans are signed with an HMAC key that never leaves OpenBao: a transit mount
//! `ctl-signing/` next to ctl's state mount (`ctl-state/` is KV and cannot hold keys), one
//! `hmac` key per environment. `ctl plan --out` signs the plan's fingerprint; `ctl apply FILE`
//! verifies it before anything else talks to OpenBao. Editing a plan and recomputing its
//! self-hash is easy; producing the HMAC needs a token allowed to use the key.

use super::client::{data, Bao, BaoError};
use super::resources::MOUNT_MARKER;
use base64::Engine;
use serde_json::{json, Value};

pub const SIGNING_MOUNT: &str = "ctl-signing";

fn key(environment: &str) -> String {
    format!("plans-{environment}")
}

fn input(fingerprint: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(fingerprint)
}

/// Enable the transit mount and create the environment's key if missing (both idempotent).
pub async fn ensure_key(bao: &Bao, environment: &str) -> Result<(), BaoError> {
    let body = json!({"type": "transit", "description": format!("{MOUNT_MARKER}plan signing (HMAC keys; never exported)")});
    match bao.write(None, format!("sys/mounts/{SIGNING_MOUNT}"), &body).await {
        Err(e) if e.is_already_in_use() => {}
        other => other.map(drop)?,
    }
    let path = format!("{SIGNING_MOUNT}/keys/{}", key(environment));
    if bao.read(None, &path).await?.is_none() {
        bao.write(None, &path, &json!({"type": "hmac", "key_size": 32, "exportable": false})).await?;
    }
    Ok(())
}

/// The signature of a plan fingerprint (`vault:v1:…`). `ctl bootstrap` creates the key; an
/// admin token creates it on first use.
pub async fn sign(bao: &Bao, environment: &str, fingerprint: &str) -> Result<String, BaoError> {
    let path = format!("{SIGNING_MOUNT}/hmac/{}/sha2-256", key(environment));
    let body = json!({"input": input(fingerprint)});
    let body = match bao.write(None, &path, &body).await {
        // No mount (404) or no key yet (400 "encryption key not found").
        Err(e) if e.is_not_found() || e.status() == Some(400) => {
            ensure_key(bao, environment).await?;
            bao.write(None, &path, &body).await?
        }
        other => other?,
    };
    data(&body)
        .and_then(|d| d.get("hmac"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| BaoError::Other(format!("{SIGNING_MOUNT}: the HMAC response has no hmac")))
}

/// Whether `signature` is this environment's key's HMAC of `fingerprint`. A missing key
/// verifies nothing.
pub async fn verify(bao: &Bao, environment: &str, fingerprint: &str, signature: &str) -> Result<bool, BaoError> {
    let path = format!("{SIGNING_MOUNT}/verify/{}/sha2-256", key(environment));
    let body = match bao.write(None, path, &json!({"input": input(fingerprint), "hmac": signature})).await {
        Err(e) if e.status() == Some(400) || e.is_not_found() => return Ok(false),
        other => other?,
    };
    Ok(data(&body).and_then(|d| d.get("valid")).and_then(Value::as_bool).unwrap_or(false))
}

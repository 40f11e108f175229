//! Workload-side AppRole operations: issue a response-wrapped secret-id, unwrap, log in.
//! Secret-ids and tokens only ever exist as [`Sensitive`] values in memory.

use super::client::{data, Bao, BaoError, Idempotency};
use crate::secret::Sensitive;
use rustify::enums::RequestMethod;
use serde_json::{json, Value};

/// A response-wrapped secret-id: the wrapping token is the only secret; the rest is metadata.
#[derive(Debug)]
pub struct WrappedSecretId {
    pub token: Sensitive<String>,
    pub accessor: String,
    pub ttl_secs: u64,
    pub creation_path: String,
}

fn field(body: &Option<Value>, pointer: &str) -> Option<String> {
    body.as_ref()?.pointer(pointer)?.as_str().map(str::to_string)
}

fn unexpected(path: &str, message: &str) -> BaoError {
    BaoError::Unexpected { method: "POST", path: path.to_string(), message: message.to_string() }
}

/// Generate a secret-id for `role`, response-wrapped with `wrap_ttl` (e.g. "5m").
pub async fn issue_wrapped_secret_id(
    bao: &Bao,
    namespace: &str,
    mount: &str,
    role: &str,
    wrap_ttl: &str,
) -> Result<WrappedSecretId, BaoError> {
    let path = format!("auth/{mount}/role/{role}/secret-id");
    let client = bao.scoped(Some(namespace));
    // Each success is a new secret-id: never sent twice.
    let check = format!(
        "`bao list -namespace={namespace} auth/{mount}/role/{role}/secret-id` lists its secret-ids' accessors; \
         destroy one you did not expect with `bao write -namespace={namespace} auth/{mount}/role/{role}/secret-id-accessor/destroy secret_id_accessor=<accessor>`, then issue again"
    );
    let once = Idempotency::Once { check: &check };
    let body = bao.call_with(&client, RequestMethod::POST, &path, Some(&json!({})), Some(wrap_ttl), once).await?;
    let token = field(&body, "/wrap_info/token").ok_or_else(|| unexpected(&path, "no wrap_info in response"))?;
    Ok(WrappedSecretId {
        token: Sensitive::new(token),
        accessor: field(&body, "/wrap_info/accessor").unwrap_or_default(),
        ttl_secs: body.as_ref().and_then(|b| b.pointer("/wrap_info/ttl")).and_then(Value::as_u64).unwrap_or(0),
        creation_path: field(&body, "/wrap_info/creation_path").unwrap_or_default(),
    })
}

/// Unwrap a wrapping token (what the workload does once, at start-up).
pub async fn unwrap_secret_id(
    bao: &Bao,
    namespace: &str,
    wrapping_token: &Sensitive<String>,
) -> Result<Sensitive<String>, BaoError> {
    let client = bao.scoped_as(Some(namespace), wrapping_token);
    // A wrapping token works once: a resent unwrap could only fail.
    let once = Idempotency::Once {
        check: "the wrapping token may be used up now; if unwrapping it again fails, issue a new one (`ctl approle issue`)",
    };
    let body = bao.call(&client, RequestMethod::POST, "sys/wrapping/unwrap", Some(&json!({})), once).await?;
    field(&body, "/data/secret_id")
        .map(Sensitive::new)
        .ok_or_else(|| unexpected("sys/wrapping/unwrap", "no secret_id in unwrapped response"))
}

pub async fn role_id(bao: &Bao, namespace: &str, mount: &str, role: &str) -> Result<String, BaoError> {
    let path = format!("auth/{mount}/role/{role}/role-id");
    let body = bao.get(Some(namespace), &path).await?;
    data(&body)
        .and_then(|d| d.get("role_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| unexpected(&path, "no role_id"))
}

/// Log in with role-id + secret-id; returns the client token.
pub async fn login(
    bao: &Bao,
    namespace: &str,
    mount: &str,
    role_id: &str,
    secret_id: &Sensitive<String>,
) -> Result<Sensitive<String>, BaoError> {
    let path = format!("auth/{mount}/login");
    let anonymous = bao.scoped_as(Some(namespace), &Sensitive::new(String::new()));
    let body = json!({"role_id": role_id, "secret_id": secret_id.expose()});
    // Each success is a new token: never sent twice.
    let once = Idempotency::Once { check: "an unused token may have been issued; it expires after the role's token_ttl" };
    let reply = bao.call(&anonymous, RequestMethod::POST, &path, Some(&body), once).await?;
    field(&reply, "/auth/client_token")
        .map(Sensitive::new)
        .ok_or_else(|| unexpected(&path, "no auth in login response"))
}

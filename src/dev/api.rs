//! The few unauthenticated `sys/` endpoints the dev stack needs (seal-status, health, init,
//! unseal). Plain reqwest, no proxy: the stack is on loopback.

use super::DevError;
use crate::secret::Sensitive;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// `GET /v1/sys/seal-status`.
#[derive(Clone, Debug, Deserialize)]
pub struct SealStatus {
    #[serde(rename = "type")]
    pub seal_type: String,
    pub initialized: bool,
    pub sealed: bool,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub t: u32,
    #[serde(default)]
    pub n: u32,
    #[serde(default)]
    pub progress: u32,
    #[serde(default)]
    pub recovery_seal: bool,
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain HTTP client always builds")
}

fn url(addr: &str, path: &str) -> String {
    format!("{}/v1/{}", addr.trim_end_matches('/'), path)
}

/// OpenBao's `errors` list of an error response; never the whole body.
async fn api_error(method: &'static str, url: String, resp: reqwest::Response) -> DevError {
    let status = resp.status().as_u16();
    let errors = match resp.json::<Value>().await {
        Ok(v) => v
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    DevError::Api {
        method,
        url,
        status,
        errors,
    }
}

fn http_err(method: &'static str, url: &str, e: reqwest::Error) -> DevError {
    DevError::Http {
        method,
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// `GET /v1/sys/seal-status` of the server at `addr` (`http://127.0.0.1:<port>`).
pub async fn seal_status(addr: &str) -> Result<SealStatus, DevError> {
    seal_status_with(&client(), addr).await
}

pub(crate) async fn seal_status_with(
    client: &reqwest::Client,
    addr: &str,
) -> Result<SealStatus, DevError> {
    let url = url(addr, "sys/seal-status");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| http_err("GET", &url, e))?;
    if !resp.status().is_success() {
        return Err(api_error("GET", url, resp).await);
    }
    resp.json().await.map_err(|e| http_err("GET", &url, e))
}

/// The status code of `GET /v1/sys/health`: 200 active+unsealed, 429 standby, 501 not
/// initialized, 503 sealed.
pub async fn health_status(addr: &str) -> Result<u16, DevError> {
    health_status_with(&client(), addr).await
}

pub(crate) async fn health_status_with(
    client: &reqwest::Client,
    addr: &str,
) -> Result<u16, DevError> {
    let url = url(addr, "sys/health");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| http_err("GET", &url, e))?;
    Ok(resp.status().as_u16())
}

/// `PUT /v1/sys/init`. The response holds the root token and keys: it goes straight into
/// [`Sensitive`] and from there only into the 0600 files.
pub(crate) async fn init(
    client: &reqwest::Client,
    addr: &str,
    body: Value,
) -> Result<Sensitive<Value>, DevError> {
    let url = url(addr, "sys/init");
    let resp = client
        .put(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| http_err("PUT", &url, e))?;
    if !resp.status().is_success() {
        return Err(api_error("PUT", url, resp).await);
    }
    let value: Value = resp.json().await.map_err(|e| http_err("PUT", &url, e))?;
    Ok(Sensitive::new(value))
}

/// `PUT /v1/sys/unseal` with one key share. Returns whether the server is still sealed.
pub(crate) async fn unseal(
    client: &reqwest::Client,
    addr: &str,
    key: &Sensitive<String>,
) -> Result<bool, DevError> {
    let url = url(addr, "sys/unseal");
    let resp = client
        .put(&url)
        .json(&serde_json::json!({ "key": key.expose() }))
        .send()
        .await
        .map_err(|e| http_err("PUT", &url, e))?;
    if !resp.status().is_success() {
        return Err(api_error("PUT", url, resp).await);
    }
    let status: SealStatus = resp.json().await.map_err(|e| http_err("PUT", &url, e))?;
    Ok(status.sealed)
}

/// `PUT /v1/sys/init` for a server that is about to receive a snapshot: one recovery share
/// (auto-unseal) or one key share (shamir). Only the root token is kept; it is valid until the
/// restore replaces it.
pub async fn init_throwaway(addr: &str, auto_unseal: bool) -> Result<Sensitive<String>, DevError> {
    let body = if auto_unseal {
        serde_json::json!({ "recovery_shares": 1, "recovery_threshold": 1 })
    } else {
        serde_json::json!({ "secret_shares": 1, "secret_threshold": 1 })
    };
    let init = init(&client(), addr, body).await?;
    init.expose()
        .get("root_token")
        .and_then(Value::as_str)
        .map(|t| Sensitive::new(t.to_string()))
        .ok_or_else(|| DevError::Api {
            method: "PUT",
            url: url(addr, "sys/init"),
            status: 200,
            errors: "response has no root_token".into(),
        })
}

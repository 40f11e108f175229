//! Raft snapshots (`sys/storage/raft/snapshot[-force]`), which vaultrs 0.8 lacks. Both directions
//! stream through a file in constant memory; the download is hashed on the way, so the caller
//! gets the digest of exactly the bytes OpenBao sent.

use super::client::{root_cause, BaoError};
use super::Bao;
use crate::artifacts::hash::{Hashed, Running};
use std::path::Path;
use tokio::io::AsyncWriteExt;

const SAVE: &str = "sys/storage/raft/snapshot";
const RESTORE_FORCE: &str = "sys/storage/raft/snapshot-force";

impl Bao {
    /// `GET sys/storage/raft/snapshot` into `file` (created with mode 0600, replaced if present).
    /// Connection errors and 5xx before the first byte are retried like every other call.
    pub async fn raft_snapshot_save(&self, file: &Path) -> Result<Hashed, BaoError> {
        self.catalogue().check(&rustify::enums::RequestMethod::GET, "GET", None, SAVE)?;
        let mut attempt = 0;
        let mut response = loop {
            attempt += 1;
            let sent = self.http().get(self.url(SAVE)).header("X-Vault-Token", self.token()).send().await;
            let transient = match &sent {
                Ok(r) => r.status().is_server_error() && r.status().as_u16() != 501,
                Err(_) => true,
            };
            if transient && attempt < self.retry.attempts {
                tokio::time::sleep(self.retry.delay(attempt)).await;
                continue;
            }
            break self.check("GET", SAVE, sent, attempt).await?;
        };
        let io = |e: std::io::Error| BaoError::Other(format!("writing the raft snapshot to {}: {e}", file.display()));
        let mut out = private_file(file).await.map_err(io)?;
        let mut hashed = Running::default();
        while let Some(chunk) = response.chunk().await.map_err(|e| BaoError::Unexpected {
            method: "GET",
            path: SAVE.into(),
            message: format!("the snapshot stream broke after {} bytes: {e}", hashed.size()),
        })? {
            hashed.update(&chunk);
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        out.sync_all().await.map_err(io)?;
        if hashed.size() == 0 {
            return Err(BaoError::Unexpected { method: "GET", path: SAVE.into(), message: "empty snapshot".into() });
        }
        Ok(hashed.finish())
    }

    /// `POST sys/storage/raft/snapshot-force` with the snapshot in `file`: replaces all data of
    /// this (fresh) cluster. The caller verifies the file's digest first. Not retried: a restore
    /// that reached the server must not be sent twice blindly.
    pub async fn raft_snapshot_restore_force(&self, file: &Path) -> Result<(), BaoError> {
        self.catalogue().check(&rustify::enums::RequestMethod::POST, "POST", None, RESTORE_FORCE)?;
        let body = tokio::fs::File::open(file)
            .await
            .map_err(|e| BaoError::Other(format!("opening the raft snapshot {}: {e}", file.display())))?;
        let sent = self
            .http()
            .post(self.url(RESTORE_FORCE))
            .header("X-Vault-Token", self.token())
            .header("Content-Type", "application/octet-stream")
            .body(reqwest::Body::from(body))
            .send()
            .await;
        self.check("POST", RESTORE_FORCE, sent, 1).await.map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base_url().trim_end_matches('/'))
    }

    async fn check(
        &self,
        method: &'static str,
        path: &str,
        sent: Result<reqwest::Response, reqwest::Error>,
        attempts: u32,
    ) -> Result<reqwest::Response, BaoError> {
        let response = sent.map_err(|e| BaoError::Unreachable {
            method,
            path: path.into(),
            namespace: None,
            address: self.address().to_string(),
            attempts,
            message: root_cause(&e),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        if status == 403 {
            let m = if method == "GET" { rustify::enums::RequestMethod::GET } else { rustify::enums::RequestMethod::POST };
            let grant = self.catalogue().grant(&m, None, path);
            return Err(BaoError::Denied { method, path: path.into(), namespace: None, grant });
        }
        let text = response.text().await.unwrap_or_default();
        let errors = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
            .map(|e| e.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
            .unwrap_or_else(|| "no error message".into());
        Err(BaoError::Api { method, path: path.into(), namespace: None, status, errors })
    }
}

/// Create (or truncate) `path` for writing with mode 0600.
pub(crate) async fn private_file(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true).mode(0o600);
    opts.open(path).await
}

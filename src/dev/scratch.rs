//! A scratch OpenBao: one `bao server` on a private temp dir and free loopback ports, sealed by
//! a given KMS key, that lives exactly as long as its [`Scratch`] value (dropping it stops the
//! process and deletes the dir). `ctl dr restore-workspace` and `ctl dr verify-snapshot` boot
//! one from a raft snapshot: same seal key, so it auto-unseals with the snapshot's root key.

use super::process::{self, Proc, STOP_GRACE};
use super::server_config::{AwsKmsSealConfig, ServerConfig};
use super::stack::{spawn_bao, wait_listener, write_private_file};
use super::DevError;
use std::path::{Path, PathBuf};

/// A running scratch server.
pub struct Scratch {
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    bao: Proc,
    dir: PathBuf,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").field("addr", &self.addr).field("pid", &self.bao.pid).finish_non_exhaustive()
    }
}

impl Scratch {
    /// Starts `bao_bin` on empty raft storage under a new private dir in `parent`, sealed by
    /// `seal`, and waits for its listener. It is not initialized.
    pub async fn start(bao_bin: &Path, seal: AwsKmsSealConfig, parent: &Path) -> Result<Scratch, DevError> {
        std::fs::create_dir_all(parent).map_err(|e| DevError::io(format!("cannot create {}", parent.display()), e))?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = parent.join(format!("scratch-{}-{nanos}", std::process::id()));
        let raft = dir.join("raft");
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&raft)
                .map_err(|e| DevError::io(format!("cannot create {}", raft.display()), e))?;
        }
        let config_file = dir.join("server.hcl");
        let client = super::api::client();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = process::free_ports(2)?;
            let config = ServerConfig::loopback_node(&raft, "ctl-scratch", ports[0], ports[1], Some(seal.clone()));
            write_private_file(&config_file, config.render()?.as_bytes())?;
            let mut bao = spawn_bao(bao_bin, &config_file, &dir, false)?;
            match wait_listener(&client, &mut bao, &config.api_addr).await {
                Ok(_) => return Ok(Scratch { addr: config.api_addr, bao, dir }),
                Err(e @ DevError::Exited { .. }) if attempt < 3 && e.to_string().contains("address already in use") => continue,
                Err(e) => {
                    bao.stop(STOP_GRACE).await;
                    std::fs::remove_dir_all(&dir).ok();
                    return Err(e);
                }
            }
        }
    }

    /// The scratch's private dir (config, `bao.log`, raft data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/bao.log`.
    pub fn log(&self) -> PathBuf {
        self.bao.log.clone()
    }

    /// Stops the server (SIGTERM, then SIGKILL) and deletes its dir.
    pub async fn stop(mut self) {
        self.bao.stop(STOP_GRACE).await;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.bao.stop_blocking(STOP_GRACE);
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

//! [`Stack`]: start, restart and stop the dev stack; [`StackState`]: its `stack.json`.

use super::api::{self, SealStatus};
use super::kms;
use super::process::{self, Proc, STOP_GRACE};
use super::server_config::ServerConfig;
use super::{BaoVersion, DevError, LogTail, Seal, StackOptions, Tools};
use crate::secret::Sensitive;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const STACK_FILE: &str = "stack.json";
pub const ROOT_TOKEN_FILE: &str = "root-token";
pub const INIT_FILE: &str = "init.json";
const CONFIG_FILE: &str = "server.hcl";
const BAO_LOG: &str = "bao.log";
const MOTO_LOG: &str = "moto.log";
const RAFT_DIR: &str = "raft";
const NODE_ID: &str = "ctl-dev";

/// How long each start-up phase may take (listener up, moto up, active after init/unseal).
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Fresh ports are tried this many times when a port picked as free was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// `<dir>/stack.json`: what `ctl dev status/down` and other code need to find a running
/// stack. No secrets: the token is in `token_file`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StackState {
    pub bao_addr: String,
    pub bao_pid: u32,
    pub moto_endpoint: Option<String>,
    pub moto_pid: Option<u32>,
    pub kms_key_id: Option<String>,
    pub version: BaoVersion,
    pub seal: Seal,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Whether the processes were started to outlive `ctl` (`ctl dev up`).
    pub detached: bool,
    /// `<dir>/root-token` (mode 0600).
    pub token_file: PathBuf,
    /// `<dir>/server.hcl`.
    pub config_file: PathBuf,
    pub bao_bin: PathBuf,
    pub moto_bin: Option<PathBuf>,
}

impl StackState {
    /// Reads `<dir>/stack.json`.
    pub fn load(dir: &Path) -> Result<StackState, DevError> {
        let path = dir.join(STACK_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DevError::NotRunning {
                    dir: dir.to_path_buf(),
                    reason: format!("{} does not exist", path.display()),
                }
            } else {
                DevError::io(format!("cannot read {}", path.display()), e)
            }
        })?;
        serde_json::from_str(&text).map_err(|e| DevError::State {
            path,
            message: e.to_string(),
        })
    }

    /// Whether the bao process recorded here is alive (and still the `bao server` we started).
    pub fn bao_alive(&self) -> bool {
        let config_arg = format!("-config={}", self.config_file.display());
        process::pid_matches(self.bao_pid, &["server", &config_arg])
    }

    /// Stops the bao process recorded here (if it is still ours); moto keeps running.
    pub async fn stop_bao(&self) {
        if self.bao_alive() {
            let mut bao = Proc::adopt("bao", self.bao_bin.clone(), self.bao_pid, PathBuf::new());
            bao.stop(STOP_GRACE).await;
        }
    }

    /// `None` when the stack has no moto.
    pub fn moto_alive(&self) -> Option<bool> {
        let pid = self.moto_pid?;
        let port = self
            .moto_endpoint
            .as_deref()
            .and_then(|e| e.rsplit(':').next())
            .unwrap_or("");
        Some(process::pid_matches(pid, &["moto_server", port]))
    }

    /// Stops the processes recorded here (SIGTERM, SIGKILL after 10 s): bao first, then moto.
    /// Pids that are gone or now belong to another program are left alone.
    pub async fn stop(&self) {
        self.stop_bao().await;
        if let (Some(true), Some(pid)) = (self.moto_alive(), self.moto_pid) {
            let bin = self.moto_bin.clone().unwrap_or_default();
            let mut moto = Proc::adopt("moto", bin, pid, PathBuf::new());
            moto.stop(STOP_GRACE).await;
        }
    }
}

/// Disaster: stops the stack's bao and deletes its raft data. Config, tokens, moto stay.
pub async fn wipe_bao_data(dir: &Path) -> Result<StackState, DevError> {
    let state = StackState::load(dir)?;
    state.stop_bao().await;
    let raft = dir.join(RAFT_DIR);
    if raft.exists() {
        std::fs::remove_dir_all(&raft).map_err(|e| DevError::io(format!("cannot remove {}", raft.display()), e))?;
    }
    Ok(state)
}

/// Recovery: starts the stack's bao again on EMPTY raft storage, with the same config (same
/// address, same seal key), detached, and does not initialize it. A bao still running there is
/// stopped first. The root token file is left alone: after a snapshot restore the
/// pre-disaster token is valid again.
pub async fn respawn_empty(dir: &Path) -> Result<StackState, DevError> {
    let mut state = wipe_bao_data(dir).await?;
    let raft = dir.join(RAFT_DIR);
    std::fs::create_dir_all(&raft).map_err(|e| DevError::io(format!("cannot create {}", raft.display()), e))?;
    set_mode(&raft, 0o700)?;
    let mut bao = spawn_bao(&state.bao_bin, &state.config_file, dir, true)?;
    let client = api::client();
    if let Err(e) = wait_listener(&client, &mut bao, &state.bao_addr).await {
        bao.stop(STOP_GRACE).await;
        return Err(e);
    }
    bao.release();
    state.bao_pid = bao.pid;
    state.started_at = rfc3339_now();
    state.detached = true;
    let json = serde_json::to_vec_pretty(&state).expect("StackState serializes");
    write_file_atomic(&dir.join(STACK_FILE), &json, 0o644)?;
    Ok(state)
}

/// For code that talks to the dev stack: `(bao address, root token file)` of the stack in
/// `dir`, after checking `stack.json` exists and its bao process is alive.
pub fn connection(dir: &Path) -> Result<(String, PathBuf), DevError> {
    let state = StackState::load(dir)?;
    if !state.bao_alive() {
        return Err(DevError::NotRunning {
            dir: dir.to_path_buf(),
            reason: format!("bao (pid {}) is not running", state.bao_pid),
        });
    }
    if !state.token_file.is_file() {
        return Err(DevError::NotRunning {
            dir: dir.to_path_buf(),
            reason: format!("{} is missing", state.token_file.display()),
        });
    }
    Ok((state.bao_addr, state.token_file))
}

/// A running dev stack. Dropping it stops its processes unless it was started detached.
pub struct Stack {
    pub dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub bao_addr: String,
    /// `http://127.0.0.1:<port>` (awskms only).
    pub moto_endpoint: Option<String>,
    pub kms_key_id: Option<String>,
    pub root_token: Sensitive<String>,
    version: BaoVersion,
    seal: Seal,
    detach: bool,
    tools: Tools,
    config_file: PathBuf,
    unseal_key: Option<Sensitive<String>>,
    started_at: String,
    bao: Proc,
    moto: Option<Proc>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("dir", &self.dir)
            .field("bao_addr", &self.bao_addr)
            .field("moto_endpoint", &self.moto_endpoint)
            .field("version", &self.version)
            .field("seal", &self.seal)
            .field("bao_pid", &self.bao.pid)
            .finish_non_exhaustive()
    }
}

/// Stops what a failed start had already spawned (detached or not).
struct SpawnGuard {
    procs: Vec<Proc>,
}

impl Drop for SpawnGuard {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.stop_blocking(STOP_GRACE);
        }
    }
}

impl Stack {
    /// Starts moto (awskms only) and OpenBao, initializes (and for shamir unseals) it, waits
    /// until it is active, and writes `stack.json`, `root-token` and `init.json` in `opts.dir`.
    ///
    /// Any previous data in `opts.dir` (raft, secrets, logs) is discarded; a stack still
    /// running there is an error.
    pub async fn start(opts: StackOptions) -> Result<Stack, DevError> {
        let StackOptions {
            dir,
            version,
            seal,
            detach,
        } = opts;
        if seal == Seal::AwsKms && version != BaoVersion::V2_6 {
            return Err(DevError::UnsupportedSeal { version, seal });
        }
        let tools = Tools::discover(version)?;
        check_bao_version(&tools.bao, version)?;
        let dir = prepare_dir(&dir)?;
        let mut guard = SpawnGuard { procs: Vec::new() };

        // moto and the unseal key.
        let mut moto_endpoint = None;
        let mut kms_key_id = None;
        if seal == Seal::AwsKms {
            let (proc, endpoint) = start_moto(&tools.moto_server, &dir, detach).await?;
            guard.procs.push(proc);
            kms_key_id = Some(kms::create_unseal_key(&endpoint).await?);
            moto_endpoint = Some(endpoint);
        }

        // bao.
        let config_file = dir.join(CONFIG_FILE);
        let client = api::client();
        let mut attempt = 0;
        let (bao, bao_addr) = loop {
            attempt += 1;
            let ports = process::free_ports(2)?;
            let awskms = match (&kms_key_id, &moto_endpoint) {
                (Some(key), Some(endpoint)) => Some(super::kms::moto_seal(endpoint, key)),
                _ => None,
            };
            let config = ServerConfig::loopback_node(&dir.join(RAFT_DIR), NODE_ID, ports[0], ports[1], awskms);
            write_private_file(&config_file, config.render()?.as_bytes())?;
            let addr = config.api_addr.clone();
            let mut bao = spawn_bao(&tools.bao, &config_file, &dir, detach)?;
            match wait_listener(&client, &mut bao, &addr).await {
                Ok(_) => break (bao, addr),
                Err(e @ DevError::Exited { .. })
                    if attempt < PORT_ATTEMPTS
                        && e.to_string().contains("address already in use") =>
                {
                    tracing::warn!(
                        attempt,
                        "a port picked for bao was taken meanwhile; retrying with new ports"
                    );
                    continue;
                }
                Err(e) => {
                    bao.stop(STOP_GRACE).await;
                    return Err(e);
                }
            }
        };
        guard.procs.push(bao);
        let bao = guard.procs.last_mut().expect("just pushed");

        // init (+ unseal).
        let init_body = match seal {
            Seal::AwsKms => json!({ "recovery_shares": 1, "recovery_threshold": 1 }),
            Seal::Shamir => json!({ "secret_shares": 1, "secret_threshold": 1 }),
        };
        let init = api::init(&client, &bao_addr, init_body).await?;
        let root_token = init
            .expose()
            .get("root_token")
            .and_then(Value::as_str)
            .map(|t| Sensitive::new(t.to_string()))
            .ok_or_else(|| DevError::Api {
                method: "PUT",
                url: format!("{bao_addr}/v1/sys/init"),
                status: 200,
                errors: "response has no root_token".into(),
            })?;
        let mut keys = init.into_inner();
        if let Some(obj) = keys.as_object_mut() {
            obj.remove("root_token");
        }
        let unseal_key = match seal {
            Seal::AwsKms => None,
            Seal::Shamir => Some(first_unseal_key(&keys, &bao_addr)?),
        };
        write_private_file(
            &dir.join(INIT_FILE),
            &serde_json::to_vec_pretty(&keys).expect("json"),
        )?;
        write_private_file(&dir.join(ROOT_TOKEN_FILE), root_token.expose().as_bytes())?;
        drop(keys);
        if let Some(key) = &unseal_key {
            api::unseal(&client, &bao_addr, key).await?;
        }
        wait_active(&client, bao, &bao_addr).await?;

        let mut procs = std::mem::take(&mut guard.procs).into_iter();
        let moto = if seal == Seal::AwsKms {
            procs.next()
        } else {
            None
        };
        let bao = procs.next().expect("bao was pushed last");
        let stack = Stack {
            dir,
            bao_addr,
            moto_endpoint,
            kms_key_id,
            root_token,
            version,
            seal,
            detach,
            tools,
            config_file,
            unseal_key,
            started_at: rfc3339_now(),
            bao,
            moto,
        };
        stack.write_state()?;
        Ok(stack)
    }

    /// Reads `<dir>/stack.json` (for `ctl dev status/down` and code connecting to the stack).
    pub fn load(dir: &Path) -> Result<StackState, DevError> {
        StackState::load(dir)
    }

    /// Stops bao (SIGTERM; SIGKILL after 10 s) and starts it again with the same config and
    /// data. With awskms it must come back unsealed on its own (no key is sent: this is the
    /// auto-unseal check); with shamir it is unsealed with the key from `init.json`.
    pub async fn restart_bao(&mut self) -> Result<(), DevError> {
        self.bao.stop(STOP_GRACE).await;
        let client = api::client();
        self.bao = spawn_bao(&self.tools.bao, &self.config_file, &self.dir, self.detach)?;
        let status = wait_listener(&client, &mut self.bao, &self.bao_addr).await?;
        if let Some(key) = &self.unseal_key {
            if status.sealed {
                api::unseal(&client, &self.bao_addr, key).await?;
            }
        }
        wait_active(&client, &mut self.bao, &self.bao_addr).await?;
        self.write_state()
    }

    /// Stops bao, then moto. The data dir stays.
    pub async fn stop(&mut self) {
        self.bao.stop(STOP_GRACE).await;
        if let Some(moto) = &mut self.moto {
            moto.stop(STOP_GRACE).await;
        }
    }

    pub fn version(&self) -> BaoVersion {
        self.version
    }

    pub fn seal(&self) -> Seal {
        self.seal
    }

    /// The `bao` binary this stack runs (for CLI calls against it).
    pub fn bao_bin(&self) -> &Path {
        &self.tools.bao
    }

    pub fn bao_pid(&self) -> u32 {
        self.bao.pid
    }

    pub fn moto_pid(&self) -> Option<u32> {
        self.moto.as_ref().map(|m| m.pid)
    }

    /// `<dir>/root-token`.
    pub fn token_file(&self) -> PathBuf {
        self.dir.join(ROOT_TOKEN_FILE)
    }

    /// `<dir>/bao.log`.
    pub fn bao_log(&self) -> PathBuf {
        self.dir.join(BAO_LOG)
    }

    /// `GET sys/seal-status` of this stack.
    pub async fn seal_status(&self) -> Result<SealStatus, DevError> {
        api::seal_status(&self.bao_addr).await
    }

    /// The `stack.json` contents for this stack.
    pub fn state(&self) -> StackState {
        StackState {
            bao_addr: self.bao_addr.clone(),
            bao_pid: self.bao.pid,
            moto_endpoint: self.moto_endpoint.clone(),
            moto_pid: self.moto_pid(),
            kms_key_id: self.kms_key_id.clone(),
            version: self.version,
            seal: self.seal,
            started_at: self.started_at.clone(),
            detached: self.detach,
            token_file: self.token_file(),
            config_file: self.config_file.clone(),
            bao_bin: self.tools.bao.clone(),
            moto_bin: self.moto.as_ref().map(|_| self.tools.moto_server.clone()),
        }
    }

    fn write_state(&self) -> Result<(), DevError> {
        let json = serde_json::to_vec_pretty(&self.state()).expect("StackState serializes");
        write_file_atomic(&self.dir.join(STACK_FILE), &json, 0o644)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.detach {
            self.bao.release();
            if let Some(moto) = &mut self.moto {
                moto.release();
            }
        } else {
            self.bao.stop_blocking(STOP_GRACE);
            if let Some(moto) = &mut self.moto {
                moto.stop_blocking(STOP_GRACE);
            }
        }
    }
}

/// `bao version` must name the release the stack is meant to run.
fn check_bao_version(bao: &Path, version: BaoVersion) -> Result<(), DevError> {
    let out = std::process::Command::new(bao)
        .arg("version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| DevError::Spawn {
            binary: bao.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let found = text.lines().next().unwrap_or("").trim().to_string();
    let prefix = format!("v{}.", version.as_str());
    if out.status.success() && found.split_whitespace().any(|w| w.starts_with(&prefix)) {
        Ok(())
    } else {
        Err(DevError::WrongBaoVersion {
            binary: bao.to_path_buf(),
            expected: version.release(),
            found,
        })
    }
}

/// Creates `dir`, refuses if a stack is running there, and discards what a previous stack left.
fn prepare_dir(dir: &Path) -> Result<PathBuf, DevError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| DevError::io(format!("cannot create {}", dir.display()), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| DevError::io(format!("cannot resolve {}", dir.display()), e))?;
    if let Ok(state) = StackState::load(&dir) {
        if state.bao_alive() {
            return Err(DevError::AlreadyRunning {
                dir,
                pid: state.bao_pid,
            });
        }
        if state.moto_alive() == Some(true) {
            return Err(DevError::AlreadyRunning {
                dir,
                pid: state.moto_pid.unwrap_or(0),
            });
        }
    }
    for name in [
        STACK_FILE,
        ROOT_TOKEN_FILE,
        INIT_FILE,
        CONFIG_FILE,
        BAO_LOG,
        MOTO_LOG,
    ] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DevError::io(format!("cannot remove {}", path.display()), e)),
        }
    }
    let raft = dir.join(RAFT_DIR);
    if raft.exists() {
        std::fs::remove_dir_all(&raft)
            .map_err(|e| DevError::io(format!("cannot remove {}", raft.display()), e))?;
    }
    std::fs::create_dir_all(&raft)
        .map_err(|e| DevError::io(format!("cannot create {}", raft.display()), e))?;
    set_mode(&raft, 0o700)?;
    Ok(dir)
}

async fn start_moto(moto_bin: &Path, dir: &Path, detach: bool) -> Result<(Proc, String), DevError> {
    let log = dir.join(MOTO_LOG);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = process::free_port()?;
        let args = vec![
            "-H".to_string(),
            "127.0.0.1".to_string(),
            "-p".to_string(),
            port.to_string(),
        ];
        let mut moto = Proc::spawn("moto", moto_bin, &args, &log, detach)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            if let Some(status) = moto.exited() {
                let err = moto.exited_error(status, format!("starting on 127.0.0.1:{port}"));
                if attempt < PORT_ATTEMPTS && err.to_string().contains("in use") {
                    break;
                }
                return Err(err);
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok((moto, endpoint));
            }
            if Instant::now() >= deadline {
                moto.stop(STOP_GRACE).await;
                return Err(DevError::Timeout {
                    what: format!("moto ({})", moto_bin.display()),
                    addr: endpoint,
                    secs: PHASE_TIMEOUT.as_secs(),
                    log: LogTail::of(&log),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

pub(crate) fn spawn_bao(
    bao_bin: &Path,
    config_file: &Path,
    dir: &Path,
    detach: bool,
) -> Result<Proc, DevError> {
    let args = vec![
        "server".to_string(),
        format!("-config={}", config_file.display()),
    ];
    Proc::spawn("bao", bao_bin, &args, &dir.join(BAO_LOG), detach)
}

/// Polls `sys/seal-status` until the listener answers; fails early if bao exits.
pub(crate) async fn wait_listener(
    client: &reqwest::Client,
    bao: &mut Proc,
    addr: &str,
) -> Result<SealStatus, DevError> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        if let Some(status) = bao.exited() {
            return Err(bao.exited_error(status, format!("starting its listener at {addr}")));
        }
        if let Ok(status) = api::seal_status_with(client, addr).await {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(DevError::Timeout {
                what: format!("the OpenBao listener ({})", bao.binary.display()),
                addr: addr.to_string(),
                secs: PHASE_TIMEOUT.as_secs(),
                log: LogTail::of(&bao.log),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `sys/health` until 200 (initialized, unsealed, active).
async fn wait_active(client: &reqwest::Client, bao: &mut Proc, addr: &str) -> Result<(), DevError> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut last;
    loop {
        if let Some(status) = bao.exited() {
            return Err(bao.exited_error(status, "becoming active"));
        }
        match api::health_status_with(client, addr).await {
            Ok(200) => return Ok(()),
            Ok(code) => last = format!("sys/health answered {code}{}", health_meaning(code)),
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(DevError::Timeout {
                what: format!("OpenBao to be unsealed and active (last: {last})"),
                addr: addr.to_string(),
                secs: PHASE_TIMEOUT.as_secs(),
                log: LogTail::of(&bao.log),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn health_meaning(code: u16) -> &'static str {
    match code {
        429 => " (standby)",
        472 | 473 => " (performance/DR standby)",
        501 => " (not initialized)",
        503 => " (sealed)",
        _ => "",
    }
}

fn first_unseal_key(init: &Value, addr: &str) -> Result<Sensitive<String>, DevError> {
    init.get("keys_base64")
        .or_else(|| init.get("keys"))
        .and_then(Value::as_array)
        .and_then(|keys| keys.first())
        .and_then(Value::as_str)
        .map(|k| Sensitive::new(k.to_string()))
        .ok_or_else(|| DevError::Api {
            method: "PUT",
            url: format!("{addr}/v1/sys/init"),
            status: 200,
            errors: "response has no unseal keys".into(),
        })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), DevError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| DevError::io(format!("cannot chmod {}", path.display()), e))
}

/// Writes a file readable by the owner only (0600), atomically.
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), DevError> {
    write_file_atomic(path, contents, 0o600)
}

fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), DevError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let ctx = |what: &str| format!("cannot {what} {}", tmp.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| DevError::io(ctx("create"), e))?;
    file.write_all(contents)
        .map_err(|e| DevError::io(ctx("write"), e))?;
    file.sync_all().map_err(|e| DevError::io(ctx("sync"), e))?;
    drop(file);
    // The umask may have narrowed the mode; never widened it.
    set_mode(&tmp, mode)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        DevError::io(
            format!("cannot rename {} to {}", tmp.display(), path.display()),
            e,
        )
    })
}

/// Now as RFC 3339 UTC (`2026-11-23T12:34:56Z`).
pub(crate) fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_444_496), "2026-11-23T14:34:56Z");
    }

    #[test]
    fn private_files_are_0600_and_exact() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(ROOT_TOKEN_FILE);
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"s.token").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"s.token");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn connection_requires_a_live_stack() {
        let tmp = tempfile::tempdir().unwrap();
        let err = connection(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("ctl dev up"), "{err}");

        let state = StackState {
            bao_addr: "http://127.0.0.1:1".into(),
            bao_pid: 0,
            moto_endpoint: None,
            moto_pid: None,
            kms_key_id: None,
            version: BaoVersion::V2_7,
            seal: Seal::Shamir,
            started_at: rfc3339_now(),
            detached: true,
            token_file: tmp.path().join(ROOT_TOKEN_FILE),
            config_file: tmp.path().join(CONFIG_FILE),
            bao_bin: PathBuf::from("bao"),
            moto_bin: None,
        };
        std::fs::write(
            tmp.path().join(STACK_FILE),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
        let err = connection(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("not running") && err.contains("ctl dev up"),
            "{err}"
        );
        let loaded = Stack::load(tmp.path()).unwrap();
        assert_eq!(loaded.version, BaoVersion::V2_7);
        let raw: Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join(STACK_FILE)).unwrap()).unwrap();
        assert_eq!(raw["version"], "2.7");
        assert_eq!(raw["seal"], "shamir");
    }

    #[test]
    fn awskms_needs_2_6() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let opts = StackOptions {
            dir: tmp.path().into(),
            version: BaoVersion::V2_7,
            seal: Seal::AwsKms,
            detach: false,
        };
        let err = rt.block_on(Stack::start(opts)).unwrap_err();
        assert!(matches!(err, DevError::UnsupportedSeal { .. }), "{err}");
    }
}

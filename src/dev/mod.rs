//! The local dev stack: a real OpenBao server (raft storage) and, for the awskms seal, a moto
//! server standing in for AWS KMS, all on 127.0.0.1.
//!
//! Used by `ctl dev up|status|down` (detached processes that outlive `ctl`) and by the
//! integration-test harness (processes that die with the thread that started them).
//!
//! Start-up order ([`Stack::start`]): moto (awskms only) → KMS key + alias `alias/ctl-dev-unseal`
//! in moto → `<dir>/server.hcl` rendered from `templates/openbao/server.hcl.hbs`
//! ([`ServerConfig`]) → `bao server` (output in `<dir>/bao.log`) → listener up → `sys/init`
//! (+ `sys/unseal` for shamir) → `sys/health` 200.
//!
//! Files in the stack dir:
//! - `stack.json`  – [`StackState`]: addresses, pids, seal, version. No secrets.
//! - `root-token`  – the root token, no trailing newline, mode 0600.
//! - `init.json`   – the `sys/init` response (recovery or unseal keys), mode 0600.
//! - `server.hcl`, `bao.log`, `moto.log`, `raft/`.
//!
//! Those two 0600 files are the only place secrets go: nothing here prints or logs them.

mod api;
mod kms;
mod process;
mod scratch;
mod server_config;
mod stack;
mod tools;

pub use api::{health_status, init_throwaway, seal_status, SealStatus};
pub use kms::{create_unseal_key, moto_seal, UNSEAL_KEY_ALIAS};
pub use process::pid_alive;
pub use scratch::Scratch;
pub use server_config::{
    AuditFileConfig, AwsKmsSealConfig, KmsPluginConfig, ListenerConfig, RaftStorageConfig, RetryJoinConfig, ServerConfig,
    ServerConfigV27,
};
pub use server_config::render_text;
pub use stack::{connection, respawn_empty, wipe_bao_data, Stack, StackState, INIT_FILE, ROOT_TOKEN_FILE, STACK_FILE};
pub use tools::Tools;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Which OpenBao release the stack runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum BaoVersion {
    /// OpenBao 2.6.2: built-in `seal "awskms"`.
    #[serde(rename = "2.6")]
    #[value(name = "2.6", alias = "2.6.2")]
    V2_6,
    /// OpenBao 2.7.2: no built-in awskms seal; shamir only here.
    #[serde(rename = "2.7")]
    #[value(name = "2.7", alias = "2.7.2")]
    V2_7,
}

impl BaoVersion {
    /// `"2.6"` / `"2.7"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BaoVersion::V2_6 => "2.6",
            BaoVersion::V2_7 => "2.7",
        }
    }

    /// The exact release the venv installs.
    pub fn release(self) -> &'static str {
        match self {
            BaoVersion::V2_6 => "2.6.2",
            BaoVersion::V2_7 => "2.7.2",
        }
    }

    /// The seal a stack of this version uses unless told otherwise.
    pub fn default_seal(self) -> Seal {
        match self {
            BaoVersion::V2_6 => Seal::AwsKms,
            BaoVersion::V2_7 => Seal::Shamir,
        }
    }
}

impl fmt::Display for BaoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the dev server is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum Seal {
    /// Auto-unseal with a KMS key in moto (recovery keys, no unseal keys). 2.6 only.
    #[serde(rename = "awskms")]
    #[value(name = "awskms")]
    AwsKms,
    /// One shamir share; `ctl` unseals with the key it stored in `init.json`.
    #[serde(rename = "shamir")]
    #[value(name = "shamir")]
    Shamir,
}

impl Seal {
    /// The name OpenBao reports as `type` in `sys/seal-status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Seal::AwsKms => "awskms",
            Seal::Shamir => "shamir",
        }
    }
}

impl fmt::Display for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Stack::start`] starts.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Holds config, data, logs, `stack.json` and the secret files. Created if missing.
    pub dir: PathBuf,
    pub version: BaoVersion,
    pub seal: Seal,
    /// `true` (`ctl dev up`): children get their own session and outlive `ctl`; dropping the
    /// [`Stack`] leaves them running. `false` (tests): children get `PR_SET_PDEATHSIG(SIGKILL)`
    /// tied to the spawning thread, and dropping the [`Stack`] stops them.
    pub detach: bool,
}

impl StackOptions {
    pub fn new(dir: impl Into<PathBuf>, version: BaoVersion) -> StackOptions {
        StackOptions {
            dir: dir.into(),
            version,
            seal: version.default_seal(),
            detach: false,
        }
    }
}

/// Everything that can go wrong with the dev stack. Messages name the binary, the address or
/// port, and carry the tail of the relevant log; none of them carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{what} not found (looked at: {looked}); run `make venv` in the repository root, or set {env_var} to its path")]
    ToolMissing {
        what: &'static str,
        env_var: &'static str,
        looked: String,
    },

    #[error("{binary} is not OpenBao {expected}: `bao version` says {found:?}; run `make venv`")]
    WrongBaoVersion {
        binary: PathBuf,
        expected: &'static str,
        found: String,
    },

    #[error(
        "the {seal} seal is not available with OpenBao {version} (awskms is built into 2.6 only)"
    )]
    UnsupportedSeal { version: BaoVersion, seal: Seal },

    #[error("a dev stack is already running in {dir} (bao pid {pid}); run `ctl dev down --dir {dir}` first", dir = .dir.display())]
    AlreadyRunning { dir: PathBuf, pid: u32 },

    #[error("no running dev stack in {dir}: {reason}; run `ctl dev up --dir {dir}`", dir = .dir.display())]
    NotRunning { dir: PathBuf, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot find a free port on 127.0.0.1: {0}")]
    NoFreePort(#[source] std::io::Error),

    #[error("cannot start {binary}: {source}", binary = .binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{name} ({binary}) exited with {status} while {during}; {log}", binary = .binary.display())]
    Exited {
        name: &'static str,
        binary: PathBuf,
        status: String,
        during: String,
        log: Box<LogTail>,
    },

    #[error("timed out after {secs} s waiting for {what} at {addr}; {log}")]
    Timeout {
        what: String,
        addr: String,
        secs: u64,
        log: Box<LogTail>,
    },

    #[error("moto KMS at {endpoint}: {message}")]
    Kms { endpoint: String, message: String },

    #[error("cannot render {template}: {message}")]
    Template {
        template: &'static str,
        message: String,
    },

    #[error("{method} {url}: {message}")]
    Http {
        method: &'static str,
        url: String,
        message: String,
    },

    #[error("{method} {url}: HTTP {status}: {errors}")]
    Api {
        method: &'static str,
        url: String,
        status: u16,
        errors: String,
    },

    #[error("{path}: {message}", path = .path.display())]
    State { path: PathBuf, message: String },
}

/// The end of a process's log, for errors.
#[derive(Debug, Clone)]
pub struct LogTail {
    pub path: PathBuf,
    pub lines: String,
}

impl LogTail {
    /// The last 30 lines of the log at `path`.
    pub fn of(path: &std::path::Path) -> Box<LogTail> {
        Box::new(LogTail {
            path: path.to_path_buf(),
            lines: process::log_tail(path, 30),
        })
    }
}

impl fmt::Display for LogTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "last lines of {}:\n{}", self.path.display(), self.lines)
    }
}

impl DevError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> DevError {
        DevError::Io {
            context: context.into(),
            source,
        }
    }
}

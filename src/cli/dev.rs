//! `ctl dev up|status|down`: the local dev stack (OpenBao + moto on 127.0.0.1), see
//! [`crate::dev`]. Output names the token *file*, never the token.

use crate::dev::{self, BaoVersion, Seal, Stack, StackOptions, StackState, UNSEAL_KEY_ALIAS};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

pub const DEFAULT_DIR: &str = ".ctl/dev";

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DevCommand {
    /// Start the local dev stack, detached (does nothing if it is already up and healthy).
    Up {
        /// Holds config, data, logs, stack.json and the 0600 secret files.
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// OpenBao release.
        #[arg(long, value_enum, default_value = "2.6")]
        version: BaoVersion,
        /// Seal; default awskms (moto KMS) for 2.6, shamir for 2.7.
        #[arg(long, value_enum)]
        seal: Option<Seal>,
    },
    /// Stop the dev stack; keeps its data unless --purge.
    Down {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Also delete the stack dir (data, logs, token).
        #[arg(long)]
        purge: bool,
    },
    /// Show the dev stack's address, seal status, version and processes.
    Status {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
}

pub async fn run(cmd: DevCommand) -> anyhow::Result<()> {
    match cmd {
        DevCommand::Up { dir, version, seal } => {
            up(&dir, version, seal.unwrap_or(version.default_seal())).await
        }
        DevCommand::Down { dir, purge } => down(&dir, purge).await,
        DevCommand::Status { dir } => status(&dir).await,
    }
}

async fn up(dir: &Path, version: BaoVersion, seal: Seal) -> anyhow::Result<()> {
    if seal == Seal::AwsKms && version != BaoVersion::V2_6 {
        bail!(dev::DevError::UnsupportedSeal { version, seal });
    }
    if let Ok(state) = Stack::load(dir) {
        let healthy = state.bao_alive()
            && state.moto_alive() != Some(false)
            && dev::health_status(&state.bao_addr).await.ok() == Some(200);
        if healthy {
            if state.version != version || state.seal != seal {
                bail!(
                    "a dev stack with OpenBao {} ({} seal) is already running in {}; run `ctl dev down --dir {}` first",
                    state.version,
                    state.seal,
                    dir.display(),
                    dir.display()
                );
            }
            println!("dev stack already up in {}", dir.display());
            print_state(&state);
            return Ok(());
        }
        // Half-dead: the moto KMS key (in memory) or the process is gone, so start afresh.
        println!("dev stack in {} is not (fully) running; stopping what is left and starting a fresh one", dir.display());
        state.stop().await;
    }
    let opts = StackOptions {
        dir: dir.to_path_buf(),
        version,
        seal,
        detach: true,
    };
    let stack = Stack::start(opts)
        .await
        .with_context(|| format!("cannot start the dev stack in {}", dir.display()))?;
    println!("dev stack up in {}", dir.display());
    print_state(&stack.state());
    Ok(())
}

fn print_state(state: &StackState) {
    println!(
        "  OpenBao {}   {} (seal: {}, pid {})",
        state.version, state.bao_addr, state.seal, state.bao_pid
    );
    if let (Some(endpoint), Some(pid)) = (&state.moto_endpoint, state.moto_pid) {
        let key = state.kms_key_id.as_deref().unwrap_or("?");
        println!("  moto KMS      {endpoint} (key {key} = {UNSEAL_KEY_ALIAS}, pid {pid})");
    }
    println!(
        "  root token    in {} (mode 0600)",
        state.token_file.display()
    );
    println!("  export BAO_ADDR={}", state.bao_addr);
}

async fn down(dir: &Path, purge: bool) -> anyhow::Result<()> {
    match Stack::load(dir) {
        Ok(state) => {
            state.stop().await;
            println!("dev stack in {} stopped", dir.display());
        }
        Err(dev::DevError::NotRunning { .. }) => println!("no dev stack in {}", dir.display()),
        Err(e) => return Err(e.into()),
    }
    if purge && dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        println!("removed {}", dir.display());
    }
    Ok(())
}

async fn status(dir: &Path) -> anyhow::Result<()> {
    let state = Stack::load(dir)?;
    let bao_alive = state.bao_alive();
    println!(
        "dev stack in {} (started {})",
        dir.display(),
        state.started_at
    );
    println!("  bao address   {}", state.bao_addr);
    println!(
        "  bao pid       {} ({})",
        state.bao_pid,
        alive_word(bao_alive)
    );
    if bao_alive {
        match dev::seal_status(&state.bao_addr).await {
            Ok(s) => {
                println!("  initialized   {}", s.initialized);
                println!("  sealed        {}", s.sealed);
                println!("  seal type     {}", s.seal_type);
                println!("  version       {}", s.version);
            }
            Err(e) => println!("  seal status   unavailable: {e}"),
        }
    } else {
        println!("  seal type     {} (configured)", state.seal);
        println!("  version       {} (configured)", state.version);
    }
    let moto_alive = state.moto_alive();
    match (&state.moto_endpoint, state.moto_pid, moto_alive) {
        (Some(endpoint), Some(pid), Some(alive)) => {
            println!("  moto endpoint {endpoint}");
            println!("  moto pid      {pid} ({})", alive_word(alive));
            if let Some(key) = &state.kms_key_id {
                println!("  kms key       {key} ({UNSEAL_KEY_ALIAS})");
            }
        }
        _ => println!("  moto          not used ({} seal)", state.seal),
    }
    println!("  token file    {}", state.token_file.display());
    if !bao_alive || moto_alive == Some(false) {
        bail!(
            "the dev stack in {} is not running; run `ctl dev up --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

fn alive_word(alive: bool) -> &'static str {
    if alive {
        "running"
    } else {
        "not running"
    }
}

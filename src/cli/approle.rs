//! `ctl approle issue`: a response-wrapped secret-id, never the raw secret-id.

use crate::openbao::access::Role;
use super::{context, CmdResult, EnvArgs};
use crate::config::Duration;
use crate::openbao::approle::issue_wrapped_secret_id;
use anyhow::{bail, Context};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use super::Status;

#[derive(clap::Subcommand, Debug)]
pub enum ApproleCommand {
    /// Issue a secret-id for WORKSPACE's ROLE, response-wrapped: prints only the wrapping token
    /// (single use, expires after --wrap-ttl); the workload unwraps it once.
    Issue {
        #[command(flatten)]
        env: EnvArgs,
        workspace: String,
        role: String,
        /// Lifetime of the wrapping token (e.g. 5m, 1h). Between 10s and 24h.
        #[arg(long, default_value = "5m")]
        wrap_ttl: String,
        /// Write the wrapping token to this file (mode 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub async fn run(cmd: ApproleCommand) -> CmdResult {
    let ApproleCommand::Issue { env, workspace, role, wrap_ttl, out } = cmd;
    let ttl: Duration = wrap_ttl.parse().map_err(|e| anyhow::anyhow!("--wrap-ttl: {e}"))?;
    if !(10..=86_400).contains(&ttl.0) {
        bail!("--wrap-ttl must be between 10s and 24h, got {ttl}");
    }
    let loaded = context::load(&env)?;
    let Some(ws) = loaded.env.workspaces.iter().find(|w| w.name == workspace) else {
        bail!("no workspace {workspace:?} in {}", env.env.display());
    };
    let Some(approle) = ws.approle.as_ref().filter(|a| a.roles.contains_key(&role)) else {
        bail!("workspace {workspace:?} declares no AppRole role {role:?}");
    };
    let bao = context::connect(&loaded.env, env.parallelism, Role::Apply).await?;
    let wrapped = issue_wrapped_secret_id(&bao, &ws.namespace, &approle.mount, &role, &ttl.to_string())
        .await
        .with_context(|| format!("issuing a secret-id for {workspace}/{role}"))?;
    match out {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            f.write_all(wrapped.token.expose().as_bytes())?;
            eprintln!("Wrapping token written to {} (mode 0600).", path.display());
        }
        None => println!("{}", wrapped.token.expose()),
    }
    eprintln!(
        "Response-wrapped secret-id for {workspace}/{role}: single use, expires in {}s; accessor {}; unwrap at {}.",
        wrapped.ttl_secs, wrapped.accessor, wrapped.creation_path
    );
    Ok(Status::Success)
}

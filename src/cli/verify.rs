//! `ctl verify`: log in as sampled workspaces' AppRoles and prove isolation.

use super::{context, CmdResult, EnvArgs};
use crate::openbao::verify::{verify_workspace, Probe};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// How many workspaces to check (evenly spread over the sorted list); 0 = all.
    #[arg(long, default_value_t = 10)]
    pub sample: usize,
}

pub async fn run(args: VerifyArgs) -> CmdResult {
    let loaded = context::load(&args.env)?;
    let bao = context::connect(&loaded.env)?;
    let candidates: Vec<_> = loaded.env.workspaces.iter().filter(|w| w.approle.as_ref().is_some_and(|a| !a.roles.is_empty())).collect();
    if candidates.len() < 2 {
        anyhow::bail!("verify needs at least two workspaces with an AppRole role (found {})", candidates.len());
    }
    let n = if args.sample == 0 { candidates.len() } else { args.sample.clamp(2, candidates.len()) };
    let step = candidates.len() as f64 / n as f64;
    let sample: Vec<_> = (0..n).map(|i| candidates[(i as f64 * step) as usize]).collect();

    let mut failures = 0;
    for (i, ws) in sample.iter().enumerate() {
        let other = sample[(i + 1) % sample.len()];
        let result = verify_workspace(&bao, ws, other).await;
        match result {
            Ok(Probe { role, own_read, cross_status }) => {
                let ok = own_read && cross_status == 403;
                if !ok {
                    failures += 1;
                }
                println!(
                    "{} {:<24} role {:<12} own KV: {:<6} {}'s KV: HTTP {}",
                    if ok { "ok  " } else { "FAIL" },
                    ws.name,
                    role,
                    if own_read { "read" } else { "DENIED" },
                    other.name,
                    cross_status
                );
            }
            Err(e) => {
                failures += 1;
                println!("FAIL {:<24} {e:#}", ws.name);
            }
        }
    }
    println!("{} of {} workspaces isolated as declared.", sample.len() - failures, sample.len());
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

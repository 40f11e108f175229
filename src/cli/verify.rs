//! `ctl verify`: log in as sampled workspaces' AppRoles and prove isolation.

use crate::openbao::access::Role;
use super::{context, CmdResult, EnvArgs};
use crate::openbao::verify::{verify_workspace, Probe};
use super::Status;

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
    let bao = context::connect(&loaded.env, args.env.parallelism, Role::Apply).await?;
    let sample = crate::openbao::verify::sample(&loaded.env.workspaces, args.sample);
    if sample.is_empty() {
        anyhow::bail!("verify needs at least two workspaces with an AppRole role");
    }

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
    Ok(if failures == 0 { Status::Success } else { Status::Failure })
}

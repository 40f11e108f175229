//! `ctl lock status|break` and `ctl journal`: the apply lock and ctl's audit journal.

use crate::openbao::access::Role;
use super::{context, CmdResult, EnvArgs};
use crate::openbao::{journal, lock, state};
use super::Status;

#[derive(clap::Subcommand, Debug)]
pub enum LockCommand {
    /// Who holds the environment's apply lock, if anyone.
    Status {
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Remove a dead holder's lock (recorded in the journal).
    Break {
        #[command(flatten)]
        env: EnvArgs,
        /// The lock id shown by `ctl lock status` (so a new holder's lock is never broken by mistake).
        #[arg(long)]
        id: String,
    },
}

pub async fn run(cmd: LockCommand) -> CmdResult {
    match cmd {
        LockCommand::Status { env } => {
            let loaded = context::load(&env)?;
            let bao = context::connect(&loaded.env, env.parallelism, Role::Plan).await?;
            match lock::status(&bao, &loaded.env.name).await? {
                Some(l) => println!(
                    "locked: id {} owner {} acquired at {} expires in {}s{}",
                    l.id,
                    l.owner,
                    l.acquired_at,
                    l.expires_at.saturating_sub(state::now_secs()),
                    l.plan.map(|p| format!(" plan {}", &p[..p.len().min(12)])).unwrap_or_default()
                ),
                None => println!("unlocked"),
            }
            Ok(Status::Success)
        }
        LockCommand::Break { env, id } => {
            let loaded = context::load(&env)?;
            let bao = context::connect(&loaded.env, env.parallelism, Role::Apply).await?;
            let broken = lock::break_lock(&bao, &loaded.env.name, &id).await?;
            let entry = journal::Entry {
                at: state::now_secs(),
                actor: state::actor(),
                event: "lock-break".into(),
                plan: broken.plan.clone(),
                git_commit: None,
                changes: vec![journal::ChangeRecord {
                    address: format!("lock {}", broken.id),
                    action: "break".into(),
                    outcome: format!("was held by {}", broken.owner),
                }],
            };
            journal::record(&bao, &loaded.env.name, &entry).await?;
            println!("broke lock {} (held by {}); recorded in the journal", broken.id, broken.owner);
            Ok(Status::Success)
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct JournalArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// How many of the newest entries to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn journal(args: JournalArgs) -> CmdResult {
    let loaded = context::load(&args.env)?;
    let bao = context::connect(&loaded.env, args.env.parallelism, Role::Plan).await?;
    for e in journal::read(&bao, &loaded.env.name, args.limit).await? {
        if args.json {
            println!("{}", serde_json::to_string(&e)?);
            continue;
        }
        let failed = e.changes.iter().filter(|c| c.outcome != "done").count();
        println!(
            "{} {} by {} plan {} commit {}: {} changes ({} not done)",
            e.at,
            e.event,
            e.actor,
            e.plan.as_deref().map(|p| &p[..p.len().min(12)]).unwrap_or("-"),
            e.git_commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("-"),
            e.changes.len(),
            failed
        );
    }
    Ok(Status::Success)
}

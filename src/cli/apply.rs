//! `ctl apply [PLAN]`: refuses conflicts, un-flagged data loss and stale plans before it
//! touches anything; then executes in dependency order with bounded concurrency.

use super::{context, CmdResult, EnvArgs};
use crate::execute::{self, Report, Status};
use crate::model::Address;
use crate::diff::Change;
use crate::model::Provider;
use crate::openbao::apply::apply_change;
use super::context::{Loaded, Session};
use crate::openbao::{journal, lock, state, token};
use std::path::Path;
use crate::plan::Plan;
use crate::render;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved by `ctl plan --out`. Without it, ctl plans now and asks before applying.
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Apply without asking (only needed without a saved plan).
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow this data-losing delete or replace (a namespace, KV or transit mount, transit key).
    /// Repeat for each address.
    #[arg(long = "allow-destroy", value_name = "ADDRESS")]
    pub allow_destroy: Vec<String>,
    /// How long to wait for another apply of the same environment to finish.
    #[arg(long, default_value = "5m", value_parser = super::parse_duration)]
    pub lock_wait: crate::config::Duration,
    /// Lifetime of the apply lock; it is renewed every third of this while applying.
    #[arg(long, default_value = "2m", value_parser = super::parse_duration)]
    pub lock_ttl: crate::config::Duration,
}

pub async fn run(args: ApplyArgs) -> CmdResult {
    let saved = args.plan.as_ref().map(|p| Plan::load(p).map(|plan| (p.clone(), plan))).transpose()?;
    let loaded = context::load(&args.env)?;
    if let Some((path, plan)) = &saved {
        check_saved(path, plan, &loaded)?;
        check_guards(plan, &args.allow_destroy)?;
    }
    let session = context::session(&loaded.env).await?;

    // One apply per environment at a time; the lock is renewed while we work.
    let plan_id = saved.as_ref().map(|(_, p)| p.fingerprint.to_string());
    let mut held = lock::acquire(
        &session.bao,
        &loaded.env.name,
        &state::actor(),
        plan_id,
        std::time::Duration::from_secs(args.lock_ttl.0),
        std::time::Duration::from_secs(args.lock_wait.0),
    )
    .await?;
    let (done, done_rx) = tokio::sync::watch::channel(false);
    let work = async {
        let result = apply_locked(&args, saved, &loaded, &session).await;
        let _ = done.send(true);
        result
    };
    let keep_alive = async {
        if let Err(e) = token::keep_alive(&session.bao, done_rx.clone()).await {
            tracing::warn!(error = %e, "could not renew ctl's token");
        }
    };
    let (result, heartbeat, ()) = tokio::join!(work, held.heartbeat(done_rx.clone()), keep_alive);
    if let Err(e) = held.release().await {
        tracing::warn!(error = %e, "could not release the apply lock; it expires by itself");
    }
    heartbeat.context("the apply lock")?;
    result
}

/// A saved plan must be for this environment, unexpired, from this commit and these files.
fn check_saved(path: &Path, plan: &Plan, loaded: &Loaded) -> anyhow::Result<()> {
    if plan.environment != loaded.env.name {
        bail!("{} is a plan for environment {:?}, not {:?}", path.display(), plan.environment, loaded.env.name);
    }
    plan.check_applicable(state::now_secs(), context::git_commit(&loaded.env.dir).as_deref())
        .with_context(|| format!("refusing {}; nothing was applied", path.display()))?;
    if plan.desired_digest != loaded.env.source_digest {
        bail!("the environment files changed since {} was made; run `ctl plan` again", path.display());
    }
    Ok(())
}

async fn apply_locked(
    args: &ApplyArgs,
    saved: Option<(PathBuf, Plan)>,
    loaded: &Loaded,
    session: &Session,
) -> CmdResult {
    let plan = match saved {
        Some((path, plan)) => {
            // Re-read what the plan touches (under the lock) and refuse if any of it changed.
            let only = plan.touched_workspaces();
            let aws = plan.touched().iter().any(|a| a.workspace_name().is_none());
            let scope = context::Scope::Touched { workspaces: &only, aws };
            let now = context::observe_env(session, &loaded.env, scope, args.env.parallelism).await?;
            let stale = plan.stale(&now);
            if !stale.is_empty() {
                let list: Vec<String> = stale
                    .iter()
                    .map(|s| format!("  {} (planned {}, now {})", s.address, s.planned.short(), s.now.short()))
                    .collect();
                bail!(
                    "live state changed since {} was made; nothing was applied. Changed:\n{}\nRun `ctl plan` again.",
                    path.display(),
                    list.join("\n")
                );
            }
            // Boot artifacts are checked again now: the bucket may have changed since the plan.
            if let Some(aws) = &session.aws {
                crate::aws::ec2::check_boot_artifacts(aws, &loaded.env, &plan.changes).await?;
            }
            plan
        }
        None => {
            // Our own namespaces left tainted by an interrupted rollback would block the plan.
            // If OpenBao does not finish one, the plan reports it as a conflict with the reason.
            match crate::openbao::apply::resume_stuck_deletions(&session.bao, &loaded.env.name).await {
                Ok(cleared) if !cleared.is_empty() => {
                    println!("Finished {} interrupted namespace deletion(s): {}", cleared.len(), cleared.join(", "))
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not finish an interrupted namespace deletion"),
            }
            let plan = context::plan_with(loaded, session, args.env.parallelism).await?;
            print!("{}", render::text::render(&plan, super::color_enabled_stdout()));
            check_guards(&plan, &args.allow_destroy)?;
            if plan.has_changes() && !args.auto_approve && !confirm()? {
                eprintln!("Apply cancelled; nothing was changed.");
                return Ok(ExitCode::FAILURE);
            }
            plan
        }
    };
    if !plan.has_changes() {
        println!("No changes to apply.");
        return Ok(ExitCode::SUCCESS);
    }

    let report = apply_plan(session, &plan, usize::from(args.env.parallelism)).await;
    print_report(&report);
    let entry = journal::Entry {
        at: state::now_secs(),
        actor: state::actor(),
        event: "apply".into(),
        plan: Some(plan.fingerprint.to_string()),
        git_commit: plan.git_commit.clone(),
        changes: report
            .outcomes
            .iter()
            .map(|o| journal::ChangeRecord {
                address: o.address.to_string(),
                action: o.action.verb().to_string(),
                outcome: match &o.status {
                    Status::Done => "done".into(),
                    Status::Failed(_) => "failed".into(),
                    Status::Skipped { because } => format!("skipped ({because} did not succeed)"),
                },
            })
            .collect(),
    };
    if let Err(e) = journal::record(&session.bao, &loaded.env.name, &entry).await {
        tracing::warn!(error = %e, "could not write the audit journal entry");
        eprintln!("warning: the audit journal entry was not written: {e}");
    }
    if report.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!(
            "{} change(s) failed and {} were skipped; everything applied so far is consistent. Fix the cause and run `ctl plan`/`ctl apply` again: it converges.",
            report.failed().count(),
            report.skipped()
        )
    }
}

/// Conflicts and un-flagged data loss stop the whole apply before any call.
fn check_guards(plan: &Plan, allow: &[String]) -> anyhow::Result<()> {
    if !plan.conflicts.is_empty() {
        let list: Vec<String> = plan.conflicts.iter().map(|c| format!("  {}: {}", c.address, c.message)).collect();
        bail!("the plan has conflicts; nothing was applied:\n{}", list.join("\n"));
    }
    let allowed: BTreeSet<Address> = allow.iter().map(Address::new).collect();
    let forbidden = plan.forbidden_destroys(&allowed);
    if !forbidden.is_empty() {
        let list: Vec<String> = forbidden
            .iter()
            .map(|c| format!("  {} {} (allow with --allow-destroy={})", c.action.verb(), c.address, c.address))
            .collect();
        bail!("refusing to destroy data without an explicit flag; nothing was applied:\n{}", list.join("\n"));
    }
    Ok(())
}

fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not a terminal: pass --auto-approve, or save a plan with `ctl plan --out` and apply it");
    }
    eprint!("Apply these changes? Only 'yes' is accepted: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the answer")?;
    Ok(line.trim() == "yes")
}

/// One change, by the provider that owns its kind.
async fn apply_one(session: &Session, change: &Change) -> Result<(), String> {
    match change.kind.provider() {
        Provider::OpenBao => apply_change(&session.bao, change).await.map_err(|e| e.to_string()),
        Provider::Aws => match &session.aws {
            Some(aws) => crate::aws::apply_change(aws, change).await.map_err(|e| e.to_string()),
            None => Err(format!("{}: the environment has no aws: section", change.address)),
        },
    }
}

/// Execute a plan's changes (also used by `ctl bench`).
pub async fn apply_plan(session: &Session, plan: &Plan, parallelism: usize) -> Report {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(plan.changes.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} changes {elapsed} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = execute::execute_adaptive(
        &plan.changes,
        parallelism,
        Some(&session.bao.pressure),
        |change| async move { apply_one(session, &change).await },
        |outcome| {
            bar.inc(1);
            if let Status::Failed(e) = &outcome.status {
                tracing::warn!(address = %outcome.address, error = %e, "change failed");
            }
        },
    )
    .await;
    bar.finish_and_clear();
    report
}

fn print_report(report: &Report) {
    for o in &report.outcomes {
        match &o.status {
            Status::Done => {}
            Status::Failed(e) => eprintln!("  ✗ {} {}: {e}", o.action.verb(), o.address),
            Status::Skipped { because } => eprintln!("  · {} {} skipped: {because} did not succeed", o.action.verb(), o.address),
        }
    }
    if report.throttled > 0 {
        println!(
            "OpenBao pushed back {} time(s) (429/5xx, each retried): concurrency backed off to {} at the lowest.",
            report.throttled, report.lowest_concurrency
        );
    }
    println!(
        "Applied {} of {} changes in {:.1}s ({} failed, {} skipped).",
        report.succeeded(),
        report.outcomes.len(),
        report.elapsed.as_secs_f64(),
        report.failed().count(),
        report.skipped()
    );
}

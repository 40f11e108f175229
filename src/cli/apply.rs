//! `ctl apply [PLAN]`: refuses conflicts, un-flagged data loss and stale plans before it
//! touches anything; then executes in dependency order with bounded concurrency.

use crate::openbao::access::Role;
use super::context::{Loaded, Session};
use super::{context, CmdResult, EnvArgs};
use crate::diff::Change;
use crate::engine::{self, Guard};
use crate::execute::{Report, Status};
use crate::model::Address;
use crate::openbao::{journal, state};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use crate::plan::Plan;
use crate::render;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use super::Term;

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

pub async fn run(args: ApplyArgs, term: Term) -> CmdResult {
    let saved = args.plan.as_ref().map(|p| Plan::load(p).map(|plan| (p.clone(), plan))).transpose()?;
    let mut loaded = context::load(&args.env)?;
    let guard = Guard::apply(args.allow_destroy.iter().map(Address::new));
    if let Some((path, plan)) = &saved {
        check_saved(path, plan, &loaded)?;
        guard.check(&plan.changes, &plan.conflicts)?;
    }
    let mut session = context::session(&loaded.env, args.env.parallelism, Role::Apply).await?;
    context::read_webhook(&mut loaded, &mut session).await?;
    if let Some((path, plan)) = &saved {
        check_signature(path, plan, &loaded, &session).await?;
    }

    // One apply per environment at a time; the lock is renewed while we work (prompt included).
    let spec = engine::LockSpec {
        environment: &loaded.env.name,
        plan: saved.as_ref().map(|(_, p)| p.fingerprint.to_string()),
        ttl: std::time::Duration::from_secs(args.lock_ttl.0),
        wait: std::time::Duration::from_secs(args.lock_wait.0),
    };
    super::locked(engine::with_lock(&session.bao, spec, |lost| apply_locked(&args, &guard, saved, &loaded, &session, lost, term)).await)
}

/// A saved plan must carry ctl's signature of its fingerprint (see `openbao::signing`).
async fn check_signature(path: &Path, plan: &Plan, loaded: &Loaded, session: &Session) -> anyhow::Result<()> {
    let Some(signature) = &plan.signature else {
        bail!("{} is not signed; only plans saved by `ctl plan --out` are applied. Nothing was applied.", path.display());
    };
    let valid = crate::openbao::signing::verify(&session.bao, &loaded.env.name, plan.fingerprint.as_str(), signature)
        .await
        .context("verifying the plan's signature")?;
    if !valid {
        bail!(
            "{}: the signature does not match the plan (edited, or signed for another environment or deployment); nothing was applied",
            path.display()
        );
    }
    Ok(())
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
    guard: &Guard,
    saved: Option<(PathBuf, Plan)>,
    loaded: &Loaded,
    session: &Session,
    lost: Arc<AtomicBool>,
    term: Term,
) -> CmdResult {
    let full = saved.is_none();
    let plan = match saved {
        Some((path, plan)) => {
            // Re-read what the plan touches (under the lock) and refuse if any of it changed.
            let only = plan.touched_workspaces();
            let aws = plan.touched().iter().any(|a| a.workspace_name().is_none());
            let scope = context::Scope::Touched { workspaces: &only, aws, listed: None };
            let now = context::observe_env(session, &loaded.env, &scope, args.env.parallelism).await?;
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
            // A --refresh changed plan trusted workspaces by their recorded digest: one that
            // moved since was applied by someone else in between.
            if let Some(note) = plan.refresh.as_ref().filter(|n| !n.trusted.is_empty()) {
                let (managed, _) = crate::openbao::observe::namespaces(&session.bao, &loaded.env.name).await?;
                let now: std::collections::BTreeMap<&str, Option<&String>> = managed.iter().map(|m| (m.workspace.as_str(), m.digest.as_ref())).collect();
                let moved: Vec<&str> = note.trusted.iter().filter(|(ws, d)| now.get(ws.as_str()).copied().flatten() != Some(*d)).map(|(ws, _)| ws.as_str()).collect();
                if !moved.is_empty() {
                    bail!(
                        "{} trusted {} workspace(s) as applied whose recorded state changed since (applied in between?): {}; nothing was applied. Run `ctl plan` again.",
                        path.display(),
                        moved.len(),
                        moved.iter().take(10).copied().collect::<Vec<_>>().join(", ")
                    );
                }
            }
            // Re-derive the plan over the same scope, from the environment files (already
            // checked by digest) and what was just read: the saved changes must be exactly
            // those, and nothing ctl does not own may have appeared at their targets.
            let desired: Vec<_> = loaded.desired.iter().filter(|r| scope.contains(&r.address)).cloned().collect();
            let fresh = crate::diff::diff(&desired, &now.resources, &now.unmanaged);
            let mismatches = plan.mismatches(&fresh);
            if !mismatches.is_empty() {
                let list: Vec<String> = mismatches.iter().map(|m| format!("  {m}")).collect();
                bail!(
                    "{} is not what the environment files and live state call for now; nothing was applied:\n{}\nRun `ctl plan` again.",
                    path.display(),
                    list.join("\n")
                );
            }
            // Boot artifacts are checked again now: the bucket may have changed since the plan.
            if let Some(aws) = &session.aws {
                crate::gates::boot_artifacts(aws, &loaded.env, &plan.changes).await?;
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
            print!("{}", render::text::render(&plan, term.color_stdout, false));
            guard.check(&plan.changes, &plan.conflicts)?;
            context::deny_warnings(&plan, &loaded.env, false)?;
            if plan.has_changes() && !args.auto_approve && !confirm(term, "Apply these changes?", "or save a plan with `ctl plan --out` and apply it").await? {
                eprintln!("Apply cancelled; nothing was changed.");
                return Ok(super::Status::Failure);
            }
            plan
        }
    };
    if !plan.has_changes() {
        println!("No changes to apply.");
        record_digests(loaded, session, args.env.parallelism, full).await;
        return Ok(super::Status::Success);
    }

    let changes = guard.check(&plan.changes, &plan.conflicts)?;
    let report = apply_plan(session, &changes, usize::from(args.env.parallelism), &lost, term).await;
    print_report(&report);
    let entry = engine::journal_entry("apply", Some(plan.fingerprint.to_string()), plan.git_commit.clone(), &report);
    // An apply nobody can audit is not a success: the changes stay, the exit code says so.
    let journal = journal::record(&session.bao, &loaded.env.name, &entry).await;
    if let Err(e) = &journal {
        tracing::warn!(error = %e, "could not write the audit journal entry");
        eprintln!("warning: the audit journal entry was not written: {e}");
    }
    if report.is_success() {
        if journal.is_err() {
            bail!("the changes were applied, but the audit journal entry was not written (see above); fix ctl's access and keep a record of this apply by hand");
        }
        record_digests(loaded, session, args.env.parallelism, full).await;
        Ok(super::Status::Success)
    } else {
        bail!(
            "{} change(s) failed and {} were skipped; everything applied so far is consistent. Fix the cause and run `ctl plan`/`ctl apply` again: it converges.",
            report.failed().count(),
            report.skipped()
        )
    }
}

/// The environment is as declared: record each workspace's desired-state digest where it
/// moved. Best effort: a digest not written only means that workspace is read again by the
/// next `--refresh changed` plan.
async fn record_digests(loaded: &Loaded, session: &Session, parallelism: u16, full: bool) {
    if full {
        // Everything was read and now is as declared: a clean full check.
        crate::openbao::refresh::record_full_check(&session.bao, &loaded.env.name, true).await;
    }
    let digests = crate::desired::workspace_digests(&loaded.desired);
    match crate::openbao::apply::record_digests(&session.bao, &loaded.env.name, &digests, usize::from(parallelism)).await {
        Ok(n) => tracing::debug!(written = n, "workspace digests recorded"),
        Err(e) => tracing::warn!(error = %e, "could not record the workspace digests; the next --refresh changed plan reads those workspaces"),
    }
}

/// Asks on the terminal without blocking the runtime: the lock's heartbeat keeps renewing it
/// however long the answer takes.
pub(crate) async fn confirm(term: Term, question: &str, otherwise: &str) -> anyhow::Result<bool> {
    if !term.interactive {
        bail!("not a terminal: pass --auto-approve, {otherwise}");
    }
    eprint!("{question} Only 'yes' is accepted: ");
    std::io::stderr().flush().ok();
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .context("reading the answer")?
    .context("reading the answer")?;
    Ok(line.trim() == "yes")
}

/// Execute changes that passed the guard (also used by `ctl bench` and the drill). No change
/// starts once `stop` is set.
pub async fn apply_plan(session: &Session, changes: &[Change], parallelism: usize, stop: &AtomicBool, term: Term) -> Report {
    let bar = if term.progress {
        let bar = ProgressBar::with_draw_target(Some(changes.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} changes {elapsed} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let providers = engine::Providers { bao: Some(&session.bao), aws: session.aws.as_ref() };
    let report = engine::run(providers, changes, parallelism, stop, |outcome| {
        bar.inc(1);
        if let Status::Failed(e) = &outcome.status {
            tracing::warn!(address = %outcome.address, error = %e, "change failed");
        }
    })
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

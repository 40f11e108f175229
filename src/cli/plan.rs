//! `ctl validate` and `ctl plan`.

use super::{context, CmdResult, EnvArgs};
use crate::render;
use anyhow::Context;
use std::path::PathBuf;
use super::{Status, Term};

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Save the plan (with fingerprints of everything read) for `ctl apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the versioned JSON plan document instead of text.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print a pull-request comment (markdown, size-capped).
    #[arg(long)]
    pub markdown: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Text: list every attribute of created resources too (updates always show their diffs).
    #[arg(long)]
    pub detail: bool,
    /// Backtest every alarm the plan creates or changes in how it evaluates over this many days
    /// of its metric (0: none).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(0..=63))]
    pub backtest_days: u32,
    /// Write one PNG chart per backtested alarm here (for CI to attach).
    #[arg(long, value_name = "DIR")]
    pub chart_dir: Option<PathBuf>,
    /// `changed`: read only the workspaces whose recorded digest differs from the files (new,
    /// removed or edited), trusting the others as applied, when a full drift check found no
    /// drift within --max-trust-age; `all` reads everything.
    #[arg(long, value_enum, default_value = "all")]
    pub refresh: context::Refresh,
    /// How recent the last clean full drift check must be for `--refresh changed` to trust
    /// anything (e.g. 24h).
    #[arg(long, default_value = "24h", value_parser = super::parse_duration)]
    pub max_trust_age: crate::config::Duration,
    /// Exit 1 (and save nothing) when a policy the plan writes has lint warnings (also
    /// `policy_lint.deny_warnings` in the environment file).
    #[arg(long)]
    pub deny_warnings: bool,
    /// How long a saved plan stays applicable (e.g. 30m, 24h).
    #[arg(long, default_value = "24h", value_parser = super::parse_duration)]
    pub max_age: crate::config::Duration,
}

pub fn validate(args: &EnvArgs, deny_warnings: bool) -> CmdResult {
    let loaded = context::load(args)?;
    println!(
        "{}: valid ({} workspaces, {} resources)",
        args.env.display(),
        loaded.env.workspaces.len(),
        loaded.desired.len()
    );
    let warnings = crate::policy::lint_declared(&loaded.env, &loaded.desired, None);
    for w in &warnings {
        println!("  ! {}: {} [{}]", w.address, w.message, w.rule.as_str());
    }
    if !warnings.is_empty() {
        let deny = deny_warnings || loaded.env.policy_lint.as_ref().is_some_and(|p| p.deny_warnings);
        println!("{} policy warning(s){}", warnings.len(), if deny { "" } else { " (accept one on purpose in policy_lint.allow; --deny-warnings fails on them)" });
        if deny {
            std::mem::forget(loaded);
            anyhow::bail!("{} policy warning(s) and {}", warnings.len(), if deny_warnings { "--deny-warnings" } else { "policy_lint.deny_warnings: true" });
        }
    }
    // Freeing tens of thousands of resources one by one takes longer than validating them
    // (~12% of a 10,000-workspace validate); the process exits right after, which frees it all.
    std::mem::forget(loaded);
    Ok(Status::Success)
}

pub async fn run(args: PlanArgs, term: Term) -> CmdResult {
    let started = std::time::Instant::now();
    let (loaded, session, mut plan) = context::make_plan_refreshed(&args.env, args.refresh, args.max_trust_age.0).await?;
    read_summary(&loaded, &session, started.elapsed());
    if let (Some(aws), true) = (&session.aws, args.backtest_days > 0) {
        crate::alarms::review::annotate(aws, &mut plan.changes, args.backtest_days, args.chart_dir.as_deref()).await;
    }
    let mut plan = plan.bound_to(context::git_commit(&loaded.env.dir), args.max_age.0);
    if args.out.is_some() {
        let signature = crate::openbao::signing::sign(&session.bao, &loaded.env.name, plan.fingerprint.as_str())
            .await
            .context("signing the saved plan with ctl's key in OpenBao")?;
        plan.signature = Some(signature);
    }
    if args.json {
        println!("{}", plan.to_json());
    } else if args.markdown {
        print!("{}", render::markdown::render(&plan, render::MARKDOWN_LIMIT));
    } else {
        print!("{}", render::text::render(&plan, term.color_stdout, args.detail));
    }
    context::deny_warnings(&plan, &loaded.env, args.deny_warnings)?;
    if let Some(out) = &args.out {
        plan.save(out)?;
        eprintln!("Saved plan to {} (apply with: ctl apply {} -e {})", out.display(), out.display(), args.env.env.display());
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { Status::Changes } else { Status::Success })
}

/// One stderr line on what planning cost: the numbers to watch as an environment grows.
fn read_summary(loaded: &context::Loaded, session: &context::Session, took: std::time::Duration) {
    let workspaces = loaded.env.workspaces.len();
    let requests = session.bao.requests();
    let per_workspace = if workspaces == 0 { String::new() } else {
        format!(" ({:.1} per workspace)", requests as f64 / workspaces as f64)
    };
    tracing::info!(workspaces, requests, took_ms = took.as_millis() as u64, "planned");
    eprintln!("Planned {workspaces} workspace(s) in {:.1}s with {requests} OpenBao request(s){per_workspace}.", took.as_secs_f64());
}

#[derive(clap::Args, Debug)]
pub struct DriftArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Print the drift as a markdown report (e.g. for an issue) instead of text.
    #[arg(long)]
    pub markdown: bool,
}

/// Scheduled drift detection: the exit code says whether live state left the declared state.
pub async fn drift(args: DriftArgs, term: Term) -> CmdResult {
    let (loaded, session, plan) = context::make_plan(&args.env).await?;
    // A clean one is recorded by the plan itself; one that found drift is recorded here.
    if plan.has_changes() || !plan.conflicts.is_empty() {
        crate::openbao::refresh::record_full_check(&session.bao, &loaded.env.name, false).await;
    }
    if args.markdown {
        print!("{}", render::markdown::render(&plan, render::MARKDOWN_LIMIT));
    } else {
        print!("{}", render::text::render(&plan, term.color_stdout, true));
    }
    Ok(if plan.has_changes() { Status::Changes } else { Status::Success })
}

//! `ctl validate` and `ctl plan`.

use super::{context, CmdResult, EnvArgs};
use crate::render;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// How long a saved plan stays applicable (e.g. 30m, 24h).
    #[arg(long, default_value = "24h", value_parser = super::parse_duration)]
    pub max_age: crate::config::Duration,
}

pub fn validate(args: &EnvArgs) -> CmdResult {
    let loaded = context::load(args)?;
    println!(
        "{}: valid ({} workspaces, {} resources)",
        args.env.display(),
        loaded.env.workspaces.len(),
        loaded.desired.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: PlanArgs) -> CmdResult {
    let (loaded, _session, plan) = context::make_plan(&args.env).await?;
    let plan = plan.bound_to(context::git_commit(&loaded.env.dir), args.max_age.0);
    if args.json {
        println!("{}", plan.to_json());
    } else if args.markdown {
        print!("{}", render::markdown::render(&plan, render::MARKDOWN_LIMIT));
    } else {
        print!("{}", render::text::render(&plan, super::color_enabled_stdout()));
    }
    if let Some(out) = &args.out {
        plan.save(out)?;
        eprintln!("Saved plan to {} (apply with: ctl apply {} -e {})", out.display(), out.display(), args.env.env.display());
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
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
pub async fn drift(args: DriftArgs) -> CmdResult {
    let (_loaded, _session, plan) = context::make_plan(&args.env).await?;
    if args.markdown {
        print!("{}", render::markdown::render(&plan, render::MARKDOWN_LIMIT));
    } else {
        print!("{}", render::text::render(&plan, super::color_enabled_stdout()));
    }
    Ok(if plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

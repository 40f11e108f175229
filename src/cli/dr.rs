//! `ctl dr snapshot | rebuild | runbook | drill`.

use crate::openbao::access::Role;
use futures::FutureExt;
use super::{context, CmdResult, EnvArgs};
use crate::dr::{self, rebuild, Manifest, DrError};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use super::{Status, Term};

#[derive(clap::Subcommand, Debug)]
pub enum DrCommand {
    /// Raft snapshot to S3 with a sha256 sidecar, RDS snapshots, and a manifest tying them together.
    Snapshot {
        #[command(flatten)]
        env: EnvArgs,
        /// Where the local copy of the manifest goes.
        #[arg(long, default_value = ".ctl/dr")]
        out_dir: PathBuf,
    },
    /// Rebuild everything from a manifest, as an ordered, resumable list of steps.
    Rebuild {
        #[command(flatten)]
        env: EnvArgs,
        /// The manifest: a local file, s3://bucket/key, or `latest` (the newest in the dr: bucket).
        #[arg(long)]
        from: String,
        /// Print the steps only; no API call.
        #[arg(long)]
        dry_run: bool,
        /// Where progress (for resuming) and the downloaded snapshot are kept.
        #[arg(long, default_value = ".ctl/dr")]
        state_dir: PathBuf,
        /// Ignore an earlier interrupted run and start at the first step.
        #[arg(long)]
        fresh: bool,
        /// Workspaces the verify step checks (0 = all).
        #[arg(long, default_value_t = 10)]
        verify_sample: usize,
        /// Dev stack: replace an OpenBao that is running with live data by the snapshot.
        #[arg(long)]
        replace_live_openbao: bool,
    },
    /// Render runbooks/disaster_recovery.md from the same step list `rebuild` executes.
    Runbook {
        #[command(flatten)]
        env: EnvArgs,
        /// Write here instead of stdout.
        #[arg(long, conflicts_with = "check")]
        out: Option<PathBuf>,
        /// Exit 1 if this file differs from the rendering.
        #[arg(long)]
        check: Option<PathBuf>,
    },
    /// On a private local stack: provision, write secret versions, snapshot, destroy, rebuild,
    /// and count what was lost.
    Drill(super::dr_drill::DrillArgs),
    /// Restore one workspace's KV secrets from a snapshot, as new versions, without touching
    /// any other workspace: boots the snapshot in a scratch server, shows what differs, writes.
    RestoreWorkspace(super::dr_restore::RestoreArgs),
    /// Prove a snapshot restores: boot it in a scratch server with its seal key, count its
    /// namespaces, KV keys and versions against the manifest, read sampled versions back.
    VerifySnapshot(super::dr_restore::VerifyArgs),
}

pub async fn run(cmd: DrCommand, term: Term) -> CmdResult {
    match cmd {
        DrCommand::Snapshot { env, out_dir } => snapshot(env, out_dir).await,
        DrCommand::Rebuild { env, from, dry_run, state_dir, fresh, verify_sample, replace_live_openbao } => {
            let opts = rebuild::Options {
                state_dir,
                fresh,
                parallelism: usize::from(env.parallelism),
                verify_sample,
                replace_live: replace_live_openbao,
            };
            rebuild_cmd(env, &from, dry_run, opts, term).await
        }
        DrCommand::Runbook { env, out, check } => runbook(env, out, check),
        DrCommand::Drill(args) => super::dr_drill::run(args, term).await,
        DrCommand::RestoreWorkspace(args) => super::dr_restore::restore_workspace(args, term).await,
        DrCommand::VerifySnapshot(args) => super::dr_restore::verify_snapshot(args).await,
    }
}

async fn snapshot(args: EnvArgs, out_dir: PathBuf) -> CmdResult {
    let loaded = context::load(&args)?;
    dr::snapshot::dr_config(&loaded.env)?;
    let session = context::session(&loaded.env, args.parallelism, Role::Apply).await?;
    let aws = session.aws.as_ref().context("dr snapshot needs an aws: section")?;
    let t = std::time::Instant::now();
    let work = out_dir.join(format!("snapshot-{}", std::process::id()));
    let commit = context::git_commit(&loaded.env.dir);
    let taken = dr::snapshot::take(&loaded.env, &session.bao, aws, &work, &out_dir, commit).await;
    std::fs::remove_dir_all(&work).ok();
    let taken = taken.context("dr snapshot")?;
    let m = &taken.manifest;
    println!("Snapshot of {} ({} workspaces) in {:.1}s", m.environment, m.workspaces, t.elapsed().as_secs_f64());
    println!("  raft     s3://{}/{} ({} bytes, sha256 {})", m.openbao.bucket, m.openbao.key, m.openbao.size, m.openbao.sha256);
    for db in &m.rds {
        println!("  rds      {} → snapshot {} (encrypted: {})", db.instance, db.snapshot, db.encrypted);
    }
    if let Some(seal) = &m.seal {
        println!("  seal     KMS key {}", seal.kms_key_id);
    }
    println!("  manifest {}", taken.manifest_url);
    println!("           {}", taken.manifest_file.display());
    Ok(Status::Success)
}

/// `--from latest`: the newest manifest under the environment's `dr:` prefix in S3.
pub(crate) async fn resolve_from(env: &crate::config::Environment, from: &str, aws: Option<&crate::aws::Aws>) -> anyhow::Result<String> {
    if from != "latest" {
        return Ok(from.to_string());
    }
    let dr = dr::snapshot::dr_config(env)?;
    let aws = aws.context("--from latest needs an aws: section")?;
    let prefix = format!("{}{}/", dr.prefix, env.name);
    let key = crate::artifacts::s3::last_key_with_suffix(&crate::artifacts::s3::client(aws), &dr.bucket, &prefix, "/manifest.json")
        .await?
        .with_context(|| format!("--from latest: no manifest under s3://{}/{prefix}", dr.bucket))?;
    Ok(format!("s3://{}/{key}", dr.bucket))
}

pub(crate) async fn load_manifest(from: &str, aws: Option<&crate::aws::Aws>) -> anyhow::Result<Manifest> {
    if let Some((bucket, key)) = Manifest::s3_location(from) {
        let aws = aws.context("an s3:// manifest needs an aws: section")?;
        let client = crate::artifacts::s3::client(aws);
        let body = crate::artifacts::s3::get(&client, bucket, key, None).await?;
        let bytes = body.collect().await.with_context(|| format!("reading {from}"))?.into_bytes();
        return Ok(Manifest::parse(&bytes, from)?);
    }
    Ok(Manifest::load(Path::new(from))?)
}

async fn rebuild_cmd(args: EnvArgs, from: &str, dry_run: bool, opts: rebuild::Options, term: Term) -> CmdResult {
    let loaded = context::load(&args)?;
    if dry_run && Manifest::s3_location(from).is_none() {
        let manifest = Manifest::load(Path::new(from))?;
        let done = rebuild::finished_steps(&opts, &loaded.env, &manifest);
        println!("Rebuild of {} from {} (snapshot {}), {} steps:", loaded.env.name, from, manifest.created_at, dr::STEPS.len());
        for (i, step) in dr::STEPS.iter().enumerate() {
            let mark = if done.iter().any(|d| d == step.slug) { " (done in an earlier run)" } else { "" };
            println!("{:>3}. {:<16} {}{mark}", i + 1, step.slug, step.title);
        }
        return Ok(Status::Success);
    }
    let aws = match &loaded.env.aws {
        Some(conn) => Some(crate::aws::Aws::connect(conn, &loaded.env.name).await?),
        None => None,
    };
    let from = &resolve_from(&loaded.env, from, aws.as_ref()).await?;
    let manifest = load_manifest(from, aws.as_ref()).await?;
    if dry_run {
        for (i, step) in dr::STEPS.iter().enumerate() {
            println!("{:>3}. {:<16} {}", i + 1, step.slug, step.title);
        }
        return Ok(Status::Success);
    }
    let env = &loaded.env;
    let connect = || {
        async move { context::connect(env, args.parallelism, Role::Apply).await.map_err(|e| DrError::Other(format!("{e:#}"))) }.boxed()
    };
    let total = dr::STEPS.len();
    let bar = term.progress.then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    println!("Rebuild of {} from {} (snapshot taken {})", env.name, from, manifest.created_at);
    let mut on_event = |event: rebuild::Event<'_>| match event {
        rebuild::Event::AlreadyDone { index, step, secs } => {
            println!("[{:>2}/{total}] {:<16} done in an earlier run ({secs:.1}s)", index + 1, step.slug);
        }
        rebuild::Event::Start { index, step } => {
            if let Some(bar) = &bar {
                bar.set_message(format!("[{}/{total}] {}", index + 1, step.title));
            }
            tracing::info!(step = step.slug, "step started");
        }
        rebuild::Event::Done { index, step, secs, detail } => {
            let line = format!("[{:>2}/{total}] {:<16} {secs:>6.1}s  {detail}", index + 1, step.slug);
            match &bar {
                Some(bar) => bar.println(line),
                None => println!("{line}"),
            }
        }
    };
    let result = rebuild::run(env, &loaded.desired, &manifest, aws.as_ref(), &opts, &connect, &mut on_event).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result.context("dr rebuild stopped; fix the cause and run the same command again to resume")?;
    println!(
        "Rebuilt {} in {} run(s). RTO {:.1}s (sum of step times; this run {:.1}s, {:.0}s since the first attempt). RPO {}s (snapshot age when the rebuild began).",
        env.name,
        summary.runs,
        summary.rto.as_secs_f64(),
        summary.this_run.as_secs_f64(),
        summary.since_first_attempt.as_secs_f64(),
        summary.rpo.as_secs()
    );
    Ok(Status::Success)
}

fn runbook(args: EnvArgs, out: Option<PathBuf>, check: Option<PathBuf>) -> CmdResult {
    let loaded = context::load(&args)?;
    let templates = context::templates_dir(&args, &loaded.env);
    let text = dr::runbook::render(&loaded.env, &templates).map_err(anyhow::Error::msg)?;
    if let Some(path) = check {
        let committed = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if committed != text {
            eprintln!("{} differs from the rendering; run `ctl dr runbook -e {} --out {}`", path.display(), args.env.display(), path.display());
            return Ok(Status::Failure);
        }
        println!("{} matches the step list.", path.display());
        return Ok(Status::Success);
    }
    match out {
        Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(Status::Success)
}

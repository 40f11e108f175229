//! `ctl dr restore-workspace` and `ctl dr verify-snapshot`: both boot a scratch OpenBao from a
//! snapshot (`dr::scratch`) and read it with the environment's own login (role `restore`).

use super::{context, CmdResult, EnvArgs};
use crate::dr::{self, restore};
use crate::openbao::access::Role;
use crate::openbao::Bao;
use anyhow::{bail, Context};
use std::path::PathBuf;
use super::{Status, Term};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The workspace (its name in the environment file).
    pub workspace: String,
    #[command(flatten)]
    pub env: EnvArgs,
    /// The manifest of the snapshot to restore from: a local file, s3://bucket/key, or
    /// `latest` (the newest in the dr: bucket).
    #[arg(long)]
    pub from: String,
    /// Only keys matching this glob (`*` any characters, `?` one). Repeatable.
    #[arg(long = "path", value_name = "GLOB")]
    pub paths: Vec<String>,
    /// Restore the version each key had at this time (RFC 3339), not the snapshot's latest.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Write without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Show the restore plan only.
    #[arg(long, conflicts_with = "auto_approve")]
    pub dry_run: bool,
    /// Allow the new version of KEY to push its oldest live versions out (max_versions).
    /// Repeatable; without it such a key is refused.
    #[arg(long = "allow-eviction", value_name = "KEY")]
    pub allow_eviction: Vec<String>,
    #[command(flatten)]
    pub scratch: ScratchArgs,
}

#[derive(clap::Args, Debug)]
pub struct ScratchArgs {
    /// The OpenBao binary of the scratch server (2.6.x: built-in awskms seal) [default:
    /// $CTL_BAO_BIN, else the repository's .venv].
    #[arg(long, value_name = "PATH")]
    pub bao_bin: Option<PathBuf>,
    /// Where the scratch server's private, temporary files go.
    #[arg(long, default_value = ".ctl/dr", value_name = "DIR")]
    pub work_dir: PathBuf,
}

impl ScratchArgs {
    fn bao_bin(&self) -> anyhow::Result<PathBuf> {
        match &self.bao_bin {
            Some(p) => Ok(p.clone()),
            None => Ok(crate::dev::Tools::bao(crate::dev::BaoVersion::V2_6)?),
        }
    }
}

/// The AWS connection (the snapshot is in S3, the seal key in KMS) and the manifest.
async fn aws_and_manifest(env: &crate::config::Environment, from: &str) -> anyhow::Result<(crate::aws::Aws, dr::Manifest)> {
    let conn = env.aws.as_ref().with_context(|| format!("{}: no aws: section; the snapshot and its seal key are in AWS", env.file.display()))?;
    let aws = crate::aws::Aws::connect(conn, &env.name).await?;
    let from = super::dr::resolve_from(env, from, Some(&aws)).await?;
    let manifest = super::dr::load_manifest(&from, Some(&aws)).await?;
    Ok((aws, manifest))
}

/// Log in to the scratch server as the environment's login would to the live one; the
/// restored server may answer a moment before it serves requests.
async fn connect_scratch(env: &crate::config::Environment, parallelism: u16, addr: &str) -> anyhow::Result<Bao> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match context::connect_at(env, parallelism, Role::Restore, addr).await {
            Ok(bao) => match bao.get(None, "auth/token/lookup-self").await {
                Ok(_) => return Ok(bao),
                Err(e) if Instant::now() < deadline => tracing::debug!(error = %e, "scratch token not accepted yet"),
                Err(e) => return Err(e).context("the login does not work in the snapshot (a token created after the snapshot was taken is not in it; a JWT or AppRole login is)"),
            },
            Err(e) if Instant::now() < deadline => tracing::debug!(error = %format!("{e:#}"), "scratch login not possible yet"),
            Err(e) => return Err(e).context("logging in to the scratch server restored from the snapshot (a token created after the snapshot was taken is not in it; a JWT or AppRole login is)"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn restore_workspace(args: RestoreArgs, term: Term) -> CmdResult {
    let t = Instant::now();
    let loaded = context::load(&args.env)?;
    let env = &loaded.env;
    let ws = restore::workspace(&env.workspaces, &args.workspace)?;
    let as_of = args.as_of.as_deref().map(restore::parse_as_of).transpose().map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;
    let bao_bin = args.scratch.bao_bin()?;
    let (aws, manifest) = aws_and_manifest(env, &args.from).await?;
    let live = context::connect(env, args.env.parallelism, Role::Restore).await?;
    let booted = dr::scratch::boot(env, &manifest, &aws, &args.scratch.work_dir, &bao_bin).await.context("booting the snapshot")?;
    let snapshot = connect_scratch(env, args.env.parallelism, &booted.scratch.addr).await?;
    let opts = restore::Options { paths: args.paths.clone(), as_of, parallelism: usize::from(args.env.parallelism) };
    let plan = restore::plan(&snapshot, &live, &env.name, ws, &opts).await?;
    booted.scratch.stop().await;

    let when = args.as_of.as_deref().map(|a| format!(", versions as of {a}")).unwrap_or_default();
    println!(
        "Restore of workspace {} ({}/{}/) from the snapshot of {}{when}; snapshot readable in {:.1}s:",
        plan.workspace,
        plan.namespace,
        plan.mount,
        manifest.created_at,
        booted.boot.as_secs_f64()
    );
    let lines: Vec<String> = plan.keys.iter().filter_map(restore::describe).collect();
    for line in &lines {
        println!("{line}");
    }
    for note in &plan.notes {
        println!("  note: {note}");
    }
    if !plan.live_only.is_empty() {
        println!("  {} key(s) created since the snapshot are left as they are", plan.live_only.len());
    }
    let changes = plan.changes().count();
    let unchanged = plan.keys.len() - changes;
    println!("{changes} to restore, {unchanged} already as in the snapshot ({} key(s) in the snapshot{}).", plan.keys.len(), if args.paths.is_empty() { String::new() } else { format!(" matching {}", args.paths.join(", ")) });
    if changes == 0 {
        return Ok(Status::Success);
    }
    let refused: Vec<String> = plan
        .evictions()
        .into_iter()
        .filter(|(k, _)| !args.allow_eviction.iter().any(|a| a == k))
        .map(|(k, v)| format!("{k} (drops live v{})", v.iter().map(u64::to_string).collect::<Vec<_>>().join(", v")))
        .collect();
    if !refused.is_empty() {
        bail!(
            "a new version would push old live versions out (max_versions) for: {}; pass --allow-eviction KEY for each to accept that, or raise max_versions first. Nothing was written.",
            refused.join(", ")
        );
    }
    if args.dry_run {
        return Ok(Status::Success);
    }
    if !args.auto_approve && !super::apply::confirm(term, "Restore these keys?", "or --dry-run to see the plan only").await? {
        println!("Nothing was written.");
        return Ok(Status::Success);
    }
    let results = restore::apply(&live, &env.name, &plan, usize::from(args.env.parallelism)).await;
    let mut failed = Vec::new();
    for r in &results {
        match (&r.result, r.new_version) {
            (Ok(()), Some(v)) => println!("  restored {} as v{v}", r.key),
            (Ok(()), None) => println!("  restored {} custom metadata", r.key),
            (Err(e), _) => failed.push(format!("{}: {e}", r.key)),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} key(s) failed (the others are restored; run the same command again to finish):\n  {}",
            failed.len(),
            results.len(),
            failed.join("\n  ")
        );
    }
    println!("Restored {} key(s) of workspace {} in {:.1}s; nothing else was written.", results.len(), plan.workspace, t.elapsed().as_secs_f64());
    Ok(Status::Success)
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// The manifest of the snapshot to verify: a local file, s3://bucket/key, or `latest`
    /// (the newest in the dr: bucket).
    #[arg(long)]
    pub from: String,
    #[command(flatten)]
    pub scratch: ScratchArgs,
}

/// The scheduled restore drill for real snapshots: boot it in a scratch server (the seal key
/// must unseal it), count what it holds against the manifest's census, read its sampled
/// versions back. Exit 1 on any mismatch.
pub async fn verify_snapshot(args: VerifyArgs) -> CmdResult {
    let loaded = context::load(&args.env)?;
    let env = &loaded.env;
    let bao_bin = args.scratch.bao_bin()?;
    let (aws, manifest) = aws_and_manifest(env, &args.from).await?;
    println!("Verifying the snapshot of {} taken {} ({}):", env.name, manifest.created_at, args.from);
    let booted = dr::scratch::boot(env, &manifest, &aws, &args.scratch.work_dir, &bao_bin).await.context("booting the snapshot")?;
    for check in &booted.checks {
        println!("  ok  {check}");
    }
    let t = Instant::now();
    let snapshot = connect_scratch(env, args.env.parallelism, &booted.scratch.addr).await?;
    let (found, _) = dr::census::count(&snapshot, &env.name, usize::from(args.env.parallelism), 0).await?;
    let mut failures = Vec::new();
    match &manifest.census {
        Some(census) => {
            let mismatches = census.mismatches(&found);
            if mismatches.is_empty() {
                println!(
                    "  ok  {} namespaces, {} KV keys, {} versions written: as counted when the snapshot was taken",
                    found.namespaces, found.keys, found.versions
                );
            }
            failures.extend(mismatches);
            let unread = dr::census::check_sample(&snapshot, &census.sample).await?;
            if unread.is_empty() {
                println!("  ok  {} sampled versions read back with their recorded creation times", census.sample.len());
            }
            failures.extend(unread);
        }
        None => println!(
            "  --  the manifest has no census (written by an older ctl): {} namespaces, {} KV keys, {} versions written found, nothing to compare",
            found.namespaces, found.keys, found.versions
        ),
    }
    booted.scratch.stop().await;
    println!(
        "Time to readable: {:.1}s (download, checks, boot, restore, unseal); counting took {:.1}s.",
        booted.boot.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        bail!("the snapshot does not hold what was counted when it was taken:\n  {}", failures.join("\n  "));
    }
    println!("The snapshot restores.");
    Ok(Status::Success)
}

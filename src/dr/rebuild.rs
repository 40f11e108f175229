//! `ctl dr rebuild`: execute [`STEPS`] in order, resumably.
//!
//! After each step the state file (`<state_dir>/<env>-<manifest id>.json`) records it as done
//! with its timing; a re-run with the same manifest skips those and continues at the first
//! unfinished step. Every step is also idempotent on its own (converging steps re-plan; the
//! restore step recognises a server the killed run had already initialized), so a step that
//! was interrupted half-way is simply run again.

use super::manifest::Manifest;
use super::snapshot::SNAPSHOT_FILE;
use super::steps::{Step, StepId, STEPS};
use super::DrError;
use crate::artifacts::{hash, s3, sidecar};
use crate::aws::kms::KeyUsability;
use crate::aws::Aws;
use crate::config::{Connection, Environment};
use crate::diff::Action;
use crate::engine;
use crate::execute::Status;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use crate::model::{Kind, Provider, Resource};
use crate::openbao::Bao;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// How long a server may take to answer, and to come back unsealed after a restore.
const SERVER_WAIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(200);

pub struct Options {
    /// Where the state file and the downloaded snapshot live.
    pub state_dir: PathBuf,
    /// Ignore a previous run's state and start at the first step.
    pub fresh: bool,
    pub parallelism: usize,
    /// Workspaces `verify` checks (0 = all).
    pub verify_sample: usize,
    /// Dev stack only: replace an OpenBao that is running with live data (the operator token
    /// works) by the snapshot. Without it such a rebuild is refused.
    pub replace_live: bool,
}

/// What the caller is told as the rebuild goes (the CLI prints it; the drill collects it).
pub enum Event<'a> {
    /// A step finished in an earlier run.
    AlreadyDone { index: usize, step: &'static Step, secs: f64 },
    Start { index: usize, step: &'static Step },
    Done { index: usize, step: &'static Step, secs: f64, detail: &'a str },
}

/// The state file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    manifest_id: String,
    environment: String,
    first_started_unix: u64,
    runs: u32,
    done: Vec<DoneStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DoneStep {
    slug: String,
    secs: f64,
    detail: String,
}

/// A finished rebuild.
#[derive(Debug)]
pub struct Summary {
    /// (slug, seconds, detail, done in an earlier run)
    pub steps: Vec<(&'static str, f64, String, bool)>,
    /// Wall time of this run.
    pub this_run: Duration,
    /// Recovery time: the sum of every step's time, across resumed runs (the time a rebuild
    /// takes when nobody interrupts it).
    pub rto: Duration,
    /// Wall time since the first attempt started (includes time between attempts).
    pub since_first_attempt: Duration,
    /// Recovery point: how old the snapshot was when this rebuild started; writes made after
    /// it were not in the snapshot.
    pub rpo: Duration,
    pub runs: u32,
}

fn state_path(opts: &Options, env: &Environment, manifest: &Manifest) -> PathBuf {
    opts.state_dir.join(format!("{}-{}.json", env.name, manifest.id()))
}

/// The private working directory of this manifest's rebuild (downloaded snapshot).
fn work_dir(opts: &Options, env: &Environment, manifest: &Manifest) -> PathBuf {
    opts.state_dir.join(format!("{}-{}.work", env.name, manifest.id()))
}

/// Which steps a previous run finished (for `--dry-run`).
pub fn finished_steps(opts: &Options, env: &Environment, manifest: &Manifest) -> Vec<String> {
    load_state(&state_path(opts, env, manifest)).map(|s| s.done.into_iter().map(|d| d.slug).collect()).unwrap_or_default()
}

fn load_state(path: &Path) -> Option<State> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn save_state(path: &Path, state: &State) -> Result<(), DrError> {
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(state).expect("state serializes");
    std::fs::write(&tmp, json).map_err(|e| DrError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| DrError::io(format!("writing {}", path.display()), e))
}

/// Everything the steps share.
struct Ctx<'a> {
    env: &'a Environment,
    desired: &'a [Resource],
    manifest: &'a Manifest,
    aws: Option<&'a Aws>,
    opts: &'a Options,
    work: PathBuf,
}

/// Builds the operator's OpenBao client (logged in as the environment says).
pub type Connect<'a> = dyn Fn() -> futures::future::BoxFuture<'a, Result<Bao, DrError>> + Sync + 'a;

/// Run the rebuild. `connect` builds the operator's OpenBao client (called once OpenBao is up).
pub async fn run(
    env: &Environment,
    desired: &[Resource],
    manifest: &Manifest,
    aws: Option<&Aws>,
    opts: &Options,
    connect: &Connect<'_>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Summary, DrError> {
    if manifest.environment != env.name {
        return Err(DrError::Refused(format!(
            "the manifest is for environment {:?}, not {:?}",
            manifest.environment, env.name
        )));
    }
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| DrError::io(format!("creating {}", opts.state_dir.display()), e))?;
    let path = state_path(opts, env, manifest);
    let now = super::now_unix();
    let mut state = match load_state(&path) {
        Some(s) if !opts.fresh && s.manifest_id == manifest.id() => s,
        _ => State { manifest_id: manifest.id(), environment: env.name.clone(), first_started_unix: now, ..State::default() },
    };
    state.runs += 1;
    save_state(&path, &state)?;
    let ctx = Ctx { env, desired, manifest, aws, opts, work: work_dir(opts, env, manifest) };
    preflight(&ctx, &state, connect).await?;
    let started = Instant::now();
    let mut steps = Vec::new();
    for (index, step) in STEPS.iter().enumerate() {
        if let Some(done) = state.done.iter().find(|d| d.slug == step.slug && !step.recheck) {
            on_event(Event::AlreadyDone { index, step, secs: done.secs });
            steps.push((step.slug, done.secs, done.detail.clone(), true));
            continue;
        }
        on_event(Event::Start { index, step });
        let t = Instant::now();
        let detail = run_step(&ctx, step, connect).await?;
        let secs = t.elapsed().as_secs_f64();
        // Recorded before it is reported: a step shown as done is one a resumed run skips.
        state.done.retain(|d| d.slug != step.slug);
        state.done.push(DoneStep { slug: step.slug.to_string(), secs, detail: detail.clone() });
        save_state(&path, &state)?;
        on_event(Event::Done { index, step, secs, detail: &detail });
        steps.push((step.slug, secs, detail, false));
    }
    std::fs::remove_dir_all(&ctx.work).ok();
    let rto = Duration::from_secs_f64(steps.iter().map(|s| s.1).sum());
    Ok(Summary {
        steps,
        this_run: started.elapsed(),
        rto,
        since_first_attempt: Duration::from_secs(super::now_unix().saturating_sub(state.first_started_unix)),
        rpo: Duration::from_secs(state.first_started_unix.saturating_sub(manifest.openbao.taken_unix)),
        runs: state.runs,
    })
}

async fn run_step(ctx: &Ctx<'_>, step: &Step, connect: &Connect<'_>) -> Result<String, DrError> {
    match step.id {
        StepId::Kms => check_seal_key(ctx).await,
        StepId::Snapshot => fetch_snapshot(ctx).await,
        StepId::Network | StepId::Iam | StepId::Compute => converge_aws(ctx, step.kinds).await,
        StepId::Alarms => converge_alarms(ctx, step.kinds, connect).await,
        StepId::Artifacts => verify_artifacts(ctx).await,
        StepId::Rds => restore_databases(ctx).await,
        StepId::OpenbaoStart => start_openbao(ctx).await,
        StepId::OpenbaoRestore => restore_openbao(ctx, connect).await,
        StepId::Workspaces => converge_openbao(ctx, &connect().await?).await,
        StepId::Verify => verify(ctx, &connect().await?).await,
    }
}

fn aws<'a>(ctx: &Ctx<'a>) -> Result<&'a Aws, DrError> {
    ctx.aws.ok_or_else(|| DrError::Refused(format!("{}: no aws: section; a rebuild needs AWS", ctx.env.file.display())))
}

async fn check_seal_key(ctx: &Ctx<'_>) -> Result<String, DrError> {
    seal_key_usable(aws(ctx)?, ctx.manifest).await
}

/// Whether the manifest's seal key can unseal the snapshot (enabled); a refusal says why.
pub(crate) async fn seal_key_usable(aws: &Aws, manifest: &Manifest) -> Result<String, DrError> {
    let Some(seal) = &manifest.seal else {
        return Ok("no seal key in the manifest (shamir): the unseal keys are needed by hand".into());
    };
    match crate::aws::kms::key_usability(aws, &seal.kms_key_id).await? {
        KeyUsability::Enabled { arn } => Ok(format!("seal key {arn} is enabled")),
        KeyUsability::Unusable(reason) | KeyUsability::Missing(reason) => Err(DrError::Refused(format!(
            "{reason}. The snapshot's root key is wrapped by this key: nothing was touched."
        ))),
    }
}

/// Download the pinned snapshot version into the work dir, hashing it, and check it against
/// the manifest and the sidecar.
async fn fetch_snapshot(ctx: &Ctx<'_>) -> Result<String, DrError> {
    fetch_verified(aws(ctx)?, ctx.manifest, &ctx.work).await
}

/// Download the manifest's snapshot version to `work/raft.snap` (`work` made private),
/// hashing it, and check it against the manifest and the sidecar; a mismatch is a refusal
/// and leaves no file.
pub(crate) async fn fetch_verified(aws: &Aws, manifest: &Manifest, work: &Path) -> Result<String, DrError> {
    let snap = &manifest.openbao;
    let client = s3::client(aws);
    let url = format!("s3://{}/{}", snap.bucket, snap.key);
    let side = s3::get(&client, &snap.bucket, &snap.sidecar_key, None).await?;
    let side = side
        .collect()
        .await
        .map_err(|e| DrError::Other(format!("reading s3://{}/{}: {e}", snap.bucket, snap.sidecar_key)))?
        .into_bytes();
    let parsed = sidecar::parse(&side, SNAPSHOT_FILE).map_err(|e| {
        DrError::Refused(format!("s3://{}/{}: {e}; refusing to restore", snap.bucket, snap.sidecar_key))
    })?;
    if parsed.sha256 != snap.sha256 {
        return Err(DrError::Refused(format!(
            "sidecar mismatch: s3://{}/{} says {}, the manifest says {}; refusing to restore (nothing was touched)",
            snap.bucket, snap.sidecar_key, parsed.sha256, snap.sha256
        )));
    }
    std::fs::create_dir_all(work).map_err(|e| DrError::io(format!("creating {}", work.display()), e))?;
    set_private(work)?;
    let file = work.join(SNAPSHOT_FILE);
    let body = s3::get(&client, &snap.bucket, &snap.key, snap.version_id.as_deref()).await?;
    let got = download(body.into_async_read(), &file, snap.size).await.map_err(|e| match e {
        hash::HashError::TooLarge { .. } => {
            DrError::Refused(format!("{url} is larger than the {} bytes the manifest records; refusing to restore", snap.size))
        }
        other => DrError::Other(format!("downloading {url}: {other}")),
    })?;
    if got.sha256 != snap.sha256 || got.size != snap.size {
        std::fs::remove_file(&file).ok();
        return Err(DrError::Refused(format!(
            "snapshot mismatch: {url} has sha256 {} ({} bytes), the manifest and sidecar say {} ({} bytes); refusing to restore",
            got.sha256, got.size, snap.sha256, snap.size
        )));
    }
    Ok(format!("{} bytes, sha256 {}… matches manifest and sidecar", got.size, &got.sha256[..12]))
}

/// Write `reader` to `file` (0600) while hashing it, reading at most `limit` bytes.
async fn download<R: tokio::io::AsyncRead + Unpin>(mut reader: R, file: &Path, limit: u64) -> Result<hash::Hashed, hash::HashError> {
    use tokio::io::AsyncReadExt;
    let werr = |source| hash::HashError::Read { read: 0, source };
    let mut out = crate::openbao::raft::private_file(file).await.map_err(werr)?;
    let mut hashed = hash::Running::default();
    let mut buf = vec![0u8; hash::BUFFER];
    loop {
        let n = reader.read(&mut buf).await.map_err(|source| hash::HashError::Read { read: hashed.size(), source })?;
        if n == 0 {
            break;
        }
        if hashed.size() + n as u64 > limit {
            return Err(hash::HashError::TooLarge { limit, read: hashed.size() + n as u64 });
        }
        hashed.update(&buf[..n]);
        out.write_all(&buf[..n]).await.map_err(werr)?;
    }
    out.flush().await.map_err(werr)?;
    Ok(hashed.finish())
}

fn set_private(dir: &Path) -> Result<(), DrError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| DrError::io(format!("securing {}", dir.display()), e))
}

/// Plan/apply restricted to `kinds`: creates, updates and replaces; never deletes.
async fn converge_aws(ctx: &Ctx<'_>, kinds: &[Kind]) -> Result<String, DrError> {
    let desired: Vec<Resource> = ctx.desired.iter().filter(|r| kinds.contains(&r.kind)).cloned().collect();
    if desired.is_empty() {
        return Ok("nothing declared".into());
    }
    let aws = aws(ctx)?;
    let live = crate::aws::observe(aws).await?;
    let resources: Vec<Resource> = live.resources.into_iter().filter(|r| kinds.contains(&r.kind)).collect();
    let unmanaged: Vec<_> = live.unmanaged.into_iter().filter(|u| kinds.contains(&u.kind)).collect();
    let diff = crate::diff::diff(&desired, &resources, &unmanaged);
    crate::gates::boot_artifacts(aws, ctx.env, &diff.changes).await.map_err(|e| DrError::Refused(format!("{e:#}")))?;
    execute_changes(ctx, diff, None).await
}

/// [`converge_aws`] once the webhook URL is read (from the restored OpenBao when it is in KV):
/// the desired subscription gets its stand-in, the AWS connection the URL for Subscribe.
async fn converge_alarms(ctx: &Ctx<'_>, kinds: &[Kind], connect: &Connect<'_>) -> Result<String, DrError> {
    use crate::alarms::webhook;
    let Some(cfg) = &ctx.env.alarms else { return converge_aws(ctx, kinds).await };
    let bao = match cfg.webhook {
        crate::config::WebhookSource::Kv { .. } => Some(connect().await?),
        crate::config::WebhookSource::Env(_) => None,
    };
    let url = webhook::resolve(&cfg.webhook, bao.as_ref()).await.map_err(|e| DrError::Other(e.to_string()))?;
    let mut desired = ctx.desired.to_vec();
    webhook::set_stand_in(&mut desired, &ctx.env.name, &url);
    let mut aws = aws(ctx)?.clone();
    aws.webhook = Some(url);
    let ctx = Ctx { desired: &desired, aws: Some(&aws), work: ctx.work.clone(), ..*ctx };
    converge_aws(&ctx, kinds).await
}

/// Plan/apply of every OpenBao resource.
///
/// The snapshot carries each workspace's recorded digest and the last full drift check: when
/// that check was clean and recent at the time of the snapshot, a workspace whose digest equals
/// the desired one is exactly as applied (the restore put back the very state the digest
/// describes) and is not read again; the others are read and converged.
async fn converge_openbao(ctx: &Ctx<'_>, bao: &Bao) -> Result<String, DrError> {
    use crate::openbao::refresh;
    let env = &ctx.env.name;
    let listed = crate::openbao::observe::namespaces(bao, env).await?;
    let managed = &listed.0;
    let check = refresh::last_full_check(bao, env).await.ok().flatten();
    let trusted = match refresh::distrust(check, ctx.manifest.openbao.taken_unix, TRUST_AT_SNAPSHOT) {
        None => refresh::trusted(&crate::desired::workspace_digests(ctx.desired), managed),
        Some(why) => {
            tracing::info!(%why, "reading every workspace");
            Default::default()
        }
    };
    let read: std::collections::BTreeSet<String> =
        ctx.env.workspaces.iter().map(|w| w.name.clone()).chain(managed.iter().map(|m| m.workspace.clone())).filter(|w| !trusted.contains_key(w)).collect();
    let in_scope = |r: &&Resource| r.kind.provider() == Provider::OpenBao && r.address.workspace_name().is_none_or(|w| read.contains(w));
    let desired: Vec<Resource> = ctx.desired.iter().filter(in_scope).cloned().collect();
    let opts = crate::openbao::observe::ObserveOptions { environment: env, only: Some(&read), listed: Some(&listed), parallelism: ctx.opts.parallelism };
    let live = crate::openbao::observe::observe(bao, &opts).await?;
    let mut diff = crate::diff::diff(&desired, &live.resources, &live.unmanaged);
    let skipped = ctx.desired.iter().filter(|r| r.kind.provider() == Provider::OpenBao).count() - desired.len();
    diff.unchanged += skipped;
    let workspaces = ctx.env.workspaces.len();
    Ok(format!(
        "{workspaces} workspaces ({} trusted by their recorded digest, {} read): {}",
        trusted.len(),
        read.len(),
        execute_changes(ctx, diff, Some(bao)).await?
    ))
}

/// How recent, at the time of the snapshot, a clean full drift check must have been for the
/// rebuild to trust workspace digests.
const TRUST_AT_SNAPSHOT: u64 = 24 * 3600;

/// Through the one apply engine with the rebuild's narrow guard: conflicts and data-losing
/// replaces are refused before any call, deletes are left to a reviewed plan/apply. With
/// OpenBao up (`bao`), under the environment's apply lock.
async fn execute_changes(ctx: &Ctx<'_>, diff: crate::diff::Diff, bao: Option<&Bao>) -> Result<String, DrError> {
    let unchanged = diff.unchanged;
    let deletes = diff.changes.iter().filter(|c| c.action() == Action::Delete).count();
    let changes = engine::Guard::rebuild()
        .check(&diff.changes, &diff.conflicts)
        .map_err(|e| DrError::Refused(format!("{e}\nThe rebuild never destroys data; apply such changes with a reviewed `ctl apply` once the rebuild is done")))?;
    let providers = engine::Providers { bao, aws: ctx.aws };
    let execute = |stop: Arc<AtomicBool>| async move {
        Ok::<_, DrError>(engine::run(providers, &changes, ctx.opts.parallelism, &stop, |_| {}).await)
    };
    let report = match bao {
        Some(bao) => {
            let spec = engine::LockSpec { environment: &ctx.env.name, plan: None, ttl: Duration::from_secs(120), wait: Duration::ZERO };
            engine::with_lock(bao, spec, execute).await.map_err(|e| match e {
                engine::LockedError::Work(e) => e,
                done @ engine::LockedError::Unreleased { .. } => DrError::Other(done.to_string()),
                other => DrError::Refused(format!("{other}; nothing was applied by this step")),
            })?
        }
        None => execute(Arc::default()).await?,
    };
    if let Some(bao) = bao {
        let entry = engine::journal_entry("dr-rebuild", None, None, &report);
        if let Err(e) = crate::openbao::journal::record(bao, &ctx.env.name, &entry).await {
            tracing::warn!(error = %e, "could not write the audit journal entry");
        }
    }
    let failed: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| match &o.status {
            Status::Failed(e) => Some(format!("{} {}: {e}", o.action.verb(), o.address)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(DrError::Other(format!("{} of {} changes failed (re-run to resume):\n  {}", failed.len(), report.outcomes.len(), failed.join("\n  "))));
    }
    let mut detail = format!("{} applied, {unchanged} already as declared", report.outcomes.len());
    if deletes > 0 {
        detail.push_str(&format!(", {deletes} deletes left for a normal plan/apply"));
    }
    Ok(detail)
}

async fn verify_artifacts(ctx: &Ctx<'_>) -> Result<String, DrError> {
    let Some(artifacts) = &ctx.env.artifacts else { return Ok("nothing declared".into()) };
    let aws = aws(ctx)?;
    for item in &artifacts.items {
        crate::artifacts::verify_pinned(aws, ctx.env, &item.name)
            .await
            .map_err(|e| DrError::Refused(format!("artifact {}: {e}", item.name)))?;
    }
    Ok(format!("{} verified against sidecar and pin", artifacts.items.len()))
}

async fn restore_databases(ctx: &Ctx<'_>) -> Result<String, DrError> {
    let desired: Vec<&Resource> = ctx.desired.iter().filter(|r| r.kind == Kind::DbInstance).collect();
    if desired.is_empty() {
        return Ok("nothing declared".into());
    }
    let aws = aws(ctx)?;
    let mut restored = Vec::new();
    for r in &desired {
        let id = &r.name;
        if !crate::aws::rds::instance_exists(aws, id).await? {
            let snap = ctx.manifest.rds.iter().find(|s| &s.instance == id).ok_or_else(|| {
                DrError::Refused(format!(
                    "DB instance {id} does not exist and the manifest has no snapshot of it; refusing to create an empty database"
                ))
            })?;
            crate::aws::rds::restore_from_snapshot(aws, r, &snap.snapshot).await?;
            restored.push(format!("{id} from {}", snap.snapshot));
        }
    }
    let converged = converge_aws(ctx, &[Kind::DbInstance]).await?;
    for r in &desired {
        let want: crate::aws::rds::DbInstanceAttrs =
            crate::model::from_attrs(&r.attrs).map_err(|e| DrError::Other(format!("{}: {e}", r.address)))?;
        let got = crate::aws::rds::protection(aws, &r.name)
            .await?
            .ok_or_else(|| DrError::Other(format!("DB instance {} vanished after the restore", r.name)))?;
        if !got.storage_encrypted || got.backup_retention_period != want.backup_retention_period {
            return Err(DrError::Other(format!(
                "DB instance {}: storage encrypted {}, backup retention {} days; declared: encrypted, {} days",
                r.name, got.storage_encrypted, got.backup_retention_period, want.backup_retention_period
            )));
        }
    }
    Ok(format!(
        "{}; encrypted, retention asserted; {converged}",
        if restored.is_empty() { "all present".to_string() } else { format!("restored {}", restored.join(", ")) }
    ))
}

fn bao_address(env: &Environment) -> Result<String, DrError> {
    Ok(match &env.openbao {
        Connection::Server { .. } => env
            .openbao
            .server_address()
            .ok_or_else(|| DrError::Other(format!("environment {} names no OpenBao address: set openbao.address or BAO_ADDR", env.name)))?,
        Connection::DevStack { dir } => crate::dev::StackState::load(dir)?.bao_addr,
    })
}

/// Before any step: a dev-stack OpenBao that is running with live data (the operator token
/// works) is not replaced by an older snapshot unless asked to.
async fn preflight(ctx: &Ctx<'_>, state: &State, connect: &Connect<'_>) -> Result<(), DrError> {
    // An apply holding the lock on a live OpenBao would have its state replaced under it.
    if let Ok(bao) = connect().await {
        if let Ok(Some(held)) = crate::openbao::lock::status(&bao, &ctx.env.name).await {
            return Err(DrError::Refused(format!(
                "environment {} is locked by {} (lock {}, expires in {}s): an apply is running against this OpenBao, and a rebuild would replace what it works on. Wait for it, or if it is dead `ctl lock break --id {}`; nothing was touched.",
                ctx.env.name,
                held.owner,
                held.id,
                held.expires_at.saturating_sub(crate::openbao::state::now_secs()),
                held.id
            )));
        }
    }
    let Connection::DevStack { dir } = &ctx.env.openbao else { return Ok(()) };
    if ctx.opts.replace_live || state.done.iter().any(|d| d.slug == "openbao-restore") {
        return Ok(());
    }
    let Ok(stack) = crate::dev::StackState::load(dir) else { return Ok(()) };
    if stack.bao_alive() && operator_token_works(connect).await {
        return Err(DrError::Refused(format!(
            "OpenBao at {} is running with live data (the operator token works); the rebuild would replace it with the snapshot of {}. Pass --replace-live-openbao if that is what you want; nothing was touched.",
            stack.bao_addr, ctx.manifest.created_at
        )));
    }
    Ok(())
}

async fn start_openbao(ctx: &Ctx<'_>) -> Result<String, DrError> {
    match &ctx.env.openbao {
        Connection::DevStack { dir } => {
            let state = crate::dev::StackState::load(dir)?;
            if let (Some(seal), Some(key)) = (&ctx.manifest.seal, &state.kms_key_id) {
                if &seal.kms_key_id != key {
                    return Err(DrError::Refused(format!(
                        "the dev stack in {} seals with KMS key {key}, the snapshot with {}",
                        dir.display(),
                        seal.kms_key_id
                    )));
                }
            }
            if state.bao_alive() {
                let status = crate::dev::seal_status(&state.bao_addr).await?;
                if !status.initialized {
                    return Ok(format!("bao already running at {} (not initialized)", state.bao_addr));
                }
            }
            let state = crate::dev::respawn_empty(dir).await?;
            Ok(format!("bao started on empty storage at {} (pid {})", state.bao_addr, state.bao_pid))
        }
        Connection::Server { .. } => {
            let address = bao_address(ctx.env)?;
            wait_for(&address, "to answer", |s| s.is_some()).await?;
            Ok(format!("{address} answers"))
        }
    }
}

async fn operator_token_works(connect: &Connect<'_>) -> bool {
    match connect().await {
        Ok(bao) => bao.get(None, "auth/token/lookup-self").await.is_ok(),
        Err(_) => false,
    }
}

/// Poll `sys/seal-status` until `ok` holds.
async fn wait_for(addr: &str, what: &str, ok: impl Fn(Option<&crate::dev::SealStatus>) -> bool) -> Result<(), DrError> {
    let deadline = Instant::now() + SERVER_WAIT;
    let mut last = None;
    loop {
        let status = crate::dev::seal_status(addr).await.ok();
        let now = status.as_ref().map(|s| (s.initialized, s.sealed));
        if now != last {
            tracing::debug!(addr, what, ?now, "seal status (initialized, sealed)");
            last = now;
        }
        if ok(status.as_ref()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DrError::Other(format!("OpenBao at {addr} did not {what} within {} s", SERVER_WAIT.as_secs())));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn restore_openbao(ctx: &Ctx<'_>, connect: &Connect<'_>) -> Result<String, DrError> {
    let addr = bao_address(ctx.env)?;
    let file = ctx.work.join(SNAPSHOT_FILE);
    let snap = &ctx.manifest.openbao;
    let on_disk = hash::hash_async(
        tokio::fs::File::open(&file).await.map_err(|e| DrError::io(format!("opening {} (re-run from the snapshot step with --fresh)", file.display()), e))?,
        Some(snap.size),
    )
    .await
    .map_err(|e| DrError::Other(format!("{}: {e}", file.display())))?;
    if on_disk.sha256 != snap.sha256 {
        return Err(DrError::Refused(format!("{} changed since it was verified; refusing to restore", file.display())));
    }
    if crate::dev::seal_status(&addr).await?.initialized {
        // A killed earlier run may have restored already (then the operator token works), or
        // only initialized the throw-away cluster (then, on the dev stack, start over empty).
        if operator_token_works(connect).await {
            return Ok("already restored by an earlier run (operator token valid)".into());
        }
        match &ctx.env.openbao {
            Connection::DevStack { dir } => {
                crate::dev::respawn_empty(dir).await?;
            }
            Connection::Server { .. } => {
                return Err(DrError::Refused(format!(
                    "OpenBao at {addr} is already initialized but the operator token does not work: empty its raft storage and restart it, then re-run"
                )))
            }
        }
    }
    let auto_unseal = ctx.manifest.seal.is_some();
    restore_into(&addr, &file, auto_unseal).await?;
    let operator = connect().await?;
    let deadline = Instant::now() + SERVER_WAIT;
    loop {
        match operator.get(None, "auth/token/lookup-self").await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "operator token not accepted yet");
                tokio::time::sleep(POLL).await;
            }
            Err(e) => return Err(DrError::Other(format!("after the restore the operator token does not work: {e}"))),
        }
    }
    let sealed_by = if auto_unseal { "unsealed by KMS" } else { "unseal with the pre-disaster keys" };
    Ok(format!("{} bytes restored, {sealed_by}, operator token valid", snap.size))
}

/// Initialize the empty server at `addr` with a throw-away root token, restore `file` into it
/// (force: the snapshot's keys replace the throw-away ones) and wait until it is unsealed
/// again (by the KMS seal when `auto_unseal`). The throw-away token is gone afterwards.
pub(crate) async fn restore_into(addr: &str, file: &Path, auto_unseal: bool) -> Result<(), DrError> {
    let t = Instant::now();
    let token = crate::dev::init_throwaway(addr, auto_unseal).await?;
    tracing::debug!(elapsed = ?t.elapsed(), "initialized");
    wait_for(addr, "become unsealed after init", |s| s.is_some_and(|s| s.initialized && !s.sealed)).await?;
    tracing::debug!(elapsed = ?t.elapsed(), "unsealed");
    // Only for the (streamed) restore, which sends one request at a time.
    let throwaway = Bao::connect(addr, &token, 1)?;
    // The fresh cluster needs a moment to elect itself before it accepts a restore.
    let deadline = Instant::now() + SERVER_WAIT;
    loop {
        match throwaway.raft_snapshot_restore_force(file).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && matches!(e.status(), Some(500..=503) | None) => {
                tracing::debug!(error = %e, "restore not accepted yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    drop(token);
    tracing::debug!(elapsed = ?t.elapsed(), "restored");
    wait_for(addr, "come back unsealed after the restore", |s| s.is_some_and(|s| s.initialized && !s.sealed)).await?;
    tracing::debug!(elapsed = ?t.elapsed(), "unsealed after the restore");
    Ok(())
}

async fn verify(ctx: &Ctx<'_>, bao: &Bao) -> Result<String, DrError> {
    let sample = crate::openbao::verify::sample(&ctx.env.workspaces, ctx.opts.verify_sample);
    if sample.is_empty() {
        return Ok("skipped: fewer than two workspaces with an AppRole (isolation needs two)".into());
    }
    let n = sample.len();
    let mut failures = Vec::new();
    for (i, ws) in sample.iter().enumerate() {
        let other = sample[(i + 1) % sample.len()];
        match crate::openbao::verify::verify_workspace(bao, ws, other).await {
            Ok(p) if p.own_read && p.cross_status == 403 => {}
            Ok(p) => failures.push(format!("{}: own read {}, {}'s KV HTTP {}", ws.name, p.own_read, other.name, p.cross_status)),
            Err(e) => failures.push(format!("{}: {e}", ws.name)),
        }
    }
    if !failures.is_empty() {
        return Err(DrError::Other(format!("verify failed for {} of {n} workspaces:\n  {}", failures.len(), failures.join("\n  "))));
    }
    Ok(format!("{n} workspaces: own KV readable, other workspace 403"))
}

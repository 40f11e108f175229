//! `ctl dr drill`: the whole disaster on a private local stack (its own moto and OpenBao 2.6
//! with the awskms seal, on free loopback ports), measured.
//!
//! 1. provision N workspaces plus a network, an RDS instance (encrypted with the seal key) and
//!    an alarm, with the normal plan/apply;
//! 2. write M secret versions spread over the workspaces, remembering each value's SHA-256;
//! 3. `dr snapshot`;
//! 4. disaster: bao is killed and its raft data deleted; every AWS resource ctl manages is
//!    deleted. What a real disaster must not take survives (see `src/dr/mod.rs`): the seal key,
//!    the DR bucket, the RDS snapshot and the operator token;
//! 5. `dr rebuild` from the manifest (timed: the RTO);
//! 6. read every version back and compare digests: the number lost must be 0.

use crate::openbao::access::Role;
use futures::FutureExt;
use super::{apply, context, CmdResult, EnvArgs};
use crate::dev::{BaoVersion, Stack, StackOptions};
use crate::dr::{rebuild, DrError};
use crate::model::Provider;
use crate::secret::Sensitive;
use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use super::{Status, Term};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// Workspaces to provision.
    #[arg(long, default_value_t = 20)]
    pub workspaces: usize,
    /// Secret versions to write, spread over the workspaces (10 versions per key).
    #[arg(long, default_value_t = 200)]
    pub versions: usize,
    /// Scratch directory [default: a new directory in the system temp dir]; removed at the end
    /// unless --keep.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch directory (stack logs, manifest, state file).
    #[arg(long)]
    pub keep: bool,
    /// The project's templates.
    #[arg(long, default_value = "templates")]
    pub templates: PathBuf,
    #[arg(long, default_value_t = 32)]
    pub parallelism: usize,
}

const VERSIONS_PER_KEY: usize = 10;

/// The variable the drill environment reads its (unreachable) alarm webhook URL from.
const DRILL_WEBHOOK_ENV: &str = "CTL_DRILL_WEBHOOK_URL";

/// One written secret version: where, and the digest of its value.
struct Written {
    namespace: String,
    mount: String,
    key: String,
    version: u64,
    sha256: String,
}

pub async fn run(args: DrillArgs, term: Term) -> CmdResult {
    if args.workspaces < 2 {
        bail!("--workspaces must be at least 2 (verify checks isolation between two)");
    }
    let templates = args.templates.canonicalize().with_context(|| format!("templates directory {}", args.templates.display()))?;
    let scratch = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ctl-dr-drill-{}", std::process::id())),
    };
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let scratch = scratch.canonicalize()?;
    let stack_dir = scratch.join("stack");
    println!("ctl dr drill: {} workspaces, {} secret versions, scratch {}", args.workspaces, args.versions, scratch.display());
    let t = Instant::now();
    let stack = Stack::start(StackOptions { dir: stack_dir.clone(), version: BaoVersion::V2_6, seal: crate::dev::Seal::AwsKms, detach: true })
        .await
        .context("starting the drill's private stack")?;
    let key = stack.kms_key_id.clone().context("the stack has no KMS key")?;
    drop(stack); // detached: the processes keep running; stopped at the end through stack.json
    println!("  stack      {:>6.1}s  OpenBao 2.6.2 (awskms seal on moto KMS) + moto", t.elapsed().as_secs_f64());
    let result = drill(&args, &scratch, &stack_dir, &templates, &key, term).await;
    if let Ok(state) = crate::dev::StackState::load(&stack_dir) {
        state.stop().await;
    }
    match &result {
        Ok(_) if !args.keep => {
            std::fs::remove_dir_all(&scratch).ok();
        }
        _ => println!("  scratch kept: {}", scratch.display()),
    }
    result
}

async fn drill(args: &DrillArgs, scratch: &Path, stack_dir: &Path, templates: &Path, key: &str, term: Term) -> CmdResult {
    let env_file = write_env(scratch, args.workspaces, key)?;
    let env_args = EnvArgs { env: env_file, templates: Some(templates.to_path_buf()), parallelism: args.parallelism.clamp(1, 512) as u16 };
    // The drill's webhook goes nowhere (`.invalid`), but is still read the way a real one is.
    std::env::set_var(DRILL_WEBHOOK_ENV, "https://hooks.invalid/oncall");
    let mut loaded = context::load(&env_args)?;
    let mut session = context::session(&loaded.env, env_args.parallelism, Role::Apply).await?;
    context::read_webhook(&mut loaded, &mut session).await?;
    let aws = session.aws.as_ref().context("the drill environment has aws:")?;

    // 1. Provision.
    let t = Instant::now();
    let plan = context::plan_with(&loaded, &session, env_args.parallelism).await?;
    let changes = crate::engine::Guard::apply([]).check(&plan.changes, &plan.conflicts)?;
    let report = apply::apply_plan(&session, &changes, args.parallelism, &Default::default(), term).await;
    if !report.is_success() {
        let first = report.failed().next().map(|o| format!("{}: {:?}", o.address, o.status)).unwrap_or_default();
        bail!("provisioning failed: {first}");
    }
    println!("  provision  {:>6.1}s  {} changes", t.elapsed().as_secs_f64(), report.outcomes.len());

    // 2. Secret versions.
    let t = Instant::now();
    let written = write_versions(&session.bao, &loaded.env, args.versions, args.parallelism).await?;
    println!("  write      {:>6.1}s  {} versions", t.elapsed().as_secs_f64(), written.len());

    // As `ctl apply` does after leaving the environment as declared: the workspace digests and
    // a clean full check, which the snapshot carries and the rebuild's workspace step trusts.
    let digests = crate::desired::workspace_digests(&loaded.desired);
    crate::openbao::apply::record_digests(&session.bao, &loaded.env.name, &digests, args.parallelism).await?;
    crate::openbao::refresh::record_full_check(&session.bao, &loaded.env.name, true).await;

    // 3. Snapshot.
    let t = Instant::now();
    let dr_dir = scratch.join("dr");
    let taken = crate::dr::snapshot::take(&loaded.env, &session.bao, aws, &dr_dir.join("work"), &dr_dir, None).await?;
    println!(
        "  snapshot   {:>6.1}s  {} bytes raft, {} RDS snapshot(s)",
        t.elapsed().as_secs_f64(),
        taken.manifest.openbao.size,
        taken.manifest.rds.len()
    );

    // 4. Disaster.
    let t = Instant::now();
    crate::dev::wipe_bao_data(stack_dir).await?;
    let deleted = destroy_aws(aws, args.parallelism).await?;
    let disaster_at = crate::dr::now_unix();
    println!("  disaster   {:>6.1}s  bao killed, raft data deleted; {deleted} AWS resources deleted", t.elapsed().as_secs_f64());
    drop(session);

    // 5. Rebuild.
    let opts = rebuild::Options { state_dir: dr_dir.clone(), fresh: true, parallelism: args.parallelism, verify_sample: 10, replace_live: false };
    let env = &loaded.env;
    let connect = || {
        async move { context::connect(env, env_args.parallelism, Role::Apply).await.map_err(|e| DrError::Other(format!("{e:#}"))) }.boxed()
    };
    let mut lines = String::new();
    let mut on_event = |e: rebuild::Event<'_>| {
        if let rebuild::Event::Done { step, secs, detail, .. } = e {
            let _ = writeln!(lines, "    {:<16} {secs:>6.1}s  {detail}", step.slug);
        }
    };
    let aws_again = crate::aws::Aws::connect(env.aws.as_ref().context("aws")?, &env.name).await?;
    let summary = rebuild::run(env, &loaded.desired, &taken.manifest, Some(&aws_again), &opts, &connect, &mut on_event).await?;
    println!("  rebuild    {:>6.1}s", summary.this_run.as_secs_f64());
    print!("{lines}");

    // 6. Count.
    let t = Instant::now();
    let bao = context::connect(env, env_args.parallelism, Role::Apply).await?;
    let lost = count_lost(&bao, &written, args.parallelism).await?;
    println!("  check      {:>6.1}s  {} of {} versions read back", t.elapsed().as_secs_f64(), written.len() - lost, written.len());
    let rpo = disaster_at.saturating_sub(taken.manifest.openbao.taken_unix);
    println!(
        "RTO {:.1}s (goal <= 60s)   RPO {rpo}s (snapshot age at the disaster; 0 writes after it)   lost {lost} of {} versions",
        summary.rto.as_secs_f64(),
        written.len()
    );
    Ok(if lost == 0 { Status::Success } else { Status::Failure })
}

fn write_env(scratch: &Path, workspaces: usize, key: &str) -> anyhow::Result<PathBuf> {
    let dir = scratch.join("environments");
    std::fs::create_dir_all(&dir)?;
    let mut text = format!(
        r#"# Generated by `ctl dr drill`.
openbao: {{ dev_stack: ../stack }}
aws: {{ dev_stack: ../stack }}
dr: {{ bucket: ctl-drill-{pid} }}
classes:
  drill:
    kv: {{ path: secret, max_versions: 20 }}
    policies: [ {{ name: app-read, template: kv-read }} ]
    approle:
      roles:
        app: {{ token_policies: [app-read], token_ttl: 30m, token_max_ttl: 1h, secret_id_ttl: 1h, secret_id_num_uses: 1 }}
network:
  vpc_cidr: 10.50.0.0/16
  private_subnets:
    - {{ name: private-a, cidr: 10.50.10.0/24, az: us-east-1a }}
    - {{ name: private-b, cidr: 10.50.11.0/24, az: us-east-1b }}
  s3_endpoint: true
  security_groups:
    openbao: {{ ingress: [ {{ port: 8200, cidr: 10.50.0.0/16 }} ] }}
rds:
  identifier: drill-db
  engine: postgres
  instance_class: db.t3.micro
  allocated_storage: 20
  backup_retention_period: 30
  subnets: [private-a, private-b]
  kms_key: {key}
alarms:
  sns: {{ topic: drill-oncall, webhook: {{ url_env: {DRILL_WEBHOOK_ENV} }} }}
  alarms:
    - {{ name: db-conn, kind: rds_connections, max_connections: 100, threshold: 80, period: 60, evaluation_periods: 3, runbook_url: "https://runbooks.invalid/db-conn", dimensions: {{ DBInstanceIdentifier: drill-db }} }}
workspaces:
"#,
        pid = std::process::id()
    );
    for i in 0..workspaces {
        let _ = writeln!(text, "  - {{ name: w{i:05}, class: drill }}");
    }
    let file = dir.join("drill.yaml");
    std::fs::write(&file, text)?;
    Ok(file)
}

/// Pseudo-random 32-byte hex values; the drill's secrets only need to differ.
fn value(seed: u64, i: usize) -> String {
    crate::artifacts::hash::sha256_hex(format!("{seed}:{i}").as_bytes())
}

async fn write_versions(bao: &crate::openbao::Bao, env: &crate::config::Environment, versions: usize, parallelism: usize) -> anyhow::Result<Vec<Written>> {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
    let n = env.workspaces.len();
    // Versions of one key must be written in order; keys are independent.
    let mut per_key: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
    for i in 0..versions {
        let ws = i % n;
        let slot = i / n;
        per_key.entry((ws, slot / VERSIONS_PER_KEY)).or_default().push(i);
    }
    let written: Vec<Vec<Written>> = stream::iter(per_key)
        .map(|((ws, k), items)| async move {
            let w = &env.workspaces[ws];
            let key = format!("drill/k{k}");
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                let v = Sensitive::new(value(seed, i));
                let body = bao.write(Some(&w.namespace), format!("{}/data/{key}", w.kv.path), &json!({ "data": { "value": v.expose() } })).await?;
                let version = body.as_ref().and_then(|b| b.pointer("/data/version")).and_then(|v| v.as_u64()).context("KV write returned no version")?;
                out.push(Written { namespace: w.namespace.clone(), mount: w.kv.path.clone(), key: key.clone(), version, sha256: crate::artifacts::hash::sha256_hex(v.expose().as_bytes()) });
            }
            Ok::<_, anyhow::Error>(out)
        })
        .buffer_unordered(parallelism.max(1))
        .try_collect()
        .await?;
    Ok(written.into_iter().flatten().collect())
}

/// Delete every AWS resource ctl manages in the drill's moto (dependency order, like any apply).
async fn destroy_aws(aws: &crate::aws::Aws, parallelism: usize) -> anyhow::Result<usize> {
    // Observed resources carry their dependencies (`aws::link_references`): dependents go first.
    let live = crate::aws::observe(aws).await?;
    let diff = crate::diff::diff(&[], &live.resources, &[]);
    let changes: Vec<_> = diff.changes.into_iter().filter(|c| c.kind.provider() == Provider::Aws).collect();
    // Through the one engine, like every write: the drill's own moto, every loss allowed by name.
    let guard = crate::engine::Guard::apply(changes.iter().map(|c| c.address.clone()));
    let changes = guard.check(&changes, &[])?;
    let providers = crate::engine::Providers { bao: None, aws: Some(aws) };
    let report = crate::engine::run(providers, &changes, parallelism, &Default::default(), |_| {}).await;
    if !report.is_success() {
        let first = report.failed().next().map(|o| format!("{}: {:?}", o.address, o.status)).unwrap_or_default();
        bail!("the simulated disaster could not delete everything: {first}");
    }
    let left = crate::aws::observe(aws).await?.resources.len();
    if left != 0 {
        bail!("{left} AWS resources survived the simulated disaster");
    }
    Ok(changes.len())
}

async fn count_lost(bao: &crate::openbao::Bao, written: &[Written], parallelism: usize) -> anyhow::Result<usize> {
    let lost: Vec<bool> = stream::iter(written)
        .map(|w| async move {
            let scoped = bao.scoped(Some(&w.namespace));
            let got = vaultrs::kv2::read_version::<serde_json::Value>(&scoped, &w.mount, &w.key, w.version).await;
            let ok = match got {
                Ok(data) => data
                    .get("value")
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| crate::artifacts::hash::sha256_hex(v.as_bytes()) == w.sha256),
                Err(e) => {
                    tracing::warn!(namespace = %w.namespace, key = %w.key, version = w.version, error = %e, "version not readable");
                    false
                }
            };
            Ok::<bool, anyhow::Error>(!ok)
        })
        .buffer_unordered(parallelism.max(1))
        .try_collect()
        .await?;
    Ok(lost.into_iter().filter(|l| *l).count())
}


//! `ctl bench`: performance figures as ratios against baselines measured in the same run,
//! on the same server, never as absolute thresholds in tests.
//!
//! `ctl bench apply --workspaces N` (against the local dev stack):
//! 1. floor: the same HTTP requests ctl sends for N workspaces, driven by a bare concurrent
//!    loop (reqwest, same concurrency, no reads, no planning) — what the server allows;
//! 2. ctl: observe + diff + plan + apply of N new workspaces, in process;
//! 3. no-op plan over the N applied workspaces;
//! 4. a bao-CLI shell loop doing the same work for a sample of workspaces (rate-extrapolated).
//!
//! Floor and ctl alternate in rounds on equal chunks so both meet the same database size, and
//! the run waits until OpenBao's background namespace deletions are done before measuring.

use super::{context, CmdResult, EnvArgs};
use crate::openbao::client::{kv_upgrading, RetryPolicy};
use crate::openbao::resources::{MOUNT_MARKER, POLICY_MARKER};
use crate::secret::Sensitive;
use anyhow::{bail, Context};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::path::{Path, PathBuf};
use super::{Status, Term};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Apply N new workspaces; compare with the server floor and a bao-CLI loop.
    Apply {
        #[arg(long, default_value_t = 1000)]
        workspaces: usize,
        /// Concurrent requests (ctl and floor alike).
        #[arg(long, default_value_t = 32)]
        parallelism: u16,
        /// Floor and ctl alternate on this many equal chunks.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// Workspaces the bao-CLI loop provisions (its rate is extrapolated).
        #[arg(long, default_value_t = 20)]
        cli_sample: usize,
        /// The dev stack's state directory.
        #[arg(long, default_value = ".ctl/dev")]
        dev_dir: PathBuf,
        /// Templates directory.
        #[arg(long, default_value = "templates")]
        templates: PathBuf,
        /// Leave the benchmark's namespaces in place (default: delete them at the end).
        #[arg(long)]
        keep: bool,
    },
    /// The alarm backtest engine over 14 days of 1-minute data, against a naive single pass.
    Backtest(super::bench_backtest::BacktestBenchArgs),
    /// Artifact verification: streaming sha256 vs openssl on a local file; S3 verify vs a bare GET.
    Verify(super::bench_verify::BenchVerifyArgs),
    /// Full and pull-request plans over N applied workspaces, against the read floor; peak RSS.
    Plan(super::bench_plan::BenchPlanArgs),
    /// `dr restore-workspace` of one workspace out of a snapshot of many, against booting the
    /// snapshot alone.
    Restore(super::bench_restore::BenchRestoreArgs),
}

pub async fn run(cmd: BenchCommand, term: Term) -> CmdResult {
    let (workspaces, parallelism, rounds, cli_sample, dev_dir, templates, keep) = match cmd {
        BenchCommand::Apply { workspaces, parallelism, rounds, cli_sample, dev_dir, templates, keep } => {
            (workspaces, parallelism, rounds, cli_sample, dev_dir, templates, keep)
        }
        BenchCommand::Backtest(args) => return super::bench_backtest::run(args),
        BenchCommand::Verify(args) => return super::bench_verify::run(args).await,
        BenchCommand::Restore(args) => return super::bench_restore::run(args, term).await,
        BenchCommand::Plan(args) => return super::bench_plan::run(args, term).await,
    };
    let (address, token_file) = crate::dev::connection(&dev_dir)?;
    let token = Sensitive::new(std::fs::read_to_string(&token_file)?.trim().to_string());
    let bao = crate::openbao::Bao::connect(&address, &token, usize::from(parallelism))?;
    let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() % 0xfffff);
    let work = tempfile_dir(&run_id)?;
    let policy_text = |addr: &str| format!("{POLICY_MARKER}{addr}\npath \"secret/data/*\" {{ capabilities = [\"read\"] }}\n");
    let p = usize::from(parallelism);
    let rounds = rounds.clamp(1, workspaces.max(1));

    println!("ctl bench apply: {workspaces} workspaces in {rounds} interleaved rounds, parallelism {parallelism}, OpenBao at {address}");
    println!("requests per workspace: namespace, kv-v2 mount, kv config, policy, approle mount, role (6 writes)");
    wait_for_deletions(&bao).await?;

    // Floor and ctl alternate on equal chunks, so both meet the same database size.
    let (mut floor, mut ctl_time, mut planning, mut noop_time) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut created: Vec<String> = Vec::new();
    let mut envs = Vec::new();
    for r in 0..rounds {
        let chunk = (r * workspaces / rounds)..((r + 1) * workspaces / rounds);
        let floor_names: Vec<String> = chunk.clone().map(|i| format!("bf{run_id}-{i:05}")).collect();
        floor += floor_loop(&address, &token, &floor_names, p, &policy_text).await?;
        created.extend(floor_names);

        let ctl_names: Vec<String> = chunk.map(|i| format!("bw{run_id}-{i:05}")).collect();
        let env_file = write_bench_env(&work, &address, &token_file, &format!("{run_id}r{r}"), &ctl_names)?;
        let args = EnvArgs { env: env_file, templates: Some(templates.clone()), parallelism };
        let t = Instant::now();
        let (_loaded, session, plan) = context::make_plan(&args).await?;
        planning += t.elapsed();
        let changes = crate::engine::Guard::apply([]).check(&plan.changes, &plan.conflicts)?;
        let outcome = super::apply::apply_plan(&session, &changes, p, &Default::default(), term).await;
        ctl_time += t.elapsed();
        created.extend(ctl_names);
        if !outcome.is_success() {
            bail!("ctl apply failed during the benchmark: {:?}", outcome.failed().next());
        }
        envs.push(args);
    }
    report("floor (bare HTTP loop)", workspaces, floor);
    report("ctl plan+apply", workspaces, ctl_time);
    println!("  (of which planning: {:.2}s)", planning.as_secs_f64());

    // No-op plans over everything ctl applied.
    let mut summary = Vec::new();
    for args in &envs {
        let t = Instant::now();
        let (_l, _b, noop) = context::make_plan(args).await?;
        noop_time += t.elapsed();
        if noop.has_changes() {
            bail!("the plan after apply is not empty: {}", crate::render::summary_line(&noop));
        }
        summary.push(noop.summary.unchanged);
    }
    println!(
        "no-op plan over {workspaces} workspaces ({} resources, all unchanged): {:.2}s  (target < 5 s at 1,000)",
        summary.iter().sum::<usize>(),
        noop_time.as_secs_f64()
    );

    // A pull request's plan: one workspace edited, `--refresh changed` against a full refresh of
    // the same environment (the last round's), after the digests an apply records.
    if let Some(args) = envs.last() {
        pr_plan(args, p).await?;
    }

    // bao CLI loop.
    let cli_names: Vec<String> = (0..cli_sample).map(|i| format!("bc{run_id}-{i:05}")).collect();
    let cli = cli_loop(&token_file, &address, &cli_names, &work)?;
    created.extend(cli_names);
    report("bao CLI loop", cli_sample, cli);

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let (floor_rate, ctl_rate, cli_rate) = (rate(workspaces, floor), rate(workspaces, ctl_time), rate(cli_sample, cli));
    println!();
    println!("ctl time / floor time     = {:.2}x  (goal ≤ 1.25x)", floor_rate / ctl_rate);
    println!("ctl speed / bao CLI speed = {:.1}x  (goal ≥ 30x; CLI measured on {cli_sample} workspaces)", ctl_rate / cli_rate);

    if !keep {
        let t = Instant::now();
        cleanup(&bao, created.iter(), p).await?;
        wait_for_deletions(&bao).await?;
        eprintln!("(removed the benchmark's {} namespaces in {:.1}s)", created.len(), t.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(Status::Success)
}

/// `--refresh changed` with one of the environment's workspaces edited, timed from loading the
/// files to the plan, with its OpenBao requests; the full refresh of the same edit as baseline.
pub(super) async fn pr_plan(args: &EnvArgs, parallelism: usize) -> anyhow::Result<()> {
    use context::Refresh;
    let par = parallelism.clamp(1, 512) as u16;
    let loaded = context::load(args)?;
    let session = context::session(&loaded.env, par, crate::openbao::access::Role::Apply).await?;
    let digests = crate::desired::workspace_digests(&loaded.desired);
    crate::openbao::apply::record_digests(&session.bao, &loaded.env.name, &digests, parallelism).await?;
    crate::openbao::refresh::record_full_check(&session.bao, &loaded.env.name, true).await;
    let n = loaded.env.workspaces.len();
    let measure = |refresh: Refresh| {
        let args = args.clone();
        async move {
            let t = Instant::now();
            let mut loaded = context::load(&args)?;
            // The pull request: one workspace's KV mount keeps one more version.
            let kv = loaded.desired.iter_mut().find(|r| r.kind == crate::model::Kind::KvMount).context("no KV mount")?;
            let v = kv.attrs.get("max_versions").and_then(|v| v.as_u64()).unwrap_or(0);
            kv.attrs.insert("max_versions".into(), json!(v + 1));
            let session = context::session(&loaded.env, par, crate::openbao::access::Role::Plan).await?;
            let plan = context::plan_refreshed(&loaded, &session, par, refresh, 3600).await?;
            if plan.summary.update != 1 || plan.summary.total_changes() != 1 {
                bail!("the PR plan should update one KV mount: {}", crate::render::summary_line(&plan));
            }
            Ok::<_, anyhow::Error>((t.elapsed(), session.bao.requests()))
        }
    };
    let (changed, changed_requests) = measure(Refresh::Changed).await?;
    let (full, full_requests) = measure(Refresh::All).await?;
    println!(
        "PR plan, 1 of {n} workspaces edited: --refresh changed {:.2}s with {changed_requests} OpenBao requests; full refresh {:.2}s with {full_requests}; {:.1}x faster (goal: < 1.5 s and ≤ 20 requests at 10,000)",
        changed.as_secs_f64(),
        full.as_secs_f64(),
        full.as_secs_f64() / changed.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// OpenBao deletes namespaces in the background; measuring while it does would be noise.
async fn wait_for_deletions(bao: &crate::openbao::Bao) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        let (_, unmanaged) = crate::openbao::observe::namespaces(bao, "").await?;
        let pending = unmanaged.iter().filter(|u| u.reason == crate::model::UnmanagedReason::DeletionInProgress).count();
        if pending == 0 {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("{pending} namespaces are still being deleted after 10 minutes");
        }
        eprintln!("(waiting for OpenBao to finish deleting {pending} namespaces)");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn report(what: &str, n: usize, d: Duration) {
    println!("{what:<24} {n:>6} workspaces in {:>7.2}s = {:>8.1} workspaces/s", d.as_secs_f64(), n as f64 / d.as_secs_f64().max(1e-9));
}

fn tempfile_dir(run_id: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ctl-bench-{run_id}"));
    std::fs::create_dir_all(dir.join("environments"))?;
    Ok(dir)
}

fn write_bench_env(work: &Path, address: &str, token_file: &Path, id: &str, names: &[String]) -> anyhow::Result<PathBuf> {
    let mut yaml = format!(
        "openbao:\n  address: {address}\n  token_file: {}\nclasses:\n  bench:\n    kv: {{ path: secret, max_versions: 10 }}\n    policies: [ {{ name: app-read, template: kv-read }} ]\n    approle: {{ roles: {{ app: {{ token_policies: [app-read], token_ttl: 1h, token_max_ttl: 4h }} }} }}\nworkspaces:\n",
        token_file.display()
    );
    for name in names {
        yaml.push_str(&format!("  - {{ name: {name}, class: bench }}\n"));
    }
    let file = work.join("environments").join(format!("bench{id}.yaml"));
    std::fs::write(&file, yaml)?;
    Ok(file)
}

/// The same writes ctl makes for one workspace, in a minimal concurrent loop.
async fn floor_loop(
    address: &str,
    token: &Sensitive<String>,
    names: &[String],
    parallelism: usize,
    policy_text: &dyn Fn(&str) -> String,
) -> anyhow::Result<Duration> {
    let http = reqwest::Client::new();
    let t = Instant::now();
    stream::iter(names)
        .map(|ns| {
            let http = &http;
            async move {
                let ws = ns.as_str();
                let post = |ns_header: Option<&str>, path: String, body: serde_json::Value| {
                    let mut req = http
                        .post(format!("{address}/v1/{path}"))
                        .header("X-Vault-Token", token.expose())
                        .json(&body);
                    if let Some(n) = ns_header {
                        req = req.header("X-Vault-Namespace", n);
                    }
                    async move { send_bare(req, &path, &[]).await.map(drop) }
                };
                let meta = json!({"custom_metadata": {"managed-by": "ctl", "environment": "bench-floor", "workspace": ws}});
                post(None, format!("sys/namespaces/{ws}"), meta).await?;
                let n = Some(ws);
                post(n, "sys/mounts/secret".into(), json!({"type": "kv", "description": format!("{MOUNT_MARKER}workspace.{ws}.kv"), "options": {"version": "2"}})).await?;
                post(n, "secret/config".into(), json!({"max_versions": 10, "cas_required": false, "delete_version_after": "0s"})).await?;
                post(n, "sys/policies/acl/app-read".into(), json!({"policy": policy_text(&format!("workspace.{ws}.policy.app-read"))})).await?;
                post(n, "sys/auth/approle".into(), json!({"type": "approle", "description": format!("{MOUNT_MARKER}workspace.{ws}.auth")})).await?;
                post(n, "auth/approle/role/app".into(), json!({"token_policies": ["app-read"], "token_ttl": "1h", "token_max_ttl": "4h", "secret_id_ttl": "0s", "secret_id_num_uses": 0, "token_bound_cidrs": [], "secret_id_bound_cidrs": []})).await?;
                Ok::<(), anyhow::Error>(())
            }
        })
        .buffer_unordered(parallelism.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(t.elapsed())
}

/// The same work as a shell loop over the bao CLI, one process per request.
fn cli_loop(token_file: &Path, address: &str, names: &[String], work: &Path) -> anyhow::Result<Duration> {
    let tools = crate::dev::Tools::discover(crate::dev::BaoVersion::V2_6)?;
    let policy = work.join("policy.hcl");
    std::fs::write(&policy, "path \"secret/data/*\" { capabilities = [\"read\"] }\n")?;
    let script = r#"set -euo pipefail
export BAO_TOKEN="$(cat "$TOKEN_FILE")"
for ns in $NAMES; do
  "$BAO" namespace create "$ns" >/dev/null
  export BAO_NAMESPACE="$ns"
  "$BAO" secrets enable -path=secret -version=2 kv >/dev/null
  "$BAO" write secret/config max_versions=10 >/dev/null
  "$BAO" policy write app-read "$POLICY" >/dev/null
  "$BAO" auth enable approle >/dev/null
  "$BAO" write auth/approle/role/app token_policies=app-read token_ttl=1h token_max_ttl=4h >/dev/null
  unset BAO_NAMESPACE
done
"#;
    let t = Instant::now();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("BAO", &tools.bao)
        .env("BAO_ADDR", address)
        .env("TOKEN_FILE", token_file)
        .env("POLICY", &policy)
        .env("NAMES", names.join(" "))
        .env_remove("BAO_NAMESPACE")
        .output()
        .context("running the bao CLI loop")?;
    if !out.status.success() {
        bail!("bao CLI loop failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed())
}

async fn cleanup<'a>(
    bao: &crate::openbao::Bao,
    names: impl Iterator<Item = &'a String>,
    parallelism: usize,
) -> anyhow::Result<()> {
    let names: Vec<&String> = names.collect();
    stream::iter(names)
        .map(|n| async move { bao.delete(None, format!("sys/namespaces/{n}")).await.map(drop) })
        .buffer_unordered(parallelism.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// A benchmark's private stack (OpenBao 2.6.2, awskms seal on moto) in `dir`, by default a new
/// `ctl-bench-<name>-<pid>` in the system temp dir; a stack already up there is reused. Returns
/// the directory, canonical; the stack is in its `stack/`.
pub(super) async fn private_stack(name: &str, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| std::env::temp_dir().join(format!("ctl-bench-{name}-{}", std::process::id())));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let stack_dir = dir.join("stack");
    match crate::dev::StackState::load(&stack_dir) {
        Ok(state) if state.bao_alive() => println!("reusing the stack in {}", stack_dir.display()),
        _ => {
            let options = crate::dev::StackOptions { dir: stack_dir, version: crate::dev::BaoVersion::V2_6, seal: crate::dev::Seal::AwsKms, detach: true };
            drop(crate::dev::Stack::start(options).await.context("starting the benchmark's private stack")?);
        }
    }
    Ok(dir)
}

/// Stops the stack [`private_stack`] started and deletes its directory.
pub(super) async fn remove_private_stack(dir: &Path) {
    if let Ok(state) = crate::dev::StackState::load(&dir.join("stack")) {
        state.stop().await;
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Sends one request of a floor loop with ctl's transient-error handling (429, 5xx, a new KV v2
/// mount's upgrade), so a bare loop waits out what ctl waits out. Done on 2xx or a status in
/// `also_done`; returns the requests sent, retries included.
pub(super) async fn send_bare(req: reqwest::RequestBuilder, path: &str, also_done: &[u16]) -> anyhow::Result<u64> {
    let retry = RetryPolicy::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = req.try_clone().expect("bodies are JSON or empty").send().await?;
        let status = resp.status();
        // The body is read in full, as ctl reads it.
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() || also_done.contains(&status.as_u16()) {
            return Ok(u64::from(attempt));
        }
        let status = status.as_u16();
        let transient = status == 429 || status >= 500 || kv_upgrading(status, Some(&body));
        if !transient || attempt >= retry.attempts {
            bail!("{path}: HTTP {status}");
        }
        tokio::time::sleep(retry.delay(attempt)).await;
    }
}

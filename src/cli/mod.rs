//! The command-line edge: argument parsing, `anyhow` context, exit codes, TTY decisions.
//! Each command lives in its own file and calls into the library; nothing here talks to an
//! API directly.

pub mod adopt;
pub mod alarms;
pub mod apply;
pub mod artifacts;
pub mod approle;
pub mod bench;
pub mod bootstrap;
pub mod bench_backtest;
pub mod bench_plan;
pub mod bench_restore;
pub mod bench_verify;
pub mod context;
pub mod dev;
pub mod dr;
pub mod dr_drill;
pub mod dr_restore;
pub mod graph;
pub mod lock;
pub mod plan;
pub mod render;
pub mod schema;
pub mod term;
pub mod verify;

pub use term::{Status, Term};

use crate::logging::LogFormat;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "ctl", version, about = "Keeps OpenBao workspaces and their AWS infrastructure in the state declared in git.")]
pub struct Cli {
    /// Log format on stderr (`RUST_LOG` sets the level).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Run against the local dev stack in DIR instead of the OpenBao and AWS the environment
    /// file names (its `openbao:` and `aws:` sections are replaced; nothing else changes), e.g.
    /// to apply a production-shaped file locally.
    #[arg(long, global = true, value_name = "DIR", env = "CTL_DEV_STACK")]
    pub dev_stack: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command that reads an environment shares.
#[derive(clap::Args, Debug, Clone)]
pub struct EnvArgs {
    /// Environment file (e.g. environments/local.yaml).
    #[arg(short = 'e', long = "env", value_name = "FILE")]
    pub env: PathBuf,
    /// Templates directory [default: templates/ next to the environments/ directory].
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Concurrent requests to OpenBao.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub parallelism: u16,
}

pub(crate) fn parse_duration(s: &str) -> Result<crate::config::Duration, String> {
    s.parse::<crate::config::Duration>().map_err(|e| e.to_string())
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check environment files without contacting anything.
    Validate {
        #[command(flatten)]
        env: EnvArgs,
        /// Exit 1 when a declared policy has lint warnings.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Read live state, diff against the environment, print (and optionally save) the plan.
    Plan(plan::PlanArgs),
    /// Apply a saved plan (refused if what it read has changed), or plan and apply.
    Apply(apply::ApplyArgs),
    /// Take over existing objects that collide with declared ones (writes ctl's marker only).
    Adopt(adopt::AdoptArgs),
    /// Drift check for schedules: like `plan --detailed-exitcode` (0 in sync, 2 drift, 1 error).
    Drift(plan::DriftArgs),
    /// Once, with an admin token in BAO_TOKEN: ctl's policies (plan, apply), its state and
    /// signing mounts, and a JWT auth mount with the CI login roles. Idempotent.
    Bootstrap(bootstrap::BootstrapArgs),
    /// The environment's apply lock.
    #[command(subcommand)]
    Lock(lock::LockCommand),
    /// ctl's audit journal of applies and lock breaks (who, what address, when, plan hash).
    Journal(lock::JournalArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
    /// AppRole operations for workloads.
    #[command(subcommand)]
    Approle(approle::ApproleCommand),
    /// Prove tenant isolation: each sampled workspace's AppRole can use its own KV and gets
    /// 403 on another workspace's KV.
    Verify(verify::VerifyArgs),
    /// The local stack (OpenBao + moto on loopback) for development and demos.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Benchmarks against the local stack, reported as ratios to baselines measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// On-call tooling for the CloudWatch alarms in `alarms:`: status, backtest, recommend,
    /// tune, mute/unmute.
    #[command(subcommand)]
    Alarms(alarms::AlarmsCommand),
    /// Boot artifacts in S3: publish (upload + sidecar + pin) and verify against the pins.
    #[command(subcommand)]
    Artifacts(artifacts::ArtifactsCommand),
    /// Disaster recovery: snapshot, rebuild from a snapshot, the generated runbook, drills.
    #[command(subcommand)]
    Dr(dr::DrCommand),
    /// Draw the declared resources and their dependencies (dot, mermaid or svg), grouped by
    /// workspace, VPC and subnet; `--plan FILE` colours planned changes. Offline.
    Graph(graph::GraphArgs),
    /// Render generated files (boot scripts) to stdout.
    #[command(subcommand)]
    Render(artifacts::RenderCommand),
    /// Print the JSON Schema of environment or workspace files (for editors).
    Schema {
        #[arg(value_enum, default_value = "environment")]
        kind: schema::SchemaKind,
    },
}

/// A command's result: an exit code, or an error printed with its context chain.
pub type CmdResult = anyhow::Result<Status>;

/// The result of work done under the apply lock (`engine::with_lock`), as a command result.
fn locked(result: Result<Status, crate::engine::LockedError<anyhow::Error>>) -> CmdResult {
    use crate::engine::LockedError;
    match result {
        Ok(code) => Ok(code),
        Err(LockedError::Work(e)) => Err(e),
        Err(LockedError::Lock(e)) => Err(e.into()),
        Err(lost @ LockedError::Lost) => Err(anyhow::anyhow!("{lost}")),
        Err(e @ LockedError::Unreleased { .. }) => Err(anyhow::anyhow!("{e}")),
    }
}

pub fn main() -> ExitCode {
    // `ctl plan | head` should end quietly, like any Unix tool, not panic on a closed pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Loading 10,000 workspace files allocates ~100 MiB in bursts on several threads; glibc
    // grows each thread's heap 128 KiB at a time, one mprotect each, contending with page
    // faults for the address-space lock. Growing in 64 MiB steps cuts `ctl validate`'s system
    // time by about a quarter there. Padding that is never touched costs no memory.
    // SAFETY: mallopt before any thread starts.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        // glibc gives each thread that allocates its own arena (up to 8 per core); a plan at
        // 10,000 workspaces then held 423 MB resident for a 162 MB heap peak. Two arenas:
        // 228 MB, same time (`ctl bench plan --workspaces 10000`, MALLOC_ARENA_MAX=2).
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = Cli::parse();
    let term = Term::detect();
    crate::logging::init(cli.log_format, term.color_stderr);
    if let Some(dir) = cli.dev_stack.clone() {
        crate::config::set_dev_stack_override(dir);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let result = run(cli.command, term).await;
        context::logout().await;
        result
    });
    match result {
        Ok(status) => status.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, term: Term) -> CmdResult {
    match command {
        Command::Validate { env, deny_warnings } => plan::validate(&env, deny_warnings),
        Command::Plan(args) => plan::run(args, term).await,
        Command::Apply(args) => apply::run(args, term).await,
        Command::Drift(args) => plan::drift(args, term).await,
        Command::Adopt(args) => adopt::run(args, term).await,
        Command::Bootstrap(args) => bootstrap::run(args).await,
        Command::Lock(cmd) => lock::run(cmd).await,
        Command::Journal(args) => lock::journal(args).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "ctl", &mut std::io::stdout());
            Ok(Status::Success)
        }
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout())?;
            Ok(Status::Success)
        }
        Command::Approle(cmd) => approle::run(cmd).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Dev(cmd) => dev::run(cmd).await.map(|()| Status::Success),
        Command::Bench(cmd) => bench::run(cmd, term).await,
        Command::Alarms(cmd) => alarms::run(cmd).await,
        Command::Artifacts(cmd) => artifacts::run(cmd).await,
        Command::Render(cmd) => artifacts::render(cmd).await,
        Command::Graph(args) => graph::run(&args),
        Command::Dr(cmd) => dr::run(cmd, term).await,
        Command::Schema { kind } => schema::run(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every repository file the README names exists (paths under the directories it
    /// refers to), so a newcomer never follows a dead path.
    #[test]
    fn every_file_the_readme_names_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let re = regex::Regex::new(r"\b(?:environments|templates|runbooks|examples|schemas)/[A-Za-z0-9_./-]*[A-Za-z0-9_]").unwrap();
        let mut checked = 0;
        for m in re.find_iter(&readme) {
            let path = m.as_str();
            // Placeholders (`<env>`) and directories named with a trailing slash are not files.
            if path.contains('<') || path.ends_with("/") {
                continue;
            }
            assert!(root.join(path).exists(), "README names {path}, which does not exist");
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} paths found");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every `ctl …` invocation in the CI templates parses with this CLI, so the templates
    /// cannot drift from the commands they call.
    #[test]
    fn ci_templates_are_valid_yaml_and_call_real_commands() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/ci");
        let mut calls = 0;
        for name in ["github-actions.yml", "gitlab-ci.yml"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let _: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            for line in text.lines() {
                let Some(pos) = line.find("ctl --log-format") else { continue };
                let cmd = line[pos..].split(['>', ';', '|']).next().unwrap();
                // `"${extra[@]}"`: optional arguments the shell adds (or not).
                let args: Vec<String> = cmd
                    .split_whitespace()
                    .map(|a| a.trim_matches('"').replace("$CTL_ENV", "environments/x.yaml"))
                    .filter(|a| !a.starts_with("${extra"))
                    .collect();
                if let Err(e) = Cli::try_parse_from(&args) {
                    panic!("{name}: `{cmd}` does not parse: {e}");
                }
                calls += 1;
            }
        }
        assert!(calls >= 6, "found only {calls} ctl calls");
    }
}

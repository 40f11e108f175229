//! `ctl bootstrap` (once, with an admin token) and `ctl render ctl-policy`.

use super::{context, CmdResult, EnvArgs};
use crate::openbao::access::Role;
use crate::openbao::bootstrap::{self, JwtKeys, Outcome};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;
use super::Status;

/// The environment file alone: neither command needs templates or workspace expansion.
fn load(args: &EnvArgs) -> anyhow::Result<crate::config::Environment> {
    crate::config::load(&args.env).map_err(|errors| anyhow::anyhow!("{errors}"))
}

#[derive(clap::Args, Debug)]
pub struct CtlPolicyArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Which policy: plan (read-only; what a pull-request job gets) or apply.
    #[arg(long, value_enum, default_value = "apply")]
    pub role: Role,
}

/// `ctl render ctl-policy`: the policy ctl's token needs, derived from the endpoints ctl calls
/// (`src/openbao/access.rs`), for this environment.
pub fn render_policy(args: &CtlPolicyArgs) -> CmdResult {
    let env = load(&args.env)?;
    print!("{}", context::catalogue(&env).policy(args.role, env.dr.is_some()));
    Ok(Status::Success)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Ci {
    Github,
    Gitlab,
}

#[derive(clap::Args, Debug)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// The CI system's OIDC issuer (e.g. https://token.actions.githubusercontent.com or
    /// https://gitlab.com): the JWT mount's bound_issuer, and its discovery URL unless
    /// --jwt-validation-pubkey is given.
    #[arg(long, value_name = "URL")]
    pub jwt_issuer: Option<String>,
    /// Check JWTs against this PEM public key instead of the issuer's discovery document
    /// (offline issuers; tests). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub jwt_validation_pubkey: Vec<PathBuf>,
    /// The JWT auth mount.
    #[arg(long, default_value = "jwt")]
    pub jwt_mount: String,
    /// The audience the CI jobs request their token for.
    #[arg(long, default_value = "openbao")]
    pub audience: String,
    /// Which CI system's claims the roles are bound with: the plan role to pull/merge
    /// requests (and the read-only steps of push and schedule jobs), the apply role to pushes
    /// to --branch.
    #[arg(long, value_enum, default_value = "github")]
    pub ci: Ci,
    /// The protected branch that applies.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// A claim both roles require, e.g. repository=org/infra (GitHub) or
    /// project_path=group/infra (GitLab). Repeatable; `k=a,b` allows either value.
    #[arg(long = "bound-claims", value_name = "K=V", value_parser = claim)]
    pub bound_claims: Vec<(String, Vec<String>)>,
    /// A claim only the plan role requires (replaces the --ci preset's value for that claim).
    #[arg(long = "plan-claims", value_name = "K=V", value_parser = claim)]
    pub plan_claims: Vec<(String, Vec<String>)>,
    /// A claim only the apply role requires (replaces the --ci preset's value for that claim).
    #[arg(long = "apply-claims", value_name = "K=V", value_parser = claim)]
    pub apply_claims: Vec<(String, Vec<String>)>,
    /// A claim only the restore role requires (`ctl dr restore-workspace`, `ctl dr
    /// verify-snapshot`; the --ci presets bind it to manually started and scheduled jobs on --branch).
    #[arg(long = "restore-claims", value_name = "K=V", value_parser = claim)]
    pub restore_claims: Vec<(String, Vec<String>)>,
    /// TTL of the tokens the roles issue (ctl renews them during long applies).
    #[arg(long, default_value = "20m", value_parser = super::parse_duration)]
    pub token_ttl: crate::config::Duration,
    /// Maximum TTL of those tokens.
    #[arg(long, default_value = "2h", value_parser = super::parse_duration)]
    pub token_max_ttl: crate::config::Duration,
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take over existing JWT roles of ctl's names that bootstrap has no record of creating
    /// (made by hand, or by a ctl from before bootstrap recorded its roles). Without it they
    /// are left alone and reported.
    #[arg(long)]
    pub adopt_jwt_roles: bool,
}

fn claim(s: &str) -> Result<(String, Vec<String>), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.split(',').map(str::to_string).collect())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub async fn run(args: BootstrapArgs) -> CmdResult {
    let env = &load(&args.env)?;
    let mut pems = Vec::new();
    for file in &args.jwt_validation_pubkey {
        let pem = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        if !pem.contains("-----BEGIN PUBLIC KEY-----") {
            bail!("{} is not a PEM public key (-----BEGIN PUBLIC KEY-----)", file.display());
        }
        pems.push(pem.trim().to_string()); // OpenBao stores it trimmed
    }
    let keys = match (&args.jwt_issuer, pems.is_empty()) {
        (_, false) => Some(JwtKeys::Pubkeys(pems)),
        (Some(url), true) => Some(JwtKeys::Discovery(url.clone())),
        (None, true) => None,
    };
    let ci = match args.ci {
        Ci::Github => "github",
        Ci::Gitlab => "gitlab",
    };
    let (mut plan_claims, mut apply_claims, mut restore_claims) = bootstrap::ci_claims(ci, &args.branch);
    let add = |into: &mut BTreeMap<String, Vec<String>>, extra: &[(String, Vec<String>)]| {
        for (k, v) in extra {
            into.insert(k.clone(), v.clone());
        }
    };
    add(&mut plan_claims, &args.bound_claims);
    add(&mut apply_claims, &args.bound_claims);
    add(&mut plan_claims, &args.plan_claims);
    add(&mut apply_claims, &args.apply_claims);
    add(&mut restore_claims, &args.bound_claims);
    add(&mut restore_claims, &args.restore_claims);
    let jwt = bootstrap::Jwt {
        mount: args.jwt_mount.clone(),
        issuer: args.jwt_issuer.clone(),
        keys,
        audience: args.audience.clone(),
        plan_claims,
        apply_claims,
        restore_claims,
        token_ttl: format!("{}s", args.token_ttl.as_secs()),
        token_max_ttl: format!("{}s", args.token_max_ttl.as_secs()),
    };
    let catalogue = context::catalogue(env);
    let opts = bootstrap::Options { environment: &env.name, catalogue: &catalogue, snapshot: env.dr.is_some(), jwt, dry_run: args.dry_run, adopt_jwt_roles: args.adopt_jwt_roles };
    let bao = context::connect_admin(env, args.env.parallelism).await?;
    let (verb, mut counts) = (if args.dry_run { "would be" } else { "" }, BTreeMap::<&str, usize>::new());
    let mut print = |step: &bootstrap::Step| {
        let (word, note) = match &step.outcome {
            Outcome::Created => ("create", String::new()),
            Outcome::Updated => ("update", String::new()),
            Outcome::Unchanged => ("ok", String::new()),
            Outcome::Kept(why) => ("keep", format!(" ({why})")),
        };
        *counts.entry(word).or_default() += 1;
        println!("  {word:<7} {}{note}", step.what);
    };
    bootstrap::run(&bao, &opts, &mut print).await.with_context(|| format!("bootstrapping environment {}", env.name))?;
    let n = |w: &str| counts.get(w).copied().unwrap_or(0);
    println!(
        "Bootstrap of {}: {} {verb}{}created, {} {verb}{}updated, {} unchanged.{}",
        env.name,
        n("create"),
        if verb.is_empty() { "" } else { " " },
        n("update"),
        if verb.is_empty() { "" } else { " " },
        n("ok") + n("keep"),
        if args.dry_run { " Nothing was changed (--dry-run)." } else { "" }
    );
    Ok(Status::Success)
}

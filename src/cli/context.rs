//! What most commands do first: load and expand the environment, connect, observe, plan.

use super::EnvArgs;
use crate::config::{self, Connection, Environment, TokenSource};
use crate::model::{Observed, Resource};
use crate::openbao::observe::{observe, ObserveOptions};
use crate::openbao::Bao;
use crate::plan::Plan;
use crate::secret::Sensitive;
use crate::templates::Templates;
use anyhow::{bail, Context};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub struct Loaded {
    pub env: Environment,
    pub desired: Vec<Resource>,
}

/// Load, validate and expand: everything that can fail on bad input, before any API call.
pub fn load(args: &EnvArgs) -> anyhow::Result<Loaded> {
    let env = config::load(&args.env).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let dir = templates_dir(args, &env);
    let templates = Templates::load(&dir).with_context(|| format!("loading templates from {}", dir.display()))?;
    let desired = crate::desired::expand(&env, &templates).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    Ok(Loaded { env, desired })
}

fn templates_dir(args: &EnvArgs, env: &Environment) -> PathBuf {
    args.templates.clone().unwrap_or_else(|| env.dir.join("..").join("templates"))
}

/// Address and token of the environment's OpenBao. The token never comes from argv.
pub fn connect(env: &Environment) -> anyhow::Result<Bao> {
    let (address, token) = match &env.openbao {
        Connection::Server { address, token } => (address.clone(), token.clone()),
        Connection::DevStack { dir } => {
            let (address, token_file) = crate::dev::connection(dir)
                .with_context(|| format!("environment {} uses the local dev stack", env.name))?;
            (address, TokenSource::File(token_file))
        }
    };
    let token = match token {
        TokenSource::Env(var) => std::env::var(&var)
            .with_context(|| format!("reading the OpenBao token from ${var} (set it, or use token_file)"))?,
        TokenSource::File(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("reading the OpenBao token from {}", path.display()))?
            .trim()
            .to_string(),
    };
    if token.is_empty() {
        bail!("the OpenBao token for environment {} is empty", env.name);
    }
    Ok(Bao::connect(&address, &Sensitive::new(token))?)
}

pub async fn observe_env(
    bao: &Bao,
    env: &Environment,
    only: Option<&BTreeSet<String>>,
    parallelism: u16,
) -> anyhow::Result<Observed> {
    let opts = ObserveOptions { environment: &env.name, only, parallelism: usize::from(parallelism) };
    observe(bao, &opts)
        .await
        .with_context(|| format!("reading live state from OpenBao at {}", bao.address()))
}

/// Load → connect → observe → diff → plan.
pub async fn make_plan(args: &EnvArgs) -> anyhow::Result<(Loaded, Bao, Plan)> {
    let loaded = load(args)?;
    let bao = connect(&loaded.env)?;
    let observed = observe_env(&bao, &loaded.env, None, args.parallelism).await?;
    let diff = crate::diff::diff(&loaded.desired, &observed.resources, &observed.unmanaged);
    let plan = Plan::new(&loaded.env.name, &loaded.env.source_digest, diff, &observed);
    Ok((loaded, bao, plan))
}

//! What most commands do first: load and expand the environment, connect, observe, plan.

use super::EnvArgs;
use crate::config::{self, Auth, Connection, Environment, Pem, Tls, TokenSource};
use crate::openbao::access::{self, Catalogue, Role};
use crate::openbao::login;
use crate::model::{Observed, Resource};
use crate::openbao::observe::{observe, ObserveOptions};
use crate::openbao::Bao;
use crate::plan::Plan;
use crate::secret::Sensitive;
use crate::templates::Templates;
use anyhow::{bail, Context};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Connections to every provider the environment uses.
pub struct Session {
    pub bao: Bao,
    pub aws: Option<crate::aws::Aws>,
}

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

pub fn templates_dir(args: &EnvArgs, env: &Environment) -> PathBuf {
    args.templates.clone().unwrap_or_else(|| env.dir.join("..").join("templates"))
}

/// Tokens ctl obtained by logging in, revoked by [`logout`] when the command ends.
static LOGINS: std::sync::Mutex<Vec<crate::openbao::client::Revoker>> = std::sync::Mutex::new(Vec::new());

/// Revoke every token this process logged in for (called once, as `ctl` exits).
pub async fn logout() {
    let revokers = std::mem::take(&mut *LOGINS.lock().unwrap_or_else(|e| e.into_inner()));
    futures::future::join_all(revokers.into_iter().map(|r| r.revoke())).await;
}

/// The first of `vars` that is set and not empty.
fn env_var(vars: &[&str]) -> Option<String> {
    vars.iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn read_secret(source: &TokenSource, what: &str, hint: &str) -> anyhow::Result<Sensitive<String>> {
    let value = match source {
        TokenSource::Env(var) => std::env::var(var).with_context(|| format!("reading the {what} from ${var} ({hint})"))?,
        TokenSource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the {what} from {}", path.display()))?
            .trim()
            .to_string(),
    };
    if value.is_empty() {
        let from = match source {
            TokenSource::Env(var) => format!("${var}"),
            TokenSource::File(path) => path.display().to_string(),
        };
        bail!("the {what} in {from} is empty");
    }
    Ok(Sensitive::new(value))
}

/// The access catalogue of `env`: its name and the webhook URL's KV path, if declared.
pub fn catalogue(env: &Environment) -> Catalogue {
    let webhook = env.alarms.as_ref().and_then(|a| match &a.webhook {
        config::WebhookSource::Kv { namespace, mount, path, .. } => {
            Some(namespace.iter().map(|n| format!("{n}/")).collect::<String>() + &format!("{mount}/data/{path}"))
        }
        _ => None,
    });
    Catalogue::for_env(&env.name, webhook)
}

/// A client of the environment's OpenBao, logged in. The address, namespace and token come
/// from the file, else from `BAO_ADDR`, `BAO_NAMESPACE` and `BAO_TOKEN` (never from argv).
/// A JWT login without a role uses `ctl-<env>-<role>`: read-only commands pass
/// [`Role::Plan`], writing ones [`Role::Apply`]. `parallelism` bounds the requests in flight.
pub async fn connect(env: &Environment, parallelism: u16, role: Role) -> anyhow::Result<Bao> {
    connect_as(env, parallelism, role, false, None).await
}

/// [`connect`] to another server holding the same data: a scratch OpenBao restored from one
/// of the environment's snapshots, at `address` (plain HTTP on loopback). The same login
/// works there because the snapshot carries the auth mounts, roles and policies.
pub async fn connect_at(env: &Environment, parallelism: u16, role: Role, address: &str) -> anyhow::Result<Bao> {
    connect_as(env, parallelism, role, false, Some(address)).await
}

/// [`connect`] with the admin token in `BAO_TOKEN` whatever the file's `auth` says (for
/// `ctl bootstrap`, which creates what ctl's own logins need).
pub async fn connect_admin(env: &Environment, parallelism: u16) -> anyhow::Result<Bao> {
    connect_as(env, parallelism, Role::Apply, true, None).await
}

async fn connect_as(env: &Environment, parallelism: u16, role: Role, admin: bool, at: Option<&str>) -> anyhow::Result<Bao> {
    let (address, namespace, auth, tls) = match &env.openbao {
        Connection::Server { namespace, auth, tls, .. } => {
            let address = env.openbao.server_address().with_context(|| {
                format!("environment {} names no OpenBao address: set openbao.address or BAO_ADDR", env.name)
            })?;
            let tls = tls_with_env(tls, &address)?;
            let namespace = namespace.clone().or_else(|| env_var(&["BAO_NAMESPACE", "VAULT_NAMESPACE"]));
            let auth = auth.clone().filter(|_| !admin).unwrap_or(Auth::Token(TokenSource::Env(
                if std::env::var_os("BAO_TOKEN").is_none() && std::env::var_os("VAULT_TOKEN").is_some() { "VAULT_TOKEN" } else { "BAO_TOKEN" }.into(),
            )));
            (address, namespace, auth, tls)
        }
        Connection::DevStack { dir } => {
            let (address, token_file) = crate::dev::connection(dir)
                .with_context(|| format!("environment {} uses the local dev stack", env.name))?;
            (address, None, Auth::Token(TokenSource::File(token_file)), Tls::default())
        }
    };
    let (address, tls) = match at {
        Some(at) => (at.to_string(), Tls::default()),
        None => (address, tls),
    };
    let given = match &auth {
        Auth::Token(source) => read_secret(source, "OpenBao token", "set it, or use openbao.auth")?,
        _ => Sensitive::new(String::new()),
    };
    let mut bao = Bao::connect_tls(&address, &given, usize::from(parallelism), &tls)?
        .with_namespace(namespace)
        .with_catalogue(catalogue(env));
    let version = login::check_version(&bao).await?;
    tracing::debug!(%version, address = %address, "connected to OpenBao");
    let credentials = match auth {
        Auth::Token(_) => return Ok(bao),
        Auth::Jwt { mount, role: r, jwt } => login::Credentials::Jwt {
            role: r.unwrap_or_else(|| access::name(&env.name, role)),
            jwt: read_secret(&jwt, "JWT", "the CI system's OIDC token")?,
            mount,
        },
        Auth::AppRole { mount, role_id_file, secret_id_file } => {
            let role_id = read_secret(&TokenSource::File(role_id_file), "AppRole role-id", "")?.expose().to_string();
            let contents = read_secret(&TokenSource::File(secret_id_file.clone()), "AppRole secret-id", "")?;
            let secret_id = login::secret_id(&bao, contents)
                .await
                .with_context(|| format!("reading the AppRole secret-id in {}", secret_id_file.display()))?;
            login::Credentials::AppRole { mount, role_id, secret_id }
        }
    };
    let what = match &credentials {
        login::Credentials::Jwt { mount, role, .. } => format!("logging in to OpenBao at {address} with a JWT (auth/{mount}, role {role})"),
        login::Credentials::AppRole { mount, .. } => format!("logging in to OpenBao at {address} with AppRole (auth/{mount})"),
    };
    login::login(&mut bao, &credentials).await.context(what)?;
    LOGINS.lock().unwrap_or_else(|e| e.into_inner()).push(bao.revoker());
    Ok(bao)
}

/// The first of `vars` that is set and not empty, with its name (a path).
fn env_path(vars: &[&'static str]) -> Option<(&'static str, PathBuf)> {
    vars.iter().find_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()).map(|p| (*v, PathBuf::from(p))))
}

/// The file's TLS settings, with what it leaves unset taken from `BAO_CACERT` / `VAULT_CACERT`
/// and `BAO_CLIENT_CERT` + `BAO_CLIENT_KEY` (or the `VAULT_` pair), checked like the file's
/// (readable PEM). Only for `https://` addresses; the file wins.
pub fn tls_with_env(file: &Tls, address: &str) -> anyhow::Result<Tls> {
    let mut tls = file.clone();
    if !address.starts_with("https://") {
        return Ok(tls);
    }
    let check = |var: &str, path: &PathBuf, kind: Pem| {
        config::check_pem(path, kind).map_err(|e| anyhow::anyhow!("${var}: {e}"))
    };
    if tls.ca_cert.is_none() {
        if let Some((var, path)) = env_path(&["BAO_CACERT", "VAULT_CACERT"]) {
            check(var, &path, Pem::Certificate)?;
            tls.ca_cert = Some(path);
        }
    }
    if tls.client.is_none() {
        for (cert_var, key_var) in [("BAO_CLIENT_CERT", "BAO_CLIENT_KEY"), ("VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY")] {
            match (env_path(&[cert_var]), env_path(&[key_var])) {
                (Some((_, cert)), Some((_, key))) => {
                    check(cert_var, &cert, Pem::Certificate)?;
                    check(key_var, &key, Pem::PrivateKey)?;
                    tls.client = Some((cert, key));
                    break;
                }
                (None, None) => {}
                (Some(_), None) => bail!("${cert_var} is set but ${key_var} is not; set both (or neither)"),
                (None, Some(_)) => bail!("${key_var} is set but ${cert_var} is not; set both (or neither)"),
            }
        }
    }
    Ok(tls)
}

/// Connect to OpenBao (see [`connect`]) and, when the environment has an `aws:` section, AWS.
pub async fn session(env: &Environment, parallelism: u16, role: Role) -> anyhow::Result<Session> {
    let bao = connect(env, parallelism, role).await?;
    let aws = match &env.aws {
        Some(conn) => Some(crate::aws::Aws::connect(conn, &env.name).await?),
        None => None,
    };
    Ok(Session { bao, aws })
}

/// Read the alarm webhook URL (`alarms.sns.webhook`: an environment variable or an OpenBao KV
/// field) into `session.aws`, and its stand-in into the desired subscription. Every command
/// that plans or applies alarms calls this after [`session`].
pub async fn read_webhook(loaded: &mut Loaded, session: &mut Session) -> anyhow::Result<()> {
    let (Some(cfg), Some(aws)) = (&loaded.env.alarms, session.aws.as_mut()) else {
        return Ok(());
    };
    let url = crate::alarms::webhook::resolve(&cfg.webhook, Some(&session.bao)).await?;
    crate::alarms::webhook::set_stand_in(&mut loaded.desired, &loaded.env.name, &url);
    aws.webhook = Some(url);
    Ok(())
}

/// Which parts of the live state to read.
pub enum Scope<'a> {
    Everything,
    /// A saved plan's re-read, or a trusting plan's: only these workspaces, and AWS only if
    /// `aws`; `listed` is the namespace listing when it was already made.
    Touched { workspaces: &'a BTreeSet<String>, aws: bool, listed: Option<&'a crate::openbao::observe::Listing> },
}

impl Scope<'_> {
    /// Whether a resource at `address` is read in this scope.
    pub fn contains(&self, address: &crate::model::Address) -> bool {
        match (self, address.workspace_name()) {
            (Scope::Everything, _) => true,
            (Scope::Touched { workspaces, .. }, Some(ws)) => workspaces.contains(ws),
            (Scope::Touched { aws, .. }, None) => *aws,
        }
    }
}

pub async fn observe_env(session: &Session, env: &Environment, scope: &Scope<'_>, parallelism: u16) -> anyhow::Result<Observed> {
    let (only, with_aws, listed) = match scope {
        Scope::Everything => (None, true, None),
        Scope::Touched { workspaces, aws, listed } => (Some(*workspaces), *aws, *listed),
    };
    let opts = ObserveOptions { environment: &env.name, only, listed, parallelism: usize::from(parallelism) };
    let bao = &session.bao;
    let mut observed = observe(bao, &opts)
        .await
        .with_context(|| format!("reading live state from OpenBao at {}", bao.address()))?;
    if let (Some(aws), true) = (&session.aws, with_aws) {
        let live = crate::aws::observe(aws).await.with_context(|| format!("reading live state from AWS at {}", aws.endpoint.as_deref().unwrap_or("the default endpoint")))?;
        observed.resources.extend(live.resources);
        observed.unmanaged.extend(live.unmanaged);
        observed.resources.sort_by(|a, b| a.address.cmp(&b.address));
    }
    Ok(observed)
}

/// The commit of the git checkout holding `dir` (`CTL_GIT_COMMIT` overrides, for CI systems
/// that build from an exported tree). `None` outside a checkout.
pub fn git_commit(dir: &std::path::Path) -> Option<String> {
    if let Ok(c) = std::env::var("CTL_GIT_COMMIT") {
        return Some(c).filter(|c| !c.is_empty());
    }
    let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Load → connect → observe → diff → plan.
pub async fn make_plan(args: &EnvArgs) -> anyhow::Result<(Loaded, Session, Plan)> {
    make_plan_refreshed(args, Refresh::All, 0).await
}

/// [`make_plan`] reading what `refresh` asks for ([`plan_refreshed`]).
pub async fn make_plan_refreshed(args: &EnvArgs, refresh: Refresh, max_trust_age: u64) -> anyhow::Result<(Loaded, Session, Plan)> {
    let mut loaded = load(args)?;
    let mut session = session(&loaded.env, args.parallelism, Role::Plan).await?;
    read_webhook(&mut loaded, &mut session).await?;
    let plan = plan_refreshed(&loaded, &session, args.parallelism, refresh, max_trust_age).await?;
    Ok((loaded, session, plan))
}

/// Observe → diff → plan, for an environment already loaded and connected.
pub async fn plan_with(loaded: &Loaded, session: &Session, parallelism: u16) -> anyhow::Result<Plan> {
    if let (Some(ns), Some(q)) = (session.bao.namespace(), loaded.desired.iter().find(|r| r.kind == crate::model::Kind::RateLimitQuota)) {
        bail!(
            "{} is a rate-limit quota, which OpenBao keeps in the root namespace only, but ctl works in namespace {ns} \
             (openbao.namespace or BAO_NAMESPACE): remove the quota or let ctl work at the root",
            q.address
        );
    }
    let observed = observe_env(session, &loaded.env, &Scope::Everything, parallelism).await?;
    let diff = crate::diff::diff(&loaded.desired, &observed.resources, &observed.unmanaged);
    if let Some(aws) = &session.aws {
        crate::gates::boot_artifacts(aws, &loaded.env, &diff.changes).await?;
    }
    let written: BTreeSet<&crate::model::Address> = diff.changes.iter().filter(|c| c.after().is_some()).map(|c| &c.address).collect();
    let warnings = crate::policy::lint_declared(&loaded.env, &loaded.desired, Some(&written));
    Ok(Plan::new(&loaded.env.name, &loaded.env.source_digest, diff, &observed)
        .with_warnings(warnings)
        .bound_to(git_commit(&loaded.env.dir), crate::plan::DEFAULT_MAX_AGE_SECS))
}

/// How much live state a plan reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Refresh {
    /// Every workspace and AWS (the default; a clean one records a full drift check).
    #[default]
    All,
    /// Only workspaces whose recorded digest differs from the files (new, removed, edited),
    /// when a recent full drift check found no drift; AWS in full.
    Changed,
}

/// [`plan_with`], reading only what `refresh` asks for. `max_trust_age`: seconds a full drift
/// check stays good for trusting digests.
pub async fn plan_refreshed(loaded: &Loaded, session: &Session, parallelism: u16, refresh: Refresh, max_trust_age: u64) -> anyhow::Result<Plan> {
    use crate::openbao::refresh;
    let bao = &session.bao;
    let env = &loaded.env;
    if refresh == Refresh::All {
        let plan = plan_with(loaded, session, parallelism).await?;
        if !plan.has_changes() && plan.conflicts.is_empty() {
            refresh::record_full_check(bao, &env.name, true).await;
        }
        return Ok(plan);
    }
    let check = match refresh::last_full_check(bao, &env.name).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the last full drift check; trusting nothing");
            None
        }
    };
    let distrust = |why: String| crate::plan::RefreshNote { trusted: Default::default(), trusted_resources: 0, last_full_check: check.map(|c| c.at), distrust: Some(why) };
    if let Some(why) = refresh::distrust(check, crate::openbao::state::now_secs(), max_trust_age) {
        return Ok(plan_with(loaded, session, parallelism).await?.with_refresh(distrust(why)));
    }
    let listed = crate::openbao::observe::namespaces(bao, &env.name).await.context("listing the workspace namespaces")?;
    let managed = &listed.0;
    let digests = crate::desired::workspace_digests(&loaded.desired);
    let trusted = refresh::trusted(&digests, managed);
    let read: BTreeSet<String> = env
        .workspaces
        .iter()
        .map(|w| w.name.clone())
        .chain(managed.iter().map(|m| m.workspace.clone()))
        .filter(|w| !trusted.contains_key(w))
        .collect();
    let scope = Scope::Touched { workspaces: &read, aws: true, listed: Some(&listed) };
    let observed = observe_env(session, env, &scope, parallelism).await?;
    let desired: Vec<Resource> = loaded.desired.iter().filter(|r| scope.contains(&r.address)).cloned().collect();
    let trusted_resources = loaded.desired.len() - desired.len();
    let mut diff = crate::diff::diff(&desired, &observed.resources, &observed.unmanaged);
    diff.unchanged += trusted_resources;
    if let Some(aws) = &session.aws {
        crate::gates::boot_artifacts(aws, env, &diff.changes).await?;
    }
    let written: BTreeSet<&crate::model::Address> = diff.changes.iter().filter(|c| c.after().is_some()).map(|c| &c.address).collect();
    let warnings = crate::policy::lint_declared(env, &loaded.desired, Some(&written));
    let note = crate::plan::RefreshNote { trusted, trusted_resources, last_full_check: check.map(|c| c.at), distrust: None };
    Ok(Plan::new(&env.name, &env.source_digest, diff, &observed)
        .with_warnings(warnings)
        .with_refresh(note)
        .bound_to(git_commit(&env.dir), crate::plan::DEFAULT_MAX_AGE_SECS))
}

/// Refuse to go on when the plan has policy warnings and they are to fail it (`--deny-warnings`
/// or `policy_lint.deny_warnings`).
pub fn deny_warnings(plan: &Plan, env: &Environment, flag: bool) -> anyhow::Result<()> {
    let deny = flag || env.policy_lint.as_ref().is_some_and(|p| p.deny_warnings);
    if deny && !plan.warnings.is_empty() {
        bail!(
            "{} policy warning(s) and {}: fix the policies, or accept a finding on purpose in policy_lint.allow of {}",
            plan.warnings.len(),
            if flag { "--deny-warnings" } else { "policy_lint.deny_warnings: true" },
            env.file.display()
        );
    }
    Ok(())
}

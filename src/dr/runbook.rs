//! `ctl dr runbook`: [`STEPS`] rendered as `runbooks/disaster_recovery.md` through
//! `templates/runbooks/disaster_recovery.md.hbs`, with the environment's concrete names. The
//! committed runbook is compared with a fresh rendering in a test, so it cannot drift from what
//! `ctl dr rebuild` executes.

use super::steps::{StepId, STEPS};
use crate::config::{Connection, Environment};
use serde::Serialize;
use std::path::Path;

pub const TEMPLATE: &str = "runbooks/disaster_recovery.md.hbs";

/// The names a runbook mentions. Only what is declared in git: nothing generated at run time
/// (key ids, addresses of a running dev stack), so the rendering is stable.
#[derive(Debug, Serialize)]
pub struct Facts {
    pub env: String,
    pub env_file: String,
    pub region: String,
    pub dr_bucket: String,
    pub dr_prefix: String,
    pub dev_stack: bool,
    pub dev_dir: String,
    pub bao_addr: String,
    pub network: String,
    pub iam_roles: String,
    pub artifacts: String,
    pub rds_identifier: String,
    pub rds_subnet_group: String,
    pub rds_retention: String,
    pub instances: String,
    pub workspaces: usize,
    pub alarms: String,
}

#[derive(Serialize)]
struct RenderedStep {
    number: usize,
    slug: &'static str,
    title: &'static str,
    does: String,
    by_hand: String,
    /// Whether the environment declares anything this step rebuilds.
    declared: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    facts: &'a Facts,
    steps: Vec<RenderedStep>,
}

fn relative(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()).unwrap_or(path).display().to_string()
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| format!("`{s}`")).collect();
    if items.is_empty() {
        "none declared".into()
    } else {
        items.join(", ")
    }
}

impl Facts {
    pub fn of(env: &Environment) -> Facts {
        let (dev_stack, dev_dir, bao_addr) = match &env.openbao {
            Connection::DevStack { dir } => (true, relative(dir), format!("the dev stack's address (`ctl dev status --dir {}`)", relative(dir))),
            Connection::Server { .. } => (false, String::new(), env.openbao.server_address().unwrap_or_else(|| "$BAO_ADDR".into())),
        };
        let region = match &env.aws {
            Some(crate::config::AwsConnection::Account { region, .. }) => region.clone(),
            Some(crate::config::AwsConnection::DevStack { .. }) => "us-east-1".into(),
            None => "(no aws: section)".into(),
        };
        let infra = &env.infra;
        let network = match &infra.network {
            Some(n) => format!(
                "VPC {}, subnets {}",
                n.vpc_cidr,
                list(n.subnets.iter().map(|s| s.name.clone()))
            ),
            None => "none declared".into(),
        };
        let rds = infra.rds.as_ref();
        Facts {
            env: env.name.clone(),
            env_file: relative(&env.file),
            region,
            dr_bucket: env.dr.as_ref().map(|d| d.bucket.clone()).unwrap_or_else(|| "(no dr: section)".into()),
            dr_prefix: env.dr.as_ref().map(|d| d.prefix.clone()).unwrap_or_default(),
            dev_stack,
            dev_dir,
            bao_addr,
            network,
            iam_roles: list(env.kms_iam.iam_roles.keys().map(|r| crate::config::iam_name(&env.name, r))),
            artifacts: list(env.artifacts.iter().flat_map(|a| a.items.iter().map(|i| format!("{}@{}", i.name, i.version)))),
            rds_identifier: rds.map(|r| r.identifier.clone()).unwrap_or_else(|| "(none declared)".into()),
            rds_subnet_group: rds.map(|r| format!("{}-{}", env.name, r.identifier)).unwrap_or_default(),
            rds_retention: rds.map(|r| r.backup_retention_period.to_string()).unwrap_or_default(),
            instances: list(infra.instances.iter().map(|i| format!("{} × {}", i.name, i.count))),
            workspaces: env.workspaces.len(),
            alarms: list(env.alarms.iter().flat_map(|a| a.alarms.iter().map(|x| x.name.clone()))),
        }
    }
}

/// Whether `env` declares anything step `id` works on (always, for the OpenBao steps).
fn declared(env: &Environment, id: StepId) -> bool {
    match id {
        StepId::Network => env.infra.network.is_some(),
        StepId::Iam => !env.kms_iam.iam_roles.is_empty() || !env.kms_iam.kms_keys.is_empty(),
        StepId::Artifacts => env.artifacts.as_ref().is_some_and(|a| !a.items.is_empty()),
        StepId::Rds => env.infra.rds.is_some(),
        StepId::Compute => !env.infra.instances.is_empty(),
        StepId::Alarms => env.alarms.is_some(),
        StepId::Kms | StepId::Snapshot | StepId::OpenbaoStart | StepId::OpenbaoRestore | StepId::Workspaces | StepId::Verify => true,
    }
}

/// Render the runbook for `env` with the template in `templates_dir`.
pub fn render(env: &Environment, templates_dir: &Path) -> Result<String, String> {
    let path = templates_dir.join(TEMPLATE);
    let template = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let facts = Facts::of(env);
    let hb = crate::templates::engine();
    let snippet = |text: &str, what: &str| hb.render_template(text, &facts).map_err(|e| format!("step text {what}: {e}"));
    let steps = STEPS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(RenderedStep {
                number: i + 1,
                slug: s.slug,
                title: s.title,
                does: snippet(s.does, s.slug)?,
                by_hand: snippet(s.by_hand, s.slug)?,
                declared: declared(env, s.id),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    hb.render_template(&template, &Context { facts: &facts, steps }).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed runbook is exactly what `ctl dr runbook -e environments/local.yaml` prints.
    #[test]
    fn committed_runbook_matches_the_step_list() {
        // cargo runs unit tests in the package root, which is where the runbook is rendered from.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let env = crate::config::load(Path::new("environments/local.yaml")).unwrap();
        let rendered = render(&env, &root.join("templates")).unwrap();
        let committed = std::fs::read_to_string(root.join("runbooks/disaster_recovery.md")).unwrap_or_default();
        assert!(
            rendered == committed,
            "runbooks/disaster_recovery.md is out of date: run `ctl dr runbook -e environments/local.yaml --out runbooks/disaster_recovery.md`"
        );
        for step in STEPS {
            assert!(rendered.contains(step.title), "{} missing from the runbook", step.slug);
        }
    }
}

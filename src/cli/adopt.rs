//! `ctl adopt -e ENV ADDRESS…`: take over existing objects that collide with declared ones.
//! Without it a collision stays a conflict that `ctl apply` refuses. Only the exact
//! addresses named are adopted, only ctl's marker is written (never values), under the apply
//! lock, recorded in the journal; the plan that follows shows how each differs from its
//! declaration.

use crate::openbao::access::Role;
use super::{context, CmdResult, EnvArgs};
use crate::model::{Address, Observed, Provider, Resource};
use crate::plan::Plan;
use crate::engine;
use crate::openbao::{journal, state};
use crate::render;
use anyhow::{bail, Context};
use std::collections::BTreeSet;
use super::{Status, Term};

#[derive(clap::Args, Debug)]
pub struct AdoptArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Declared addresses whose existing, unmanaged object ctl should take over.
    #[arg(required = true, value_name = "ADDRESS")]
    pub addresses: Vec<String>,
}

pub async fn run(args: AdoptArgs, term: Term) -> CmdResult {
    let loaded = context::load(&args.env)?;
    let session = context::session(&loaded.env, args.env.parallelism, Role::Apply).await?;
    let spec = engine::LockSpec {
        environment: &loaded.env.name,
        plan: None,
        ttl: std::time::Duration::from_secs(120),
        wait: std::time::Duration::from_secs(300),
    };
    super::locked(engine::with_lock(&session.bao, spec, |_lost| adopt_locked(&args, &loaded, &session, term)).await)
}

async fn adopt_locked(args: &AdoptArgs, loaded: &context::Loaded, session: &context::Session, term: Term) -> CmdResult {
    let plan = context::plan_with(loaded, session, args.env.parallelism).await?;
    let named: BTreeSet<Address> = args.addresses.iter().map(Address::new).collect();

    // Every address must be a declared resource in conflict with a foreign object; all are
    // checked before anything is written.
    let mut chosen = Vec::new();
    for address in &named {
        let Some(want) = loaded.desired.iter().find(|r| &r.address == address) else {
            bail!("{address} is not declared in {}; nothing was adopted", args.env.env.display());
        };
        let Some(conflict) = plan.conflicts.iter().find(|c| &c.address == address) else {
            bail!(
                "{address} does not collide with an object ctl does not manage (it is ctl's already, or absent: `ctl apply` creates it); nothing was adopted"
            );
        };
        if want.kind.provider() == Provider::Aws {
            bail!(
                "{address}: adopting AWS objects is not supported yet; tag the object with managed-by=ctl, ctl-environment={}, ctl-address={address} yourself. Nothing was adopted",
                loaded.env.name
            );
        }
        if let Some(container) = want.container.as_ref().filter(|c| !named.contains(c)) {
            if plan.conflicts.iter().any(|c| &c.address == container) {
                bail!("{address} lives in {container}, which is not ctl's either: adopt both; nothing was adopted");
            }
        }
        chosen.push((want, conflict));
    }

    // Containers first, so a namespace is ctl's before the records inside it are written.
    chosen.sort_by_key(|(want, _)| want.container.is_some());
    let mut records = Vec::new();
    let mut failed = None;
    for (want, conflict) in &chosen {
        println!("adopting {}: {}", want.address, conflict.message);
        let outcome = crate::openbao::apply::adopt(&session.bao, want).await;
        records.push(journal::ChangeRecord {
            address: want.address.to_string(),
            action: "adopt".into(),
            outcome: if outcome.is_ok() { "done".into() } else { "failed".into() },
        });
        if let Err(e) = outcome {
            failed = Some(e);
            break;
        }
    }
    let entry = journal::Entry {
        at: state::now_secs(),
        actor: state::actor(),
        event: "adopt".into(),
        plan: None,
        git_commit: context::git_commit(&loaded.env.dir),
        changes: records,
    };
    let journal = journal::record(&session.bao, &loaded.env.name, &entry).await;
    if let Err(e) = &journal {
        eprintln!("warning: the audit journal entry was not written: {e}");
    }
    if let Some(e) = failed {
        return Err(e).context("adopting; what is listed above as adopted stays ctl's, re-run for the rest");
    }
    if journal.is_err() {
        bail!("the objects were adopted, but the audit journal entry was not written (see above)");
    }

    // What the next apply would do to the adopted objects.
    let live = context::observe_env(session, &loaded.env, &context::Scope::Everything, args.env.parallelism).await?;
    let pick = |r: &&Resource| named.contains(&r.address);
    let desired: Vec<Resource> = loaded.desired.iter().filter(pick).cloned().collect();
    let resources: Vec<Resource> = live.resources.iter().filter(pick).cloned().collect();
    let diff = crate::diff::diff(&desired, &resources, &[]);
    let observed = Observed { resources, unmanaged: Vec::new() };
    let after = Plan::new(&loaded.env.name, &loaded.env.source_digest, diff, &observed);
    println!("Adopted {} object(s). How they differ from their declaration (`ctl apply` converges them):", chosen.len());
    print!("{}", render::text::render(&after, term.color_stdout, true));
    Ok(Status::Success)
}

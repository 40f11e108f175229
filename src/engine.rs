//! The one apply engine. Every path that writes a plan's changes (`ctl apply`, `ctl dr
//! rebuild`, the drill, `ctl bench apply`) goes through it:
//! - [`Guard`]: conflicts always refuse; data loss needs a per-address flag; a caller may
//!   forbid deletes altogether (DR's narrow policy). Checked before any call.
//! - [`with_lock`]: the environment's apply lock, renewed while the work runs, with the
//!   token kept alive; when the lock is lost, no further change starts.
//! - [`run`]: dependency order, bounded adaptive concurrency, one dispatch to the provider
//!   that owns each kind.
//! - [`journal_entry`]: what is recorded (addresses and outcomes, never values).

use crate::aws::Aws;
use crate::diff::{Action, Change, Conflict};
use crate::execute::{self, Outcome, Report, Status};
use crate::model::Address;
use crate::providers::{self, Handler, Request};
use crate::openbao::{journal, lock, state, token, Bao};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a run may do beyond creates and in-place updates.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    /// Data-losing deletes and replaces allowed, by address (`--allow-destroy`).
    pub allow_destroy: BTreeSet<Address>,
    /// Whether deletes run at all (a DR rebuild leaves them to a reviewed plan).
    pub deletes: bool,
}

impl Guard {
    /// `ctl apply`: everything planned, data loss only where flagged.
    pub fn apply(allow_destroy: impl IntoIterator<Item = Address>) -> Guard {
        Guard { allow_destroy: allow_destroy.into_iter().collect(), deletes: true }
    }

    /// A DR rebuild: recreate what is missing and converge what differs; never delete,
    /// never lose data (a data-losing replace is refused, not run).
    pub fn rebuild() -> Guard {
        Guard { allow_destroy: BTreeSet::new(), deletes: false }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    #[error("the plan has conflicts; nothing was applied:\n{}", list(.0.iter().map(|c| format!("{}: {}", c.address, c.message))))]
    Conflicts(Vec<Conflict>),
    #[error("refusing to destroy data without an explicit flag; nothing was applied:\n{}", list(.0.iter().map(|(a, addr)| format!("{} {addr} (allow with --allow-destroy={addr})", a.verb()))))]
    DataLoss(Vec<(Action, Address)>),
}

fn list(lines: impl Iterator<Item = String>) -> String {
    lines.map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

impl Guard {
    /// The changes to run, or why none may run. Pure; called before any API call.
    pub fn check(&self, changes: &[Change], conflicts: &[Conflict]) -> Result<Vec<Change>, Refused> {
        if !conflicts.is_empty() {
            return Err(Refused::Conflicts(conflicts.to_vec()));
        }
        let forbidden: Vec<(Action, Address)> = changes
            .iter()
            .filter(|c| c.destroys_data && !self.allow_destroy.contains(&c.address))
            .filter(|c| self.deletes || c.action() != Action::Delete)
            .map(|c| (c.action(), c.address.clone()))
            .collect();
        if !forbidden.is_empty() {
            return Err(Refused::DataLoss(forbidden));
        }
        Ok(changes.iter().filter(|c| self.deletes || c.action() != Action::Delete).cloned().collect())
    }
}

/// The connections changes are carried out with.
#[derive(Clone, Copy)]
pub struct Providers<'a> {
    pub bao: Option<&'a Bao>,
    pub aws: Option<&'a Aws>,
}

/// One step, by the handler registered for its kind ([`providers::handler`]). A delete
/// implied by its container's (a namespace's) has nothing to do of its own.
async fn apply_one(p: Providers<'_>, change: &Change) -> Result<(), String> {
    if change.implied_by().is_some() {
        return Ok(());
    }
    let request = Request::of(change).map_err(|e| e.to_string())?;
    match (providers::handler(change.kind), p.bao, p.aws) {
        (Handler::OpenBao(h), Some(bao), _) => Handler::run(h, bao, request).await.map_err(|e| e.to_string()),
        (Handler::Aws(h), _, Some(aws)) => Handler::run(h, aws, request).await.map_err(|e| e.to_string()),
        (Handler::Aws(_), _, None) => Err(format!("{}: the environment has no aws: section", change.address)),
        (Handler::OpenBao(_), None, _) => Err(format!("{}: no OpenBao connection", change.address)),
    }
}

/// Execute `changes` (already through [`Guard::check`]). No change starts once `stop` is set
/// (a lost lock): it fails with that reason and its dependents are skipped.
pub async fn run(
    p: Providers<'_>,
    changes: &[Change],
    parallelism: usize,
    stop: &AtomicBool,
    on_done: impl FnMut(&Outcome),
) -> Report {
    let pressure = p.bao.map(|b| &*b.pressure);
    execute::execute_adaptive(
        changes,
        parallelism,
        pressure,
        |change| async move {
            if stop.load(Ordering::SeqCst) {
                return Err("not started: the apply lock was lost".to_string());
            }
            apply_one(p, &change).await
        },
        on_done,
    )
    .await
}

/// The lock's settings.
pub struct LockSpec<'a> {
    pub environment: &'a str,
    pub plan: Option<String>,
    pub ttl: Duration,
    pub wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LockedError<E> {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Work(E),
    #[error("the apply lock was lost while working (broken by someone, or its renewal failed); no change was started after that. Run `ctl plan` again")]
    Lost,
    #[error("the work is done, but the apply lock could not be released (it expires by itself within {ttl} s; until then applies wait): {source}")]
    Unreleased { ttl: u64, source: lock::LockError },
}

/// Run `work` holding the environment's apply lock. The lock is renewed (and the token kept
/// alive) while it runs; `work` gets the flag that turns true when the lock is lost, which
/// [`run`] honours between changes. The lock is released at the end.
pub async fn with_lock<T, E, F, Fut>(bao: &Bao, spec: LockSpec<'_>, work: F) -> Result<T, LockedError<E>>
where
    F: FnOnce(Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut held = lock::acquire(bao, spec.environment, &state::actor(), spec.plan, spec.ttl, spec.wait).await?;
    let lost = Arc::new(AtomicBool::new(false));
    let (done, done_rx) = tokio::sync::watch::channel(false);
    let work = async {
        let result = work(lost.clone()).await;
        let _ = done.send(true);
        result
    };
    let heartbeat = async {
        let result = held.heartbeat(done_rx.clone()).await;
        if result.is_err() {
            lost.store(true, Ordering::SeqCst);
        }
        result
    };
    let keep_alive = async {
        if let Err(e) = token::keep_alive(bao, done_rx.clone()).await {
            tracing::warn!(error = %e, "could not renew ctl's token");
        }
    };
    let (result, heartbeat, ()) = tokio::join!(work, heartbeat, keep_alive);
    let ttl = held.info.expires_at.saturating_sub(state::now_secs());
    let released = held.release().await;
    if let Err(e) = &released {
        tracing::warn!(error = %e, "could not release the apply lock; it expires by itself");
    }
    match (result, heartbeat, released) {
        (_, Err(_), _) => Err(LockedError::Lost),
        // Done, but the next apply would wait for the lock to expire: say so, fail loudly.
        (Ok(_), Ok(()), Err(e)) => Err(LockedError::Unreleased { ttl, source: e }),
        (Ok(v), Ok(()), Ok(())) => Ok(v),
        (Err(e), Ok(()), _) => Err(LockedError::Work(e)),
    }
}

/// The journal entry for a run: who, when, which plan and commit, per address the outcome.
pub fn journal_entry(event: &str, plan: Option<String>, git_commit: Option<String>, report: &Report) -> journal::Entry {
    journal::Entry {
        at: state::now_secs(),
        actor: state::actor(),
        event: event.into(),
        plan,
        git_commit,
        changes: report
            .outcomes
            .iter()
            .map(|o| journal::ChangeRecord {
                address: o.address.to_string(),
                action: o.action.verb().to_string(),
                outcome: match &o.status {
                    Status::Done => "done".into(),
                    Status::Failed(_) => "failed".into(),
                    Status::Skipped { because } => format!("skipped ({because} did not succeed)"),
                },
            })
            .collect(),
    }
}

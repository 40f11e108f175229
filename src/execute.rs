//! Carrying out a plan: changes run in dependency order with bounded concurrency. A change
//! starts when everything it waits for has succeeded; if one of those failed, it is skipped
//! (with the reason) instead of being attempted against a half-built parent. Retries of
//! transient errors happen below, in the provider's transport.
//!
//! Ordering rules (derived from each resource's `depends_on`):
//! - create/update/replace of X waits for the create/update/replace of what X depends on;
//! - delete of X waits for every change whose *live* resource depended on X (children are
//!   deleted, or stop referring to X, first).

use crate::diff::{Action, Change};
use crate::model::Address;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Push-back signals (429, 5xx) a transport saw; the executor reads it to adapt concurrency.
#[derive(Debug, Default)]
pub struct Pressure(AtomicU64);

impl Pressure {
    /// One throttled or failed-by-overload response.
    pub fn note(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Additive-increase / multiplicative-decrease concurrency limit, as TCP does: new push-back
/// halves the limit (at most once per [`Aimd::COOL_DOWN`], so one burst counts once); every
/// settled change without new push-back grows it by 1/limit, i.e. by one per window of
/// `limit` changes, up to the configured maximum.
#[derive(Debug, Clone)]
pub struct Aimd {
    max: usize,
    limit: f64,
    lowest: usize,
    seen: u64,
    last_cut: Option<Instant>,
}

impl Aimd {
    pub const COOL_DOWN: Duration = Duration::from_millis(250);

    pub fn new(max: usize) -> Aimd {
        let max = max.max(1);
        Aimd { max, limit: max as f64, lowest: max, seen: 0, last_cut: None }
    }

    /// How many changes may run now.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// The lowest the limit went.
    pub fn lowest(&self) -> usize {
        self.lowest
    }

    /// A change settled; `pressure` is the transport's push-back count at that moment.
    pub fn settled(&mut self, pressure: u64, now: Instant) {
        if pressure > self.seen {
            self.seen = pressure;
            if self.last_cut.is_none_or(|t| now.duration_since(t) >= Self::COOL_DOWN) {
                self.limit = (self.limit / 2.0).max(1.0);
                self.last_cut = Some(now);
                self.lowest = self.lowest.min(self.limit());
            }
        } else {
            self.limit = (self.limit + 1.0 / self.limit).min(self.max as f64);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Done,
    Failed(String),
    /// Not attempted because a change it waits for did not succeed.
    Skipped { because: Address },
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub address: Address,
    pub action: Action,
    pub status: Status,
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
pub struct Report {
    /// In the order the changes were given.
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
    /// Push-back responses seen while executing (0 without a [`Pressure`] source).
    pub throttled: u64,
    /// The lowest concurrency the executor backed off to.
    pub lowest_concurrency: usize,
}

impl Report {
    pub fn succeeded(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == Status::Done).count()
    }
    pub fn failed(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| matches!(o.status, Status::Failed(_)))
    }
    pub fn skipped(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o.status, Status::Skipped { .. })).count()
    }
    pub fn is_success(&self) -> bool {
        self.outcomes.iter().all(|o| o.status == Status::Done)
    }
}

/// For each change, the indices of the changes it waits for.
pub fn dependencies(changes: &[Change]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&Address, usize> = changes.iter().enumerate().map(|(i, c)| (&c.address, i)).collect();
    let mut deps = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        if c.action != Action::Delete {
            for d in &c.resource().depends_on {
                if let Some(&j) = index.get(d) {
                    if changes[j].action != Action::Delete {
                        deps[i].push(j);
                    }
                }
            }
        }
        // Whoever depended on a resource that is deleted goes first.
        if let Some(before) = &c.before {
            for d in &before.depends_on {
                if let Some(&j) = index.get(d) {
                    if changes[j].action == Action::Delete && j != i {
                        deps[j].push(i);
                    }
                }
            }
        }
    }
    for d in &mut deps {
        d.sort_unstable();
        d.dedup();
    }
    deps
}

/// Run `apply` for every change, at most `parallelism` at a time, in dependency order.
/// `on_done` is called after each change settles (for progress display).
pub async fn execute<'c, F, Fut>(changes: &'c [Change], parallelism: usize, apply: F, on_done: impl FnMut(&Outcome)) -> Report
where
    F: Fn(&'c Change) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    execute_adaptive(changes, parallelism, None, apply, on_done).await
}

/// [`execute`], with the concurrency limit adapted ([`Aimd`]) to the push-back `pressure`
/// counts: starts at `parallelism`, halves on new 429/5xx, grows back while none come.
pub async fn execute_adaptive<'c, F, Fut>(
    changes: &'c [Change],
    parallelism: usize,
    pressure: Option<&Pressure>,
    apply: F,
    mut on_done: impl FnMut(&Outcome),
) -> Report
where
    F: Fn(&'c Change) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let base = pressure.map_or(0, Pressure::count);
    let mut aimd = Aimd::new(parallelism);
    aimd.settled(base, started);
    let deps = dependencies(changes);
    let mut waiting_on: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); changes.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &j in ds {
            dependents[j].push(i);
        }
    }
    let mut status: Vec<Option<Status>> = vec![None; changes.len()];
    let mut elapsed = vec![Duration::ZERO; changes.len()];
    let mut ready: Vec<usize> = (0..changes.len()).rev().filter(|&i| waiting_on[i] == 0).collect();
    let mut running = FuturesUnordered::new();

    loop {
        while running.len() < aimd.limit() {
            let Some(i) = ready.pop() else { break };
            let fut = apply(&changes[i]);
            running.push(async move {
                let t = Instant::now();
                let result = fut.await;
                (i, result, t.elapsed())
            });
        }
        let Some((i, result, took)) = running.next().await else { break };
        if let Some(p) = pressure {
            aimd.settled(p.count(), Instant::now());
        }
        elapsed[i] = took;
        let ok = result.is_ok();
        status[i] = Some(match result {
            Ok(()) => Status::Done,
            Err(e) => Status::Failed(e),
        });
        on_done(&outcome(changes, i, &status, &elapsed));
        // Settle dependents: ready when all their dependencies are done; skipped (transitively)
        // when one failed.
        let mut settle = vec![(i, ok)];
        while let Some((j, ok)) = settle.pop() {
            for &k in &dependents[j] {
                if status[k].is_some() {
                    continue;
                }
                if ok {
                    waiting_on[k] -= 1;
                    if waiting_on[k] == 0 {
                        ready.push(k);
                    }
                } else {
                    status[k] = Some(Status::Skipped { because: changes[j].address.clone() });
                    on_done(&outcome(changes, k, &status, &elapsed));
                    settle.push((k, false));
                }
            }
        }
    }

    let outcomes = (0..changes.len())
        .map(|i| {
            if status[i].is_none() {
                // Only possible with a dependency cycle, which the diff never produces.
                status[i] = Some(Status::Failed("dependency cycle".into()));
            }
            outcome(changes, i, &status, &elapsed)
        })
        .collect();
    Report {
        outcomes,
        elapsed: started.elapsed(),
        throttled: pressure.map_or(0, |p| p.count() - base),
        lowest_concurrency: aimd.lowest(),
    }
}

fn outcome(changes: &[Change], i: usize, status: &[Option<Status>], elapsed: &[Duration]) -> Outcome {
    Outcome {
        address: changes[i].address.clone(),
        action: changes[i].action,
        status: status[i].clone().expect("settled"),
        elapsed: elapsed[i],
    }
}

#[cfg(test)]
mod aimd_tests {
    use super::*;

    #[test]
    fn halves_on_pushback_once_per_cool_down_and_grows_back() {
        let t0 = Instant::now();
        let mut a = Aimd::new(32);
        a.settled(0, t0);
        assert_eq!(a.limit(), 32, "no push-back: stays at the maximum");
        a.settled(3, t0);
        assert_eq!(a.limit(), 16);
        a.settled(5, t0 + Duration::from_millis(10));
        assert_eq!(a.limit(), 16, "the same burst inside the cool-down counts once");
        a.settled(6, t0 + Aimd::COOL_DOWN + Duration::from_millis(10));
        assert_eq!(a.limit(), 8);
        // About one per window of `limit` settled changes without push-back (1/8 + 1/8.125 + …).
        for _ in 0..9 {
            a.settled(6, t0 + Duration::from_secs(1));
        }
        assert_eq!(a.limit(), 9);
        assert_eq!(a.lowest(), 8);
        let mut b = Aimd::new(1);
        b.settled(1, t0);
        assert_eq!(b.limit(), 1, "never below one");
        for _ in 0..100 {
            b.settled(1, t0);
        }
        assert_eq!(b.limit(), 1, "never above the maximum");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::diff;
    use crate::model::{Kind, Resource, Scope};
    use serde_json::json;
    use std::sync::Mutex;

    fn r(addr: &str, kind: Kind, deps: &[&str]) -> Resource {
        Resource {
            address: Address::new(addr),
            kind,
            scope: Scope::Root,
            name: addr.into(),
            attrs: json!({"x": 1}).as_object().unwrap().clone(),
            depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
            container: None,
        }
    }

    fn world() -> Vec<Resource> {
        vec![
            r("ns", Kind::Namespace, &[]),
            r("ns.kv", Kind::KvMount, &["ns"]),
            r("ns.policy", Kind::Policy, &["ns"]),
            r("ns.auth", Kind::AuthMount, &["ns"]),
            r("ns.role", Kind::AppRole, &["ns", "ns.auth", "ns.policy"]),
        ]
    }

    async fn run(changes: &[Change], fail: Option<&str>) -> (Report, Vec<String>) {
        let order = Mutex::new(Vec::new());
        let report = execute(
            changes,
            3,
            |c| {
                let order = &order;
                async move {
                    tokio::task::yield_now().await;
                    order.lock().unwrap().push(c.address.to_string());
                    if Some(c.address.as_str()) == fail {
                        Err("boom".to_string())
                    } else {
                        Ok(())
                    }
                }
            },
            |_| {},
        )
        .await;
        (report, order.into_inner().unwrap())
    }

    fn pos(order: &[String], a: &str) -> usize {
        order.iter().position(|x| x == a).unwrap_or_else(|| panic!("{a} not run: {order:?}"))
    }

    #[tokio::test]
    async fn creates_run_parents_first() {
        let d = diff(&world(), &[], &[]);
        let (report, order) = run(&d.changes, None).await;
        assert!(report.is_success());
        assert!(pos(&order, "ns") < pos(&order, "ns.kv"));
        assert!(pos(&order, "ns.auth") < pos(&order, "ns.role"));
        assert!(pos(&order, "ns.policy") < pos(&order, "ns.role"));
    }

    #[tokio::test]
    async fn deletes_run_children_first() {
        let d = diff(&[], &world(), &[]);
        let (report, order) = run(&d.changes, None).await;
        assert!(report.is_success());
        assert!(pos(&order, "ns.role") < pos(&order, "ns.auth"));
        assert!(pos(&order, "ns.role") < pos(&order, "ns.policy"));
        assert_eq!(*order.last().unwrap(), "ns");
    }

    #[tokio::test]
    async fn failure_skips_dependents_transitively_but_not_others() {
        let d = diff(&world(), &[], &[]);
        let (report, order) = run(&d.changes, Some("ns.auth")).await;
        assert!(!report.is_success());
        assert!(!order.contains(&"ns.role".to_string()));
        let role = report.outcomes.iter().find(|o| o.address.as_str() == "ns.role").unwrap();
        assert_eq!(role.status, Status::Skipped { because: Address::new("ns.auth") });
        assert_eq!(report.failed().count(), 1);
        assert_eq!(report.succeeded(), 3);
    }
}

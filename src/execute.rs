//! Carrying out a plan: changes run in dependency order with bounded concurrency. A change
//! starts when everything it waits for has succeeded; if one of those failed, it is skipped
//! (with the reason) instead of being attempted against a half-built parent. Retries of
//! transient errors happen below, in the provider's transport.
//!
//! A replace (and a re-create because something it depends on is replaced) runs as two
//! [`steps`], as in Terraform: delete the old object, create the new one. Ordering rules, per
//! step (derived from each resource's `depends_on`):
//! - a create/update of X waits for the creates/updates of what X depends on, and for the
//!   delete of X's old object;
//! - a delete of X (or of X's old object) waits for every step whose *live* resource depended
//!   on X: dependents are deleted, or stop referring to X, first. So when a subnet is replaced,
//!   its instance is terminated before the subnet is deleted and launched after it is created.

use crate::diff::{Action, Change, Op};
use crate::model::{Address, Resource};
use futures::stream::{FuturesUnordered, StreamExt};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
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

/// One provider call: a whole change, or one half of a replace.
#[derive(Clone, Debug)]
pub struct Step<'c> {
    /// The index of the change this step carries out (all or half of).
    pub of: usize,
    pub change: Cow<'c, Change>,
}

/// The steps of a plan. A change with an old object and a new one (a replace, or a re-create
/// because a dependency is replaced) becomes two: a `Delete` of `before` and a `Create` of
/// `after`. The old half is implied by its container when that is destroyed too (rule 4 of
/// the diff). Everything else is one step.
pub fn steps(changes: &[Change]) -> Vec<Step<'_>> {
    fn halves(c: &Change) -> Option<(&Resource, &Resource)> {
        match &c.op {
            Op::Replace { before, after, .. } | Op::Recreate { before, after } => Some((before, after)),
            _ => None,
        }
    }
    let destroyed: BTreeSet<&Address> =
        changes.iter().filter(|c| c.action() == Action::Delete || halves(c).is_some()).map(|c| &c.address).collect();
    let mut out = Vec::with_capacity(changes.len());
    for (of, c) in changes.iter().enumerate() {
        let Some((before, after)) = halves(c) else {
            out.push(Step { of, change: Cow::Borrowed(c) });
            continue;
        };
        let implied_by = before.container.clone().filter(|k| destroyed.contains(k));
        let old = Change { op: Op::Delete { before: before.clone(), implied_by }, ..c.clone() };
        let new = Change { op: Op::Create { after: after.clone() }, ..c.clone() };
        out.push(Step { of, change: Cow::Owned(old) });
        out.push(Step { of, change: Cow::Owned(new) });
    }
    out
}

/// For each step, the indices of the steps it waits for (the rules in the module comment).
pub fn dependencies(steps: &[Step<'_>]) -> Vec<Vec<usize>> {
    let (mut deleting, mut making) = (BTreeMap::new(), BTreeMap::new());
    for (i, s) in steps.iter().enumerate() {
        let by_address = if s.change.action() == Action::Delete { &mut deleting } else { &mut making };
        by_address.insert(&s.change.address, i);
    }
    let mut deps = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        if let Some(new) = s.change.after() {
            deps[i].extend(new.depends_on.iter().filter_map(|d| making.get(d)));
            deps[i].extend(deleting.get(&s.change.address)); // its own old object goes first
        }
        // Whoever depended on a resource that is deleted goes first.
        for d in s.change.before().iter().flat_map(|old| &old.depends_on) {
            if let Some(&j) = deleting.get(d) {
                if j != i {
                    deps[j].push(i);
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

/// Run `apply` for every step, at most `parallelism` at a time, in dependency order.
/// `on_done` is called after each change settles (for progress display).
pub async fn execute<'c, F, Fut>(changes: &'c [Change], parallelism: usize, apply: F, on_done: impl FnMut(&Outcome)) -> Report
where
    F: Fn(Cow<'c, Change>) -> Fut,
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
    F: Fn(Cow<'c, Change>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let base = pressure.map_or(0, Pressure::count);
    let mut aimd = Aimd::new(parallelism);
    aimd.settled(base, started);
    let steps = steps(changes);
    let deps = dependencies(&steps);
    let mut waiting_on: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); steps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &j in ds {
            dependents[j].push(i);
        }
    }
    // Per step: settled yet. Per change: the worst status of its steps, steps still to settle.
    let mut settled = vec![false; steps.len()];
    let mut status: Vec<Option<Status>> = vec![None; changes.len()];
    let mut left = vec![0usize; changes.len()];
    steps.iter().for_each(|s| left[s.of] += 1);
    let mut elapsed = vec![Duration::ZERO; changes.len()];
    let mut ready: Vec<usize> = (0..steps.len()).rev().filter(|&i| waiting_on[i] == 0).collect();
    let mut running = FuturesUnordered::new();

    loop {
        while running.len() < aimd.limit() {
            let Some(i) = ready.pop() else { break };
            let fut = apply(steps[i].change.clone());
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
        let of = steps[i].of;
        elapsed[of] += took;
        let ok = result.is_ok();
        settled[i] = true;
        if record(&mut status[of], &mut left[of], result.map_or_else(Status::Failed, |()| Status::Done)) {
            on_done(&outcome(changes, of, &status, &elapsed));
        }
        // Settle dependents: ready when all their dependencies are done; skipped (transitively)
        // when one failed.
        let mut settle = vec![(i, ok)];
        while let Some((j, ok)) = settle.pop() {
            for &k in &dependents[j] {
                if settled[k] {
                    continue;
                }
                if ok {
                    waiting_on[k] -= 1;
                    if waiting_on[k] == 0 {
                        ready.push(k);
                    }
                } else {
                    settled[k] = true;
                    let of = steps[k].of;
                    if record(&mut status[of], &mut left[of], Status::Skipped { because: steps[j].change.address.clone() }) {
                        on_done(&outcome(changes, of, &status, &elapsed));
                    }
                    settle.push((k, false));
                }
            }
        }
    }

    let outcomes = (0..changes.len())
        .map(|of| {
            if left[of] > 0 {
                // Only possible with a dependency cycle, which the diff never produces.
                status[of] = Some(Status::Failed("dependency cycle".into()));
            }
            outcome(changes, of, &status, &elapsed)
        })
        .collect();
    Report {
        outcomes,
        elapsed: started.elapsed(),
        throttled: pressure.map_or(0, |p| p.count() - base),
        lowest_concurrency: aimd.lowest(),
    }
}

/// Record a step's status on its change, which keeps the worst (failed, then skipped, then
/// done). True when that was the change's last step.
fn record(status: &mut Option<Status>, left: &mut usize, step: Status) -> bool {
    let rank = |s: &Status| match s {
        Status::Done => 0,
        Status::Skipped { .. } => 1,
        Status::Failed(_) => 2,
    };
    if status.as_ref().is_none_or(|s| rank(&step) > rank(s)) {
        *status = Some(step);
    }
    *left -= 1;
    *left == 0
}

fn outcome(changes: &[Change], of: usize, status: &[Option<Status>], elapsed: &[Duration]) -> Outcome {
    Outcome {
        address: changes[of].address.clone(),
        action: changes[of].action(),
        status: status[of].clone().expect("settled"),
        elapsed: elapsed[of],
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

    /// Runs the changes; `order` has one "verb address" entry per step, `fail` names one.
    async fn run(changes: &[Change], fail: Option<&str>) -> (Report, Vec<String>) {
        let order = Mutex::new(Vec::new());
        let report = execute(
            changes,
            3,
            |c| {
                let order = &order;
                async move {
                    tokio::task::yield_now().await;
                    let step = format!("{} {}", c.action().verb(), c.address);
                    order.lock().unwrap().push(step.clone());
                    if Some(step.as_str()) == fail {
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
        assert!(pos(&order, "create ns") < pos(&order, "create ns.kv"));
        assert!(pos(&order, "create ns.auth") < pos(&order, "create ns.role"));
        assert!(pos(&order, "create ns.policy") < pos(&order, "create ns.role"));
    }

    #[tokio::test]
    async fn deletes_run_children_first() {
        let d = diff(&[], &world(), &[]);
        let (report, order) = run(&d.changes, None).await;
        assert!(report.is_success());
        assert!(pos(&order, "delete ns.role") < pos(&order, "delete ns.auth"));
        assert!(pos(&order, "delete ns.role") < pos(&order, "delete ns.policy"));
        assert_eq!(*order.last().unwrap(), "delete ns");
    }

    #[tokio::test]
    async fn failure_skips_dependents_transitively_but_not_others() {
        let d = diff(&world(), &[], &[]);
        let (report, order) = run(&d.changes, Some("create ns.auth")).await;
        assert!(!report.is_success());
        assert!(!order.contains(&"create ns.role".to_string()));
        let role = report.outcomes.iter().find(|o| o.address.as_str() == "ns.role").unwrap();
        assert_eq!(role.status, Status::Skipped { because: Address::new("ns.auth") });
        assert_eq!(report.failed().count(), 1);
        assert_eq!(report.succeeded(), 3);
    }

    /// vpc ← subnet ← instance, and a second subnet with its own instance; `cidr` of the first
    /// subnet is `cidr` (a replace-on field of subnets).
    fn network(cidr: &str) -> Vec<Resource> {
        let mut subnet = r("subnet.a", Kind::Subnet, &["vpc"]);
        subnet.attrs.insert("cidr".into(), json!(cidr));
        vec![
            r("vpc", Kind::Vpc, &[]),
            subnet,
            r("subnet.b", Kind::Subnet, &["vpc"]),
            r("instance.a", Kind::Instance, &["subnet.a"]),
            r("instance.b", Kind::Instance, &["subnet.b"]),
        ]
    }

    #[tokio::test]
    async fn replace_runs_as_halves_dependents_old_first_new_after() {
        let d = diff(&network("10.0.2.0/24"), &network("10.0.1.0/24"), &[]);
        let planned: Vec<_> = d.changes.iter().map(|c| (c.address.as_str(), c.action())).collect();
        assert_eq!(planned, [("instance.a", Action::Create), ("subnet.a", Action::Replace)], "instance.a is re-created");
        let (report, order) = run(&d.changes, None).await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(order.len(), 4, "two halves each: {order:?}");
        assert!(pos(&order, "delete instance.a") < pos(&order, "delete subnet.a"), "{order:?}");
        assert!(pos(&order, "delete subnet.a") < pos(&order, "create subnet.a"), "{order:?}");
        assert!(pos(&order, "create subnet.a") < pos(&order, "create instance.a"), "{order:?}");
        let outcomes: Vec<_> = report.outcomes.iter().map(|o| (o.address.as_str(), o.action)).collect();
        assert_eq!(outcomes, planned, "one outcome per change, not per half");
    }

    #[tokio::test]
    async fn failed_old_half_skips_the_new_half_and_its_dependents() {
        let d = diff(&network("10.0.2.0/24"), &network("10.0.1.0/24"), &[]);
        let (report, order) = run(&d.changes, Some("delete subnet.a")).await;
        assert_eq!(order, ["delete instance.a", "delete subnet.a"], "nothing is created on a failed delete");
        let status = |a: &str| report.outcomes.iter().find(|o| o.address.as_str() == a).unwrap().status.clone();
        assert_eq!(status("subnet.a"), Status::Failed("boom".into()));
        assert_eq!(status("instance.a"), Status::Skipped { because: Address::new("subnet.a") });
    }

    #[test]
    fn old_half_inside_a_destroyed_container_is_implied() {
        let world = |path: &str| {
            let mut w = world();
            w[0].attrs.insert("path".into(), json!(path));
            w[1].container = Some(Address::new("ns"));
            w
        };
        let d = diff(&world("b"), &world("a"), &[]);
        let steps = steps(&d.changes);
        let old_kv = steps.iter().find(|s| s.change.address.as_str() == "ns.kv" && s.change.action() == Action::Delete).unwrap();
        assert_eq!(old_kv.change.implied_by(), Some(&Address::new("ns")));
        let old_role = steps.iter().find(|s| s.change.address.as_str() == "ns.role" && s.change.action() == Action::Delete).unwrap();
        assert_eq!(old_role.change.implied_by(), None, "not contained: deleted on its own");
    }
}

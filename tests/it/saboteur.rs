//! The saboteur: rounds of plan → someone creates, edits or deletes objects by hand (same-named
//! foreign objects without markers, drift and deletion of ctl's own) → apply (the saved plan,
//! then directly) → the operator resolves collisions (drops the declaration or `ctl adopt`s)
//! → apply. After every round: no foreign object was changed, deleted or stamped; every
//! refusal names what it refused; the re-run converges (the plan after is empty).
//!
//! 50 rounds in CI; `CTL_SABOTEUR_ROUNDS=1000 cargo test --test it saboteur -- --nocapture`
//! for the long run (`CTL_SABOTEUR_SEED` replays a run).

use crate::harness::{bao_cli, stack, unique, Scenario, TestStack};
use ctl::dev::BaoVersion;
use std::collections::BTreeMap;

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the environment declares: per workspace, extra policy and role names and keys.
#[derive(Clone, Default)]
struct Declared {
    workspaces: BTreeMap<String, Ws>,
}

#[derive(Clone, Default)]
struct Ws {
    policies: Vec<String>,
    roles: Vec<String>,
    keys: Vec<String>,
}

impl Declared {
    fn yaml(&self) -> String {
        let mut s = String::from("workspaces:\n");
        for (name, ws) in &self.workspaces {
            let policies: Vec<String> =
                ws.policies.iter().map(|p| format!("{{ name: {p}, template: kv-read }}")).collect();
            let roles: Vec<String> = ws.roles.iter().map(|r| format!("{r}: {{ token_policies: [default] }}")).collect();
            let keys: Vec<String> = ws.keys.iter().map(|k| format!("{{ name: {k} }}")).collect();
            s.push_str(&format!(
                "  - {{ name: {name}, kv: {{ path: secret }}, policies: [{}], approle: {{ roles: {{ {} }} }}, transit: {{ keys: [{}] }} }}\n",
                policies.join(", "),
                roles.join(", "),
                keys.join(", ")
            ));
        }
        s
    }

    /// Every declared address of a kind the saboteur plays with.
    fn addresses(&self) -> Vec<(String, Obj)> {
        let mut out = Vec::new();
        for (name, ws) in &self.workspaces {
            out.push((format!("workspace.{name}.namespace"), Obj::Namespace(name.clone())));
            for p in &ws.policies {
                out.push((format!("workspace.{name}.policy.{p}"), Obj::Policy(name.clone(), p.clone())));
            }
            for r in &ws.roles {
                out.push((format!("workspace.{name}.approle.{r}"), Obj::Role(name.clone(), r.clone())));
            }
            for k in &ws.keys {
                out.push((format!("workspace.{name}.transit_key.{k}"), Obj::Key(name.clone(), k.clone())));
            }
        }
        out
    }
}

/// An object the saboteur can touch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Obj {
    Namespace(String),
    Policy(String, String),
    Role(String, String),
    Key(String, String),
}

fn run(stack: &TestStack, ns: Option<&str>, args: &[&str]) -> (bool, String) {
    let out = bao_cli(stack, ns, args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Obj {
    /// Create it by hand, without any marker; `tag` makes its content recognisable.
    fn plant(&self, stack: &TestStack, tag: u64) -> bool {
        match self {
            Obj::Namespace(n) => run(stack, None, &["namespace", "create", n]).0,
            Obj::Policy(n, p) => {
                let rule = format!("policy=path \"foreign/{tag}\" {{ capabilities = [\"read\"] }}");
                run(stack, Some(n), &["write", &format!("sys/policies/acl/{p}"), &rule]).0
            }
            Obj::Role(n, r) => run(stack, Some(n), &["write", &format!("auth/approle/role/{r}"), &format!("token_ttl={}", 3600 + tag % 1000)]).0,
            Obj::Key(n, k) => run(stack, Some(n), &["write", "-f", &format!("transit/keys/{k}"), "type=aes256-gcm96"]).0,
        }
    }

    /// What the object looks like now (None: absent), in a form that shows any change ctl
    /// could make to it (content, markers, metadata).
    fn read(&self, stack: &TestStack) -> Option<String> {
        let (ok, out) = match self {
            Obj::Namespace(n) => run(stack, None, &["read", "-format=json", &format!("sys/namespaces/{n}")]),
            Obj::Policy(n, p) => run(stack, Some(n), &["read", "-field=policy", &format!("sys/policies/acl/{p}")]),
            Obj::Role(n, r) => run(stack, Some(n), &["read", "-format=json", &format!("auth/approle/role/{r}")]),
            Obj::Key(n, k) => run(stack, Some(n), &["read", "-field=type", &format!("transit/keys/{k}")]),
        };
        if !ok {
            return None;
        }
        Some(match self {
            // Only the metadata: ids and request ids change with every read.
            Obj::Namespace(_) => serde_json::from_str::<serde_json::Value>(&out).ok()?["data"]["custom_metadata"].to_string(),
            Obj::Role(..) => serde_json::from_str::<serde_json::Value>(&out).ok()?["data"].to_string(),
            _ => out,
        })
    }

    /// Drift or delete one of ctl's own objects (what a careless operator does).
    fn disturb(&self, stack: &TestStack, rng: &mut Rng) {
        let delete = rng.chance(40);
        match self {
            Obj::Namespace(_) => {} // deleting a namespace is the destroy guard's business
            Obj::Policy(n, p) if delete => drop(run(stack, Some(n), &["delete", &format!("sys/policies/acl/{p}")])),
            Obj::Policy(n, p) => {
                let text = self.read(stack).unwrap_or_default();
                let rule = format!("policy={}\npath \"drift/*\" {{ capabilities = [\"list\"] }}", text.trim_end());
                drop(run(stack, Some(n), &["write", &format!("sys/policies/acl/{p}"), &rule]));
            }
            Obj::Role(n, r) if delete => drop(run(stack, Some(n), &["delete", &format!("auth/approle/role/{r}")])),
            Obj::Role(n, r) => drop(run(stack, Some(n), &["write", &format!("auth/approle/role/{r}"), "token_ttl=7m"])),
            Obj::Key(n, k) => drop(run(stack, Some(n), &["write", &format!("transit/keys/{k}/config"), "auto_rotate_period=48h"])),
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Obj::Namespace(n) | Obj::Policy(n, _) | Obj::Role(n, _) | Obj::Key(n, _) => n,
        }
    }
}

fn saboteur_rounds(rounds: u64, seed: u64) {
    let stack = stack(BaoVersion::V2_6);
    let prefix = unique("sab");
    let sc = Scenario::new(stack, &unique("env"), "workspaces: []\n");
    let mut rng = Rng(seed | 1);
    let mut declared = Declared::default();
    // Foreign objects planted by the saboteur, with what they looked like right after.
    let mut foreign: BTreeMap<Obj, String> = BTreeMap::new();
    // ctl's objects as of the last converged round.
    let mut existing: std::collections::BTreeSet<Obj> = std::collections::BTreeSet::new();
    let mut counter = 0u64;
    let mut fresh = |what: &str| {
        counter += 1;
        format!("{what}{counter}")
    };
    let refusals_ok = |text: &str, blocked: &[String]| {
        text.contains("nothing was applied") && (blocked.iter().any(|a| text.contains(a.as_str())) || text.contains("live state changed"))
    };

    for round in 0..rounds {
        // 1. The declaration grows: a new workspace now and then, new policies, roles, keys.
        if declared.workspaces.is_empty() || (declared.workspaces.len() < 4 && rng.chance(25)) {
            declared.workspaces.insert(format!("{prefix}-{}", fresh("w")), Ws::default());
        }
        let names: Vec<String> = declared.workspaces.keys().cloned().collect();
        let ws = names[rng.below(names.len() as u64) as usize].clone();
        let entry = declared.workspaces.get_mut(&ws).unwrap();
        // Bounded: past a dozen policies and roles, one is dropped instead (ctl deletes it, next
        // to foreign objects it must keep). Keys only grow: deleting one needs --allow-destroy.
        let pick = rng.below(5);
        if entry.policies.len() + entry.roles.len() > 12 && pick < 4 {
            let list = if pick < 2 { &mut entry.policies } else { &mut entry.roles };
            if !list.is_empty() {
                list.remove(rng.below(list.len() as u64) as usize);
            }
        } else {
            match pick {
                0 | 1 => entry.policies.push(fresh("p")),
                2 | 3 => entry.roles.push(fresh("r")),
                _ => entry.keys.push(fresh("k")),
            }
        }
        sc.write_env(&declared.yaml());

        // 2. Plan and save.
        let plan_file = sc.path("round.plan.json");
        let plan = sc.ctl(&["plan", "-e", &sc.env_file(), "--out", &plan_file]);
        assert!(plan.status == 0, "round {round}: plan failed\n{}", plan.stderr);

        // 3. The saboteur: plants foreign objects at the names declared this round (absent:
        //    ctl has not created them yet), drifts or deletes ctl's own, and plants foreign
        //    objects under names nobody declared. Everything declared before exists (the
        //    previous round converged), so no read is needed to know what is absent.
        let mut planted: Vec<Obj> = Vec::new();
        for (_, obj) in declared.addresses() {
            let new = !existing.contains(&obj);
            let in_place = matches!(obj, Obj::Namespace(_)) || existing.contains(&Obj::Namespace(obj.namespace().to_string()));
            if new && in_place && !foreign.contains_key(&obj) && rng.chance(40) {
                if obj.plant(stack, rng.next()) {
                    planted.push(obj);
                }
            } else if !new && rng.chance(10) {
                obj.disturb(stack, &mut rng);
            }
        }
        if rng.chance(30) {
            let owner = names[rng.below(names.len() as u64) as usize].clone();
            if existing.contains(&Obj::Namespace(owner.clone())) {
                let stray = if rng.chance(50) { Obj::Role(owner, fresh("hand")) } else { Obj::Key(owner, fresh("hand")) };
                if stray.plant(stack, rng.next()) {
                    planted.push(stray);
                }
            }
        }
        for obj in planted {
            let now = obj.read(stack).expect("just planted");
            foreign.insert(obj, now);
        }
        let blocked: Vec<String> =
            declared.addresses().into_iter().filter(|(_, o)| foreign.contains_key(o)).map(|(a, _)| a).collect();

        // 4. Apply the saved plan, then directly.
        let saved = sc.ctl(&["apply", &plan_file, "-e", &sc.env_file()]);
        if saved.status != 0 {
            assert!(refusals_ok(&saved.stderr, &blocked), "round {round}: a refusal that names nothing\n{}", saved.stderr);
        }
        let direct = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
        if blocked.is_empty() {
            assert_eq!(direct.status, 0, "round {round}: apply failed\n{}\n{}", direct.stdout, direct.stderr);
        } else {
            assert_eq!(direct.status, 1, "round {round}: applied over foreign objects {blocked:?}\n{}", direct.stdout);
            assert!(blocked.iter().any(|a| direct.stderr.contains(a.as_str())), "round {round}: {}", direct.stderr);
        }

        // 5. No foreign object was changed, deleted or stamped: the colliding ones every round,
        //    all of them every 10th round (every rounds/20th in long runs) and at the end.
        let check_all = round % (rounds / 20).max(10) == 9 || round + 1 == rounds;
        for (obj, was) in &foreign {
            if check_all || declared.addresses().iter().any(|(_, o)| o == obj) {
                assert_eq!(obj.read(stack).as_ref(), Some(was), "round {round} (seed {seed}): ctl touched foreign {obj:?}");
            }
        }

        // 6. The operator resolves each collision: adopt it, or drop the declaration.
        for (address, obj) in declared.addresses() {
            if !foreign.contains_key(&obj) {
                continue;
            }
            let adopt = !matches!(obj, Obj::Namespace(_)) && rng.chance(50);
            if adopt {
                sc.ctl(&["adopt", "-e", &sc.env_file(), &address]).assert_success();
                foreign.remove(&obj);
            } else {
                match &obj {
                    Obj::Namespace(n) => {
                        declared.workspaces.remove(n);
                    }
                    Obj::Policy(n, p) => declared.workspaces.get_mut(n).unwrap().policies.retain(|x| x != p),
                    Obj::Role(n, r) => declared.workspaces.get_mut(n).unwrap().roles.retain(|x| x != r),
                    Obj::Key(n, k) => declared.workspaces.get_mut(n).unwrap().keys.retain(|x| x != k),
                }
            }
        }
        sc.write_env(&declared.yaml());
        let converge = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
        assert_eq!(converge.status, 0, "round {round} (seed {seed}): no convergence\n{}\n{}", converge.stdout, converge.stderr);
        let after = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
        assert_eq!(after.status, 0, "round {round} (seed {seed}): the plan after is not empty\n{}", after.stdout);
        existing = declared.addresses().into_iter().map(|(_, o)| o).collect();
        if round % 50 == 49 {
            eprintln!("saboteur: {} rounds done, {} foreign objects planted so far", round + 1, foreign.len());
        }
    }
    for (obj, was) in &foreign {
        assert_eq!(obj.read(stack).as_ref(), Some(was), "after {rounds} rounds (seed {seed}): ctl touched foreign {obj:?}");
    }
    sc.assert_no_canary();
    eprintln!("saboteur: {rounds} rounds, seed {seed}, {} foreign objects left untouched", foreign.len());
}

#[test]
fn saboteur_rounds_never_touch_foreign_objects() {
    let rounds = std::env::var("CTL_SABOTEUR_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let seed = std::env::var("CTL_SABOTEUR_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7)
    });
    eprintln!("saboteur: seed {seed} (CTL_SABOTEUR_SEED={seed} replays it)");
    saboteur_rounds(rounds, seed);
}

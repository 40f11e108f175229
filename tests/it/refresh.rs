//! `ctl plan --refresh changed` on real OpenBao: it reads only the workspaces whose recorded
//! digest differs from the files, and over random edits of the environment (workspaces added
//! and removed, classes, templates, per-workspace settings) it plans exactly what a full
//! refresh plans. Drift made out of band in a trusted workspace is what `ctl drift` is for:
//! it finds it, and until a clean full check `--refresh changed` trusts nothing.

use crate::harness::{bao_cli, stack, unique, CtlOutput, Scenario};
use ctl::dev::BaoVersion;
use serde_json::Value;
use std::collections::BTreeSet;

/// The OpenBao requests a plan made, from its stderr summary line.
fn requests(out: &CtlOutput) -> u64 {
    let line = out.stderr.lines().find(|l| l.starts_with("Planned ")).unwrap_or_else(|| panic!("no summary line:\n{}", out.stderr));
    line.split(" with ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// (address, action, fields) of every change of a `--json` plan.
fn changes(out: &CtlOutput) -> BTreeSet<(String, String, String)> {
    out.assert_success();
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["address"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string(), c["fields"].to_string()))
        .collect()
}

/// A small deterministic generator (the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[derive(Clone)]
struct Decl {
    workspaces: Vec<(String, Option<u32>)>,
    class_versions: u32,
    template: &'static str,
    next: usize,
}

impl Decl {
    fn yaml(&self, prefix: &str) -> String {
        let mut out = format!(
            "classes:\n  std:\n    kv: {{ path: secret, max_versions: {} }}\n    policies: [ {{ name: app, template: {} }} ]\nworkspaces:\n",
            self.class_versions, self.template
        );
        for (name, versions) in &self.workspaces {
            match versions {
                Some(v) => out.push_str(&format!("  - {{ name: {prefix}{name}, class: std, kv: {{ max_versions: {v} }} }}\n")),
                None => out.push_str(&format!("  - {{ name: {prefix}{name}, class: std }}\n")),
            }
        }
        out
    }

    /// One random edit, described.
    fn edit(&mut self, rng: &mut Lcg) -> String {
        match rng.below(5) {
            0 => {
                self.next += 1;
                let name = format!("w{}", self.next);
                self.workspaces.push((name.clone(), None));
                format!("add {name}")
            }
            1 if self.workspaces.len() > 2 => {
                let (name, _) = self.workspaces.remove(rng.below(self.workspaces.len() as u64) as usize);
                format!("remove {name}")
            }
            2 => {
                let i = rng.below(self.workspaces.len() as u64) as usize;
                let v = 3 + rng.below(20) as u32;
                self.workspaces[i].1 = Some(v);
                format!("{} max_versions {v}", self.workspaces[i].0)
            }
            3 => {
                self.class_versions = 3 + rng.below(20) as u32;
                format!("class max_versions {}", self.class_versions)
            }
            _ => {
                self.template = if self.template == "kv-read" { "kv-write" } else { "kv-read" };
                format!("class template {}", self.template)
            }
        }
    }
}

#[test]
fn refresh_changed_reads_only_what_moved_and_plans_what_a_full_refresh_plans() {
    let stack = stack(BaoVersion::V2_6);
    let prefix = unique("rf");
    let mut decl = Decl { workspaces: (0..8).map(|i| (format!("w{i}"), None)).collect(), class_versions: 5, template: "kv-read", next: 7 };
    let sc = Scenario::new(stack, &unique("env"), &decl.yaml(&prefix));
    let e = sc.env_file();
    sc.ctl(&["apply", "-e", &e, "--auto-approve"]).assert_success();

    // Nothing moved: every workspace trusted, a handful of requests instead of 7 per workspace.
    let full = sc.ctl(&["plan", "-e", &e, "--detailed-exitcode"]);
    full.assert_success();
    let changed = sc.ctl(&["plan", "-e", &e, "--refresh", "changed", "--detailed-exitcode"]);
    changed.assert_success();
    assert!(changed.stdout.contains("Refresh: changed. 8 workspace(s)") && changed.stdout.contains("trusted as applied"), "{}", changed.stdout);
    let (r_full, r_changed) = (requests(&full), requests(&changed));
    assert!(r_full >= 8 * 5, "a full plan reads every workspace (5 requests each here): {r_full}");
    assert!(r_changed <= 8, "a no-op changed plan reads the namespace list and little else: {r_changed} (full: {r_full})");

    // Random edits: both refresh modes plan the same changes; then apply.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = Lcg(seed);
    for round in 0..6 {
        let what = decl.edit(&mut rng);
        sc.write_env(&decl.yaml(&prefix));
        let all = changes(&sc.ctl(&["plan", "-e", &e, "--json"]));
        let only = changes(&sc.ctl(&["plan", "-e", &e, "--json", "--refresh", "changed"]));
        assert_eq!(only, all, "seed {seed}, round {round} ({what}): --refresh changed differs from a full refresh");
        let mut args = vec!["apply".to_string(), "-e".into(), e.clone(), "--auto-approve".into()];
        if let Some(gone) = what.strip_prefix("remove ") {
            args.push(format!("--allow-destroy=workspace.{prefix}{gone}.namespace"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sc.ctl(&args).assert_success();
    }

    // Drift out of band in a trusted workspace: a changed plan cannot see it; drift can, and
    // then nothing is trusted until a clean full check.
    let (victim, _) = decl.workspaces[0].clone();
    let ns = format!("{prefix}{victim}");
    let out = bao_cli(sc.stack(), Some(&ns), &["write", "secret/config", "max_versions=42"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    sc.ctl(&["plan", "-e", &e, "--refresh", "changed", "--detailed-exitcode"]).assert_success();
    let drift = sc.ctl(&["drift", "-e", &e]);
    drift.assert_status(2);
    assert!(drift.stdout.contains(&format!("workspace.{ns}.kv")), "{}", drift.stdout);
    let after = sc.ctl(&["plan", "-e", &e, "--refresh", "changed", "--detailed-exitcode"]);
    after.assert_status(2);
    assert!(after.stdout.contains("trusting nothing (the last full drift check found drift)"), "{}", after.stdout);
    sc.ctl(&["apply", "-e", &e, "--auto-approve"]).assert_success();
    let clean = sc.ctl(&["plan", "-e", &e, "--refresh", "changed", "--detailed-exitcode"]);
    clean.assert_success();
    assert!(clean.stdout.contains("trusted as applied"), "{}", clean.stdout);

    // A saved changed plan is refused when a workspace it trusted was applied in between.
    decl.next += 1;
    decl.workspaces.push((format!("w{}", decl.next), None));
    sc.write_env(&decl.yaml(&prefix));
    let saved = sc.path("changed.json");
    sc.ctl(&["plan", "-e", &e, "--refresh", "changed", "--out", &saved]).assert_success();
    let (other, _) = decl.workspaces[1].clone();
    let out = bao_cli(sc.stack(), None, &["namespace", "patch", "-custom-metadata=ctl-digest=moved", &format!("{prefix}{other}")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = sc.ctl(&["apply", &saved, "-e", &e]);
    refused.assert_status(1);
    assert!(refused.stderr.contains("trusted 1 workspace(s) as applied whose recorded state changed since") && refused.stderr.contains(&format!("{prefix}{other}")), "{}", refused.stderr);
}

//! Golden text and markdown plans of the shipped environments (`environments/*.yaml`) against
//! a live state derived from them: some resources absent (creates), some drifted in place
//! (updates), one drifted in a field that forces a replace (with its dependents re-created),
//! leftovers no longer declared (deletes, some implied by their namespace) and a foreign
//! object where one is declared (a conflict). Any change to how plans render shows up here.
//! `CTL_BLESS=1 cargo test --lib golden` rewrites the files after a deliberate change.

use crate::diff::diff;
use crate::model::{Address, Resource, Unmanaged};
use crate::plan::Plan;
use serde_json::Value;
use std::path::Path;

/// Live state made from `desired` by fixed rules (deterministic: the golden files depend on it).
fn live_from(desired: &[Resource]) -> (Vec<Resource>, Vec<Unmanaged>) {
    let mut live = Vec::new();
    let mut unmanaged = Vec::new();
    for (i, r) in desired.iter().enumerate() {
        let mut r = r.clone();
        match i % 9 {
            0 => continue, // absent: a create
            1 => {
                // Drift in a field that changes in place.
                let spec = r.kind.spec();
                if let Some((_, v)) = r.attrs.iter_mut().find(|(k, v)| !spec.replace_on.contains(&k.as_str()) && (v.is_string() || v.is_number() || v.is_boolean())) {
                    let drifted = match &*v {
                        Value::String(s) => Value::from(format!("{s}-drifted")),
                        Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0) + 1.0),
                        Value::Bool(b) => Value::from(!*b),
                        other => other.clone(),
                    };
                    *v = drifted;
                }
            }
            2 => {
                // Drift in a field that forces a replace (dependents are re-created).
                let field = r.kind.spec().replace_on.iter().find(|f| r.attrs.get(**f).is_some_and(Value::is_string));
                if let Some(v) = field.and_then(|f| r.attrs.get_mut(*f)) {
                    *v = Value::from(format!("{}-old", v.as_str().unwrap_or_default()));
                }
            }
            4 => {
                // A leftover with the same shape, no longer declared.
                let mut gone = r.clone();
                gone.address = Address::new(format!("{}-leftover", r.address));
                gone.name = format!("{}-leftover", r.name);
                live.push(gone);
            }
            7 if unmanaged.is_empty() => {
                // Someone else's object where this one is declared.
                unmanaged.push(Unmanaged { kind: r.kind, scope: r.scope.clone(), name: r.identity().name().to_string(), reason: crate::model::UnmanagedReason::no_marker("made by hand") });
                continue;
            }
            _ => {}
        }
        live.push(r);
    }
    // A whole workspace no longer declared: its namespace (data loss) and what it contains
    // (implied by it).
    if let Some(ns) = desired.iter().find(|r| r.kind == crate::model::Kind::Namespace) {
        let prefix = format!("{}.", ns.address.as_str().rsplit_once('.').map_or("", |(p, _)| p));
        let moved = |a: &Address| Address::new(a.as_str().replacen(&prefix, &format!("{}gone.", prefix), 1));
        for r in desired.iter().filter(|r| r.address == ns.address || r.container.as_ref() == Some(&ns.address)) {
            let mut gone = r.clone();
            gone.address = moved(&r.address);
            gone.container = r.container.as_ref().map(moved);
            live.push(gone);
        }
    }
    (live, unmanaged)
}

fn check(name: &str, rendered: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render/golden").join(name);
    if std::env::var_os("CTL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (CTL_BLESS=1 writes it)", path.display()));
    if rendered != expected {
        let first = rendered.lines().zip(expected.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{} differs from the rendering, first at line {}:\n  rendered: {:?}\n  golden:   {:?}",
            path.display(),
            first + 1,
            rendered.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}

#[test]
fn text_and_markdown_plans_of_the_shipped_environments_are_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = crate::templates::Templates::load(&root.join("templates")).unwrap();
    for file in ["example-production.yaml", "local.yaml"] {
        let env = crate::config::load(&root.join("environments").join(file)).unwrap();
        let desired = crate::desired::expand(&env, &templates).unwrap();
        let (live, unmanaged) = live_from(&desired);
        let observed = crate::model::Observed { resources: live, unmanaged };
        let d = diff(&desired, &observed.resources, &observed.unmanaged);
        assert!(!d.changes.is_empty() && !d.conflicts.is_empty(), "{file}: the fixture covers changes and conflicts");
        let mut plan = Plan::new(&env.name, &"0".repeat(64), d, &observed);
        plan.created_at = 0;
        let stem = file.trim_end_matches(".yaml");
        check(&format!("{stem}.txt"), &super::text::render(&plan, false, false));
        check(&format!("{stem}.detail.txt"), &super::text::render(&plan, false, true));
        // The markdown's last line names ctl's version and the plan's hash: left out.
        let md = super::markdown::render(&plan, 65_000);
        let md: String = md.lines().filter(|l| !l.starts_with("<sub>ctl ")).map(|l| format!("{l}\n")).collect();
        check(&format!("{stem}.md"), &md);
    }
}

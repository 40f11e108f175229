//! Arbitrary bytes as a saved plan through the real loader (`ctl::plan::Plan::from_json`),
//! then everything `ctl apply` does with a loaded plan before its first API call: the guard,
//! the dependency order, the touched set, the re-derivation comparison and both renderings.
//! Inputs that deserialize are re-sealed with their own self-hash so the fuzzer gets past the
//! tamper check. Any outcome is fine except a panic or a hang.
#![no_main]

use ctl::plan::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Plan::from_json(text, "fuzz.json");
    let Ok(mut plan) = serde_json::from_str::<Plan>(text) else { return };
    plan.format_version = ctl::plan::FORMAT_VERSION;
    plan.fingerprint = plan.compute_fingerprint();
    let Ok(sealed) = serde_json::to_string(&plan) else { return };
    let Ok(plan) = Plan::from_json(&sealed, "fuzz.json") else { return };
    let _ = ctl::engine::Guard::apply([]).check(&plan.changes, &plan.conflicts);
    let _ = ctl::execute::dependencies(&ctl::execute::steps(&plan.changes));
    let _ = plan.touched_workspaces();
    let desired: Vec<_> = plan.changes.iter().filter_map(|c| c.after.clone()).collect();
    let live: Vec<_> = plan.changes.iter().filter_map(|c| c.before.clone()).collect();
    let _ = plan.mismatches(&ctl::diff::diff(&desired, &live, &plan.unmanaged));
    let _ = ctl::render::text::render(&plan, false);
    let _ = ctl::render::markdown::render(&plan, ctl::render::MARKDOWN_LIMIT);
});

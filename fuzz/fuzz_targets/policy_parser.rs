//! Arbitrary text as an OpenBao policy (`ctl::policy::parse`, HCL through hcl-rs or JSON): never
//! a panic; an accepted policy differs from itself in nothing, lints without panicking, and
//! every finding names one of its paths.
#![no_main]

use ctl::policy;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = policy::parse(text) else { return };
    assert!(policy::difference(&rules, &rules).is_empty());
    let added = policy::difference(&policy::Rules::new(), &rules);
    assert!(added.iter().all(|l| l.starts_with('+')), "{added:?}");
    for finding in policy::lint(&rules, &BTreeSet::from(["other"])) {
        assert!(rules.contains_key(&finding.path), "{finding:?}");
    }
});

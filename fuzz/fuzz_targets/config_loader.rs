//! Arbitrary bytes as an environment file through the real loader (`ctl::config::load_str`).
//! Any outcome is fine except a panic, a hang or an error without a position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// A directory that does not exist: relative `workspaces_dir`s (even `../..`) resolve under it
/// and fail to read, so the run does not depend on the machine's files.
const FILE: &str = "/nonexistent-ctl-fuzz/env.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = ctl::config::load_str(Path::new(FILE), text) {
        assert!(!errors.0.is_empty(), "an error result with no errors");
        for e in &errors.0 {
            assert!(!e.message.is_empty(), "an error without a message");
        }
    }
});

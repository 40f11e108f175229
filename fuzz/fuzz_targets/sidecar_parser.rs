//! Arbitrary bytes as a `.sha256` sidecar (`ctl::artifacts::sidecar::parse`). Input is
//! `<sidecar bytes>[\0<expected file name>]` (default name `caddy`), so both the rejecting and
//! the accepting paths are reachable. An accepted sidecar must be well formed and round-trip.
#![no_main]

use ctl::artifacts::sidecar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (bytes, name) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], String::from_utf8_lossy(&data[i + 1..]).into_owned()),
        None => (data, "caddy".to_string()),
    };
    let Ok(parsed) = sidecar::parse(bytes, &name) else { return };
    assert_eq!(parsed.sha256.len(), 64);
    assert!(parsed.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(parsed.name, name);
    assert!(!parsed.name.contains('\n'));
    let again = sidecar::parse(sidecar::format(&parsed.sha256, &parsed.name).as_bytes(), &name)
        .expect("a formatted sidecar parses");
    assert_eq!((again.sha256, again.name, again.binary), (parsed.sha256, parsed.name, false));
});

//! Boot artifacts on the shared stack's moto S3: publish → verify → pin in the YAML (comments
//! and other lines untouched), the rendered boot fetcher run for real (installs a good
//! artifact; installs nothing for every bad bucket state), and every bad case rejected by
//! `ctl artifacts verify` with its own message. Each test uses its own bucket.

use crate::harness::{stack, unique, Scenario};
use ctl::dev::BaoVersion;
use std::path::{Path, PathBuf};
use std::process::Command;

fn moto() -> String {
    stack(BaoVersion::V2_6).moto_endpoint.clone().expect("the 2.6 stack runs moto")
}

/// Deterministic pseudo-random bytes.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    ctl::artifacts::hash::sha256_hex(data)
}

fn aws_section(endpoint: &str) -> String {
    format!("aws:\n  region: us-east-1\n  endpoint: {endpoint:?}\n")
}

/// Put objects straight into moto (out of band: what a compromised or careless writer does).
fn put(endpoint: &str, bucket: &str, key: &str, body: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn = ctl::config::AwsConnection::Account { region: "us-east-1".into(), endpoint: Some(endpoint.into()) };
        let aws = ctl::aws::Aws::connect(&conn, "test").await.unwrap();
        let s3 = ctl::artifacts::s3::client(&aws);
        ctl::artifacts::s3::ensure_bucket(&aws, &s3, bucket).await.unwrap();
        ctl::artifacts::s3::put_small(&s3, bucket, key, body.to_vec()).await.unwrap();
    });
}

/// Render the boot fetcher for `name` and run it with moto credentials; returns
/// (exit code, stderr). The script runs with a scrubbed environment.
fn boot_fetch(sc: &Scenario, name: &str, install: &Path) -> (i32, String, String) {
    let out = sc.ctl(&[
        "render",
        "boot-fetcher",
        "-e",
        &sc.env_file(),
        name,
        "--install-path",
        &install.display().to_string(),
    ]);
    out.assert_success();
    let script = sc.dir().join(format!("fetch-{name}.sh"));
    std::fs::write(&script, &out.stdout).unwrap();
    let run = Command::new("bash")
        .arg(&script)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap();
    (
        run.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// The lines of `new` that are not in `old` (as a multiset diff keeping order): asserts that
/// every line of `old` is still there, in order.
fn added_lines(old: &str, new: &str) -> Vec<String> {
    let mut added = Vec::new();
    let mut old_lines = old.lines().peekable();
    for line in new.lines() {
        if old_lines.peek() == Some(&line) {
            old_lines.next();
        } else {
            added.push(line.to_string());
        }
    }
    assert!(old_lines.peek().is_none(), "lines of the original are missing:\n--- old\n{old}\n--- new\n{new}");
    added
}

#[test]
fn publish_verify_pin_and_boot_fetch() {
    let endpoint = moto();
    let bucket = unique("boot");
    let other = "2222222222222222222222222222222222222222222222222222222222222222";
    let body = format!(
        "# Boot artifacts for the test environment.\n{}artifacts:\n  bucket: {bucket}   # created by publish\n  prefix: boot/\n  items:\n    # pinned by hand, not in the bucket\n    - {{ name: other, version: \"1\", file: other, sha256: \"{other}\" }}\n\n# trailing comment\n",
        aws_section(&endpoint)
    );
    let sc = Scenario::new(stack(BaoVersion::V2_6), &unique("art"), &body);
    let env_path = sc.dir().join(sc.env_file());
    let original = std::fs::read_to_string(&env_path).unwrap();

    // First publish: a new item is appended, nothing else changes.
    let v1 = bytes(3 << 20, 1);
    std::fs::create_dir_all(sc.dir().join("dist")).unwrap();
    std::fs::write(sc.dir().join("dist/caddy"), &v1).unwrap();
    let out =
        sc.ctl(&["artifacts", "publish", "dist/caddy", "--name", "caddy", "--version", "2.8.4", "-e", &sc.env_file()]);
    out.assert_success();
    assert!(out.stdout.contains(&format!("created bucket {bucket}")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("sha256 {}", sha256(&v1))), "{}", out.stdout);
    let pinned = std::fs::read_to_string(&env_path).unwrap();
    let added = added_lines(&original, &pinned);
    assert_eq!(
        added,
        vec![
            "    - name: caddy".to_string(),
            "      version: \"2.8.4\"".to_string(),
            "      file: caddy".to_string(),
            format!("      sha256: \"{}\"", sha256(&v1)),
            format!("      size: {}", v1.len()),
        ],
        "{pinned}"
    );

    // Publishing the same bytes again changes nothing in the file.
    let again =
        sc.ctl(&["artifacts", "publish", "dist/caddy", "--name", "caddy", "--version", "2.8.4", "-e", &sc.env_file()]);
    again.assert_success();
    assert!(again.stdout.contains("already pinned"), "{}", again.stdout);
    assert_eq!(std::fs::read_to_string(&env_path).unwrap(), pinned);

    // Other bytes under the same version are refused before anything is written.
    std::fs::write(sc.dir().join("dist/caddy-evil"), bytes(1000, 9)).unwrap();
    let refused = sc.ctl(&[
        "artifacts",
        "publish",
        "dist/caddy-evil",
        "--name",
        "caddy",
        "--version",
        "2.8.4",
        "-e",
        &sc.env_file(),
    ]);
    refused.assert_status(1);
    assert!(refused.stderr.contains("publish it under a new version"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&env_path).unwrap(), pinned);

    let ok = sc.ctl(&["artifacts", "verify", "-e", &sc.env_file(), "caddy"]);
    ok.assert_success();
    assert!(
        ok.stdout.contains(&format!(
            "ok caddy 2.8.4: s3://{bucket}/boot/caddy/2.8.4/caddy ({} bytes, sha256 {}",
            v1.len(),
            sha256(&v1)
        )),
        "{}",
        ok.stdout
    );

    // The boot fetcher installs it.
    let install = sc.dir().join("root/usr/local/bin/caddy");
    let (code, stdout, stderr) = boot_fetch(&sc, "caddy", &install);
    assert_eq!(code, 0, "fetcher failed:\n{stdout}\n{stderr}");
    assert_eq!(std::fs::read(&install).unwrap(), v1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&install).unwrap().permissions().mode() & 0o777, 0o755);

    // A new version (multipart: larger than one 8 MiB part) updates the pin in place.
    let v2 = bytes(9 << 20, 2);
    std::fs::write(sc.dir().join("dist/caddy"), &v2).unwrap();
    let out =
        sc.ctl(&["artifacts", "publish", "dist/caddy", "--name", "caddy", "--version", "2.9.0", "-e", &sc.env_file()]);
    out.assert_success();
    assert!(out.stdout.contains("pin updated"), "{}", out.stdout);
    let updated = std::fs::read_to_string(&env_path).unwrap();
    let changed: Vec<(&str, &str)> = pinned.lines().zip(updated.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(pinned.lines().count(), updated.lines().count(), "{updated}");
    assert_eq!(
        changed.iter().map(|(_, b)| b.to_string()).collect::<Vec<_>>(),
        vec![
            "      version: \"2.9.0\"".to_string(),
            format!("      sha256: \"{}\"", sha256(&v2)),
            format!("      size: {}", v2.len()),
        ],
        "{updated}"
    );
    let ok = sc.ctl(&["artifacts", "verify", "-e", &sc.env_file(), "caddy"]);
    ok.assert_success();
    assert!(ok.stdout.contains(&format!("({} bytes, sha256 {}", v2.len(), sha256(&v2))), "{}", ok.stdout);

    // `other` is pinned but was never published: verifying everything fails on it alone.
    let all = sc.ctl(&["artifacts", "verify", "-e", &sc.env_file()]);
    all.assert_status(1);
    assert!(all.stdout.contains("ok caddy 2.9.0"), "{}", all.stdout);
    assert!(
        all.stderr.contains(&format!("artifact other: s3://{bucket}/boot/other/1/other is missing")),
        "{}",
        all.stderr
    );
}

/// One bad bucket state: what is in S3, and what the error must say.
struct Case {
    name: &'static str,
    /// Object bytes (None: no object).
    object: Option<Vec<u8>>,
    /// Sidecar bytes (None: no sidecar).
    sidecar: Option<Vec<u8>>,
    /// Pinned digest.
    pin: String,
    size: Option<u64>,
    verify_says: String,
}

#[test]
fn every_bad_case_is_rejected_and_nothing_is_installed() {
    let endpoint = moto();
    let bucket = unique("bad");
    let good = bytes(5000, 7);
    let good_sha = sha256(&good);
    let line = |sha: &str, name: &str| format!("{sha}  {name}\n").into_bytes();
    let evil = bytes(5000, 666);
    let cases = vec![
        Case {
            name: "no-sidecar",
            object: Some(good.clone()),
            sidecar: None,
            pin: good_sha.clone(),
            size: None,
            verify_says: format!("artifact no-sidecar: sidecar s3://{bucket}/boot/no-sidecar/1/app.sha256 is missing"),
        },
        Case {
            name: "wrong-digest",
            object: Some(good.clone()),
            sidecar: Some(line(&sha256(b"something else"), "app")),
            pin: good_sha.clone(),
            size: None,
            verify_says: format!("says sha256 {}, but the content has {good_sha}", sha256(b"something else")),
        },
        Case {
            name: "other-name",
            object: Some(good.clone()),
            sidecar: Some(line(&good_sha, "caddy-2.8.tar.gz")),
            pin: good_sha.clone(),
            size: None,
            verify_says: "sidecar names caddy-2.8.tar.gz, artifact is app".into(),
        },
        Case {
            name: "two-lines",
            object: Some(good.clone()),
            sidecar: Some([line(&good_sha, "app"), line(&good_sha, "app")].concat()),
            pin: good_sha.clone(),
            size: None,
            verify_says: "sidecar has 2 lines; expected exactly one".into(),
        },
        Case {
            name: "truncated",
            object: Some(good.clone()),
            sidecar: Some(line(&good_sha[..63], "app")),
            pin: good_sha.clone(),
            size: None,
            verify_says: "sidecar digest is truncated: 63 hex characters, expected 64".into(),
        },
        Case {
            name: "empty-sidecar",
            object: Some(good.clone()),
            sidecar: Some(Vec::new()),
            pin: good_sha.clone(),
            size: None,
            verify_says: "sidecar is empty".into(),
        },
        Case {
            name: "too-large",
            object: Some(good.clone()),
            sidecar: Some(line(&good_sha, "app")),
            pin: good_sha.clone(),
            size: Some(4096),
            verify_says: "is 5000 bytes, larger than its declared size of 4096 bytes".into(),
        },
        Case {
            // Overwritten in the bucket together with a matching sidecar: only the pin catches it.
            name: "tampered",
            object: Some(evil.clone()),
            sidecar: Some(line(&sha256(&evil), "app")),
            pin: good_sha.clone(),
            size: None,
            verify_says: format!("has sha256 {}, but the pinned digest is {good_sha}", sha256(&evil)),
        },
        Case {
            name: "no-object",
            object: None,
            sidecar: Some(line(&good_sha, "app")),
            pin: good_sha.clone(),
            size: None,
            verify_says: format!("artifact no-object: s3://{bucket}/boot/no-object/1/app is missing"),
        },
    ];
    let mut body = format!("{}artifacts:\n  bucket: {bucket}\n  items:\n", aws_section(&endpoint));
    // The tampered artifact was first published good; the overwrite is a newer S3 version.
    put(&endpoint, &bucket, "boot/tampered/1/app", &good);
    put(&endpoint, &bucket, "boot/tampered/1/app.sha256", &line(&good_sha, "app"));
    for c in &cases {
        let key = format!("boot/{}/1/app", c.name);
        if let Some(o) = &c.object {
            put(&endpoint, &bucket, &key, o);
        }
        if let Some(s) = &c.sidecar {
            put(&endpoint, &bucket, &format!("{key}.sha256"), s);
        }
        body.push_str(&format!("    - {{ name: {}, version: \"1\", file: app, sha256: \"{}\"", c.name, c.pin));
        if let Some(size) = c.size {
            body.push_str(&format!(", size: {size}"));
        }
        body.push_str(" }\n");
    }
    let sc = Scenario::new(stack(BaoVersion::V2_6), &unique("art-bad"), &body);

    let all = sc.ctl(&["artifacts", "verify", "-e", &sc.env_file()]);
    all.assert_status(1);
    assert!(all.stderr.contains(&format!("error: {} artifact(s) failed verification", cases.len())), "{}", all.stderr);
    for c in &cases {
        let one = sc.ctl(&["artifacts", "verify", "-e", &sc.env_file(), c.name]);
        one.assert_status(1);
        assert!(one.stderr.contains(&format!("FAILED artifact {}:", c.name)), "{}: {}", c.name, one.stderr);
        assert!(one.stderr.contains(&c.verify_says), "{}: expected {:?} in\n{}", c.name, c.verify_says, one.stderr);
        assert!(all.stderr.contains(&c.verify_says), "{}: {}", c.name, all.stderr);

        let install: PathBuf = sc.dir().join(format!("root/opt/{}", c.name));
        let (code, stdout, stderr) = boot_fetch(&sc, c.name, &install);
        assert_ne!(code, 0, "{}: the fetcher accepted a bad artifact:\n{stdout}\n{stderr}", c.name);
        assert!(
            stderr.contains(&format!("fetch-artifact {}: ", c.name)) && stderr.contains("nothing installed"),
            "{}: {stderr}",
            c.name
        );
        assert_eq!(stderr.lines().count(), 1, "{}: one clear line: {stderr}", c.name);
        assert!(!install.exists(), "{}: something was installed", c.name);
        let leftovers: Vec<_> = std::fs::read_dir(install.parent().unwrap())
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{}: partial files left: {leftovers:?}", c.name);
    }
    // The tampered artifact's pin is what the fetcher reports.
    let (_, _, stderr) = boot_fetch(&sc, "tampered", &sc.dir().join("root/opt/t2"));
    assert!(
        stderr.contains(&format!("sha256 {} of the download does not match the pinned {good_sha}", sha256(&evil))),
        "{stderr}"
    );

    // Restore the good pair for the tampered artifact: verify and fetch succeed again.
    put(&endpoint, &bucket, "boot/tampered/1/app", &good);
    put(&endpoint, &bucket, "boot/tampered/1/app.sha256", &line(&good_sha, "app"));
    sc.ctl(&["artifacts", "verify", "-e", &sc.env_file(), "tampered"]).assert_success();
    let install = sc.dir().join("root/opt/tampered-ok");
    let (code, stdout, stderr) = boot_fetch(&sc, "tampered", &install);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(std::fs::read(&install).unwrap(), good);
}

#[test]
fn config_errors_are_located() {
    let endpoint = moto();
    let body = format!(
        "{}artifacts:\n  bucket: {}\n  items:\n    - {{ name: a, version: \"1\", file: a, sha256: \"{}\" }}\n    - {{ name: a, version: \"1\", file: a, sha256: \"abc\" }}\n",
        aws_section(&endpoint),
        unique("cfg"),
        "0".repeat(64)
    );
    let sc = Scenario::new(stack(BaoVersion::V2_6), &unique("art-cfg"), &body);
    let out = sc.ctl(&["artifacts", "verify", "-e", &sc.env_file()]);
    out.assert_status(1);
    // The harness puts 3 lines of openbao: and 3 of aws: first; the bad digest is on line 11.
    assert!(out.stderr.contains(&format!("{}:11:", sc.env_file())), "{}", out.stderr);
    assert!(out.stderr.contains("sha256 must be 64 hex characters (has 3)"), "{}", out.stderr);
}

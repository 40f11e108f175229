//! `ctl bench verify`: the artifact verification path, as ratios to baselines measured in the
//! same run on the same bytes.
//!
//! 1. Hashing: a `--size-mib` file of pseudo-random bytes (page-cached), hashed by
//!    `openssl dgst -sha256` and by ctl's streaming hasher (the one `verify` runs on S3
//!    bodies: 1 MiB buffers), alternating, best of `--rounds`. Ratio = ctl / openssl throughput.
//! 2. S3 (with `--endpoint`, e.g. the dev stack's moto): an `--s3-size-mib` object is
//!    published, then `ctl artifacts verify` runs as a child process; its wall time is compared
//!    with a bare streaming GET of the same object that discards the bytes (the floor), and its
//!    peak RSS is the child's own `VmHWM` (see [`run_child`]).
//!
//! Peak RSS of this process (`VmHWM`) after step 1 is printed too.

use super::CmdResult;
use crate::artifacts::{hash, s3};
use crate::aws::Aws;
use crate::config::AwsConnection;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};
use super::Status;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

#[derive(clap::Args, Debug)]
pub struct BenchVerifyArgs {
    /// Size of the local file hashed by openssl and ctl.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Size of the object verified through S3 (needs --endpoint).
    #[arg(long, default_value_t = 256)]
    pub s3_size_mib: u64,
    /// S3 endpoint (e.g. moto: http://127.0.0.1:PORT); without it the S3 part is skipped.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Alternating rounds (best of each is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Directory for the scratch files [default: the system temp dir].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Peak resident set size of this process in KiB (`VmHWM`).
fn vm_hwm_kib() -> Option<u64> {
    vm_hwm_in(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmHWM` (KiB) from the text of a `/proc/<pid>/status`.
fn vm_hwm_in(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Write `mib` MiB of xorshift bytes to `path`, 1 MiB at a time.
fn write_random(path: &Path, mib: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(())
}

fn openssl_sha256(path: &Path) -> anyhow::Result<(String, Duration)> {
    let t = Instant::now();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(path)
        .output()
        .context("running openssl")?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        bail!("openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok((text.split_whitespace().next().unwrap_or_default().to_string(), elapsed))
}

async fn ctl_sha256(path: &Path) -> anyhow::Result<(String, Duration)> {
    let t = Instant::now();
    let file = tokio::fs::File::open(path).await?;
    let h = hash::hash_async(file, None).await?;
    Ok((h.sha256, t.elapsed()))
}

pub async fn run(args: BenchVerifyArgs) -> CmdResult {
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile_in(&dir)?;
    let file = scratch.join("artifact.bin");
    let bytes = args.size_mib << 20;
    println!("ctl bench verify: {} MiB local file, {} rounds", args.size_mib, args.rounds.max(1));
    write_random(&file, args.size_mib)?;
    // Warm the page cache once, so both sides read from memory.
    let _ = openssl_sha256(&file)?;
    let (mut best_openssl, mut best_ctl) = (Duration::MAX, Duration::MAX);
    for _ in 0..args.rounds.max(1) {
        let (a, t_openssl) = openssl_sha256(&file)?;
        let (b, t_ctl) = ctl_sha256(&file).await?;
        if a != b {
            bail!("digests differ: openssl {a}, ctl {b}");
        }
        best_openssl = best_openssl.min(t_openssl);
        best_ctl = best_ctl.min(t_ctl);
    }
    let (o, c) = (mib_s(bytes, best_openssl), mib_s(bytes, best_ctl));
    println!("hashing  openssl dgst -sha256: {o:8.1} MiB/s  ({:.3} s)", best_openssl.as_secs_f64());
    println!("hashing  ctl streaming sha256: {c:8.1} MiB/s  ({:.3} s)", best_ctl.as_secs_f64());
    println!("ratio    ctl / openssl:        {:8.3}  (goal >= 0.95)", c / o);
    if let Some(kib) = vm_hwm_kib() {
        println!("peak RSS of this process (VmHWM) after hashing: {:.1} MiB", kib as f64 / 1024.0);
    }
    std::fs::remove_file(&file).ok();

    if let Some(endpoint) = &args.endpoint {
        s3_part(&scratch, endpoint, args.s3_size_mib, args.rounds.max(1)).await?;
    } else {
        println!("S3 part skipped (no --endpoint)");
    }
    std::fs::remove_dir_all(&scratch).ok();
    Ok(Status::Success)
}

fn tempfile_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let p = dir.join(format!("ctl-bench-verify-{}", std::process::id()));
    std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok(p)
}

async fn s3_part(scratch: &Path, endpoint: &str, mib: u64, rounds: u32) -> anyhow::Result<()> {
    let conn = AwsConnection::Account { region: "us-east-1".into(), endpoint: Some(endpoint.to_string()) };
    let aws = Aws::connect(&conn, "bench").await?;
    let client = s3::client(&aws);
    let bucket = format!("ctl-bench-verify-{}", std::process::id());
    s3::ensure_bucket(&aws, &client, &bucket).await?;
    let file = scratch.join("app");
    write_random(&file, mib)?;
    let key = "boot/app/1/app".to_string();
    let t = Instant::now();
    let (hashed, _) = s3::upload_file(&client, &bucket, &key, &file, |_| Ok(())).await?;
    let upload = t.elapsed();
    s3::put_small(
        &client,
        &bucket,
        &format!("{key}.sha256"),
        crate::artifacts::sidecar::format(&hashed.sha256, "app").into_bytes(),
    )
    .await?;
    std::fs::remove_file(&file).ok();
    println!("S3       publish {mib} MiB to {endpoint}: {:8.1} MiB/s", mib_s(hashed.size, upload));

    let env = scratch.join("environments/bench.yaml");
    std::fs::create_dir_all(env.parent().unwrap_or(scratch))?;
    std::fs::write(
        &env,
        format!(
            "openbao: {{ dev_stack: ../unused }}\naws: {{ region: us-east-1, endpoint: {endpoint:?} }}\nartifacts:\n  bucket: {bucket}\n  items:\n    - {{ name: app, version: \"1\", file: app, sha256: \"{}\" }}\n",
            hashed.sha256
        ),
    )?;
    let exe = std::env::current_exe()?;
    let (mut best_floor, mut best_verify, mut max_rss_kib) = (Duration::MAX, Duration::MAX, 0i64);
    for _ in 0..rounds {
        // Floor: the same GET, bytes discarded.
        let t = Instant::now();
        let mut body = s3::get(&client, &bucket, &key, None).await?.into_async_read();
        let mut buf = vec![0u8; hash::BUFFER];
        let mut n = 0u64;
        loop {
            let r = body.read(&mut buf).await?;
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        best_floor = best_floor.min(t.elapsed());
        if n != hashed.size {
            bail!("GET returned {n} bytes, expected {}", hashed.size);
        }
        let (elapsed, rss) = run_child(&exe, &env)?;
        best_verify = best_verify.min(elapsed);
        max_rss_kib = max_rss_kib.max(rss);
    }
    let (f, v) = (mib_s(hashed.size, best_floor), mib_s(hashed.size, best_verify));
    println!("S3       bare GET (floor):      {f:8.1} MiB/s");
    println!("S3       ctl artifacts verify:  {v:8.1} MiB/s  (whole process: start, HEADs, sidecar, GET + sha256)");
    println!("ratio    verify / bare GET:     {:8.3}", v / f);
    println!(
        "peak RSS of `ctl artifacts verify` (its VmHWM): {:.1} MiB  (goal <= 32 MiB)",
        max_rss_kib as f64 / 1024.0
    );
    Ok(())
}

/// Run `ctl artifacts verify -e env` and return its wall time and peak RSS (KiB).
///
/// The peak is the child's own `VmHWM`, sampled from /proc every 2 ms until it exits (the
/// high-water mark only grows, so the last sample is its peak up to the last 2 ms).
/// `ru_maxrss` from `wait4` cannot be used: Linux folds the parent's RSS at the time of `exec`
/// into the child's `ru_maxrss`, so it reports the bench process, not `ctl artifacts verify`.
fn run_child(exe: &Path, env: &Path) -> anyhow::Result<(Duration, i64)> {
    let t = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(["artifacts", "verify", "-e"])
        .arg(env)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("running ctl artifacts verify")?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib: i64 = 0;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().as_deref().and_then(vm_hwm_in) {
            peak_kib = peak_kib.max(kib as i64);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = t.elapsed();
    if !status.success() {
        bail!("ctl artifacts verify failed ({status})");
    }
    Ok((elapsed, peak_kib))
}

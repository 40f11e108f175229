//! Faults between ctl and a real OpenBao: 5xx bursts, 429s and connections reset mid-request
//! (injected by a small HTTP proxy on loopback), and a sealed server. ctl retries what is
//! transient, stops with a clear error on what is not, and a run through the faults converges.

use crate::harness::{bao_cli, fresh_stack, stack, unique, Scenario};
use ctl::dev::BaoVersion;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the proxy does to the n-th request.
#[derive(Clone, Copy)]
enum Fault {
    Pass,
    Status(u16),
    Reset,
}

/// A one-request-per-connection HTTP proxy that applies `plan(n)` to request n.
struct FaultyProxy {
    addr: String,
    seen: Arc<AtomicUsize>,
}

fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

impl FaultyProxy {
    fn start(upstream: &str, plan: impl Fn(usize) -> Fault + Send + Sync + 'static) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let plan = Arc::new(plan);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let plan = plan.clone();
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut client) else { return };
                    match plan(n) {
                        Fault::Reset => {
                            // Drop the connection without answering (after reading the request).
                            let _ = client.shutdown(Shutdown::Both);
                        }
                        Fault::Status(code) => {
                            let body = r#"{"errors":["injected by the test proxy"]}"#;
                            let _ = write!(
                                client,
                                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        }
                        Fault::Pass => {
                            let Ok(mut up) = TcpStream::connect(&upstream) else { return };
                            // One request per connection: ask both sides to close.
                            let text = String::from_utf8_lossy(&request).to_string();
                            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                            let head: Vec<&str> =
                                head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
                            let _ = write!(up, "{}\r\nConnection: close\r\n\r\n{body}", head.join("\r\n"));
                            let mut response = Vec::new();
                            let _ = up.read_to_end(&mut response);
                            let _ = client.write_all(&response);
                        }
                    }
                });
            }
        });
        FaultyProxy { addr, seen }
    }
}

fn env_body(ws: &[String]) -> String {
    let mut s = String::from(
        "classes:\n  c:\n    policies: [ { name: app-read, template: kv-read } ]\n    approle: { roles: { app: { token_policies: [app-read] } } }\nworkspaces:\n",
    );
    for w in ws {
        s.push_str(&format!("  - {{ name: {w}, class: c }}\n"));
    }
    s
}

/// Every third request fails (503, 429 or a reset connection, in turn): apply still converges.
#[test]
fn apply_through_5xx_429_and_resets_converges() {
    let stack = stack(BaoVersion::V2_6);
    let proxy = FaultyProxy::start(&stack.addr, |n| match n % 9 {
        2 => Fault::Status(503),
        5 => Fault::Status(429),
        8 => Fault::Reset,
        _ => Fault::Pass,
    });
    let ws: Vec<String> = (0..4).map(|_| unique("f")).collect();
    let sc = Scenario::new(stack, &unique("env"), &env_body(&ws));
    // Point the environment at the proxy.
    let env_path = sc.path(&sc.env_file());
    let text = std::fs::read_to_string(&env_path).unwrap().replace(&stack.addr, &proxy.addr);
    std::fs::write(&env_path, text).unwrap();

    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--parallelism", "4"]);
    assert_eq!(apply.status, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(proxy.seen.load(Ordering::SeqCst) > 30, "the faults were really exercised");
    // Adaptive concurrency: the push-back made the executor back off below --parallelism 4.
    let backed_off = apply.stdout.lines().find(|l| l.starts_with("OpenBao pushed back")).unwrap_or_else(|| panic!("{}", apply.stdout));
    let lowest: usize = backed_off.split("backed off to ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(lowest < 4, "{backed_off}");
    let plan = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(plan.status, 0, "converged: {}", plan.stdout);
    for w in &ws {
        let role = bao_cli(stack, Some(w), &["read", "-field=token_policies", "auth/approle/role/app"]);
        assert!(String::from_utf8_lossy(&role.stdout).contains("app-read"), "no duplicate or missing object in {w}");
    }
    sc.assert_no_canary();
}

/// A server that only ever answers 503: bounded retries, then a clear error, exit 1.
#[test]
fn persistent_5xx_is_a_clear_error() {
    let stack = stack(BaoVersion::V2_6);
    let proxy = FaultyProxy::start(&stack.addr, |_| Fault::Status(503));
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[unique("g")]));
    let env_path = sc.path(&sc.env_file());
    let text = std::fs::read_to_string(&env_path).unwrap().replace(&stack.addr, &proxy.addr);
    std::fs::write(&env_path, text).unwrap();
    let plan = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert_eq!(plan.status, 1);
    assert!(plan.stderr.contains("HTTP 503: injected by the test proxy"), "{}", plan.stderr);
    assert_eq!(proxy.seen.load(Ordering::SeqCst), 6, "six attempts, then stop");
}

/// A sealed server: a clear error naming the cause, nothing half-done.
#[test]
fn sealed_openbao_is_a_clear_error() {
    // Shamir (2.7): stays sealed until someone unseals it (an awskms node may unseal itself again).
    let owned = fresh_stack(BaoVersion::V2_7);
    let sc = Scenario::new(&owned, &unique("env"), &env_body(&[unique("s")]));
    let sealed = bao_cli(&owned, None, &["operator", "seal"]);
    assert!(sealed.status.success(), "{}", String::from_utf8_lossy(&sealed.stderr));
    // `bao status` exits 2 once the server reports sealed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while bao_cli(&owned, None, &["status"]).status.code() != Some(2) {
        assert!(std::time::Instant::now() < deadline, "the server never reported sealed");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let plan = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert_eq!(plan.status, 1);
    assert!(plan.stderr.to_lowercase().contains("sealed"), "{}", plan.stderr);
}

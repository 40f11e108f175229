//! Faults between ctl and a real OpenBao: 5xx bursts, 429s and connections reset mid-request
//! (injected by a small HTTP proxy on loopback), and a sealed server. ctl retries what is
//! transient, stops with a clear error on what is not, and a run through the faults converges.
//! Answers lost after OpenBao acted (a 502 instead of its reply) are resent only for idempotent
//! calls; the proxy also measures how many requests ctl has in flight (`--parallelism`).

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
    /// Forward the request to OpenBao, then answer this status instead of OpenBao's reply.
    Lost(u16),
}

/// A one-request-per-connection HTTP proxy that applies `plan(n, head)` to request n (`head`:
/// its request line and headers).
struct FaultyProxy {
    addr: String,
    seen: Arc<AtomicUsize>,
    /// Requests read and not yet answered, and the most there ever were at once.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
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
    fn start(upstream: &str, plan: impl Fn(usize, &str) -> Fault + Send + Sync + 'static) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let proxy = FaultyProxy { addr, seen: Default::default(), in_flight: Default::default(), max_in_flight: Default::default() };
        let (counter, in_flight, max_in_flight) = (proxy.seen.clone(), proxy.in_flight.clone(), proxy.max_in_flight.clone());
        let plan = Arc::new(plan);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let plan = plan.clone();
                let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut client) else { return };
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    let text = String::from_utf8_lossy(&request);
                    let head = text.split("\r\n\r\n").next().unwrap_or_default();
                    let reply = match plan(n, head) {
                        Fault::Pass => forward(&upstream, &request),
                        Fault::Status(code) => Some(injected(code)),
                        Fault::Reset => None,
                        Fault::Lost(code) => {
                            // OpenBao acts on the request; its reply (maybe a secret) is dropped.
                            let _ = forward(&upstream, &request);
                            Some(injected(code))
                        }
                    };
                    // Answered before the answer leaves, so the request ctl sends once it has the
                    // answer is never counted together with this one.
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    match reply {
                        Some(reply) => {
                            let _ = client.write_all(&reply);
                        }
                        // Drop the connection without answering (after reading the request).
                        None => {
                            let _ = client.shutdown(Shutdown::Both);
                        }
                    }
                });
            }
        });
        proxy
    }

    /// Points the scenario's environment at this proxy instead of the stack.
    fn route(&self, sc: &Scenario) {
        let env_path = sc.path(&sc.env_file());
        let text = std::fs::read_to_string(&env_path).unwrap().replace(&sc.stack().addr, &self.addr);
        std::fs::write(&env_path, text).unwrap();
    }
}

/// The proxy's own answer with status `code`.
fn injected(code: u16) -> Vec<u8> {
    let body = r#"{"errors":["injected by the test proxy"]}"#;
    format!("HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        .into_bytes()
}

/// Sends `request` to `upstream` on a connection of its own and returns the whole reply.
fn forward(upstream: &str, request: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    // One request per connection: ask both sides to close.
    let text = String::from_utf8_lossy(request).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head: Vec<&str> = head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    write!(up, "{}\r\nConnection: close\r\n\r\n{body}", head.join("\r\n")).ok()?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).ok()?;
    Some(response)
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
    let proxy = FaultyProxy::start(&stack.addr, |n, _| match n % 9 {
        2 => Fault::Status(503),
        5 => Fault::Status(429),
        8 => Fault::Reset,
        _ => Fault::Pass,
    });
    let ws: Vec<String> = (0..4).map(|_| unique("f")).collect();
    let sc = Scenario::new(stack, &unique("env"), &env_body(&ws));
    proxy.route(&sc);

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
    let proxy = FaultyProxy::start(&stack.addr, |_, _| Fault::Status(503));
    let sc = Scenario::new(stack, &unique("env"), &env_body(&[unique("g")]));
    proxy.route(&sc);
    let plan = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert_eq!(plan.status, 1);
    assert!(plan.stderr.contains("HTTP 503: injected by the test proxy"), "{}", plan.stderr);
    assert_eq!(proxy.seen.load(Ordering::SeqCst), 6, "six attempts, then stop");
}

/// How many secret-ids `role` in `namespace` has (LIST answers their accessors).
fn secret_id_count(stack: &crate::harness::TestStack, namespace: &str, role: &str) -> usize {
    let out = bao_cli(stack, Some(namespace), &["list", "-format=json", &format!("auth/approle/role/{role}/secret-id")]);
    // `bao list` exits 2 with nothing to list.
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<Vec<String>>(&text).map(|l| l.len()).unwrap_or(0)
}

/// OpenBao creates the secret-id, then the reply is lost (502): `approle issue` must not send
/// it again (each resend is one more live secret-id) but say the outcome is unknown and how
/// to check.
#[test]
fn lost_reply_to_a_secret_id_is_not_resent() {
    let stack = stack(BaoVersion::V2_6);
    let ws = unique("o");
    let sc = Scenario::new(stack, &unique("env"), &env_body(std::slice::from_ref(&ws)));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    let issued = sc.ctl(&["approle", "issue", "-e", &sc.env_file(), &ws, "app"]);
    issued.assert_success();
    // (The wrapping token is meant to be printed; the secret-id it wraps never is.)
    let secret_id = bao_cli(stack, Some(&ws), &["unwrap", "-field=secret_id", issued.stdout.trim()]);
    sc.canary(String::from_utf8_lossy(&secret_id.stdout).trim());
    assert_eq!(secret_id_count(stack, &ws, "app"), 1);

    // Only the secret-id request's reply is lost (ctl's login and reads pass).
    let issues = Arc::new(AtomicUsize::new(0));
    let counter = issues.clone();
    let proxy = FaultyProxy::start(&stack.addr, move |_, head| {
        if head.lines().next().unwrap_or_default().contains("/secret-id ") {
            counter.fetch_add(1, Ordering::SeqCst);
            Fault::Lost(502)
        } else {
            Fault::Pass
        }
    });
    proxy.route(&sc);
    let lost = sc.ctl(&["approle", "issue", "-e", &sc.env_file(), &ws, "app"]);
    assert_eq!(lost.status, 1, "{}\n{}", lost.stdout, lost.stderr);
    assert_eq!(issues.load(Ordering::SeqCst), 1, "sent once");
    assert_eq!(secret_id_count(stack, &ws, "app"), 2, "exactly one more secret-id");
    assert!(
        lost.stderr.contains(&format!("POST auth/approle/role/app/secret-id (namespace {ws}): outcome unknown (HTTP 502 after the request was sent); it may have succeeded")),
        "{}",
        lost.stderr
    );
    assert!(lost.stderr.contains(&format!("`bao list -namespace={ws} auth/approle/role/app/secret-id`")), "{}", lost.stderr);
    sc.assert_no_canary();
}

/// Idempotent writes are still resent after a lost reply: an apply where OpenBao acts on
/// every write but the reply to its first sending is lost (namespaces, mounts, policies, roles,
/// KV config, the lock's and the journal's check-and-set writes) converges.
#[test]
fn idempotent_writes_are_resent_after_a_lost_reply() {
    let stack = stack(BaoVersion::V2_6);
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    let lost = Arc::new(AtomicUsize::new(0));
    let counter = lost.clone();
    let proxy = FaultyProxy::start(&stack.addr, move |_, head| {
        // The request line and the namespace header name one write.
        let namespace = head.lines().find(|l| l.to_ascii_lowercase().starts_with("x-vault-namespace:")).unwrap_or_default();
        let write = format!("{} {namespace}", head.lines().next().unwrap_or_default());
        if write.starts_with("POST") && seen.lock().unwrap().insert(write) {
            counter.fetch_add(1, Ordering::SeqCst);
            Fault::Lost(502)
        } else {
            Fault::Pass
        }
    });
    let ws: Vec<String> = (0..2).map(|_| unique("i")).collect();
    let sc = Scenario::new(stack, &unique("env"), &env_body(&ws));
    proxy.route(&sc);
    // A resent lock write must not take its own first sending for someone else's lock.
    let apply = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve", "--lock-wait", "1s"]);
    assert_eq!(apply.status, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(!apply.stderr.contains("journal entry was not written"), "{}", apply.stderr);
    assert!(lost.load(Ordering::SeqCst) >= 10, "the faults were really exercised");
    let plan = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(plan.status, 0, "converged: {}\n{}", plan.stdout, plan.stderr);
    sc.assert_no_canary();
}

/// `--parallelism` bounds the requests in flight, however observe nests its concurrency
/// (workspaces × kinds × objects).
#[test]
fn parallelism_bounds_requests_in_flight() {
    let stack = stack(BaoVersion::V2_6);
    let ws: Vec<String> = (0..4).map(|_| unique("p")).collect();
    let names: Vec<&str> = ws.iter().map(String::as_str).collect();
    let sc = Scenario::new(stack, &unique("env"), &crate::workspaces::env_body(&names));
    sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]).assert_success();
    let proxy = FaultyProxy::start(&stack.addr, |_, _| Fault::Pass);
    proxy.route(&sc);
    for (parallelism, expected) in [(1, 1..=1), (4, 2..=4)] {
        proxy.max_in_flight.store(0, Ordering::SeqCst);
        let plan = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode", "--parallelism", &parallelism.to_string()]);
        assert_eq!(plan.status, 0, "{}\n{}", plan.stdout, plan.stderr);
        let max = proxy.max_in_flight.load(Ordering::SeqCst);
        assert!(expected.contains(&max), "--parallelism {parallelism}: {max} requests in flight at once");
    }
    sc.assert_no_canary();
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

//! Child processes of the dev stack: spawning (detached or tied to the spawning thread),
//! liveness, stopping, free ports and log tails.

use super::{DevError, LogTail};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Grace period between SIGTERM and SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);

/// A process of the stack: our child (`child` set) or one found through `stack.json`.
#[derive(Debug)]
pub(crate) struct Proc {
    pub name: &'static str,
    pub binary: PathBuf,
    pub pid: u32,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Spawns `binary args…` with stdin from /dev/null and stdout+stderr appended to `log`.
    ///
    /// `detach`: the child gets its own session (`setsid`) and outlives us. Otherwise it gets
    /// `PR_SET_PDEATHSIG(SIGKILL)`, which fires when the *thread* that spawned it exits.
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        log: &Path,
        detach: bool,
    ) -> Result<Proc, DevError> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| DevError::io(format!("cannot open {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| DevError::io(format!("cannot open {}", log.display()), e))?;
        let mut cmd = Command::new(binary);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        // The dev stack is configured only through its config file and arguments.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("BAO_") || key.starts_with("VAULT_") {
                cmd.env_remove(key.as_ref());
            }
        }
        configure_lifetime(&mut cmd, detach);
        let child = cmd.spawn().map_err(|source| DevError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;
        Ok(Proc {
            name,
            binary: binary.to_path_buf(),
            pid: child.id(),
            log: log.to_path_buf(),
            child: Some(child),
        })
    }

    /// A process we did not spawn (pid from `stack.json`).
    pub fn adopt(name: &'static str, binary: PathBuf, pid: u32, log: PathBuf) -> Proc {
        Proc {
            name,
            binary,
            pid,
            log,
            child: None,
        }
    }

    /// `Some(exit status)` once our child has exited; `None` while it runs (or for adopted
    /// processes, while the pid is alive).
    pub fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("unknown status ({e})")),
            },
            None => (!pid_alive(self.pid)).then(|| "unknown status".to_string()),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.exited().is_none()
    }

    /// The error for "exited while …", with the log tail.
    pub fn exited_error(&self, status: String, during: impl Into<String>) -> DevError {
        DevError::Exited {
            name: self.name,
            binary: self.binary.clone(),
            status,
            during: during.into(),
            log: LogTail::of(&self.log),
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL (and reap our child).
    pub async fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_and_reap();
    }

    /// Same as [`Proc::stop`], blocking (for `Drop`).
    pub fn stop_blocking(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_and_reap();
    }

    fn kill_and_reap(&mut self) {
        signal(self.pid, libc::SIGKILL);
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        } else {
            let deadline = Instant::now() + Duration::from_secs(5);
            while pid_alive(self.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Leaves a detached child running: forget the handle without killing it.
    pub fn release(&mut self) {
        self.child = None;
    }
}

#[cfg(target_os = "linux")]
fn configure_lifetime(cmd: &mut Command, detach: bool) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (setsid, prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if detach {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("parent exited during spawn"));
                }
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn configure_lifetime(cmd: &mut Command, _detach: bool) {
    use std::os::unix::process::CommandExt;
    // No PDEATHSIG outside Linux: children are stopped by `Stack::drop` only.
    cmd.process_group(0);
}

fn signal(pid: u32, sig: libc::c_int) {
    if pid == 0 || pid > i32::MAX as u32 {
        return;
    }
    // SAFETY: plain kill(2) on a positive pid.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Whether `pid` names a live (not zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks existence/permission.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // A zombie still answers kill(0); nothing may reap it when its parent ignores children.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// Whether `pid` is alive and its command line contains every one of `needles` (guards
/// against signalling an unrelated process that reused a pid from an old `stack.json`).
pub(crate) fn pid_matches(pid: u32, needles: &[&str]) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            needles.iter().all(|n| cmdline.contains(n))
        }
        // No /proc: trust the pid.
        Err(_) => true,
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, DevError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(DevError::NoFreePort)?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(DevError::NoFreePort)
}

/// `n` distinct free ports.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, DevError> {
    // Hold all listeners until every port is picked so they are distinct.
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        listeners
            .push(std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(DevError::NoFreePort)?);
    }
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(DevError::NoFreePort)
        })
        .collect()
}

/// The last `lines` lines of a log file (at most the last 64 KiB of it).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = file.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    if tail.is_empty() {
        "(log is empty)".to_string()
    } else {
        tail.iter()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_alive_for_self_and_not_for_reaped_child() {
        assert!(pid_alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        assert!(free_port().unwrap() > 0);
    }

    #[test]
    fn log_tail_keeps_last_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("x.log");
        std::fs::write(&log, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&log, 2), "  | c\n  | d");
        assert!(log_tail(&tmp.path().join("missing"), 2).contains("no log"));
    }

    #[tokio::test]
    async fn stop_terminates_and_reaps() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sleep.log");
        let mut p = Proc::spawn(
            "sleep",
            Path::new("sleep"),
            &["30".to_string()],
            &log,
            false,
        )
        .unwrap();
        assert!(p.is_running());
        assert!(pid_matches(p.pid, &["sleep", "30"]));
        assert!(!pid_matches(p.pid, &["bao"]));
        p.stop(Duration::from_secs(5)).await;
        assert!(!p.is_running());
        assert!(!pid_alive(p.pid));
    }
}

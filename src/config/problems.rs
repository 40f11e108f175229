//! Problems found while loading, and the files they are in: every section's validation adds
//! to [`Problems`] (a message at a YAML path, or an error already located), and the loader
//! locates them all at the end against [`Sources`], so each is `file:line:col: message`.

use super::locate::locate_many;
use super::{locate, ConfigError, ConfigErrors, PathSeg};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One file read: its path as read, its path relative to the environment's dir, its text.
pub(crate) struct Source {
    pub path: PathBuf,
    pub rel: PathBuf,
    pub text: String,
}

/// Positions already looked up, by file id and path.
type Memo = HashMap<(usize, Vec<PathSeg>), (usize, usize)>;

/// Every file read so far; index 0 is the environment file.
#[derive(Default)]
pub(crate) struct Sources {
    pub files: Vec<Source>,
    memo: Mutex<Memo>,
}

impl Sources {
    /// The environment file, read first (file id 0).
    pub fn new(environment_file: Source) -> Sources {
        Sources { files: vec![environment_file], memo: Mutex::default() }
    }

    /// The path of file `id`.
    pub fn path(&self, id: usize) -> &Path {
        &self.files[id].path
    }

    /// 1-based (line, column) of `path` in file `id`.
    pub fn locate(&self, id: usize, path: &[PathSeg]) -> (usize, usize) {
        let source = &self.files[id];
        locate(&source.path, &source.text, path)
    }

    /// `file:line` of `path` in file `id`, for messages that point elsewhere. Remembered:
    /// many problems may point at the same node (say, the first of many duplicates).
    pub fn describe(&self, id: usize, path: &[PathSeg]) -> String {
        let key = (id, path.to_vec());
        let cached = self.memo.lock().ok().and_then(|memo| memo.get(&key).copied());
        let (line, column) = cached.unwrap_or_else(|| self.locate(id, path));
        if let Ok(mut memo) = self.memo.lock() {
            memo.insert(key, (line, column));
        }
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

    /// How many so far (to tell whether a step added any).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Take over every problem of `other`.
    pub fn append(&mut self, mut other: Problems) {
        self.0.append(&mut other.0);
    }

    /// Locate every problem (parsing each file once for all of its problems), sort by file
    /// (in reading order), line and column; drop repeats.
    pub(crate) fn resolve(self, sources: &Sources) -> ConfigErrors {
        let mut located: Vec<(usize, ConfigError)> = Vec::with_capacity(self.0.len());
        let mut pending: BTreeMap<usize, Vec<(Vec<PathSeg>, String)>> = BTreeMap::new();
        for (file, problem) in self.0 {
            match problem {
                Problem::Located(e) => located.push((file, e)),
                Problem::At { path, message } => pending.entry(file).or_default().push((path, message)),
            }
        }
        for (file, problems) in pending {
            let source = &sources.files[file];
            let paths: Vec<&[PathSeg]> = problems.iter().map(|(path, _)| path.as_slice()).collect();
            let positions = locate_many(&source.path, &source.text, &paths);
            for ((_, message), (line, column)) in problems.into_iter().zip(positions) {
                located.push((file, ConfigError::new(&source.path, line, column, message)));
            }
        }
        located.sort_by(|(fa, a), (fb, b)| {
            (fa, a.line, a.column, &a.message).cmp(&(fb, b.line, b.column, &b.message))
        });
        located.dedup_by(|(_, a), (_, b)| a == b);
        ConfigErrors(located.into_iter().map(|(_, e)| e).collect())
    }
}


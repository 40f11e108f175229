//! Find the line and column of a node in a YAML file from its path (`workspaces[3].kv.path`).
//!
//! serde_yaml does not expose positions of values that deserialized fine, but it does attach the
//! position of the node being deserialized to any error raised there. So [`locate`] walks the
//! document along the path with a `DeserializeSeed`, skipping other entries with `IgnoredAny`,
//! and fails on purpose at the target node; the error's location is the answer. If the path does
//! not exist, the walk fails at the deepest enclosing node that does.

use super::error::ConfigError;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::path::{Path, PathBuf};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSeg {
    /// The value of a mapping entry with this key.
    Key(String),
    /// An item of a sequence (0-based).
    Index(usize),
}

impl PathSeg {
    /// `PathSeg::Key(key)`.
    pub fn key(key: impl Into<String>) -> PathSeg {
        PathSeg::Key(key.into())
    }
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => write!(f, ".{k}"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Where something is declared: a file and the YAML path of its node in that file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file, as read.
    pub file: PathBuf,
    /// Path of the node in the file: e.g. `[Key("workspaces"), Index(3)]`, or `[]` for a file
    /// that holds one workspace.
    pub yaml_path: Vec<PathSeg>,
}

impl Origin {
    /// An origin at `yaml_path` in `file`.
    pub fn new(file: impl Into<PathBuf>, yaml_path: Vec<PathSeg>) -> Origin {
        Origin { file: file.into(), yaml_path }
    }

    /// The origin of a node below this one.
    pub fn join(&self, segs: impl IntoIterator<Item = PathSeg>) -> Origin {
        let mut yaml_path = self.yaml_path.clone();
        yaml_path.extend(segs);
        Origin { file: self.file.clone(), yaml_path }
    }

    /// An error about this node: re-reads the file to find its line and column (1:1 if the file
    /// cannot be read any more). Meant for error paths only.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        let (line, column) = match std::fs::read_to_string(&self.file) {
            Ok(source) => locate(&self.file, &source, &self.yaml_path),
            Err(_) => (1, 1),
        };
        ConfigError::new(&self.file, line, column, message)
    }
}

impl Origin {
    /// Many errors at once, like [`Origin::error`] for each but reading and parsing every file
    /// only once (use this when thousands of workspaces may fail the same way). In input order.
    pub fn errors<'a>(items: impl IntoIterator<Item = (&'a Origin, String)>) -> Vec<ConfigError> {
        let items: Vec<(&Origin, String)> = items.into_iter().collect();
        let mut by_file: std::collections::BTreeMap<&Path, Vec<usize>> = std::collections::BTreeMap::new();
        for (i, (origin, _)) in items.iter().enumerate() {
            by_file.entry(origin.file.as_path()).or_default().push(i);
        }
        let mut positions = vec![(1, 1); items.len()];
        for (file, ids) in by_file {
            let Ok(source) = std::fs::read_to_string(file) else { continue };
            let paths: Vec<&[PathSeg]> = ids.iter().map(|&i| items[i].0.yaml_path.as_slice()).collect();
            for (&i, at) in ids.iter().zip(locate_many(file, &source, &paths)) {
                positions[i] = at;
            }
        }
        items
            .into_iter()
            .zip(positions)
            .map(|((origin, message), (line, column))| ConfigError::new(&origin.file, line, column, message))
            .collect()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.yaml_path.is_empty() {
            return f.write_str(".");
        }
        let mut text = String::new();
        for seg in &self.yaml_path {
            text.push_str(&seg.to_string());
        }
        f.write_str(text.strip_prefix('.').unwrap_or(&text))
    }
}

/// 1-based (line, column) of the node at `path` in `source` (the text of `file`).
///
/// Scalars are located exactly; a mapping or sequence at its start (for block collections, its
/// first key or `-`). A path that does not exist locates its deepest existing ancestor; (1, 1) if
/// nothing can be located (e.g. an empty document).
pub fn locate(file: &Path, source: &str, path: &[PathSeg]) -> (usize, usize) {
    let _ = file;
    match Walk(path).deserialize(serde_yaml::Deserializer::from_str(source)) {
        Err(e) => e.location().map_or((1, 1), |l| (l.line(), l.column())),
        Ok(()) => (1, 1),
    }
}

/// The error raised on purpose at the target node.
const HERE: &str = "located";

struct Walk<'p>(&'p [PathSeg]);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // Every scalar visit falls back to serde's `invalid_type` error, which serde_yaml marks
        // with the scalar's position: that is the target, or the deepest node on the way to it.
        deserializer.deserialize_any(WalkVisitor(self.0))
    }
}

struct WalkVisitor<'p>(&'p [PathSeg]);

impl<'de> Visitor<'de> for WalkVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HERE)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((PathSeg::Key(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == *want {
                return map.next_value_seed(Walk(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((PathSeg::Index(want), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(HERE));
            }
        }
        match seq.next_element_seed(Walk(rest))? {
            Some(()) => Ok(()),
            None => Err(de::Error::custom(HERE)),
        }
    }
}

/// 1-based (line, column) of every path in `paths`, like [`locate`] for each, but parsing
/// `source` once for all the scalars among them (a file with thousands of errors must not be
/// parsed thousands of times). Mappings, sequences and missing paths are located one by one.
pub fn locate_many(file: &Path, source: &str, paths: &[&[PathSeg]]) -> Vec<(usize, usize)> {
    let mut found: Vec<Option<(usize, usize)>> = vec![None; paths.len()];
    if paths.len() > 1 {
        let mut trie = Trie::default();
        for (i, path) in paths.iter().enumerate() {
            trie.insert(path, i);
        }
        let walk = MultiWalk { trie: &trie, found: &mut found };
        if let Err(e) = walk.deserialize(serde_yaml::Deserializer::from_str(source)) {
            if let Some(at) = marked(&e) {
                trie.record(&mut found, at); // the document itself is a scalar
            }
        }
    }
    paths.iter().zip(found).map(|(path, at)| at.unwrap_or_else(|| locate(file, source, path))).collect()
}

/// The paths still wanted below one node: the target ids ending here, and the children.
#[derive(Default)]
struct Trie {
    here: Vec<usize>,
    keys: std::collections::HashMap<String, Trie>,
    items: std::collections::HashMap<usize, Trie>,
}

impl Trie {
    fn insert(&mut self, path: &[PathSeg], id: usize) {
        match path.split_first() {
            None => self.here.push(id),
            Some((PathSeg::Key(k), rest)) => self.keys.entry(k.clone()).or_default().insert(rest, id),
            Some((PathSeg::Index(i), rest)) => self.items.entry(*i).or_default().insert(rest, id),
        }
    }

    /// This node is a scalar at `at`: every target at or below it is located there.
    fn record(&self, found: &mut [Option<(usize, usize)>], at: (usize, usize)) {
        for &id in &self.here {
            found[id] = Some(at);
        }
        for child in self.keys.values().chain(self.items.values()) {
            child.record(found, at);
        }
    }
}

/// The error raised on purpose at scalars by [`MultiWalk`], and caught by their parent.
const MARK: &str = "\u{1}ctl-locate-mark";

/// The position of a [`MARK`] error, from its message (serde_yaml appends " at line L column
/// C", omitted for 1:1). `None` for any other error.
fn marked(e: &impl fmt::Display) -> Option<(usize, usize)> {
    let text = e.to_string();
    let rest = &text[text.find(MARK)? + MARK.len()..];
    if rest.is_empty() {
        return Some((1, 1));
    }
    let (line, column) = rest.strip_prefix(" at line ")?.split_once(" column ")?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// Walks every node on the way to the targets of `trie`, marking scalars: each scalar raises
/// a [`MARK`] error that serde_yaml stamps with its position and that the parent map or
/// sequence catches before going on (serde_yaml has already consumed the scalar by then).
struct MultiWalk<'t, 'f> {
    trie: &'t Trie,
    found: &'f mut [Option<(usize, usize)>],
}

impl<'de> DeserializeSeed<'de> for MultiWalk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl MultiWalk<'_, '_> {
    /// Walk into `child` with `step`; a mark from the child itself locates its targets.
    fn descend<E: de::Error>(
        child: &Trie,
        found: &mut [Option<(usize, usize)>],
        step: impl FnOnce(MultiWalk<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match step(MultiWalk { trie: child, found: &mut *found }) {
            Ok(()) => Ok(()),
            Err(e) => match marked(&e) {
                Some(at) => {
                    child.record(found, at);
                    Ok(())
                }
                None => Err(e),
            },
        }
    }
}

impl<'de> Visitor<'de> for MultiWalk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MARK)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match self.trie.keys.get(&key) {
                Some(child) => Self::descend(child, self.found, |walk| map.next_value_seed(walk))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let more = match self.trie.items.get(&index) {
                Some(child) => {
                    let mut more = true;
                    Self::descend(child, self.found, |walk| {
                        more = seq.next_element_seed(walk)?.is_some();
                        Ok(())
                    })?;
                    more
                }
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(MARK))
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(MARK))
    }
}

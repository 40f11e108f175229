//! Recording a published artifact's pin (digest, version, size) in the environment file by
//! editing its text: only the scalars that change are rewritten (or one item is added), so
//! comments, ordering and every other byte stay as they were. The result is loaded and
//! checked before it atomically replaces the file.
//!
//! Positions come from [`crate::config::locate`] (serde_yaml's own marks), so both block
//! (`- name: caddy` / `  sha256: …`) and single-line flow (`- { name: caddy, … }`) items work.

use crate::config::{locate, PathSeg};
use std::path::{Path, PathBuf};

/// The values to record for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// What [`pin_in_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// The item already had exactly these values; the file was not written.
    Unchanged,
    /// The item's fields were rewritten in place.
    Updated,
    /// A new item was added under `items:`.
    Added,
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("cannot write {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error("{path}: {message}")]
    Edit { path: PathBuf, message: String },
    #[error("{path}: the edited file does not load, nothing was written: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Record `pin` in the environment file at `path` (which must load), atomically.
pub fn pin_in_file(path: &Path, pin: &Pin) -> Result<PinOutcome, PinError> {
    let edit_err = |message: String| PinError::Edit { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|error| PinError::Read { path: path.into(), error })?;
    let env = crate::config::load(path).map_err(|e| edit_err(format!("does not load: {e}")))?;
    let artifacts = env.artifacts.as_ref().ok_or_else(|| edit_err("has no artifacts: section".into()))?;
    let index = artifacts.items.iter().position(|a| a.name == pin.name);
    if let Some(a) = index.map(|i| &artifacts.items[i]) {
        if a.version == pin.version && a.file == pin.file && a.sha256 == pin.sha256 && a.size == Some(pin.size) {
            return Ok(PinOutcome::Unchanged);
        }
    }
    let (new_text, outcome) = pin_text(path, &text, index, pin).map_err(edit_err)?;

    // Write next to the file (same directory: same file system for the rename, same relative
    // paths for workspaces_dir), load that, and only then replace the original.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{stem}.ctl-pin-{}.yaml", std::process::id()));
    let result = write_checked(path, &tmp, &new_text, pin);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| outcome)
}

fn write_checked(path: &Path, tmp: &Path, text: &str, pin: &Pin) -> Result<(), PinError> {
    use std::io::Write;
    let write_err = |error| PinError::Write { path: tmp.to_path_buf(), error };
    let permissions =
        std::fs::metadata(path).map_err(|error| PinError::Read { path: path.into(), error })?.permissions();
    let mut f = std::fs::File::create(tmp).map_err(write_err)?;
    f.write_all(text.as_bytes()).map_err(write_err)?;
    f.set_permissions(permissions).map_err(write_err)?;
    f.sync_all().map_err(write_err)?;
    drop(f);
    let invalid = |message: String| PinError::Invalid { path: path.to_path_buf(), message };
    let env = crate::config::load(tmp).map_err(|e| invalid(e.to_string()))?;
    let item = env
        .artifacts
        .as_ref()
        .and_then(|a| a.get(&pin.name))
        .ok_or_else(|| invalid(format!("no item {}", pin.name)))?;
    if item.version != pin.version || item.file != pin.file || item.sha256 != pin.sha256 || item.size != Some(pin.size)
    {
        return Err(invalid(format!("item {} reads back as {item:?}", pin.name)));
    }
    std::fs::rename(tmp, path).map_err(|error| PinError::Write { path: path.to_path_buf(), error })?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// One replacement of `text[start..end]`.
struct Edit {
    start: usize,
    end: usize,
    with: String,
}

/// `text` with `pin` recorded: item `index` updated in place, or (if `None`) a new item added.
/// Pure; `path` only labels positions.
pub fn pin_text(path: &Path, text: &str, index: Option<usize>, pin: &Pin) -> Result<(String, PinOutcome), String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let section = doc.get("artifacts").ok_or("has no artifacts: section")?;
    let mut edits = Vec::new();
    let outcome = match index {
        Some(i) => {
            let item = section.get("items").and_then(|items| items.get(i)).ok_or("item index out of range")?;
            update_item(path, text, i, item, pin, &mut edits)?;
            PinOutcome::Updated
        }
        None => {
            add_item(path, text, section, pin, &mut edits)?;
            PinOutcome::Added
        }
    };
    edits.sort_by_key(|e| std::cmp::Reverse(e.start));
    let mut out = text.to_string();
    for e in edits {
        out.replace_range(e.start..e.end, &e.with);
    }
    Ok((out, outcome))
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn items_path() -> Vec<PathSeg> {
    vec![PathSeg::key("artifacts"), PathSeg::key("items")]
}

fn item_path(i: usize, key: Option<&str>) -> Vec<PathSeg> {
    let mut p = items_path();
    p.push(PathSeg::Index(i));
    if let Some(k) = key {
        p.push(PathSeg::key(k));
    }
    p
}

fn update_item(
    path: &Path,
    text: &str,
    i: usize,
    item: &serde_yaml::Value,
    pin: &Pin,
    edits: &mut Vec<Edit>,
) -> Result<(), String> {
    let mut replace = |key: &str, with: String| -> Result<(usize, usize), String> {
        let start = node_offset(path, text, &item_path(i, Some(key)))?;
        let end = scalar_end(text, start)?;
        edits.push(Edit { start, end, with });
        Ok((start, end))
    };
    let (sha_start, sha_end) = replace("sha256", quoted(&pin.sha256))?;
    replace("version", quoted(&pin.version))?;
    replace("file", pin.file.clone())?;
    if item.get("size").is_some_and(|s| !s.is_null()) {
        replace("size", pin.size.to_string())?;
        return Ok(());
    }
    // No size yet: add it right after sha256 (same line in a flow item, next line in a block).
    let item_start = node_offset(path, text, &item_path(i, None))?;
    if text[item_start..].starts_with('{') {
        edits.push(Edit { start: sha_end, end: sha_end, with: format!(", size: {}", pin.size) });
    } else {
        let line_start = text[..sha_start].rfind('\n').map_or(0, |n| n + 1);
        let key_col = text[line_start..sha_start].rfind("sha256").ok_or("cannot find the sha256 key")?;
        let line_end = text[sha_end..].find('\n').map_or(text.len(), |n| sha_end + n);
        edits.push(Edit {
            start: line_end,
            end: line_end,
            with: format!("\n{}size: {}", " ".repeat(key_col), pin.size),
        });
    }
    Ok(())
}

fn add_item(
    path: &Path,
    text: &str,
    section: &serde_yaml::Value,
    pin: &Pin,
    edits: &mut Vec<Edit>,
) -> Result<(), String> {
    let section_start = node_offset(path, text, &[PathSeg::key("artifacts")])?;
    if text[section_start..].starts_with('{') {
        return Err("the artifacts: section is a flow mapping ({ … }); write it in block style to add items".into());
    }
    let block_item = |indent: usize| {
        let pad = " ".repeat(indent);
        format!(
            "{pad}- name: {}\n{pad}  version: {}\n{pad}  file: {}\n{pad}  sha256: {}\n{pad}  size: {}",
            pin.name,
            quoted(&pin.version),
            pin.file,
            quoted(&pin.sha256),
            pin.size
        )
    };
    let items = section.get("items").filter(|v| !v.is_null());
    let Some(items) = items else {
        // No items key: add one after the bucket line, at the bucket key's indentation.
        let bucket = node_offset(path, text, &[PathSeg::key("artifacts"), PathSeg::key("bucket")])?;
        let line_start = text[..bucket].rfind('\n').map_or(0, |n| n + 1);
        let key_col = text[line_start..bucket].rfind("bucket").ok_or("cannot find the bucket key")?;
        let end = scalar_end(text, bucket)?;
        let line_end = text[end..].find('\n').map_or(text.len(), |n| end + n);
        let pad = " ".repeat(key_col);
        let with = format!("\n{pad}items:\n{}", block_item(key_col + 2));
        edits.push(Edit { start: line_end, end: line_end, with });
        return Ok(());
    };
    let seq = items.as_sequence().ok_or("artifacts.items is not a list")?;
    let start = node_offset(path, text, &items_path())?;
    if text[start..].starts_with('[') {
        let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
        let close = text[start..line_end]
            .rfind(']')
            .map(|n| start + n)
            .ok_or("artifacts.items is a multi-line flow list; write it in block style")?;
        if seq.is_empty() {
            // `items: []` becomes a block list under the key.
            let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
            let key_col = text[line_start..start].rfind("items").ok_or("cannot find the items key")?;
            let with = format!("\n{}", block_item(key_col + 2));
            // Also drop the spaces between `items:` and `[`.
            let colon = text[..start].trim_end_matches(' ').len();
            edits.push(Edit { start: colon, end: close + 1, with });
        } else {
            let with = format!(
                ", {{ name: {}, version: {}, file: {}, sha256: {}, size: {} }}",
                pin.name,
                quoted(&pin.version),
                pin.file,
                quoted(&pin.sha256),
                pin.size
            );
            let before = text[..close].trim_end_matches(' ').len();
            edits.push(Edit { start: before, end: before, with });
        }
        return Ok(());
    }
    // A block list: after the last content line of the last item.
    let last = node_offset(path, text, &item_path(seq.len() - 1, None))?;
    let first_line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
    let dash_col = start - first_line_start;
    let last_line_end = text[last..].find('\n').map_or(text.len(), |n| last + n);
    let mut insert_at = last_line_end;
    let mut pos = last_line_end;
    while pos < text.len() {
        let next_start = pos + 1;
        let next_end = text[next_start..].find('\n').map_or(text.len(), |n| next_start + n);
        let line = &text[next_start..next_end];
        let content = line.trim_start_matches(' ');
        if !(content.is_empty() || content.starts_with('#')) {
            if line.len() - content.len() <= dash_col {
                break;
            }
            insert_at = next_end;
        }
        pos = next_end;
    }
    edits.push(Edit { start: insert_at, end: insert_at, with: format!("\n{}", block_item(dash_col)) });
    Ok(())
}

/// Byte offset of the node at `yaml_path` (serde_yaml's 1-based line and character column).
fn node_offset(path: &Path, text: &str, yaml_path: &[PathSeg]) -> Result<usize, String> {
    let (line, column) = locate(path, text, yaml_path);
    let mut line_start = 0;
    for _ in 1..line {
        line_start += text[line_start..].find('\n').ok_or("position past the end of the file")? + 1;
    }
    let line_text = &text[line_start..text[line_start..].find('\n').map_or(text.len(), |n| line_start + n)];
    let byte = line_text.char_indices().nth(column.saturating_sub(1)).map_or(line_text.len(), |(b, _)| b);
    Ok(line_start + byte)
}

/// End (exclusive) of the scalar starting at `start`: a quoted string, or a plain scalar up to
/// the next space, comma, bracket, brace, comment or line end (values written here never
/// contain those).
fn scalar_end(text: &str, start: usize) -> Result<usize, String> {
    let rest = &text[start..];
    match rest.chars().next() {
        Some('"') => {
            let mut escaped = false;
            for (i, c) in rest.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Ok(start + i + 1),
                    '\n' => break,
                    _ => escaped = false,
                }
            }
            Err("unterminated or multi-line quoted scalar".into())
        }
        Some('\'') => {
            let bytes = rest.as_bytes();
            let mut i = 1;
            while i < bytes.len() && bytes[i] != b'\n' {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Ok(start + i + 1);
                }
                i += 1;
            }
            Err("unterminated or multi-line quoted scalar".into())
        }
        Some('|' | '>' | '&' | '*' | '!' | '[' | '{') | None => Err("not a plain or quoted scalar".into()),
        Some(_) => Ok(start + rest.find([' ', '\t', ',', ']', '}', '\n', '#']).unwrap_or(rest.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const NEW: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdef0123";

    fn pin(name: &str) -> Pin {
        Pin { name: name.into(), version: "2.9.0".into(), file: "caddy".into(), sha256: NEW.into(), size: 42 }
    }

    fn run(text: &str, index: Option<usize>, p: &Pin) -> String {
        let (out, _) = pin_text(Path::new("env.yaml"), text, index, p).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Still YAML, and the item now has the pin.
        let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let items = doc["artifacts"]["items"].as_sequence().unwrap();
        let item = items.iter().find(|i| i["name"].as_str() == Some(&p.name)).unwrap_or_else(|| panic!("{out}"));
        assert_eq!(item["sha256"].as_str(), Some(p.sha256.as_str()), "{out}");
        assert_eq!(item["version"].as_str(), Some(p.version.as_str()), "{out}");
        assert_eq!(item["file"].as_str(), Some(p.file.as_str()), "{out}");
        assert_eq!(item["size"].as_u64(), Some(p.size), "{out}");
        out
    }

    #[test]
    fn updates_a_block_item_in_place() {
        let text = format!(
            "# top comment\nopenbao: {{ dev_stack: x }}\nartifacts:\n  bucket: b-1 # the bucket\n  items:\n    # caddy\n    - name: caddy\n      version: \"2.8.4\"   # old\n      file: caddy\n      sha256: {OLD}  # pinned\n      size: 10\n    - name: other\n      version: '1'\n      file: other\n      sha256: \"{OLD}\"\nworkspaces: []\n"
        );
        let out = run(&text, Some(0), &pin("caddy"));
        let expected = text
            .replace(&format!("sha256: {OLD}  # pinned"), &format!("sha256: \"{NEW}\"  # pinned"))
            .replace("version: \"2.8.4\"   # old", "version: \"2.9.0\"   # old")
            .replace("size: 10", "size: 42");
        assert_eq!(out, expected);
    }

    #[test]
    fn adds_size_to_a_block_item_without_one() {
        let text = format!("artifacts:\n  bucket: b-1\n  items:\n  - name: caddy\n    version: \"2.8.4\"\n    file: caddy\n    sha256: \"{OLD}\" # c\n# end\n");
        let out = run(&text, Some(0), &pin("caddy"));
        assert_eq!(
            out,
            format!("artifacts:\n  bucket: b-1\n  items:\n  - name: caddy\n    version: \"2.9.0\"\n    file: caddy\n    sha256: \"{NEW}\" # c\n    size: 42\n# end\n")
        );
    }

    #[test]
    fn updates_a_flow_item() {
        let text = format!("artifacts:\n  bucket: b-1\n  items:\n    - {{ name: caddy, version: \"2.8.4\", file: caddy, sha256: {OLD} }} # x\n");
        let out = run(&text, Some(0), &pin("caddy"));
        assert_eq!(
            out,
            format!("artifacts:\n  bucket: b-1\n  items:\n    - {{ name: caddy, version: \"2.9.0\", file: caddy, sha256: \"{NEW}\", size: 42 }} # x\n")
        );
    }

    #[test]
    fn appends_to_a_block_list() {
        let text = format!(
            "artifacts:\n  bucket: b-1\n  items:\n    - name: other\n      version: '1'\n      file: other\n      sha256: \"{OLD}\"\n\n    # trailing comment\nworkspaces: []\n"
        );
        let out = run(&text, None, &pin("caddy"));
        assert_eq!(
            out,
            format!(
                "artifacts:\n  bucket: b-1\n  items:\n    - name: other\n      version: '1'\n      file: other\n      sha256: \"{OLD}\"\n    - name: caddy\n      version: \"2.9.0\"\n      file: caddy\n      sha256: \"{NEW}\"\n      size: 42\n\n    # trailing comment\nworkspaces: []\n"
            )
        );
    }

    #[test]
    fn appends_to_an_indentless_list_at_the_end_of_the_file() {
        let text = format!(
            "artifacts:\n  bucket: b-1\n  items:\n  - {{ name: other, version: '1', file: other, sha256: \"{OLD}\" }}"
        );
        let out = run(&text, None, &pin("caddy"));
        assert!(out.starts_with(&text), "{out}");
        assert!(
            out.ends_with(&format!(
                "\n  - name: caddy\n    version: \"2.9.0\"\n    file: caddy\n    sha256: \"{NEW}\"\n    size: 42"
            )),
            "{out}"
        );
    }

    #[test]
    fn replaces_an_empty_flow_list() {
        let text = "artifacts:\n  bucket: b-1\n  items: []   # none yet\nworkspaces: []\n";
        let out = run(text, None, &pin("caddy"));
        assert_eq!(
            out,
            format!("artifacts:\n  bucket: b-1\n  items:\n    - name: caddy\n      version: \"2.9.0\"\n      file: caddy\n      sha256: \"{NEW}\"\n      size: 42   # none yet\nworkspaces: []\n")
        );
    }

    #[test]
    fn appends_to_a_flow_list() {
        let text = format!(
            "artifacts:\n  bucket: b-1\n  items: [ {{ name: other, version: '1', file: other, sha256: \"{OLD}\" }} ]\n"
        );
        let out = run(&text, None, &pin("caddy"));
        assert!(
            out.contains(&format!(
                "\"{OLD}\" }}, {{ name: caddy, version: \"2.9.0\", file: caddy, sha256: \"{NEW}\", size: 42 }} ]\n"
            )),
            "{out}"
        );
    }

    #[test]
    fn adds_items_when_there_is_no_items_key() {
        let text = "artifacts:\n  bucket: b-1   # here\n  prefix: boot/\nworkspaces: []\n";
        let out = run(text, None, &pin("caddy"));
        assert_eq!(
            out,
            format!("artifacts:\n  bucket: b-1   # here\n  items:\n    - name: caddy\n      version: \"2.9.0\"\n      file: caddy\n      sha256: \"{NEW}\"\n      size: 42\n  prefix: boot/\nworkspaces: []\n")
        );
    }

    #[test]
    fn refuses_a_flow_section() {
        let err = pin_text(Path::new("e.yaml"), "artifacts: { bucket: b-1 }\n", None, &pin("caddy")).unwrap_err();
        assert!(err.contains("block style"), "{err}");
    }

    #[test]
    fn pin_in_file_keeps_other_bytes_and_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.yaml");
        let text = format!(
            "# Production boot artifacts.\nopenbao:\n  dev_stack: ../.ctl/dev   # local\nartifacts:\n  bucket: b-1\n  items:\n    - name: caddy   # web\n      version: \"2.8.4\"\n      file: caddy\n      sha256: \"{OLD}\"\n"
        );
        std::fs::write(&path, &text).unwrap();
        assert_eq!(pin_in_file(&path, &pin("caddy")).unwrap(), PinOutcome::Updated);
        let out = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            out,
            text.replace(&format!("\"{OLD}\""), &format!("\"{NEW}\"\n      size: 42")).replace("2.8.4", "2.9.0")
        );
        assert_eq!(pin_in_file(&path, &pin("caddy")).unwrap(), PinOutcome::Unchanged);
        assert_eq!(pin_in_file(&path, &pin("new-one")).unwrap(), PinOutcome::Added);
        let env = crate::config::load(&path).unwrap();
        assert_eq!(env.artifacts.unwrap().items.len(), 2);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}

//! `ctl alarms tune`: change one alarm's threshold in the environment file's TEXT, leaving every
//! other byte (comments, quoting, flow or block style, line endings) exactly as it was.
//!
//! The threshold scalar is found with the config loader's own locator (the same positions its
//! errors use), its extent is the plain scalar at that position, and only those bytes are
//! replaced. The result is re-parsed and checked before it is returned.

use crate::config::{locate, PathSeg};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("{file}: cannot find the threshold of {path}")]
    NotFound { file: String, path: String },
    #[error("{file}:{line}:{column}: the threshold is not a plain number ({found:?}); edit it by hand")]
    NotPlain {
        file: String,
        line: usize,
        column: usize,
        found: String,
    },
}

/// Shortest text for a threshold (`80`, `0.5`, `1e-7` as Rust writes it).
pub fn format_threshold(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// `text` with the scalar at `yaml_path` (which must be `…threshold`) replaced by `value`.
/// Returns the new text and the old scalar.
pub fn set_threshold(
    file: &Path,
    text: &str,
    yaml_path: &[PathSeg],
    value: f64,
) -> Result<(String, String), TuneError> {
    let not_found = || TuneError::NotFound {
        file: file.display().to_string(),
        path: yaml_path.iter().map(ToString::to_string).collect::<String>(),
    };
    let (line, column) = locate(file, text, yaml_path);
    let line_start = text.split_inclusive('\n').take(line - 1).map(str::len).sum::<usize>();
    let line_text = text[line_start..].split('\n').next().unwrap_or("");
    let start = line_start
        + line_text
            .char_indices()
            .nth(column - 1)
            .map(|(i, _)| i)
            .ok_or_else(not_found)?;
    // A plain scalar ends at a flow indicator, a comment or the end of the line.
    let rest = &text[start..];
    let mut end = rest.find(['\n', '\r', ',', '}', ']']).unwrap_or(rest.len());
    if let Some(c) = rest[..end].find(" #") {
        end = c;
    }
    let old = rest[..end].trim_end();
    if old.parse::<f64>().is_err() {
        return Err(TuneError::NotPlain {
            file: file.display().to_string(),
            line,
            column,
            found: old.to_string(),
        });
    }
    // The locator points at the deepest existing node: make sure it is this key's value.
    let before = &text[line_start..start];
    if !before.trim_end().ends_with("threshold:") {
        return Err(not_found());
    }
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..start]);
    out.push_str(&format_threshold(value));
    out.push_str(&text[start + old.len()..]);
    // Check: the same path now holds the new value.
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).map_err(|_| not_found())?;
    let mut node = &doc;
    for seg in yaml_path {
        node = match seg {
            PathSeg::Key(k) => node.get(k.as_str()),
            PathSeg::Index(i) => node.get(*i),
        }
        .ok_or_else(not_found)?;
    }
    if node.as_f64() != Some(value) {
        return Err(not_found());
    }
    Ok((out, old.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(i: usize) -> Vec<PathSeg> {
        vec![
            PathSeg::key("alarms"),
            PathSeg::key("alarms"),
            PathSeg::Index(i),
            PathSeg::key("threshold"),
        ]
    }

    const TEXT: &str = "# top comment\nalarms:\n  sns: { topic: t, webhook: { url_env: W } }\n  alarms:\n    - name: a   # first\n      threshold: 5      # five is fine\n      period: 60\n    - { name: b, threshold: 2.5, period: 60 }  # flow\n";

    #[test]
    fn block_scalar_edit_keeps_everything_else() {
        let (out, old) = set_threshold(Path::new("e.yaml"), TEXT, &path(0), 7.5).unwrap();
        assert_eq!(old, "5");
        assert_eq!(out, TEXT.replace("threshold: 5      #", "threshold: 7.5      #"));
    }

    #[test]
    fn flow_scalar_edit_keeps_everything_else() {
        let (out, old) = set_threshold(Path::new("e.yaml"), TEXT, &path(1), 3.0).unwrap();
        assert_eq!(old, "2.5");
        assert_eq!(out, TEXT.replace("threshold: 2.5,", "threshold: 3,"));
    }

    #[test]
    fn missing_path_is_an_error() {
        assert!(set_threshold(Path::new("e.yaml"), TEXT, &path(5), 3.0).is_err());
    }
}

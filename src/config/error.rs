//! [`ConfigError`] and [`ConfigErrors`]: problems in desired state, each at `file:line:col`.

use std::path::{Path, PathBuf};

/// One problem in a configuration file, at a 1-based line and column.
///
/// Displays as `{file}:{line}:{col}: {message}`, the format editors and terminals link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error at `file:line:column`.
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.into(), line, column, message: message.into() }
    }

    /// An error about a whole file (reported at 1:1), e.g. one that cannot be read.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError::new(file, 1, 1, message)
    }

    /// An error from serde_yaml while reading `file`: its position, and its message without the
    /// redundant " at line L column C".
    pub fn from_yaml(file: &Path, err: &serde_yaml::Error) -> ConfigError {
        let text = err.to_string();
        let Some(loc) = err.location() else {
            return ConfigError::whole_file(file, text);
        };
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        let message = match text.find(&suffix) {
            Some(at) => format!("{}{}", &text[..at], &text[at + suffix.len()..]),
            None => text,
        };
        ConfigError::new(file, loc.line(), loc.column(), message)
    }
}

/// Every problem found while loading an environment, in file order. Displays one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn lines(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl ConfigErrors {
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are none (a loaded environment never returns an empty list).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![e])
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

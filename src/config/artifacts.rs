//! The `artifacts:` section: boot artifacts in S3 and their pinned SHA-256 digests.
//!
//! ```yaml
//! artifacts:
//!   bucket: acme-boot-artifacts
//!   prefix: boot/                 # default
//!   items:
//!     - name: caddy
//!       version: "2.8.4"
//!       file: caddy               # object name; the key is <prefix><name>/<version>/<file>
//!       sha256: "9f86d0…"         # the pinned digest (64 hex), written by `ctl artifacts publish`
//!       size: 41943040            # optional: the most bytes the artifact may have
//! ```
//!
//! Per-value checks (bucket name, names, digest) run in `Deserialize`, so errors point at the
//! offending scalar; duplicate names are checked after parsing and located with the path.

use super::problems::{Problems, Sources};
use super::names::{via_parse, Parse};
use super::{Origin, PathSeg};
use serde::Deserialize;
use std::path::Path;

/// The loaded `artifacts:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    /// The S3 bucket holding every artifact and its sidecar.
    pub bucket: String,
    /// Key prefix, `""` or ending in `/` (default `boot/`).
    pub prefix: String,
    /// Artifacts in declaration order; names are unique.
    pub items: Vec<Artifact>,
}

/// One boot artifact and its pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Unique name, e.g. `caddy`.
    pub name: String,
    /// Version, part of the key.
    pub version: String,
    /// Object (and file) name; the sidecar must name it.
    pub file: String,
    /// The pinned digest, 64 lowercase hex characters.
    pub sha256: String,
    /// Most bytes the artifact may have.
    pub size: Option<u64>,
    /// Where the item is declared.
    pub origin: Origin,
}

impl Artifacts {
    /// The item called `name`.
    pub fn get(&self, name: &str) -> Option<&Artifact> {
        self.items.iter().find(|a| a.name == name)
    }

    /// The object key of `artifact`: `<prefix><name>/<version>/<file>`.
    pub fn key(&self, artifact: &Artifact) -> String {
        object_key(&self.prefix, &artifact.name, &artifact.version, &artifact.file)
    }
}

/// `<prefix><name>/<version>/<file>`.
pub fn object_key(prefix: &str, name: &str, version: &str, file: &str) -> String {
    format!("{prefix}{name}/{version}/{file}")
}

/// The key of the sidecar of the object `key`.
pub fn sidecar_key(key: &str) -> String {
    format!("{key}.sha256")
}

fn default_prefix() -> Prefix {
    Prefix("boot/".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArtifacts {
    pub bucket: BucketName,
    #[serde(default = "default_prefix")]
    pub prefix: Prefix,
    #[serde(default)]
    pub items: Vec<RawArtifact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArtifact {
    pub name: ArtifactName,
    pub version: Token,
    pub file: Token,
    pub sha256: Sha256Hex,
    #[serde(default)]
    pub size: Option<u64>,
}

/// Turn the parsed section into [`Artifacts`]; duplicate names are problems at the repeat.
pub(crate) fn resolve(raw: &RawArtifacts, file: &Path, sources: &Sources, problems: &mut Problems) -> Artifacts {
    let path_of = |i: usize| vec![PathSeg::key("artifacts"), PathSeg::key("items"), PathSeg::Index(i)];
    let mut items: Vec<Artifact> = Vec::with_capacity(raw.items.len());
    for (i, item) in raw.items.iter().enumerate() {
        if let Some(first) = raw.items[..i].iter().position(|a| a.name.0 == item.name.0) {
            let mut at = path_of(i);
            at.push(PathSeg::key("name"));
            let first_at = sources.describe(0, &path_of(first));
            problems.at(0, at, format!("duplicate artifact name {:?} (first declared at {first_at})", item.name.0));
            continue;
        }
        if item.size == Some(0) {
            let mut at = path_of(i);
            at.push(PathSeg::key("size"));
            problems.at(0, at, "size must be at least 1 byte (it is the most bytes the artifact may have)");
        }
        items.push(Artifact {
            name: item.name.0.clone(),
            version: item.version.0.clone(),
            file: item.file.0.clone(),
            sha256: item.sha256.0.clone(),
            size: item.size,
            origin: Origin::new(file, path_of(i)),
        });
    }
    Artifacts { bucket: raw.bucket.0.clone(), prefix: raw.prefix.0.clone(), items }
}

/// An S3 bucket name: 3–63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BucketName(pub String);

impl Parse for BucketName {
    const EXPECTING: &'static str = "an S3 bucket name";
    fn parse(s: &str) -> Result<Self, String> {
        let n = s.chars().count();
        if !(3..=63).contains(&n) {
            return Err(format!("bucket name must be 3 to 63 characters (has {n})"));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.')) {
            return Err(format!("bucket name contains {c:?}; allowed are a-z, 0-9, '-', '.'"));
        }
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !edge(s.chars().next()) || !edge(s.chars().last()) {
            return Err("bucket name must start and end with a lowercase letter or a digit".into());
        }
        if s.contains("..") {
            return Err("bucket name must not contain \"..\"".into());
        }
        Ok(BucketName(s.to_string()))
    }
}
via_parse!(BucketName);

/// A key prefix: empty, or ending in `/`, without a leading `/`, of [`Token`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prefix(pub String);

impl Parse for Prefix {
    const EXPECTING: &'static str = "a key prefix ending in '/'";
    fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(Prefix(String::new()));
        }
        if s.starts_with('/') || !s.ends_with('/') || s.contains("//") {
            return Err(format!("prefix {s:?} must end with '/' and not start with '/' (e.g. boot/)"));
        }
        for segment in s.trim_end_matches('/').split('/') {
            check_token(segment).map_err(|e| format!("prefix segment {segment:?} {e}"))?;
        }
        Ok(Prefix(s.to_string()))
    }
}
via_parse!(Prefix);

/// An artifact name: lowercase, `a-z 0-9 . _ -`, starting with a letter or digit, ≤ 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArtifactName(pub String);

impl Parse for ArtifactName {
    const EXPECTING: &'static str = "an artifact name";
    fn parse(s: &str) -> Result<Self, String> {
        check_token(s)?;
        if s.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("artifact name must be lowercase".into());
        }
        Ok(ArtifactName(s.to_string()))
    }
}
via_parse!(ArtifactName);

/// A version or file name: one key segment of `A-Z a-z 0-9 . _ + -`, not `.`/`..`, ≤ 128.
/// (These end up in object keys, sidecar lines and boot scripts: no spaces, quotes or slashes.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token(pub String);

impl Parse for Token {
    const EXPECTING: &'static str = "a version or file name";
    fn parse(s: &str) -> Result<Self, String> {
        check_token(s).map(|()| Token(s.to_string()))
    }
}
via_parse!(Token);

/// Checks an artifact name (see [`ArtifactName`]); the error completes "name … ".
pub fn check_artifact_name(s: &str) -> Result<(), String> {
    ArtifactName::parse(s).map(|_| ())
}

/// Checks a version or file name (see [`Token`]); the error completes "version … ".
pub fn check_artifact_token(s: &str) -> Result<(), String> {
    check_token(s)
}

/// Checks a single key segment; see [`Token`].
pub(crate) fn check_token(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 128 {
        return Err(format!("must be at most 128 characters (has {})", s.len()));
    }
    if s == "." || s == ".." {
        return Err(format!("must not be {s:?}"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))) {
        return Err(format!("contains {c:?}; allowed are A-Z, a-z, 0-9, '.', '_', '+', '-'"));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".into());
    }
    Ok(())
}

/// A SHA-256 digest: exactly 64 hex characters, normalised to lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sha256Hex(pub String);

impl Parse for Sha256Hex {
    const EXPECTING: &'static str = "a SHA-256 digest (64 hex characters, quoted)";
    fn parse(s: &str) -> Result<Self, String> {
        if let Some((i, c)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(format!("sha256 has a non-hex character {c:?} at position {}", i + 1));
        }
        if s.len() != 64 {
            return Err(format!("sha256 must be 64 hex characters (has {})", s.len()));
        }
        Ok(Sha256Hex(s.to_ascii_lowercase()))
    }
}
via_parse!(Sha256Hex);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(BucketName::parse("acme-boot.artifacts").is_ok());
        assert!(BucketName::parse("ab").unwrap_err().contains("3 to 63"));
        assert!(BucketName::parse("Acme").unwrap_err().contains("'A'"));
        assert!(BucketName::parse("-acme").unwrap_err().contains("start and end"));
        assert!(BucketName::parse("a..b").unwrap_err().contains(".."));
    }

    #[test]
    fn prefixes() {
        assert_eq!(Prefix::parse("").unwrap().0, "");
        assert_eq!(Prefix::parse("boot/x/").unwrap().0, "boot/x/");
        assert!(Prefix::parse("boot").is_err());
        assert!(Prefix::parse("/boot/").is_err());
        assert!(Prefix::parse("a//").is_err());
        assert!(Prefix::parse("a b/").is_err());
    }

    #[test]
    fn tokens() {
        assert!(Token::parse("2.8.4+build_1-rc").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a'b", ".hidden", "x\n"] {
            assert!(Token::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ArtifactName::parse("Caddy").unwrap_err().contains("lowercase"));
    }

    #[test]
    fn digests() {
        let hex = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        assert_eq!(Sha256Hex::parse(hex).unwrap().0, hex.to_lowercase());
        assert!(Sha256Hex::parse(&hex[..63]).unwrap_err().contains("has 63"));
        assert!(Sha256Hex::parse(&format!("{}z", &hex[..63])).unwrap_err().contains("'z' at position 64"));
    }

    fn load(body: &str) -> Result<crate::config::Environment, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.yaml");
        std::fs::write(&path, format!("openbao: {{ dev_stack: x }}\n{body}")).unwrap();
        crate::config::load(&path).map_err(|e| e.to_string().replace(&path.display().to_string(), "e.yaml"))
    }

    #[test]
    fn loads_with_defaults() {
        let hex = "ab".repeat(32);
        let env = load(&format!("artifacts:\n  bucket: b-1\n  items:\n    - {{ name: caddy, version: \"2.8.4\", file: caddy, sha256: \"{hex}\" }}\n")).unwrap();
        let a = env.artifacts.unwrap();
        assert_eq!(a.prefix, "boot/");
        assert_eq!(a.key(&a.items[0]), "boot/caddy/2.8.4/caddy");
        assert_eq!(a.items[0].size, None);
        assert!(load("workspaces: []\n").unwrap().artifacts.is_none());
    }

    #[test]
    fn errors_are_located() {
        let hex = "ab".repeat(32);
        let dup = load(&format!(
            "artifacts:\n  bucket: b-1\n  items:\n    - {{ name: a, version: \"1\", file: a, sha256: \"{hex}\" }}\n    - {{ name: a, version: \"2\", file: a, sha256: \"{hex}\" }}\n"
        ))
        .unwrap_err();
        assert!(dup.starts_with("e.yaml:6:"), "{dup}");
        assert!(dup.contains("duplicate artifact name \"a\" (first declared at e.yaml:5)"), "{dup}");
        let short = load("artifacts:\n  bucket: b-1\n  items:\n    - name: a\n      version: \"1\"\n      file: a\n      sha256: \"abc\"\n").unwrap_err();
        assert!(short.starts_with("e.yaml:8:15: "), "{short}");
        assert!(short.contains("sha256 must be 64 hex characters (has 3)"), "{short}");
        let unknown = load("artifacts:\n  bucket: b-1\n  nope: 1\n").unwrap_err();
        assert!(unknown.starts_with("e.yaml:4:"), "{unknown}");
    }

    #[test]
    fn keys() {
        assert_eq!(object_key("boot/", "caddy", "2.8.4", "caddy"), "boot/caddy/2.8.4/caddy");
        assert_eq!(sidecar_key("boot/caddy/2.8.4/caddy"), "boot/caddy/2.8.4/caddy.sha256");
    }
}

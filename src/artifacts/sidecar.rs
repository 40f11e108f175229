//! The `.sha256` sidecar: exactly one line of `sha256sum` output, `<64 hex>  <name>\n` (two
//! spaces for text mode, or space + `*` for binary mode). Parsing is strict: anything else is
//! an error that says what is wrong, so a truncated upload, a concatenated file or a sidecar
//! of another file never passes for a valid one.

/// A parsed sidecar: the digest (lowercase hex) and the file name it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    /// 64 lowercase hex characters.
    pub sha256: String,
    /// The file name as written after the separator.
    pub name: String,
    /// Whether the separator was ` *` (binary mode).
    pub binary: bool,
}

/// What is wrong with a sidecar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidecarError {
    #[error("sidecar is empty; expected one line `<sha256>  <file name>`")]
    Empty,
    #[error("sidecar is not UTF-8 text")]
    NotUtf8,
    #[error("sidecar has {lines} lines; expected exactly one `<sha256>  <file name>` line")]
    Lines { lines: usize },
    #[error("sidecar line ends with a carriage return (CRLF); expected a Unix line ending")]
    CarriageReturn,
    #[error("sidecar digest is truncated: {len} hex characters, expected 64")]
    Truncated { len: usize },
    #[error("sidecar digest is overlong: {len} hex characters, expected 64")]
    Overlong { len: usize },
    #[error("sidecar digest has a non-hex character {found:?} at column {column}")]
    NonHex { column: usize, found: char },
    #[error("sidecar has no file name after the digest")]
    MissingName,
    #[error(
        "sidecar separator after the digest is {found:?}; expected two spaces or a space and '*' (sha256sum format)"
    )]
    Separator { found: String },
    #[error("sidecar names {sidecar}, artifact is {artifact}")]
    NameMismatch { sidecar: String, artifact: String },
}

/// The sidecar line for `sha256` (lowercase hex) and `name`, as `sha256sum` prints it.
pub fn format(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

/// Parse `bytes` as the sidecar of the file named `expected_name`.
pub fn parse(bytes: &[u8], expected_name: &str) -> Result<Sidecar, SidecarError> {
    if bytes.is_empty() {
        return Err(SidecarError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SidecarError::NotUtf8)?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.contains('\n') {
        return Err(SidecarError::Lines { lines: line.split('\n').count() });
    }
    if line.is_empty() {
        return Err(SidecarError::Empty);
    }
    if line.ends_with('\r') {
        return Err(SidecarError::CarriageReturn);
    }
    let digest_end = line.find([' ', '\t']).unwrap_or(line.len());
    let digest = &line[..digest_end];
    if let Some((i, found)) = digest.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let column = digest[..i].chars().count() + 1;
        return Err(SidecarError::NonHex { column, found });
    }
    match digest.len() {
        64 => {}
        len if len < 64 => return Err(SidecarError::Truncated { len }),
        len => return Err(SidecarError::Overlong { len }),
    }
    let rest = &line[digest_end..];
    if rest.is_empty() || rest == " " {
        return Err(SidecarError::MissingName);
    }
    let binary = match rest.get(..2) {
        Some("  ") => false,
        Some(" *") => true,
        _ => {
            let found: String = rest.chars().take(2).collect();
            return Err(SidecarError::Separator { found });
        }
    };
    let name = &rest[2..];
    if name.is_empty() {
        return Err(SidecarError::MissingName);
    }
    if name != expected_name {
        return Err(SidecarError::NameMismatch { sidecar: name.to_string(), artifact: expected_name.to_string() });
    }
    Ok(Sidecar { sha256: digest.to_ascii_lowercase(), name: name.to_string(), binary })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn ok(text: &str) -> Sidecar {
        parse(text.as_bytes(), "caddy").unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn err(text: &str) -> SidecarError {
        match parse(text.as_bytes(), "caddy") {
            Ok(s) => panic!("{text:?} parsed as {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_sha256sum_text_and_binary_mode() {
        let s = ok(&format!("{HEX}  caddy\n"));
        assert_eq!(s, Sidecar { sha256: HEX.into(), name: "caddy".into(), binary: false });
        assert!(ok(&format!("{HEX} *caddy\n")).binary);
        // No trailing newline is fine too.
        assert_eq!(ok(&format!("{HEX}  caddy")).sha256, HEX);
    }

    #[test]
    fn normalises_uppercase_hex() {
        assert_eq!(ok(&format!("{}  caddy\n", HEX.to_uppercase())).sha256, HEX);
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(ok(&format(HEX, "caddy")).sha256, HEX);
        assert_eq!(format(HEX, "caddy"), format!("{HEX}  caddy\n"));
    }

    #[test]
    fn empty() {
        assert_eq!(err(""), SidecarError::Empty);
        assert_eq!(err("\n"), SidecarError::Empty);
        assert!(err("").to_string().contains("empty"));
    }

    #[test]
    fn two_lines() {
        assert_eq!(err(&format!("{HEX}  caddy\n{HEX}  caddy\n")), SidecarError::Lines { lines: 2 });
        assert_eq!(err(&format!("{HEX}  caddy\n\n")), SidecarError::Lines { lines: 2 });
        assert!(err(&format!("{HEX}  caddy\nx")).to_string().contains("2 lines"));
    }

    #[test]
    fn crlf() {
        assert_eq!(err(&format!("{HEX}  caddy\r\n")), SidecarError::CarriageReturn);
    }

    #[test]
    fn truncated_and_overlong() {
        assert_eq!(err(&format!("{}  caddy\n", &HEX[..63])), SidecarError::Truncated { len: 63 });
        assert_eq!(err(&format!("{HEX}0  caddy\n")), SidecarError::Overlong { len: 65 });
        assert_eq!(err(&HEX[..40]), SidecarError::Truncated { len: 40 });
        assert!(err(&format!("{}  caddy\n", &HEX[..10])).to_string().contains("truncated: 10 hex characters"));
    }

    #[test]
    fn non_hex_column() {
        let mut bad = HEX.to_string();
        bad.replace_range(6..7, "g");
        assert_eq!(err(&format!("{bad}  caddy\n")), SidecarError::NonHex { column: 7, found: 'g' });
        assert!(err(&format!("{bad}  caddy\n")).to_string().contains("'g' at column 7"));
    }

    #[test]
    fn separator() {
        assert_eq!(err(&format!("{HEX} caddy\n")), SidecarError::Separator { found: " c".into() });
        assert_eq!(err(&format!("{HEX}\tcaddy\n")), SidecarError::Separator { found: "\tc".into() });
        assert_eq!(err(HEX), SidecarError::MissingName);
        assert_eq!(err(&format!("{HEX}  \n")), SidecarError::MissingName);
    }

    #[test]
    fn filename_mismatch() {
        let e = err(&format!("{HEX}  caddy-2.8.tar.gz\n"));
        assert_eq!(e.to_string(), "sidecar names caddy-2.8.tar.gz, artifact is caddy");
        // A path is another name, not the artifact.
        assert!(matches!(err(&format!("{HEX}  ./caddy\n")), SidecarError::NameMismatch { .. }));
        assert!(matches!(err(&format!("{HEX}  caddy \n")), SidecarError::NameMismatch { .. }));
    }

    #[test]
    fn not_utf8() {
        assert_eq!(parse(&[0xff, 0xfe], "caddy"), Err(SidecarError::NotUtf8));
    }
}

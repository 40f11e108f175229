//! Handlebars templates under `templates/`, rendered in strict mode (a missing variable is an
//! error, not an empty string) and without HTML escaping (the output is HCL, not HTML).

use handlebars::Handlebars;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read templates in {dir}: {source}")]
    Read { dir: PathBuf, source: std::io::Error },
    #[error("template {file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("no policy template {name:?} in {dir} (have: {have})")]
    Missing { name: String, dir: PathBuf, have: String },
    #[error("rendering policy template {name:?}: {message}")]
    Render { name: String, message: String },
}

/// What a policy template sees.
#[derive(Serialize)]
pub struct PolicyContext<'a> {
    pub workspace: &'a str,
    pub namespace: &'a str,
    pub kv_path: &'a str,
    pub environment: &'a str,
    pub vars: &'a BTreeMap<String, String>,
}

pub struct Templates {
    hb: Handlebars<'static>,
    dir: PathBuf,
}

pub fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb
}

impl Templates {
    /// Load every `policies/*.hbs` under `dir` (the project's `templates/`).
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut hb = engine();
        let policies = dir.join("policies");
        let entries = std::fs::read_dir(&policies)
            .map_err(|source| TemplateError::Read { dir: policies.clone(), source })?;
        for entry in entries {
            let path = entry.map_err(|source| TemplateError::Read { dir: policies.clone(), source })?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("hbs") {
                continue;
            }
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|source| TemplateError::Read { dir: path.clone(), source })?;
            hb.register_template_string(&format!("policies/{stem}"), text)
                .map_err(|e| TemplateError::Parse { file: path.clone(), message: e.to_string() })?;
        }
        Ok(Templates { hb, dir: dir.to_path_buf() })
    }

    /// The templates directory (`templates/`), e.g. for `userdata/<name>.hbs`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn render_policy(&self, name: &str, ctx: &PolicyContext<'_>) -> Result<String, TemplateError> {
        let key = format!("policies/{name}");
        if !self.hb.has_template(&key) {
            let mut have: Vec<&str> =
                self.hb.get_templates().keys().filter_map(|k| k.strip_prefix("policies/")).collect();
            have.sort();
            return Err(TemplateError::Missing {
                name: name.to_string(),
                dir: self.dir.join("policies"),
                have: have.join(", "),
            });
        }
        // Into a small buffer: `Handlebars::render` starts every output at 8 KiB, which for
        // 10,000 workspaces is most of `ctl validate`'s allocation and page-fault time.
        let mut out = Vec::with_capacity(512);
        let render_error = |e: handlebars::RenderError| TemplateError::Render { name: name.to_string(), message: e.to_string() };
        self.hb.render_to_write(&key, ctx, &mut out).map_err(render_error)?;
        String::from_utf8(out).map_err(|e| TemplateError::Render { name: name.to_string(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(body: &str) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("policies/p.hbs"), body).unwrap();
        let t = Templates::load(dir.path()).unwrap();
        (dir, t)
    }

    fn ctx<'a>(vars: &'a BTreeMap<String, String>) -> PolicyContext<'a> {
        PolicyContext { workspace: "acme", namespace: "acme", kv_path: "secret", environment: "local", vars }
    }

    #[test]
    fn renders_without_html_escaping() {
        let (_d, t) = templates(r#"path "{{kv_path}}/data/*" { capabilities = ["read"] }"#);
        let vars = BTreeMap::new();
        assert_eq!(
            t.render_policy("p", &ctx(&vars)).unwrap(),
            r#"path "secret/data/*" { capabilities = ["read"] }"#
        );
    }

    #[test]
    fn strict_mode_rejects_unknown_variables() {
        let (_d, t) = templates("{{nope}}");
        let vars = BTreeMap::new();
        assert!(matches!(t.render_policy("p", &ctx(&vars)), Err(TemplateError::Render { .. })));
    }

    #[test]
    fn missing_template_lists_the_available_ones() {
        let (_d, t) = templates("x");
        let vars = BTreeMap::new();
        let err = t.render_policy("q", &ctx(&vars)).unwrap_err().to_string();
        assert!(err.contains("have: p"), "{err}");
    }
}

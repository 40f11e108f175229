//! The `policy_lint:` section: which policy lint findings are accepted on purpose, and whether
//! any other one fails the plan (as `--deny-warnings` does).
//!
//! ```yaml
//! policy_lint:
//!   deny_warnings: true                      # CI: a finding fails plan, apply and validate
//!   allow:
//!     - { rule: sudo, workspace: ops }       # rule alone, or narrowed to a workspace
//!     - { rule: system-path, path: "auth/token/renew-self" }   # and/or to one exact path
//! ```
//! Rules: `sudo`, `system-path`, `child-namespaces`, `other-workspace`, `root-glob`
//! ([`crate::policy::LintRule`]).

use super::problems::Problems;
use super::names::WorkspaceName;
use super::PathSeg;
use crate::policy::LintRule;
use serde::Deserialize;

/// The loaded `policy_lint:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyLint {
    pub deny_warnings: bool,
    pub allow: Vec<LintAllow>,
}

/// A finding accepted on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintAllow {
    pub rule: LintRule,
    /// Only in this workspace (by name).
    pub workspace: Option<String>,
    /// Only on this exact policy path.
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyLint {
    #[serde(default)]
    pub deny_warnings: bool,
    #[serde(default)]
    pub allow: Vec<RawAllow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAllow {
    pub rule: LintRule,
    #[serde(default)]
    pub workspace: Option<WorkspaceName>,
    #[serde(default)]
    pub path: Option<String>,
}

/// An allowance naming a workspace must name a declared one.
pub(crate) fn validate(raw: &RawPolicyLint, workspaces: &[super::Workspace], problems: &mut Problems) -> PolicyLint {
    for (i, a) in raw.allow.iter().enumerate() {
        if let Some(w) = &a.workspace {
            if !workspaces.iter().any(|ws| ws.name == w.0) {
                problems.at(
                    0,
                    vec![PathSeg::key("policy_lint"), PathSeg::key("allow"), PathSeg::Index(i), PathSeg::key("workspace")],
                    format!("no workspace {:?} is declared", w.0),
                );
            }
        }
        if a.path.as_deref() == Some("") {
            problems.at(0, vec![PathSeg::key("policy_lint"), PathSeg::key("allow"), PathSeg::Index(i), PathSeg::key("path")], "path is empty");
        }
    }
    PolicyLint {
        deny_warnings: raw.deny_warnings,
        allow: raw.allow.iter().map(|a| LintAllow { rule: a.rule, workspace: a.workspace.as_ref().map(|w| w.0.clone()), path: a.path.clone() }).collect(),
    }
}

//! Plans rendered for people and machines: [`text`] for terminals, [`markdown`] for pull
//! request comments, JSON (the plan document itself, versioned) for tools.
//! Rendering only formats what the plan holds; no resource attribute is secret.
//! [`graph`] draws the declared resources and their dependencies (`ctl graph`).

pub mod alarms;
pub mod graph;
pub mod words;
pub mod openbao_config;

use crate::diff::{Action, Change, Op};
use crate::plan::Plan;
use serde_json::Value;
use std::fmt::Write;

/// GitHub rejects comments over 65,536 characters; stay clearly below.
pub const MARKDOWN_LIMIT: usize = 60_000;

#[derive(Clone, Copy)]
struct Palette {
    on: bool,
}

impl Palette {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn action(&self, a: Action, s: &str) -> String {
        let code = match a {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace => "35",
            Action::Delete => "31",
        };
        self.paint(code, s)
    }
}

/// One-line display of an attribute value; multi-line strings are summarised.
pub fn value(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) if s.contains('\n') => {
            let first = s.lines().find(|l| !l.starts_with('#')).unwrap_or("");
            format!("{:?}… ({} lines)", first, s.lines().count())
        }
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}

pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary;
    if s.total_changes() == 0 {
        return format!("No changes. {} resources up to date.", s.unchanged);
    }
    format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete; {} unchanged.",
        s.create, s.update, s.replace, s.delete, s.unchanged
    )
}

/// What a `--refresh changed` plan trusted instead of reading, in one line.
pub fn refresh_line(plan: &Plan) -> Option<String> {
    let r = plan.refresh.as_ref()?;
    if let Some(why) = &r.distrust {
        return Some(format!("Refresh: changed, but trusting nothing ({why}): every workspace was read."));
    }
    let ago = r
        .last_full_check
        .map(|at| format!("; last clean full drift check {} ago", crate::alarms::backtest::human_seconds(plan.created_at.saturating_sub(at) as i64)))
        .unwrap_or_default();
    Some(format!(
        "Refresh: changed. {} workspace(s) ({} resources) trusted as applied, not read: their recorded digest matches the files{ago}.",
        r.trusted.len(),
        r.trusted_resources
    ))
}

/// One row of the summary table: the changes of one workspace (`workspace.<name>`) or one
/// family of infrastructure (`network`, `instance`, `rds`, `aws.kms`, `alarms`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRow {
    pub group: String,
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
}

/// The group an address belongs to in the summary table.
pub fn group_of(address: &str) -> String {
    let mut parts = address.split('.');
    match (parts.next(), parts.next()) {
        (Some(first @ ("workspace" | "aws")), Some(second)) => format!("{first}.{second}"),
        (Some(first), _) => first.to_string(),
        _ => address.to_string(),
    }
}

/// Changes counted per group and action, groups sorted (implied deletes included).
pub fn groups(plan: &Plan) -> Vec<GroupRow> {
    let mut rows: std::collections::BTreeMap<String, GroupRow> = std::collections::BTreeMap::new();
    for c in &plan.changes {
        let group = group_of(c.address.as_str());
        let row = rows.entry(group.clone()).or_insert_with(|| GroupRow { group, ..GroupRow::default() });
        match c.action() {
            Action::Create => row.create += 1,
            Action::Update => row.update += 1,
            Action::Replace => row.replace += 1,
            Action::Delete => row.delete += 1,
        }
    }
    rows.into_values().collect()
}

fn destroy_note(c: &Change) -> Option<String> {
    c.destroys_data.then(|| format!("data loss: needs --allow-destroy={}", c.address))
}

/// The lines describing one change (without colour), shared by text and markdown.
fn change_lines(c: &Change, detail: bool) -> Vec<String> {
    let mut lines = vec![format!("{} {}  ({})", c.action().symbol(), c.address, words::reason(&c.reason))];
    let backtest = c.backtest.as_ref().map(|b| format!("      {}", b.line()));
    if !detail {
        lines.extend(c.capabilities.iter().map(|l| format!("      {l}")));
        lines.extend(backtest);
        return lines;
    }
    // A policy's text is summarised by what it grants differently (the text: --detail, --json).
    let grants = !c.capabilities.is_empty();
    match &c.op {
        Op::Update { fields, .. } | Op::Replace { fields, .. } => {
            for f in fields.iter().filter(|f| !(grants && f.field == "policy")) {
                let forced = if f.forces_replace { "  # forces replacement" } else { "" };
                lines.push(format!("      {}: {} → {}{forced}", f.field, value(&f.before), value(&f.after)));
            }
        }
        Op::Create { after } => {
            for (k, v) in &after.attrs {
                lines.push(format!("      {k}: {}", value(&Some(v.clone()))));
            }
        }
        Op::Recreate { .. } | Op::Delete { .. } => {}
    }
    lines.extend(c.capabilities.iter().map(|l| format!("      {l}")));
    lines.extend(backtest);
    lines
}

/// The markdown table of the plan's alarm backtests (empty when there is none).
fn backtest_table(plan: &Plan) -> String {
    use crate::alarms::backtest::{human_seconds, PlanBacktest};
    let mut out = String::new();
    let rows: Vec<(&Change, &PlanBacktest)> = plan.changes.iter().filter_map(|c| c.backtest.as_ref().map(|b| (c, b))).collect();
    let Some(days) = rows.iter().find_map(|(_, b)| match b {
        PlanBacktest::Done { days, .. } => Some(*days),
        PlanBacktest::Unavailable { .. } => None,
    }) else {
        for (c, b) in &rows {
            let _ = writeln!(out, "- `{}`: {}", c.address, b.line());
        }
        if !out.is_empty() {
            out.push('\n');
        }
        return out;
    };
    let _ = writeln!(out, "**Alarm backtests** (last {days} days of each metric: live rule → proposed)\n");
    let _ = writeln!(out, "| alarm | alarms | time in ALARM | flaps | chart |");
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for (c, b) in rows {
        match b {
            PlanBacktest::Done { current, proposed, chart, .. } => {
                let cur = current.unwrap_or(crate::alarms::backtest::Summary { alarms: 0, seconds_in_alarm: 0, flaps: 0 });
                let new = if current.is_none() { " (new)" } else { "" };
                let _ = writeln!(
                    out,
                    "| `{}`{new} | {} → {} | {} → {} | {} → {} | {} |",
                    c.address,
                    cur.alarms,
                    proposed.alarms,
                    human_seconds(cur.seconds_in_alarm),
                    human_seconds(proposed.seconds_in_alarm),
                    cur.flaps,
                    proposed.flaps,
                    chart.as_deref().map(|f| format!("`{f}`")).unwrap_or_default()
                );
            }
            PlanBacktest::Unavailable { why } => {
                let _ = writeln!(out, "| `{}` | no backtest: {} | | | |", c.address, why.replace('|', "\\|"));
            }
        }
    }
    out.push('\n');
    out
}

pub mod text {
    use super::*;

    /// The terminal rendering. `color` only on a TTY with `NO_COLOR` unset (the caller decides).
    /// A summary table per group comes first when more than one group changes; `detail` lists
    /// every attribute of created resources too (updates always show their field diffs).
    pub fn render(plan: &Plan, color: bool, detail: bool) -> String {
        let p = Palette { on: color };
        let mut out = String::new();
        let _ = writeln!(out, "Environment {}: {}", plan.environment, summary_line(plan));
        if let Some(line) = refresh_line(plan) {
            let _ = writeln!(out, "{line}");
        }
        let rows = groups(plan);
        if rows.len() > 1 {
            let width = rows.iter().map(|r| r.group.len()).max().unwrap_or(0).max(5);
            let _ = writeln!(out, "  {:<width$}  create  update  replace  delete", "group");
            for r in &rows {
                let n = |v: usize| if v == 0 { "-".to_string() } else { v.to_string() };
                let _ = writeln!(out, "  {:<width$}  {:>6}  {:>6}  {:>7}  {:>6}", r.group, n(r.create), n(r.update), n(r.replace), n(r.delete));
            }
        }
        for c in &plan.changes {
            if c.implied_by().is_some() {
                let _ = writeln!(out, "    {}", p.paint("2", &format!("- {} ({})", c.address, words::reason(&c.reason))));
                continue;
            }
            let mut lines = change_lines(c, detail || c.action() != Action::Create).into_iter();
            let head = lines.next().unwrap_or_default();
            let _ = write!(out, "  {}", p.action(c.action(), &head));
            if let Some(note) = destroy_note(c) {
                let _ = write!(out, "  {}", p.paint("1;31", &format!("⚠ {note}")));
            }
            out.push('\n');
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
        for conflict in &plan.conflicts {
            let _ = writeln!(out, "  {} {}: {}", p.paint("1;31", "!"), conflict.address, conflict.message);
        }
        if !plan.warnings.is_empty() {
            let _ = writeln!(out, "Policy warnings ({}; accept one on purpose in policy_lint.allow):", plan.warnings.len());
            for w in &plan.warnings {
                let _ = writeln!(out, "  {} {}: {} [{}]", p.paint("1;33", "!"), w.address, w.message, w.rule.as_str());
            }
        }
        if !plan.unmanaged.is_empty() {
            let _ = writeln!(out, "Not managed by ctl (reported, never touched): {}", plan.unmanaged.len());
            for u in plan.unmanaged.iter().take(20) {
                let _ = writeln!(out, "  · {:?} {}: {}", u.kind, u.path(), u.reason);
            }
            if plan.unmanaged.len() > 20 {
                let _ = writeln!(out, "  · … and {} more (see --json)", plan.unmanaged.len() - 20);
            }
        }
        if plan.has_changes() {
            if !detail && plan.changes.iter().any(|c| c.action() == Action::Create && c.implied_by().is_none()) {
                let _ = writeln!(out, "(created resources' attributes: --detail, or --json)");
            }
            let _ = writeln!(out, "{}", summary_line(plan));
        }
        out
    }
}

pub mod markdown {
    use super::*;

    /// A pull-request comment: summary table first, destructive changes at the top, details
    /// folded, never longer than `limit` characters (with a notice when truncated).
    pub fn render(plan: &Plan, limit: usize) -> String {
        let s = plan.summary;
        let mut head = String::new();
        let _ = writeln!(head, "### ctl plan: `{}`\n", plan.environment);
        let _ = writeln!(head, "{}\n", summary_line(plan));
        if let Some(line) = refresh_line(plan) {
            let _ = writeln!(head, "{line}\n");
        }
        let _ = writeln!(head, "| create | update | replace | delete | unchanged |");
        let _ = writeln!(head, "|---:|---:|---:|---:|---:|");
        let _ = writeln!(head, "| {} | {} | {} | {} | {} |\n", s.create, s.update, s.replace, s.delete, s.unchanged);
        let rows = groups(plan);
        if rows.len() > 1 {
            const MAX_ROWS: usize = 50;
            let _ = writeln!(head, "| group | create | update | replace | delete |");
            let _ = writeln!(head, "|---|---:|---:|---:|---:|");
            // Groups with destructive changes first, so a cut never hides them.
            let mut ordered = rows.clone();
            ordered.sort_by_key(|r| (r.delete + r.replace == 0, r.group.clone()));
            for r in ordered.iter().take(MAX_ROWS) {
                let _ = writeln!(head, "| `{}` | {} | {} | {} | {} |", r.group, r.create, r.update, r.replace, r.delete);
            }
            if rows.len() > MAX_ROWS {
                let _ = writeln!(head, "| … {} more groups | | | | |", rows.len() - MAX_ROWS);
            }
            head.push('\n');
        }

        let destructive: Vec<&Change> = plan.changes.iter().filter(|c| c.destroys_data).collect();
        if !destructive.is_empty() {
            let _ = writeln!(head, "**⚠ {} destructive change(s), data loss; apply needs an explicit flag:**\n", destructive.len());
            // Every one is listed while they fit in half the comment; the rest are counted.
            for (i, c) in destructive.iter().enumerate() {
                let line = format!("- `{}` {} — `--allow-destroy={}`\n", c.address, c.action().verb(), c.address);
                if head.len() + line.len() > limit / 2 {
                    let _ = writeln!(head, "- … and {} more destructive change(s): `ctl plan --json` lists them all", destructive.len() - i);
                    break;
                }
                head.push_str(&line);
            }
            head.push('\n');
        }
        if !plan.warnings.is_empty() {
            const MAX_WARNINGS: usize = 50;
            let _ = writeln!(head, "**⚠ {} policy warning(s):**\n", plan.warnings.len());
            for w in plan.warnings.iter().take(MAX_WARNINGS) {
                let _ = writeln!(head, "- `{}`: {} (`{}`)", w.address, w.message, w.rule.as_str());
            }
            if plan.warnings.len() > MAX_WARNINGS {
                let _ = writeln!(head, "- … and {} more (`ctl plan --json`)", plan.warnings.len() - MAX_WARNINGS);
            }
            head.push('\n');
        }
        if !plan.conflicts.is_empty() {
            let _ = writeln!(head, "**{} conflict(s): apply will refuse.**\n", plan.conflicts.len());
            for c in &plan.conflicts {
                let _ = writeln!(head, "- `{}`: {}", c.address, c.message);
            }
            head.push('\n');
        }

        head.push_str(&backtest_table(plan));

        let tail = format!(
            "\n<sub>ctl {} · plan {} · desired state {}</sub>\n",
            plan.ctl_version,
            plan.fingerprint.short(),
            &plan.desired_digest[..plan.desired_digest.len().min(12)]
        );
        if !plan.has_changes() {
            return head + &tail;
        }

        // Destructive first, then by address.
        let mut ordered: Vec<&Change> = plan.changes.iter().filter(|c| c.implied_by().is_none()).collect();
        ordered.sort_by_key(|c| (!c.destroys_data, !matches!(c.action(), Action::Delete | Action::Replace), c.address.clone()));

        let open = format!("<details><summary>Details ({} changes)</summary>\n\n```diff\n", ordered.len());
        let close = "```\n\n</details>\n";
        let notice_room = 200;
        let budget = limit.saturating_sub(head.len() + open.len() + close.len() + tail.len() + notice_room);
        let mut body = String::new();
        let mut shown = 0;
        for c in &ordered {
            let block: String = change_lines(c, true).iter().map(|l| format!("{l}\n")).collect();
            if body.len() + block.len() > budget {
                break;
            }
            body.push_str(&block);
            shown += 1;
        }
        let mut out = head + &open + &body + close;
        if shown < ordered.len() {
            let _ = writeln!(
                out,
                "\n> **Truncated:** {} of {} changes shown (comment size limit). Run `ctl plan -e {}` or read the JSON plan artifact for the rest.",
                shown,
                ordered.len(),
                plan.environment
            );
        }
        out + &tail
    }
}

#[cfg(test)]
mod golden_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::diff;
    use crate::model::{Address, Kind, Observed, Resource, Scope};
    use serde_json::json;

    fn res(ws: &str, kind: Kind, suffix: &str, attrs: Value) -> Resource {
        Resource {
            address: Address::workspace(ws, &[suffix]),
            kind,
            scope: Scope::Root,
            name: ws.into(),
            attrs: attrs.as_object().unwrap().clone(),
            depends_on: vec![],
            container: None,
        }
    }

    fn plan(desired: &[Resource], live: &[Resource]) -> Plan {
        let observed = Observed { resources: live.to_vec(), unmanaged: vec![] };
        Plan::new("test", "0123456789abcdef", diff(desired, live, &[]), &observed)
    }

    #[test]
    fn text_shows_field_level_change_and_no_colour_when_off() {
        let live = [res("a", Kind::KvMount, "kv", json!({"max_versions": 3}))];
        let want = [res("a", Kind::KvMount, "kv", json!({"max_versions": 10}))];
        let out = text::render(&plan(&want, &live), false, false);
        assert!(out.contains("~ workspace.a.kv"), "{out}");
        assert!(out.contains("max_versions: 3 → 10"), "{out}");
        assert!(!out.contains('\x1b'));
        assert!(text::render(&plan(&want, &live), true, false).contains("\x1b[33m"));
    }

    #[test]
    fn markdown_puts_destructive_first_and_caps_size() {
        let mut live = vec![res("zzz", Kind::Namespace, "namespace", json!({"path": "zzz"}))];
        let mut want = Vec::new();
        for i in 0..2000 {
            want.push(res(&format!("w{i:04}"), Kind::Policy, "policy", json!({"policy": "x".repeat(40)})));
        }
        live.push(res("aaa", Kind::Policy, "policy", json!({"policy": "old"})));
        let md = markdown::render(&plan(&want, &live), 10_000);
        assert!(md.len() <= 10_000, "{}", md.len());
        assert!(md.contains("Truncated"));
        let first_detail = md.split("```diff\n").nth(1).unwrap().lines().next().unwrap();
        assert!(first_detail.starts_with("- workspace.zzz.namespace"), "{first_detail}");
        assert!(md.find("| create |").unwrap() < md.find("<details>").unwrap());
    }

    #[test]
    fn a_ten_thousand_workspace_comment_fits_and_keeps_every_destructive_change() {
        let mut live = Vec::new();
        let mut want = Vec::new();
        for i in 0..10_000 {
            want.push(res(&format!("w{i:05}"), Kind::Namespace, "namespace", json!({"path": format!("w{i:05}")})));
            want.push(res(&format!("w{i:05}"), Kind::KvMount, "kv", json!({"path": "secret"})));
            want.push(res(&format!("w{i:05}"), Kind::Policy, "policy", json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"})));
        }
        for i in 0..40 {
            live.push(res(&format!("gone{i:02}"), Kind::KvMount, "kv", json!({"path": "secret"})));
        }
        let p = plan(&want, &live);
        let destructive: Vec<&Change> = p.changes.iter().filter(|c| c.destroys_data).collect();
        assert_eq!(destructive.len(), 40);
        let md = markdown::render(&p, MARKDOWN_LIMIT);
        assert!(md.len() <= MARKDOWN_LIMIT && md.len() < 65_536, "{}", md.len());
        for c in destructive {
            assert!(md.contains(&format!("`{}` delete", c.address)), "{} missing", c.address);
        }
        assert!(md.contains("Truncated"));
        // Even when everything is destructive, the comment stays under the limit.
        let everything: Vec<Resource> = (0..10_000).map(|i| res(&format!("w{i:05}"), Kind::KvMount, "kv", json!({"path": "secret"}))).collect();
        let md = markdown::render(&plan(&[], &everything), MARKDOWN_LIMIT);
        assert!(md.len() <= MARKDOWN_LIMIT, "{}", md.len());
        assert!(md.contains("more destructive change(s): `ctl plan --json` lists them all"), "{}", &md[..500]);
    }

    #[test]
    fn no_changes_message() {
        let r = [res("a", Kind::Policy, "policy", json!({"policy": "p"}))];
        let out = text::render(&plan(&r, &r), false, false);
        assert!(out.contains("No changes."), "{out}");
    }

    #[test]
    fn a_summary_table_per_group_comes_first_and_creates_are_one_line_without_detail() {
        let live = [res("b", Kind::KvMount, "kv", json!({"max_versions": 3}))];
        let want = [
            res("a", Kind::Policy, "policy", json!({"policy": "p"})),
            res("a", Kind::KvMount, "kv", json!({"max_versions": 5})),
        ];
        let p = plan(&want, &live);
        let rows = groups(&p);
        assert_eq!(rows.iter().map(|r| (r.group.as_str(), r.create, r.delete)).collect::<Vec<_>>(), [("workspace.a", 2, 0), ("workspace.b", 0, 1)]);
        assert_eq!(group_of("network.subnet.private-a"), "network");
        assert_eq!(group_of("aws.kms.unseal.alias"), "aws.kms");
        let out = text::render(&p, false, false);
        let table = out.find("  group ").expect("table");
        assert!(out.lines().nth(1).unwrap().ends_with("create  update  replace  delete"), "{out}");
        assert!(table < out.find("+ workspace.a.kv").unwrap(), "{out}");
        assert!(!out.contains("max_versions: 5"), "{out}");
        assert!(text::render(&p, false, true).contains("max_versions: 5"));
        let md = markdown::render(&p, 10_000);
        assert!(md.contains("| `workspace.b` | 0 | 0 | 0 | 1 |"), "{md}");
        assert!(md.find("| `workspace.b`").unwrap() < md.find("| `workspace.a`").unwrap(), "destructive groups first: {md}");
    }
}

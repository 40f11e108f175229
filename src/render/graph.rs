//! `ctl graph`: the declared resources and their `depends_on` edges as a picture, grouped by
//! workspace, VPC and subnet, coloured by a saved plan's actions.
//!
//! [`Graph::new`] only arranges what it is given: each resource goes into a group (its
//! workspace by address; its VPC and subnet by the references in its attributes, which name
//! other resources by address: `subnet`, `vpc`, `attached_to`, `subnets`, `subnet_group`), and
//! each address takes the action the plan gives it. A planned delete is of something no longer
//! declared, so it is drawn from the plan's `before` (dashed, red). Arrows point from a
//! resource to what depends on it: creation order, left to right.
//!
//! - [`dot`]: Graphviz text, a `cluster_` subgraph per group; node ids are the addresses,
//!   labels are shortened within their workspace.
//! - [`mermaid`]: `flowchart LR`, a `subgraph` per group, a `classDef` per action (GitHub
//!   renders it in PR comments; it shows no tooltips there, so labels are full addresses).
//! - [`svg`]: laid out here, no Graphviz needed. Each group is a horizontal lane (nested
//!   lanes for a VPC's subnets); a resource's column is the length of the longest dependency
//!   chain below it, so every edge runs left to right. The full address is each node's
//!   `<title>` (the hover text). `layout-rs`, the pure-Rust Sugiyama crate, was evaluated
//!   for this: it has no clusters (its DOT reader flattens subgraphs), so a group could only
//!   be a box drawn around nodes it scatters, overlapping other groups; keeping each group
//!   together is the point of the picture.

use crate::diff::Action;
use crate::model::{Address, Kind, Resource};
use crate::plan::Plan;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// What the drawing is made of: nodes (sorted by address), groups and edges.
#[derive(Debug)]
pub struct Graph {
    nodes: Vec<Node>,
    groups: Vec<Group>,
    /// `(dependency, dependent)` node indices, sorted.
    edges: Vec<(usize, usize)>,
    /// A plan was given: draw the legend.
    planned: bool,
}

#[derive(Debug)]
struct Node {
    address: Address,
    kind: Kind,
    action: Option<Action>,
    group: Option<usize>,
}

#[derive(Debug)]
struct Group {
    kind: GroupKind,
    title: String,
    parent: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GroupKind {
    Workspace,
    Vpc,
    Subnet,
}

/// Where a resource belongs, before groups are numbered.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Place {
    Workspace(String),
    Vpc(String),
    Subnet { vpc: String, subnet: String },
}

impl Place {
    /// The VPC a place is in (a resource referring to a subnet group spans its subnets).
    fn vpc(&self) -> Option<Place> {
        match self {
            Place::Workspace(_) => None,
            Place::Vpc(v) | Place::Subnet { vpc: v, .. } => Some(Place::Vpc(v.clone())),
        }
    }
}

fn str_attr<'a>(r: &'a Resource, key: &str) -> Option<&'a str> {
    r.attr(key).and_then(Value::as_str)
}

fn first_of<'a>(r: &'a Resource, key: &str) -> Option<&'a str> {
    r.attr(key).and_then(Value::as_array).and_then(|a| a.iter().find_map(Value::as_str))
}

/// The kind as the plan document spells it (`kv_mount`).
fn kind_name(kind: Kind) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => s,
        _ => format!("{kind:?}"),
    }
}

impl Graph {
    /// The declared resources, and with a plan each address's action plus its deletes.
    pub fn new(desired: &[Resource], plan: Option<&Plan>) -> Graph {
        let actions: BTreeMap<&Address, Action> =
            plan.map(|p| p.changes.iter().map(|c| (&c.address, c.action())).collect()).unwrap_or_default();
        let declared: BTreeSet<&Address> = desired.iter().map(|r| &r.address).collect();
        let mut resources: Vec<&Resource> = desired.iter().collect();
        for c in plan.map(|p| p.changes.as_slice()).unwrap_or_default() {
            if c.action() == Action::Delete && !declared.contains(&c.address) {
                resources.push(c.resource());
            }
        }
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        resources.dedup_by(|a, b| a.address == b.address);

        let places = places(&resources);
        let mut groups: Vec<Group> = Vec::new();
        let mut numbered: BTreeMap<Place, usize> = BTreeMap::new();
        let by_address: BTreeMap<&str, &Resource> = resources.iter().map(|r| (r.address.as_str(), *r)).collect();
        let nodes: Vec<Node> = resources
            .iter()
            .zip(&places)
            .map(|(r, place)| Node {
                address: r.address.clone(),
                kind: r.kind,
                action: actions.get(&r.address).copied(),
                group: place.as_ref().map(|p| number(p, &mut groups, &mut numbered, &by_address)),
            })
            .collect();

        let index: BTreeMap<&Address, usize> = nodes.iter().enumerate().map(|(i, n)| (&n.address, i)).collect();
        let mut edges: Vec<(usize, usize)> = resources
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.depends_on.iter().filter_map(|d| index.get(d)).map(move |&d| (d, i)))
            .filter(|(d, i)| d != i)
            .collect();
        edges.sort_unstable();
        edges.dedup();
        Graph { nodes, groups, edges, planned: plan.is_some() }
    }

    /// Nodes in no group.
    fn loose(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].group.is_none())
    }

    fn members(&self, group: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| self.nodes[i].group == Some(group))
    }

    fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        (0..self.groups.len()).filter(move |&g| self.groups[g].parent == parent)
    }

    /// The node's label inside its group (the workspace prefix is the group's title).
    fn short_label(&self, i: usize) -> &str {
        let address = self.nodes[i].address.as_str();
        match self.nodes[i].address.workspace_name() {
            Some(ws) => address.strip_prefix(&format!("workspace.{ws}.")).unwrap_or(address),
            None => address,
        }
    }

    /// The second line: the kind, and the planned action if any.
    fn detail(&self, i: usize) -> String {
        let n = &self.nodes[i];
        match n.action {
            Some(a) => format!("{} ({})", kind_name(n.kind), a.verb()),
            None => kind_name(n.kind),
        }
    }
}

/// The group of `place`, numbered on first use (a subnet's VPC first).
fn number(
    place: &Place,
    groups: &mut Vec<Group>,
    numbered: &mut BTreeMap<Place, usize>,
    by_address: &BTreeMap<&str, &Resource>,
) -> usize {
    if let Some(&i) = numbered.get(place) {
        return i;
    }
    let parent = match place {
        Place::Subnet { vpc, .. } => Some(number(&Place::Vpc(vpc.clone()), groups, numbered, by_address)),
        _ => None,
    };
    let (kind, title) = match place {
        Place::Workspace(name) => (GroupKind::Workspace, format!("workspace {name}")),
        Place::Vpc(vpc) => (GroupKind::Vpc, titled("VPC", vpc, by_address.get(vpc.as_str()), &["cidr"])),
        Place::Subnet { subnet, .. } => {
            let r = by_address.get(subnet.as_str());
            let name = r.map_or(subnet.as_str(), |r| r.name.as_str());
            (GroupKind::Subnet, titled("subnet", name, r, &["cidr", "az"]))
        }
    };
    groups.push(Group { kind, title, parent });
    numbered.insert(place.clone(), groups.len() - 1);
    groups.len() - 1
}

/// A group title: what it is, its name, and the named attributes of its resource if declared.
fn titled(what: &str, name: &str, r: Option<&&Resource>, keys: &[&str]) -> String {
    let extra: Vec<&str> = r.map(|r| keys.iter().filter_map(|k| str_attr(r, k)).collect()).unwrap_or_default();
    if extra.is_empty() {
        format!("{what} {name}")
    } else {
        format!("{what} {name} ({})", extra.join(", "))
    }
}

/// Each resource's group: its workspace by address, else its VPC and subnet by reference.
fn places(resources: &[&Resource]) -> Vec<Option<Place>> {
    let subnet_vpc: BTreeMap<&str, &str> = resources
        .iter()
        .filter(|r| r.kind == Kind::Subnet)
        .filter_map(|r| Some((r.address.as_str(), str_attr(r, "vpc")?)))
        .collect();
    let subnet = |s: &str| subnet_vpc.get(s).map(|v| Place::Subnet { vpc: v.to_string(), subnet: s.to_string() });
    let direct: Vec<Option<Place>> = resources
        .iter()
        .map(|r| {
            if let Some(ws) = r.address.workspace_name() {
                return Some(Place::Workspace(ws.to_string()));
            }
            match r.kind {
                Kind::Vpc => return Some(Place::Vpc(r.address.to_string())),
                Kind::Subnet => return subnet(r.address.as_str()).or_else(|| str_attr(r, "vpc").map(|v| Place::Vpc(v.into()))),
                _ => {}
            }
            str_attr(r, "subnet")
                .and_then(subnet)
                .or_else(|| str_attr(r, "vpc").or_else(|| first_of(r, "attached_to")).map(|v| Place::Vpc(v.into())))
                .or_else(|| first_of(r, "subnets").and_then(subnet).and_then(|p| p.vpc()))
        })
        .collect();
    // A reference to something already placed (an RDS instance's subnet group): its VPC.
    let placed: BTreeMap<&str, &Place> = resources
        .iter()
        .zip(&direct)
        .filter_map(|(r, p)| Some((r.address.as_str(), p.as_ref()?)))
        .collect();
    resources
        .iter()
        .zip(&direct)
        .map(|(r, p)| p.clone().or_else(|| str_attr(r, "subnet_group").and_then(|g| placed.get(g)).and_then(|p| p.vpc())))
        .collect()
}

/// Stroke, fill and whether the outline is dashed, per planned action.
fn look(action: Option<Action>) -> (&'static str, &'static str, bool) {
    match action {
        None => ("#57606a", "#ffffff", false),
        Some(Action::Create) => ("#1a7f37", "#dafbe1", false),
        Some(Action::Update) => ("#9a6700", "#fff8c5", false),
        Some(Action::Replace) => ("#8250df", "#fbefff", false),
        Some(Action::Delete) => ("#cf222e", "#ffebe9", true),
    }
}

fn group_look(kind: GroupKind) -> (&'static str, &'static str) {
    match kind {
        GroupKind::Workspace => ("#8c959f", "#f6f8fa"),
        GroupKind::Vpc => ("#0969da", "#f0f6ff"),
        GroupKind::Subnet => ("#54aeff", "#ffffff"),
    }
}

const ACTIONS: [Action; 4] = [Action::Create, Action::Update, Action::Replace, Action::Delete];

// ---------------------------------------------------------------------------------------------
// DOT

/// A DOT double-quoted string's content.
fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Graphviz text: `dot -Tsvg`, `-Tpng`… with clusters per group.
pub fn dot(g: &Graph) -> String {
    let mut out = String::from("digraph ctl {\n  rankdir=LR;\n");
    out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\", fontsize=10];\n");
    out.push_str("  edge [color=\"#8c959f\"];\n");
    fn group(g: &Graph, parent: Option<usize>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth + 1);
        let nodes: Vec<usize> = match parent {
            Some(p) => g.members(p).collect(),
            None => g.loose().collect(),
        };
        for i in nodes {
            let n = &g.nodes[i];
            let (stroke, fill, dashed) = look(n.action);
            let style = if dashed { "rounded,filled,dashed" } else { "rounded,filled" };
            let class = n.action.map(|a| format!(", class=\"{}\"", a.verb())).unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad}\"{id}\" [label=\"{label}\\n{detail}\", tooltip=\"{id}\", color=\"{stroke}\", fillcolor=\"{fill}\", style=\"{style}\"{class}];",
                id = dot_escape(n.address.as_str()),
                label = dot_escape(g.short_label(i)),
                detail = dot_escape(&g.detail(i)),
            );
        }
        for c in g.children(parent) {
            let (stroke, fill) = group_look(g.groups[c].kind);
            let _ = writeln!(out, "{pad}subgraph \"cluster_{c}\" {{");
            let _ = writeln!(
                out,
                "{pad}  label=\"{}\"; style=\"rounded,filled\"; color=\"{stroke}\"; fillcolor=\"{fill}\"; fontname=\"monospace\";",
                dot_escape(&g.groups[c].title)
            );
            group(g, Some(c), depth + 1, out);
            let _ = writeln!(out, "{pad}}}");
        }
    }
    group(g, None, 0, &mut out);
    for &(from, to) in &g.edges {
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\";",
            dot_escape(g.nodes[from].address.as_str()),
            dot_escape(g.nodes[to].address.as_str())
        );
    }
    out.push_str("}\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Mermaid

/// Text inside a Mermaid `"…"` label: entity codes for what Mermaid or HTML would read.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '\n' => out.push_str("<br/>"),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid `flowchart LR` (renders in GitHub comments and markdown files). Node ids are
/// `n<index>`, labels the full address and the kind. Mermaid draws at most 500 edges by default.
pub fn mermaid(g: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    fn group(g: &Graph, parent: Option<usize>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth + 1);
        let nodes: Vec<usize> = match parent {
            Some(p) => g.members(p).collect(),
            None => g.loose().collect(),
        };
        for i in nodes {
            let label = format!("{}\n{}", g.nodes[i].address, g.detail(i));
            let _ = writeln!(out, "{pad}n{i}[\"{}\"]", mermaid_escape(&label));
        }
        for c in g.children(parent) {
            let _ = writeln!(out, "{pad}subgraph g{c}[\"{}\"]", mermaid_escape(&g.groups[c].title));
            group(g, Some(c), depth + 1, out);
            let _ = writeln!(out, "{pad}end");
        }
    }
    group(g, None, 0, &mut out);
    for &(from, to) in &g.edges {
        let _ = writeln!(out, "  n{from} --> n{to}");
    }
    for action in ACTIONS {
        let members: Vec<String> =
            (0..g.nodes.len()).filter(|&i| g.nodes[i].action == Some(action)).map(|i| format!("n{i}")).collect();
        if members.is_empty() {
            continue;
        }
        let (stroke, fill, dashed) = look(Some(action));
        let dash = if dashed { ",stroke-dasharray:5 3" } else { "" };
        let _ = writeln!(out, "  classDef {} fill:{fill},stroke:{stroke},color:#1f2328{dash}", action.verb());
        let _ = writeln!(out, "  class {} {}", members.join(","), action.verb());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SVG

/// Text or an attribute value in XML.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

const MARGIN: f64 = 16.0;
/// How far a nested group's box sits inside its parent's.
const INSET: f64 = 12.0;
const HEADER: f64 = 24.0;
const NODE_H: f64 = 36.0;
const ROW_GAP: f64 = 10.0;
const COL_GAP: f64 = 56.0;
const GROUP_GAP: f64 = 12.0;
const LEGEND_H: f64 = 28.0;
/// Character widths of the monospace label (12px) and detail (10px) lines.
const LABEL_CHAR: f64 = 7.3;
const DETAIL_CHAR: f64 = 6.1;
const NODE_PAD: f64 = 10.0;

/// Column of each node: the longest chain of dependencies below it (a cycle, which
/// validation never lets through, is cut where it closes).
fn ranks(g: &Graph) -> Vec<usize> {
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); g.nodes.len()];
    for &(from, to) in &g.edges {
        deps[to].push(from);
    }
    fn visit(i: usize, deps: &[Vec<usize>], rank: &mut [Option<usize>], open: &mut [bool]) -> usize {
        if let Some(r) = rank[i] {
            return r;
        }
        open[i] = true;
        let mut r = 0;
        for &d in &deps[i] {
            if !open[d] {
                r = r.max(visit(d, deps, rank, open) + 1);
            }
        }
        open[i] = false;
        rank[i] = Some(r);
        r
    }
    let mut rank = vec![None; g.nodes.len()];
    let mut open = vec![false; g.nodes.len()];
    (0..g.nodes.len()).map(|i| visit(i, &deps, &mut rank, &mut open)).collect()
}

struct Lanes<'a> {
    g: &'a Graph,
    rank: Vec<usize>,
    /// Top of each node.
    y: Vec<f64>,
    /// `(group, depth, top, bottom)` of each group's box.
    boxes: Vec<(usize, usize, f64, f64)>,
}

impl Lanes<'_> {
    /// Lay out `nodes` of one lane from `top`: same-column nodes stack; returns the bottom.
    fn lane(&mut self, nodes: &[usize], top: f64) -> f64 {
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in nodes {
            let row = rows.entry(self.rank[i]).or_default();
            self.y[i] = top + *row as f64 * (NODE_H + ROW_GAP);
            *row += 1;
        }
        let height = rows.values().max().copied().unwrap_or(0) as f64;
        top + height * (NODE_H + ROW_GAP)
    }

    /// One group (or the top level): a header, its own nodes, then its child groups.
    fn group(&mut self, group: Option<usize>, depth: usize, mut top: f64) -> f64 {
        let start = top;
        if group.is_some() {
            top += HEADER;
        }
        let own: Vec<usize> = match group {
            Some(gr) => self.g.members(gr).collect(),
            None => self.g.loose().collect(),
        };
        top = self.lane(&own, top);
        let children: Vec<usize> = self.g.children(group).collect();
        for c in children {
            top = self.group(Some(c), depth + 1, top) + GROUP_GAP;
        }
        // The last row's or child's trailing gap is the box's bottom padding.
        if let Some(gr) = group {
            self.boxes.push((gr, depth, start, top));
        }
        top
    }
}

fn depth_of(g: &Graph, mut group: usize) -> usize {
    let mut depth = 1;
    while let Some(p) = g.groups[group].parent {
        depth += 1;
        group = p;
    }
    depth
}

/// A self-contained SVG (no scripts, no external fonts): lanes per group, columns by
/// dependency depth, the full address as each node's `<title>`.
pub fn svg(g: &Graph) -> String {
    let rank = ranks(g);
    let label_w = |i: usize| {
        let label = g.short_label(i).chars().count() as f64 * LABEL_CHAR;
        let detail = g.detail(i).chars().count() as f64 * DETAIL_CHAR;
        label.max(detail) + 2.0 * NODE_PAD
    };
    let columns = rank.iter().max().map_or(0, |r| r + 1);
    let mut col_w = vec![0.0f64; columns];
    for i in 0..g.nodes.len() {
        col_w[rank[i]] = col_w[rank[i]].max(label_w(i));
    }
    let levels = (0..g.groups.len()).map(|gr| depth_of(g, gr)).max().unwrap_or(0) as f64;
    let left = MARGIN + levels * INSET + NODE_PAD;
    let mut col_x = Vec::with_capacity(columns);
    let mut x = left;
    for w in &col_w {
        col_x.push(x);
        x += w + COL_GAP;
    }
    let title_w = g
        .groups
        .iter()
        .enumerate()
        .map(|(i, gr)| MARGIN + depth_of(g, i) as f64 * INSET + gr.title.chars().count() as f64 * LABEL_CHAR + MARGIN)
        .fold(0.0, f64::max);
    let legend_w = if g.planned { MARGIN + 5.0 * 96.0 } else { 0.0 };
    let width = (x - COL_GAP + NODE_PAD + levels * INSET + MARGIN).max(title_w).max(legend_w).max(200.0);

    let top = MARGIN + if g.planned { LEGEND_H } else { 0.0 };
    let mut lanes = Lanes { g, rank, y: vec![0.0; g.nodes.len()], boxes: Vec::new() };
    let bottom = lanes.group(None, 0, top);
    let height = (bottom + MARGIN).max(top + MARGIN + 20.0);
    let pos = |i: usize| (col_x[lanes.rank[i]], lanes.y[i], col_w[lanes.rank[i]]);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace">"#
    );
    out.push_str(concat!(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">",
        "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#8c959f\"/></marker></defs>\n"
    ));
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    if g.nodes.is_empty() {
        let _ = writeln!(out, r##"<text x="{MARGIN}" y="{:.1}" font-size="12" fill="#57606a">no resources declared</text>"##, top + 14.0);
    }
    if g.planned {
        let mut lx = MARGIN;
        for a in [None, Some(Action::Create), Some(Action::Update), Some(Action::Replace), Some(Action::Delete)] {
            let (stroke, fill, dashed) = look(a);
            let dash = if dashed { r#" stroke-dasharray="5 3""# } else { "" };
            let name = a.map_or("unchanged", |a| a.verb());
            let _ = writeln!(
                out,
                r##"<g class="legend {name}"><rect x="{lx:.1}" y="{MARGIN:.1}" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"{dash}/><text x="{:.1}" y="{:.1}" font-size="11" fill="#1f2328">{name}</text></g>"##,
                lx + 20.0,
                MARGIN + 11.0
            );
            lx += 96.0;
        }
    }
    // Boxes, outermost first (children were pushed before their parents); their titles go
    // over the edges, the nodes over both.
    let group_box = |&(gr, depth, _, _): &(usize, usize, f64, f64)| {
        let (stroke, fill) = group_look(g.groups[gr].kind);
        let x0 = MARGIN + depth as f64 * INSET - INSET;
        (x0, stroke, fill)
    };
    for b in lanes.boxes.iter().rev() {
        let ((x0, stroke, fill), (_, _, y0, y1)) = (group_box(b), *b);
        let _ = writeln!(
            out,
            r#"<rect class="group" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" rx="6" fill="{fill}" stroke="{stroke}"/>"#,
            width - 2.0 * x0,
            y1 - y0
        );
    }
    for &(from, to) in &g.edges {
        let (fx, fy, fw) = pos(from);
        let (tx, ty, _) = pos(to);
        let (x1, y1, x2, y2) = (fx + fw, fy + NODE_H / 2.0, tx, ty + NODE_H / 2.0);
        let bend = ((x2 - x1) / 2.0).max(20.0);
        let _ = writeln!(
            out,
            r##"<path class="edge" d="M {x1:.1} {y1:.1} C {:.1} {y1:.1}, {:.1} {y2:.1}, {x2:.1} {y2:.1}" fill="none" stroke="#8c959f" stroke-width="1.2" marker-end="url(#arrow)"><title>{} → {}</title></path>"##,
            x1 + bend,
            x2 - bend,
            xml_escape(g.nodes[from].address.as_str()),
            xml_escape(g.nodes[to].address.as_str())
        );
    }
    for b in lanes.boxes.iter().rev() {
        let ((x0, stroke, _), (gr, _, y0, _)) = (group_box(b), *b);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" font-weight="bold" fill="{stroke}">{}</text>"#,
            x0 + 8.0,
            y0 + 16.0,
            xml_escape(&g.groups[gr].title)
        );
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let (x, y, w) = pos(i);
        let (stroke, fill, dashed) = look(n.action);
        let dash = if dashed { r#" stroke-dasharray="5 3""# } else { "" };
        let class = n.action.map_or("node".to_string(), |a| format!("node {}", a.verb()));
        let _ = writeln!(
            out,
            r##"<g class="{class}"><title>{}</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{NODE_H}" rx="5" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/><text x="{:.1}" y="{:.1}" font-size="12" fill="#1f2328">{}</text><text x="{:.1}" y="{:.1}" font-size="10" fill="#57606a">{}</text></g>"##,
            xml_escape(n.address.as_str()),
            x + NODE_PAD,
            y + 15.0,
            xml_escape(g.short_label(i)),
            x + NODE_PAD,
            y + 29.0,
            xml_escape(&g.detail(i))
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;

//! Tests of [`super`], kept apart so the module itself stays readable.
//! (Indented as they were inside `mod tests`, so multi-line literals are unchanged.)

    use super::*;
    use crate::diff::diff;
    use crate::model::{Observed, Scope};
    use serde_json::json;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn expand(env_file: &Path) -> Vec<Resource> {
        let env = crate::config::load(env_file).unwrap_or_else(|e| panic!("{e}"));
        let templates = crate::templates::Templates::load(&repo().join("templates")).expect("templates");
        crate::desired::expand(&env, &templates).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The example environment: workspaces only.
    fn local() -> Vec<Resource> {
        expand(&repo().join("environments/local.yaml"))
    }

    /// A network with public and private subnets, NAT, S3 endpoint, instances and RDS (the
    /// example of `config/network.rs`).
    fn infra() -> Vec<Resource> {
        let key = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let text = format!(
            "openbao: {{ address: http://127.0.0.1:1, token_env: T }}
network:
  vpc_cidr: 10.20.0.0/16
  public_subnets:
    - {{ name: public-a, cidr: 10.20.0.0/24, az: us-east-1a }}
  private_subnets:
    - {{ name: private-a, cidr: 10.20.10.0/24, az: us-east-1a }}
    - {{ name: private-b, cidr: 10.20.11.0/24, az: us-east-1b }}
  nat: {{ instance_type: t3.micro, ami: ami-1e749f67, subnet: public-a }}
  s3_endpoint: true
  security_groups:
    api: {{ ingress: [ {{ port: 443, cidr: 0.0.0.0/0 }} ] }}
    openbao: {{ ingress: [ {{ port: 8200, from: api }} ] }}
instances:
  api: {{ subnet: public-a, instance_type: t3.small, ami: ami-1e749f67, security_group: api, kms_key: {key} }}
  openbao: {{ subnet: private-a, count: 3, instance_type: t3.small, ami: ami-1e749f67, security_group: openbao, kms_key: {key} }}
rds: {{ identifier: ctl-main, engine: postgres, instance_class: db.t3.micro, allocated_storage: 20, subnets: [private-a, private-b], kms_key: {key} }}
"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("test.yaml");
        std::fs::write(&file, text).unwrap();
        expand(&file)
    }

    /// Checks that `svg` is well-formed XML (one root, balanced tags, only the five XML
    /// entities) and returns `(class of the enclosing element, text)` of every `<title>`.
    fn svg_titles(svg: &str) -> Vec<(String, String)> {
        use xmlparser::{ElementEnd, Token};
        let unescape = |raw: &str| {
            let mut out = String::new();
            let mut rest = raw;
            while let Some(at) = rest.find('&') {
                out.push_str(&rest[..at]);
                let (entity, ch) = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&quot;", '"'), ("&apos;", '\'')]
                    .into_iter()
                    .find(|(e, _)| rest[at..].starts_with(e))
                    .unwrap_or_else(|| panic!("bare & in {raw:?}"));
                out.push(ch);
                rest = &rest[at + entity.len()..];
            }
            out + rest
        };
        let mut open: Vec<(String, String)> = Vec::new();
        let mut pending = (String::new(), String::new());
        let (mut roots, mut titles) = (0, Vec::new());
        for token in xmlparser::Tokenizer::from(svg) {
            match token.unwrap_or_else(|e| panic!("not well-formed: {e}")) {
                Token::ElementStart { local, .. } => pending = (local.to_string(), String::new()),
                Token::Attribute { local, value, .. } => {
                    let value = unescape(value.as_str());
                    if local.as_str() == "class" {
                        pending.1 = value;
                    }
                }
                Token::ElementEnd { end: ElementEnd::Open, .. } => {
                    roots += usize::from(open.is_empty());
                    open.push(std::mem::take(&mut pending));
                }
                Token::ElementEnd { end: ElementEnd::Empty, .. } => roots += usize::from(open.is_empty()),
                Token::ElementEnd { end: ElementEnd::Close(_, local), .. } => {
                    let (name, _) = open.pop().expect("a close tag closes an open one");
                    assert_eq!(name, local.as_str(), "mismatched close tag");
                }
                Token::Text { text } if open.last().is_some_and(|(n, _)| n == "title") => {
                    let parent = open[open.len() - 2].1.clone();
                    titles.push((parent, unescape(text.as_str())));
                }
                _ => {}
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        assert_eq!(roots, 1, "one root element");
        titles
    }

    /// The Mermaid node id whose label is `address`.
    fn mermaid_id(text: &str, address: &str) -> String {
        let needle = format!("[\"{}<br/>", mermaid_escape(address));
        let line = text.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("no node {address}:\n{text}"));
        line.trim_start().split('[').next().unwrap().to_string()
    }

    /// Every address is named (SVG title, DOT id, Mermaid label) and every edge drawn.
    #[track_caller]
    fn assert_complete(desired: &[Resource], g: &Graph) {
        let svg = svg(g);
        let titles = svg_titles(&svg);
        let dot = dot(g);
        let mermaid = mermaid(g);
        assert!(mermaid.starts_with("flowchart LR\n"));
        let mut edges = 0;
        for r in desired {
            let a = r.address.as_str();
            assert!(titles.iter().any(|(class, t)| class.starts_with("node") && t == a), "SVG names no {a}");
            assert!(dot.contains(&format!("  \"{}\" [label=", dot_escape(a))), "DOT lacks {a}:\n{dot}");
            let id = mermaid_id(&mermaid, a);
            for d in &r.depends_on {
                edges += 1;
                let (de, ae) = (dot_escape(d.as_str()), dot_escape(a));
                assert!(dot.contains(&format!("  \"{de}\" -> \"{ae}\";\n")), "DOT lacks {d} -> {a}");
                let from = mermaid_id(&mermaid, d.as_str());
                assert!(mermaid.contains(&format!("  {from} --> {id}\n")), "Mermaid lacks {d} --> {a}");
                assert!(titles.iter().any(|(c, t)| c == "edge" && t == &format!("{d} → {a}")), "SVG lacks {d} → {a}");
            }
        }
        // Planned deletes bring their own edges (from the plan).
        let into_declared = g.edges.iter().filter(|&&(_, to)| desired.iter().any(|r| r.address == g.nodes[to].address));
        assert_eq!(edges, into_declared.count(), "one drawn edge per depends_on");
        assert!(edges > 0);
    }

    fn group_title<'a>(g: &'a Graph, address: &str) -> Option<(GroupKind, &'a str, Option<&'a str>)> {
        let n = g.nodes.iter().find(|n| n.address.as_str() == address).unwrap_or_else(|| panic!("no {address}"));
        let gr = &g.groups[n.group?];
        Some((gr.kind, gr.title.as_str(), gr.parent.map(|p| g.groups[p].title.as_str())))
    }

    #[test]
    fn graph_of_the_local_environment_names_every_address_and_edge() {
        let desired = local();
        let g = Graph::new(&desired, None);
        assert_complete(&desired, &g);
        assert_eq!(group_title(&g, "workspace.acme.kv"), Some((GroupKind::Workspace, "workspace acme", None)));
        let dot = dot(&g);
        assert!(dot.contains("subgraph \"cluster_0\" {\n    label=\"workspace acme\";"), "{dot}");
        // Shortened within the workspace; the full address is the id and the tooltip.
        assert!(dot.contains("\"workspace.acme.kv\" [label=\"kv\\nkv_mount\", tooltip=\"workspace.acme.kv\""), "{dot}");
        assert!(!svg(&g).contains("class=\"legend"), "no legend without a plan");
    }

    #[test]
    fn graph_groups_infrastructure_by_vpc_and_subnet() {
        let desired = infra();
        let g = Graph::new(&desired, None);
        assert_complete(&desired, &g);
        let vpc = "VPC network.vpc (10.20.0.0/16)";
        let private_a = "subnet private-a (10.20.10.0/24, us-east-1a)";
        assert_eq!(group_title(&g, "instance.openbao.2"), Some((GroupKind::Subnet, private_a, Some(vpc))));
        assert_eq!(group_title(&g, "network.subnet.private-a"), Some((GroupKind::Subnet, private_a, Some(vpc))));
        assert_eq!(group_title(&g, "network.nat_instance").map(|t| t.0), Some(GroupKind::Subnet));
        for in_vpc in ["network.vpc", "network.route_table.private", "network.internet_gateway", "rds.subnet_group", "rds.instance"] {
            assert_eq!(group_title(&g, in_vpc), Some((GroupKind::Vpc, vpc, None)), "{in_vpc}");
        }
        // Nested clusters in DOT and Mermaid, nested boxes in SVG.
        let dot = dot(&g);
        let (v, s) = (dot.find(&format!("label=\"{vpc}\"")).unwrap(), dot.find(&format!("label=\"{private_a}\"")).unwrap());
        assert!(v < s && !dot[v..s].contains("\n  }\n"), "subnet cluster inside the VPC's:\n{dot}");
        let mermaid = mermaid(&g);
        assert!(mermaid.contains(&format!("  subgraph g0[\"{vpc}\"]\n")), "{mermaid}");
        assert!(mermaid.contains("    subgraph g1[\"subnet public-a (10.20.0.0/24, us-east-1a)\"]\n"), "{mermaid}");
        let svg = svg(&g);
        let boxes = svg_titles(&svg).len();
        assert!(boxes >= desired.len());
        assert!(svg.contains(&format!(">{private_a}</text>")));
        // Every edge runs left to right: a dependency's column is left of its dependent's.
        let rank = ranks(&g);
        assert!(g.edges.iter().all(|&(d, r)| rank[d] < rank[r]));
    }

    #[test]
    fn graph_marks_planned_actions_and_draws_planned_deletes() {
        let desired = infra();
        let mut live: Vec<Resource> = desired.iter().filter(|r| r.address.as_str() != "network.s3_endpoint").cloned().collect();
        for r in &mut live {
            match r.address.as_str() {
                "instance.api.0" => drop(r.attrs.insert("ami".into(), json!("ami-old"))),
                "network.security_group.api" => drop(r.attrs.insert("ingress".into(), json!([]))),
                _ => {}
            }
        }
        live.push(Resource {
            address: Address::new("network.subnet.old"),
            kind: Kind::Subnet,
            scope: Scope::Root,
            name: "old".into(),
            attrs: json!({"vpc": "network.vpc", "cidr": "10.20.99.0/24", "az": "us-east-1c", "public": false})
                .as_object()
                .unwrap()
                .clone(),
            depends_on: vec![Address::new("network.vpc")],
            container: None,
        });
        let observed = Observed { resources: live.clone(), unmanaged: vec![] };
        let plan = Plan::new("test", "digest", diff(&desired, &live, &[]), &observed);
        let action = |a: &str| plan.changes.iter().find(|c| c.address.as_str() == a).map(|c| c.action());
        assert_eq!(action("instance.api.0"), Some(Action::Replace));
        assert_eq!(action("network.subnet.old"), Some(Action::Delete));
        assert_eq!(action("network.security_group.api"), Some(Action::Update));
        assert_eq!(action("network.s3_endpoint"), Some(Action::Create));

        let g = Graph::new(&desired, Some(&plan));
        assert_complete(&desired, &g);
        assert_eq!(group_title(&g, "network.subnet.old").map(|t| t.0), Some(GroupKind::Subnet));

        let svg = svg(&g);
        let titles = svg_titles(&svg);
        let class = |a: &str| titles.iter().find(|(_, t)| t == a).map(|(c, _)| c.as_str());
        assert_eq!(class("instance.api.0"), Some("node replace"));
        assert_eq!(class("network.subnet.old"), Some("node delete"));
        assert_eq!(class("network.security_group.api"), Some("node update"));
        assert_eq!(class("network.s3_endpoint"), Some("node create"));
        assert_eq!(class("network.vpc"), Some("node"));
        assert!(svg.contains("<g class=\"legend replace\">"));
        let old = svg.find("<title>network.subnet.old</title>").unwrap();
        assert!(svg[old..].lines().next().unwrap().contains("stroke=\"#cf222e\" stroke-width=\"1.5\" stroke-dasharray"));

        let dot = dot(&g);
        let line = |a: &str| dot.lines().find(|l| l.trim_start().starts_with(&format!("\"{a}\" ["))).unwrap().to_string();
        assert!(line("instance.api.0").contains("class=\"replace\"") && line("instance.api.0").contains("#8250df"));
        assert!(line("network.subnet.old").contains("class=\"delete\"") && line("network.subnet.old").contains("dashed"));
        assert!(line("network.subnet.old").contains("subnet (delete)"));
        assert!(dot.contains("  \"network.vpc\" -> \"network.subnet.old\";"), "a delete's edges come from the plan");

        let mermaid = mermaid(&g);
        let members = |class: &str| {
            let line = mermaid.lines().find(|l| l.starts_with("  class ") && l.ends_with(&format!(" {class}"))).unwrap();
            line.split_whitespace().nth(1).unwrap().split(',').map(str::to_string).collect::<Vec<_>>()
        };
        assert!(members("replace").contains(&mermaid_id(&mermaid, "instance.api.0")));
        assert!(members("delete").contains(&mermaid_id(&mermaid, "network.subnet.old")));
        assert!(mermaid.contains("classDef delete fill:#ffebe9,stroke:#cf222e,color:#1f2328,stroke-dasharray:5 3"));
    }

    #[test]
    fn graph_escapes_labels_in_every_format() {
        let odd = |address: &str, deps: &[&str]| Resource {
            address: Address::new(address),
            kind: Kind::Policy,
            scope: Scope::Root,
            name: "x".into(),
            attrs: Default::default(),
            depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
            container: None,
        };
        let desired = [odd("odd.<a&b>\"q\"#1\\", &[]), odd("workspace.a-b.kv", &["odd.<a&b>\"q\"#1\\"])];
        let g = Graph::new(&desired, None);
        assert_complete(&desired, &g);
        let dot = dot(&g);
        assert!(dot.contains(r##"  "odd.<a&b>\"q\"#1\\" -> "workspace.a-b.kv";"##), "{dot}");
        let mermaid = mermaid(&g);
        assert!(mermaid.contains(r##"  n0["odd.#lt;a#amp;b#gt;#quot;q#quot;#35;1\<br/>policy"]"##), "{mermaid}");
        assert!(svg(&g).contains("<title>odd.&lt;a&amp;b&gt;&quot;q&quot;#1\\</title>"));
    }

    #[test]
    fn graph_of_nothing_is_still_a_picture() {
        let g = Graph::new(&[], None);
        assert!(svg_titles(&svg(&g)).is_empty());
        assert_eq!(dot(&g).lines().last(), Some("}"));
        assert_eq!(mermaid(&g), "flowchart LR\n");
    }

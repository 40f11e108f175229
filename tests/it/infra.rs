//! Network, EC2 and RDS as plan/apply kinds against the shared stack's moto. Every test uses its
//! own environment name: ownership tags scope everything, moto is never reset.
//!
//! - apply from nothing → empty plan, and what landed in moto is what was declared (encrypted
//!   root volumes with the key, NAT without key pair and with SourceDestCheck off, OpenBao's
//!   port only from the API's group, private default route via the NAT's ENI, S3 endpoint on
//!   the private table, RDS encrypted/30 days/private);
//! - drift: SourceDestCheck turned on, RDS retention set to 7, each shows exactly that field;
//!   an AMI change is a replace;
//! - bad input: located, no connection to any server;
//! - unreachable endpoint: clean, bounded failure naming the endpoint; re-run converges.

use crate::harness::{moto_aws as aws, runtime, stack, unique, Scenario};
use ctl::aws::network_common::{ec2 as ec2_client, rds as rds_client};
use ctl::aws::Aws;
use ctl::dev::BaoVersion;
use serde_json::Value;
use std::time::{Duration, Instant};

const AMI: &str = "ami-1e749f67";
const OTHER_AMI: &str = "ami-03cf127a";

/// A KMS key created directly in moto (the KMS kinds are another part of the issue).
fn kms_key(aws: &Aws) -> String {
    runtime().block_on(async {
        let kms = aws_sdk_kms::Client::new(&aws.sdk);
        let key = kms
            .create_key()
            .description("ctl infra test")
            .send()
            .await
            .expect("CreateKey");
        key.key_metadata().expect("metadata").key_id().to_string()
    })
}

struct Decl<'a> {
    moto: &'a str,
    key: &'a str,
    db: &'a str,
    api_ami: &'a str,
}

fn body(d: &Decl<'_>) -> String {
    let Decl {
        moto,
        key,
        db,
        api_ami,
    } = d;
    format!(
        r#"aws: {{ region: us-east-1, endpoint: "{moto}" }}
network:
  vpc_cidr: 10.40.0.0/16
  public_subnets:
    - {{ name: public-a, cidr: 10.40.0.0/24, az: us-east-1a }}
  private_subnets:
    - {{ name: private-a, cidr: 10.40.10.0/24, az: us-east-1a }}
    - {{ name: private-b, cidr: 10.40.11.0/24, az: us-east-1b }}
  nat: {{ instance_type: t3.micro, ami: {AMI}, subnet: public-a }}
  s3_endpoint: true
  security_groups:
    api: {{ ingress: [ {{ port: 443, cidr: 0.0.0.0/0 }} ] }}
    openbao: {{ ingress: [ {{ port: 8200, from: api }} ] }}
instances:
  api: {{ subnet: public-a, instance_type: t3.small, ami: {api_ami}, security_group: api, kms_key: {key}, user_data_template: api }}
  openbao: {{ subnet: private-a, count: 2, instance_type: t3.small, ami: {AMI}, security_group: openbao, kms_key: {key}, user_data_template: openbao }}
rds:
  identifier: {db}
  engine: postgres
  instance_class: db.t3.micro
  allocated_storage: 20
  backup_retention_period: 30
  subnets: [private-a, private-b]
  kms_key: {key}
"#
    )
}

fn plan_json(sc: &Scenario) -> Value {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn changes(plan: &Value) -> Vec<Value> {
    plan["changes"].as_array().expect("changes").clone()
}

#[track_caller]
fn apply(sc: &Scenario) {
    let out = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(
        out.status, 0,
        "apply failed:\n{}\n{}",
        out.stdout, out.stderr
    );
}

#[track_caller]
fn assert_no_changes(sc: &Scenario) {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(
        out.status, 0,
        "expected no changes:\n{}\n{}",
        out.stdout, out.stderr
    );
}

fn tag_filter(env: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("tag:ctl-environment")
        .values(env)
        .build()
}

fn address_filter(address: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("tag:ctl-address")
        .values(address)
        .build()
}

fn running() -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("instance-state-name")
        .values("running")
        .build()
}

async fn instance(aws: &Aws, env: &str, address: &str) -> aws_sdk_ec2::types::Instance {
    let out = ec2_client(aws)
        .describe_instances()
        .filters(tag_filter(env))
        .filters(address_filter(address))
        .filters(running())
        .send()
        .await
        .expect("DescribeInstances");
    let all: Vec<_> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect();
    assert_eq!(all.len(), 1, "exactly one running instance at {address}");
    all[0].clone()
}

async fn group_id(aws: &Aws, env: &str, address: &str) -> aws_sdk_ec2::types::SecurityGroup {
    let out = ec2_client(aws)
        .describe_security_groups()
        .filters(tag_filter(env))
        .filters(address_filter(address))
        .send()
        .await
        .expect("DescribeSecurityGroups");
    assert_eq!(out.security_groups().len(), 1, "{address}");
    out.security_groups()[0].clone()
}

#[test]
fn infra_apply_from_nothing_drift_and_replace() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack
        .moto_endpoint
        .clone()
        .expect("the shared stack runs moto");
    let env = unique("infra");
    let db = unique("db");
    let aws = aws(&moto, &env);
    let key = kms_key(&aws);
    let decl = Decl {
        moto: &moto,
        key: &key,
        db: &db,
        api_ami: AMI,
    };
    let sc = Scenario::new(stack, &env, &body(&decl));

    let first = plan_json(&sc);
    let mut planned: Vec<String> = changes(&first)
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["action"].as_str().unwrap(),
                c["address"].as_str().unwrap()
            )
        })
        .collect();
    planned.sort();
    let expected = [
        "create instance.api.0",
        "create instance.openbao.0",
        "create instance.openbao.1",
        "create network.internet_gateway",
        "create network.nat_instance",
        "create network.route_table.private",
        "create network.route_table.public",
        "create network.s3_endpoint",
        "create network.security_group.api",
        "create network.security_group.nat",
        "create network.security_group.openbao",
        "create network.subnet.private-a",
        "create network.subnet.private-b",
        "create network.subnet.public-a",
        "create network.vpc",
        "create rds.instance",
        "create rds.subnet_group",
    ];
    assert_eq!(planned, expected, "the plan from nothing");

    let t = Instant::now();
    apply(&sc);
    eprintln!(
        "infra: apply from nothing took {:.1}s",
        t.elapsed().as_secs_f64()
    );
    assert_no_changes(&sc);

    // What landed in moto.
    runtime().block_on(async {
        let ec2 = ec2_client(&aws);
        let nat = instance(&aws, &env, "network.nat_instance").await;
        assert_eq!(nat.key_name(), None, "the NAT instance has no key pair");
        let sdc = ec2
            .describe_instance_attribute()
            .instance_id(nat.instance_id().unwrap())
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::SourceDestCheck)
            .send()
            .await
            .unwrap();
        assert_eq!(sdc.source_dest_check().and_then(|v| v.value()), Some(false));

        for address in ["instance.api.0", "instance.openbao.0", "instance.openbao.1"] {
            let i = instance(&aws, &env, address).await;
            assert_eq!(i.key_name(), None, "{address}: no key pair");
            let vol = i.block_device_mappings()[0]
                .ebs()
                .unwrap()
                .volume_id()
                .unwrap()
                .to_string();
            let v = ec2.describe_volumes().volume_ids(vol).send().await.unwrap();
            let v = &v.volumes()[0];
            assert_eq!(
                v.encrypted(),
                Some(true),
                "{address}: root volume encrypted"
            );
            assert!(
                v.kms_key_id().unwrap_or_default().contains(&key),
                "{address}: with the declared key: {:?}",
                v.kms_key_id()
            );
            let ud = ec2
                .describe_instance_attribute()
                .instance_id(i.instance_id().unwrap())
                .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
                .send()
                .await
                .unwrap();
            use base64::Engine as _;
            let text = base64::engine::general_purpose::STANDARD
                .decode(ud.user_data().unwrap().value().unwrap())
                .unwrap();
            let text = String::from_utf8(text).unwrap();
            assert!(
                text.contains(&format!("ctl-address={address}")),
                "{address}: rendered user data: {text}"
            );
            let public = i.public_ip_address().is_some();
            assert_eq!(
                public,
                address == "instance.api.0",
                "{address}: public IP only on the API host"
            );
        }

        // OpenBao's port only from the API's group; the API's 443 from anywhere.
        let api_group = group_id(&aws, &env, "network.security_group.api").await;
        let bao_group = group_id(&aws, &env, "network.security_group.openbao").await;
        let perms = bao_group.ip_permissions();
        assert_eq!(perms.len(), 1, "{perms:?}");
        assert_eq!(
            (perms[0].from_port(), perms[0].to_port()),
            (Some(8200), Some(8200))
        );
        assert!(
            perms[0].ip_ranges().is_empty(),
            "no CIDR may reach 8200: {perms:?}"
        );
        let sources: Vec<_> = perms[0]
            .user_id_group_pairs()
            .iter()
            .filter_map(|p| p.group_id())
            .collect();
        assert_eq!(sources, vec![api_group.group_id().unwrap()]);
        let api_perms = api_group.ip_permissions();
        assert_eq!(api_perms.len(), 1);
        assert_eq!(api_perms[0].from_port(), Some(443));
        assert_eq!(api_perms[0].ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));

        // The private default route goes through the NAT instance's ENI; the S3 endpoint is on
        // the private table.
        let tables = ec2
            .describe_route_tables()
            .filters(tag_filter(&env))
            .filters(address_filter("network.route_table.private"))
            .send()
            .await
            .unwrap();
        let private = &tables.route_tables()[0];
        let nat_eni = nat.network_interfaces()[0].network_interface_id().unwrap();
        assert!(
            private
                .routes()
                .iter()
                .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0")
                    && r.network_interface_id() == Some(nat_eni)),
            "{:?}",
            private.routes()
        );
        assert_eq!(
            private
                .associations()
                .iter()
                .filter(|a| a.subnet_id().is_some())
                .count(),
            2
        );
        let eps = ec2
            .describe_vpc_endpoints()
            .filters(tag_filter(&env))
            .send()
            .await
            .unwrap();
        assert_eq!(eps.vpc_endpoints().len(), 1);
        assert_eq!(
            eps.vpc_endpoints()[0].route_table_ids(),
            &[private.route_table_id().unwrap().to_string()]
        );
        assert_eq!(
            eps.vpc_endpoints()[0].service_name(),
            Some("com.amazonaws.us-east-1.s3")
        );

        let rds = rds_client(&aws);
        let out = rds
            .describe_db_instances()
            .db_instance_identifier(&db)
            .send()
            .await
            .unwrap();
        let d = &out.db_instances()[0];
        assert_eq!(d.storage_encrypted(), Some(true));
        assert!(
            d.kms_key_id().unwrap_or_default().contains(&key),
            "{:?}",
            d.kms_key_id()
        );
        assert_eq!(d.backup_retention_period(), Some(30));
        assert_eq!(d.publicly_accessible(), Some(false));
        assert_eq!(d.engine(), Some("postgres"));
        assert_eq!(
            d.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
            Some(format!("{env}-{db}").as_str())
        );
    });

    // Drift 1: someone turns SourceDestCheck back on.
    runtime().block_on(async {
        let nat = instance(&aws, &env, "network.nat_instance").await;
        ec2_client(&aws)
            .modify_instance_attribute()
            .instance_id(nat.instance_id().unwrap())
            .source_dest_check(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(true)
                    .build(),
            )
            .send()
            .await
            .expect("ModifyInstanceAttribute");
    });
    let drift = changes(&plan_json(&sc));
    assert_eq!(drift.len(), 1, "exactly one change: {drift:#?}");
    assert_eq!(drift[0]["address"], "network.nat_instance");
    assert_eq!(drift[0]["action"], "update");
    let fields = drift[0]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{fields:#?}");
    assert_eq!(
        (
            &fields[0]["field"],
            &fields[0]["before"],
            &fields[0]["after"]
        ),
        (
            &Value::from("source_dest_check"),
            &Value::from(true),
            &Value::from(false)
        )
    );
    let text = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert!(text.stdout.contains("source_dest_check"), "{}", text.stdout);
    apply(&sc);
    assert_no_changes(&sc);

    // Drift 2: backups cut to 7 days out of band.
    runtime().block_on(async {
        rds_client(&aws)
            .modify_db_instance()
            .db_instance_identifier(&db)
            .backup_retention_period(7)
            .apply_immediately(true)
            .send()
            .await
            .expect("ModifyDBInstance");
    });
    let drift = changes(&plan_json(&sc));
    assert_eq!(drift.len(), 1, "exactly one change: {drift:#?}");
    assert_eq!(drift[0]["address"], "rds.instance");
    assert_eq!(drift[0]["action"], "update");
    let fields = drift[0]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{fields:#?}");
    assert_eq!(fields[0]["field"], "backup_retention_period");
    assert_eq!(
        (&fields[0]["before"], &fields[0]["after"]),
        (&Value::from(7), &Value::from(30))
    );
    assert!(
        drift[0].get("destroys_data").is_none(),
        "an update loses no data"
    );
    apply(&sc);
    assert_no_changes(&sc);
    runtime().block_on(async {
        let out = rds_client(&aws)
            .describe_db_instances()
            .db_instance_identifier(&db)
            .send()
            .await
            .unwrap();
        assert_eq!(out.db_instances()[0].backup_retention_period(), Some(30));
    });

    // An immutable field (the AMI) replaces the instance, and only that one.
    let old_api = runtime()
        .block_on(instance(&aws, &env, "instance.api.0"))
        .instance_id()
        .unwrap()
        .to_string();
    sc.write_env(&body(&Decl {
        api_ami: OTHER_AMI,
        ..decl
    }));
    let replace = changes(&plan_json(&sc));
    assert_eq!(replace.len(), 1, "{replace:#?}");
    assert_eq!(
        (&replace[0]["address"], &replace[0]["action"]),
        (&Value::from("instance.api.0"), &Value::from("replace"))
    );
    let ami = replace[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "ami")
        .expect("ami field")
        .clone();
    assert_eq!(ami["forces_replace"], true);
    apply(&sc);
    assert_no_changes(&sc);
    let new_api = runtime().block_on(instance(&aws, &env, "instance.api.0"));
    assert_ne!(new_api.instance_id().unwrap(), old_api, "a new instance");
    assert_eq!(new_api.image_id(), Some(OTHER_AMI));

    // Deleting the database is data loss: refused without the flag, before any call.
    sc.write_env(
        body(&Decl {
            api_ami: OTHER_AMI,
            ..decl
        })
        .split("rds:\n")
        .next()
        .unwrap(),
    );
    let refused = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(refused.status, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("--allow-destroy=rds.instance"),
        "{}",
        refused.stderr
    );
    runtime().block_on(async {
        let out = rds_client(&aws)
            .describe_db_instances()
            .db_instance_identifier(&db)
            .send()
            .await;
        assert!(out.is_ok(), "the database is still there");
    });
    sc.assert_no_canary();
}

/// Invalid infrastructure declarations fail at file:line:col and contact no server.
#[test]
fn infra_bad_input_is_located_and_makes_no_api_call() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let key = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let net = |subnets: &str| {
        format!("network:\n  vpc_cidr: 10.0.0.0/16\n{subnets}  security_groups:\n    api: {{ ingress: [ {{ port: 443, cidr: 0.0.0.0/0 }} ] }}\n")
    };
    let ok_subnets = "  public_subnets: [ { name: pub, cidr: 10.0.0.0/24, az: us-east-1a } ]\n  private_subnets: [ { name: priv, cidr: 10.0.1.0/24, az: us-east-1a } ]\n";
    let inst = |extra: &str| {
        format!("instances:\n  api: {{ subnet: priv, instance_type: t3.small, ami: ami-1, security_group: api, kms_key: {key}{extra} }}\n")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("invalid cidr", net("  public_subnets: [ { name: pub, cidr: 10.0.0.300/24, az: us-east-1a } ]\n"), "test.yaml:7:40"),
        ("outside the vpc", net("  public_subnets: [ { name: pub, cidr: 10.1.0.0/24, az: us-east-1a } ]\n"), "not inside vpc_cidr"),
        (
            "overlap",
            net("  public_subnets: [ { name: pub, cidr: 10.0.0.0/24, az: us-east-1a } ]\n  private_subnets: [ { name: priv, cidr: 10.0.0.0/25, az: us-east-1a } ]\n"),
            "overlaps subnet pub",
        ),
        ("unknown subnet", format!("{}{}", net(ok_subnets), inst("").replace("subnet: priv", "subnet: nope")), "no subnet named \"nope\""),
        ("public ip in private subnet", format!("{}{}", net(ok_subnets), inst(", public_ip: true")), "public_ip is not possible"),
        (
            "retention",
            format!("{}rds: {{ identifier: db1, engine: postgres, instance_class: db.t3.micro, allocated_storage: 20, backup_retention_period: 36, subnets: [priv], kms_key: {key} }}\n", net(ok_subnets)),
            "1 to 35 days",
        ),
        ("missing template", format!("{}{}", net(ok_subnets), inst(", user_data_template: nope")), "cannot read user-data template"),
    ];
    for (what, body, expect) in &cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("environments")).unwrap();
        std::fs::create_dir_all(dir.path().join("templates/policies")).unwrap();
        std::fs::create_dir_all(dir.path().join("templates/userdata")).unwrap();
        let file = dir.path().join("environments/test.yaml");
        let text = format!(
            "openbao:\n  address: {address}\n  token_env: NOPE_TOKEN\naws: {{ region: us-east-1, endpoint: \"{address}\" }}\n{body}"
        );
        std::fs::write(&file, text).unwrap();
        let cmds: &[&str] = if *what == "missing template" {
            &["plan"]
        } else {
            &["validate", "plan"]
        };
        for cmd in cmds {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctl"))
                .args([cmd, "-e", file.to_str().unwrap()])
                .env("NOPE_TOKEN", "x")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}/{cmd}: {stderr}");
            assert!(
                stderr.contains("test.yaml:"),
                "{what}/{cmd}: names the file: {stderr}"
            );
            assert!(
                stderr.contains(expect),
                "{what}/{cmd}: expected {expect:?} in {stderr}"
            );
        }
    }
    assert!(
        listener.accept().is_err(),
        "ctl contacted a server despite invalid input"
    );
}

/// An unreachable AWS endpoint: a clear, bounded failure naming the endpoint, nothing half
/// done; pointed at the live moto, the same declaration converges.
#[test]
fn infra_unreachable_endpoint_fails_cleanly_then_converges() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack
        .moto_endpoint
        .clone()
        .expect("the shared stack runs moto");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    }; // dropped: nothing listens there now
    let env = unique("infra-down");
    let small = |endpoint: &str| {
        format!(
            r#"aws: {{ region: us-east-1, endpoint: "{endpoint}" }}
network:
  vpc_cidr: 10.50.0.0/16
  private_subnets:
    - {{ name: private-a, cidr: 10.50.1.0/24, az: us-east-1a }}
  security_groups:
    openbao: {{ ingress: [ {{ port: 8200, cidr: 10.50.0.0/16 }} ] }}
"#
        )
    };
    let sc = Scenario::new(stack, &env, &small(&closed));
    let t = Instant::now();
    let out = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    let took = t.elapsed();
    eprintln!(
        "infra: unreachable endpoint failed after {:.1}s",
        took.as_secs_f64()
    );
    assert_eq!(out.status, 1, "{}\n{}", out.stdout, out.stderr);
    // Whichever service is read first, the error says where it tried to connect.
    let host_port = closed.trim_start_matches("http://");
    assert!(
        out.stderr.contains(host_port),
        "the error names the endpoint: {}",
        out.stderr
    );
    assert!(
        took < Duration::from_secs(60),
        "retries are bounded: {took:?}"
    );

    sc.write_env(&small(&moto));
    apply(&sc);
    assert_no_changes(&sc);
    let aws = aws(&moto, &env);
    runtime().block_on(async {
        let vpcs = ec2_client(&aws)
            .describe_vpcs()
            .filters(tag_filter(&env))
            .send()
            .await
            .unwrap();
        assert_eq!(
            vpcs.vpcs().len(),
            1,
            "exactly one VPC: no duplicate from the failed attempt"
        );
    });
}

/// An instance whose boot artifact does not verify is not planned for launch.
#[test]
fn infra_refuses_to_launch_unverified_artifacts() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack
        .moto_endpoint
        .clone()
        .expect("the shared stack runs moto");
    let env = unique("infra-art");
    let key = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let body = format!(
        r#"aws: {{ region: us-east-1, endpoint: "{moto}" }}
network:
  vpc_cidr: 10.60.0.0/16
  public_subnets: [ {{ name: public-a, cidr: 10.60.0.0/24, az: us-east-1a }} ]
  security_groups:
    api: {{ ingress: [ {{ port: 443, cidr: 0.0.0.0/0 }} ] }}
instances:
  api: {{ subnet: public-a, instance_type: t3.small, ami: {AMI}, security_group: api, kms_key: {key}, artifacts: [caddy] }}
"#
    );
    let sc = Scenario::new(stack, &env, &body);
    let out = sc.ctl(&["plan", "-e", &sc.env_file()]);
    assert_eq!(out.status, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("instance.api.0: refusing to launch"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("artifacts"), "says why: {}", out.stderr);
    let applied = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(applied.status, 1);
    let aws = aws(&moto, &env);
    runtime().block_on(async {
        let vpcs = ec2_client(&aws)
            .describe_vpcs()
            .filters(tag_filter(&env))
            .send()
            .await
            .unwrap();
        assert!(vpcs.vpcs().is_empty(), "nothing was created");
    });
}

/// Replacing a subnet (its CIDR) replaces what lives in it, in the order real AWS requires:
/// the instance is terminated before the subnet is deleted and launched after the new subnet
/// exists (moto would accept the wrong order; the recorded calls show the real one); the same
/// for a security group whose description changes. Each re-run plans nothing. A call AWS refuses is reported as service, operation, code and message.
#[test]
fn infra_replace_deletes_dependents_first_and_recreates_them_after() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack.moto_endpoint.clone().expect("the shared stack runs moto");
    let env = unique("infra-order");
    let aws = aws(&moto, &env);
    let key = kms_key(&aws);
    let body_with = |cidr: &str, extra_subnet: &str, group_description: &str| {
        format!(
            r#"aws: {{ region: us-east-1, endpoint: "{moto}" }}
network:
  vpc_cidr: 10.70.0.0/16
  private_subnets:
    - {{ name: private-a, cidr: {cidr}, az: us-east-1a }}
{extra_subnet}  security_groups:
    app: {{ description: "{group_description}", ingress: [ {{ port: 443, cidr: 10.70.0.0/16 }} ] }}
instances:
  app: {{ subnet: private-a, instance_type: t3.small, ami: {AMI}, security_group: app, kms_key: {key} }}
"#
        )
    };
    let body = |cidr: &str, extra_subnet: &str| body_with(cidr, extra_subnet, "app servers");
    // The calls an apply makes, without the reads.
    let apply_recording = |sc: &Scenario, name: &str| -> Vec<String> {
        let file = sc.dir().join(name);
        let out = sc.ctl_with_env(
            &["apply", "-e", &sc.env_file(), "--auto-approve"],
            &[("CTL_TEST_RECORD_AWS_CALLS", file.to_str().unwrap())],
        );
        assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
        std::fs::read_to_string(&file)
            .expect("the test hook recorded the calls")
            .lines()
            .filter(|l| !l.contains(".Describe") && !l.contains(".List"))
            .map(str::to_string)
            .collect()
    };
    let at = |calls: &[String], op: &str| {
        let hits: Vec<usize> = calls.iter().enumerate().filter(|(_, c)| c.as_str() == op).map(|(i, _)| i).collect();
        assert_eq!(hits.len(), 1, "{op} exactly once in {calls:#?}");
        hits[0]
    };
    let sc = Scenario::new(stack, &env, &body("10.70.1.0/24", ""));
    apply(&sc);
    assert_no_changes(&sc);

    sc.write_env(&body("10.70.2.0/24", ""));
    let planned: Vec<(String, String)> = changes(&plan_json(&sc))
        .iter()
        .map(|c| (c["action"].as_str().unwrap().to_string(), c["address"].as_str().unwrap().to_string()))
        .collect();
    for expected in [("replace", "network.subnet.private-a"), ("recreate", "instance.app.0")] {
        assert!(
            planned.iter().any(|(a, addr)| (a.as_str(), addr.as_str()) == expected),
            "{expected:?} in {planned:?}"
        );
    }
    let calls = apply_recording(&sc, "subnet-calls.txt");
    assert!(at(&calls, "EC2.TerminateInstances") < at(&calls, "EC2.DeleteSubnet"), "the instance goes first: {calls:#?}");
    assert!(at(&calls, "EC2.DeleteSubnet") < at(&calls, "EC2.CreateSubnet"), "{calls:#?}");
    assert!(at(&calls, "EC2.CreateSubnet") < at(&calls, "EC2.RunInstances"), "the instance comes back after: {calls:#?}");
    assert_no_changes(&sc);
    runtime().block_on(async {
        let i = instance(&aws, &env, "instance.app.0").await;
        let subnets = ec2_client(&aws).describe_subnets().subnet_ids(i.subnet_id().unwrap()).send().await.unwrap();
        assert_eq!(subnets.subnets()[0].cidr_block(), Some("10.70.2.0/24"), "launched into the new subnet");
    });

    // The same for a security group (its description cannot change in place).
    sc.write_env(&body_with("10.70.2.0/24", "", "app servers, v2"));
    let calls = apply_recording(&sc, "group-calls.txt");
    assert!(at(&calls, "EC2.TerminateInstances") < at(&calls, "EC2.DeleteSecurityGroup"), "{calls:#?}");
    assert!(at(&calls, "EC2.DeleteSecurityGroup") < at(&calls, "EC2.CreateSecurityGroup"), "{calls:#?}");
    assert!(at(&calls, "EC2.CreateSecurityGroup") < at(&calls, "EC2.RunInstances"), "{calls:#?}");
    assert_no_changes(&sc);

    // A call AWS refuses: a subnet someone else created takes the declared CIDR.
    runtime().block_on(async {
        let ec2 = ec2_client(&aws);
        let vpc = ec2.describe_vpcs().filters(tag_filter(&env)).send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string();
        ec2.create_subnet().vpc_id(vpc).cidr_block("10.70.3.0/24").send().await.expect("CreateSubnet out of band");
    });
    sc.write_env(&body_with("10.70.2.0/24", "    - { name: private-b, cidr: 10.70.3.0/24, az: us-east-1b }\n", "app servers, v2"));
    let failed = sc.ctl(&["apply", "-e", &sc.env_file(), "--auto-approve"]);
    assert_eq!(failed.status, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("ec2 CreateSubnet: InvalidSubnet.Conflict: The CIDR '10.70.3.0/24' conflicts with another subnet"),
        "service, operation, code and message: {}",
        failed.stderr
    );
    for body_part in ["<Response", "RequestID", "<Errors>"] {
        assert!(!failed.stderr.contains(body_part), "no response body ({body_part}): {}", failed.stderr);
    }
}

//! The Elastic IP kind against moto, and the template every AWS kind's test follows:
//! 1. create from nothing → the next plan is empty, and moto holds what was declared;
//! 2. out-of-band drift of one field → the plan shows exactly that field, apply converges;
//! 3. objects that are not ctl's are never touched, and losing data needs its flag.

use crate::harness::{moto_aws as aws, runtime, stack, unique, Scenario};
use ctl::aws::network_common::ec2 as ec2_client;
use ctl::dev::BaoVersion;
use serde_json::Value;

const AMI: &str = "ami-1e749f67";

fn body(moto: &str, key: &str, eips: &str) -> String {
    format!(
        r#"aws: {{ region: us-east-1, endpoint: "{moto}" }}
network:
  vpc_cidr: 10.60.0.0/16
  public_subnets:
    - {{ name: public-a, cidr: 10.60.0.0/24, az: us-east-1a }}
  security_groups:
    api: {{ ingress: [ {{ port: 443, cidr: 0.0.0.0/0 }} ] }}
{eips}instances:
  api: {{ subnet: public-a, count: 2, instance_type: t3.small, ami: {AMI}, security_group: api, kms_key: {key}, user_data_template: api }}
"#
    )
}

const BOTH: &str = "  elastic_ips:\n    api: { instance: api.1 }\n    spare: {}\n";
const API_ONLY: &str = "  elastic_ips:\n    api: { instance: api.1 }\n";

fn plan(sc: &Scenario) -> Value {
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--json"]);
    assert_eq!(out.status, 0, "plan failed: {}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn planned(plan: &Value) -> Vec<String> {
    plan["changes"].as_array().unwrap().iter().map(|c| format!("{} {}", c["action"].as_str().unwrap(), c["address"].as_str().unwrap())).collect()
}

#[track_caller]
fn apply(sc: &Scenario, extra: &[&str]) -> crate::harness::CtlOutput {
    let file = sc.env_file();
    let mut args = vec!["apply", "-e", file.as_str(), "--auto-approve"];
    args.extend(extra);
    sc.ctl(&args)
}

/// Every address in moto: (ctl-address tag or "foreign", public ip, instance id).
fn addresses(aws: &ctl::aws::Aws) -> Vec<(String, String, Option<String>)> {
    runtime().block_on(async {
        let out = ec2_client(aws).describe_addresses().send().await.expect("DescribeAddresses");
        out.addresses()
            .iter()
            .map(|a| {
                let tag = a.tags().iter().find(|t| t.key() == Some("ctl-address")).and_then(|t| t.value()).unwrap_or("foreign");
                // moto reports a free address with an empty instance id.
                (tag.to_string(), a.public_ip().unwrap_or_default().to_string(), a.instance_id().filter(|i| !i.is_empty()).map(str::to_string))
            })
            .collect()
    })
}

fn instance_id(aws: &ctl::aws::Aws, env: &str, address: &str) -> String {
    runtime().block_on(async {
        let f = |k: &str, v: &str| aws_sdk_ec2::types::Filter::builder().name(k).values(v).build();
        let out = ec2_client(aws)
            .describe_instances()
            .filters(f("tag:ctl-environment", env))
            .filters(f("tag:ctl-address", address))
            .filters(f("instance-state-name", "running"))
            .send()
            .await
            .expect("DescribeInstances");
        out.reservations()[0].instances()[0].instance_id().unwrap().to_string()
    })
}

#[test]
fn elastic_ip_create_drift_foreign_and_release() {
    let stack = stack(BaoVersion::V2_6);
    let moto = stack.moto_endpoint.clone().expect("the shared stack runs moto");
    let env = unique("eip");
    let aws = aws(&moto, &env);
    let key = runtime().block_on(async {
        let kms = ctl::aws::client::kms(&aws);
        kms.create_key().description("ctl eip test").send().await.expect("CreateKey").key_metadata().unwrap().key_id().to_string()
    });
    // A foreign address, allocated outside ctl: never read as ctl's, never released.
    let foreign_ip = runtime().block_on(async {
        let out = ec2_client(&aws).allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc).send().await.expect("AllocateAddress");
        out.public_ip().unwrap().to_string()
    });
    let sc = Scenario::new(stack, &env, &body(&moto, &key, BOTH));

    // 1. From nothing: both addresses, `api` on the second API instance; then no changes.
    let first = planned(&plan(&sc));
    assert!(first.contains(&"create network.elastic_ip.api".to_string()), "{first:?}");
    assert!(first.contains(&"create network.elastic_ip.spare".to_string()), "{first:?}");
    let out = apply(&sc, &[]);
    assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(out.status, 0, "expected no changes:\n{}\n{}", out.stdout, out.stderr);
    let api1 = instance_id(&aws, &env, "instance.api.1");
    let ours = |all: &[(String, String, Option<String>)], a: &str| all.iter().find(|(t, _, _)| t == a).cloned();
    let all = addresses(&aws);
    assert_eq!(ours(&all, "network.elastic_ip.api").and_then(|(_, _, i)| i), Some(api1.clone()));
    assert_eq!(ours(&all, "network.elastic_ip.spare").map(|(_, _, i)| i), Some(None));
    let api_ip = ours(&all, "network.elastic_ip.api").unwrap().1;

    // 2. Drift: moved by hand to the first instance. Exactly the `instance` field; apply moves it back.
    let api0 = instance_id(&aws, &env, "instance.api.0");
    runtime().block_on(async {
        let ec2 = ec2_client(&aws);
        let live = ec2.describe_addresses().public_ips(&api_ip).send().await.unwrap();
        let allocation = live.addresses()[0].allocation_id().unwrap().to_string();
        ec2.associate_address().allocation_id(allocation).instance_id(api0).allow_reassociation(true).send().await.expect("AssociateAddress");
    });
    let drift = plan(&sc);
    assert_eq!(planned(&drift), ["update network.elastic_ip.api"]);
    let fields = drift["changes"][0]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0]["field"], "instance");
    assert_eq!(fields[0]["before"], "instance.api.0");
    assert_eq!(fields[0]["after"], "instance.api.1");
    let out = apply(&sc, &[]);
    assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(ours(&addresses(&aws), "network.elastic_ip.api").and_then(|(_, _, i)| i), Some(api1));

    // 3. `spare` undeclared: releasing it loses the address, so it needs its own flag.
    sc.write_env(&body(&moto, &key, API_ONLY));
    assert_eq!(planned(&plan(&sc)), ["delete network.elastic_ip.spare"]);
    let refused = apply(&sc, &[]);
    assert_eq!(refused.status, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("--allow-destroy=network.elastic_ip.spare"), "{}", refused.stderr);
    assert!(ours(&addresses(&aws), "network.elastic_ip.spare").is_some(), "a refused apply changes nothing");
    let out = apply(&sc, &["--allow-destroy=network.elastic_ip.spare"]);
    assert_eq!(out.status, 0, "apply failed:\n{}\n{}", out.stdout, out.stderr);
    let all = addresses(&aws);
    assert!(ours(&all, "network.elastic_ip.spare").is_none(), "released: {all:?}");
    assert!(ours(&all, "network.elastic_ip.api").is_some());
    assert!(all.iter().any(|(t, ip, _)| t == "foreign" && *ip == foreign_ip), "the foreign address is untouched: {all:?}");
    let out = sc.ctl(&["plan", "-e", &sc.env_file(), "--detailed-exitcode"]);
    assert_eq!(out.status, 0, "expected no changes:\n{}\n{}", out.stdout, out.stderr);
}

//! Tests of [`super`], kept apart so the module itself stays readable.
//! (Indented as they were inside `mod tests`, so multi-line literals are unchanged.)

    use super::*;

    const KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn good() -> String {
        [
            "openbao:",
            "  address: http://127.0.0.1:1",
            "  token_env: T",
            "network:",
            "  vpc_cidr: 10.20.0.0/16",
            "  public_subnets:",
            "    - { name: public-a, cidr: 10.20.0.0/24, az: us-east-1a }",
            "  private_subnets:",
            "    - { name: private-a, cidr: 10.20.10.0/24, az: us-east-1a }",
            "    - { name: private-b, cidr: 10.20.11.0/24, az: us-east-1b }",
            "  nat: { instance_type: t3.micro, ami: ami-1e749f67, subnet: public-a }",
            "  s3_endpoint: true",
            "  security_groups:",
            "    api: { ingress: [ { port: 443, cidr: 0.0.0.0/0 } ] }",
            "    openbao: { ingress: [ { port: 8200, from: api } ] }",
            "instances:",
            "  api: { subnet: public-a, instance_type: t3.small, ami: ami-1e749f67, security_group: api, kms_key: KEY }",
            "  openbao: { subnet: private-a, count: 3, instance_type: t3.small, ami: ami-1e749f67, security_group: openbao, kms_key: KEY }",
            "rds:",
            "  identifier: ctl-main",
            "  engine: postgres",
            "  instance_class: db.t3.micro",
            "  allocated_storage: 20",
            "  subnets: [private-a, private-b]",
            "  kms_key: KEY",
            "",
        ]
        .join("\n")
        .replace("KEY", KEY)
    }

    fn load(text: &str) -> Result<crate::config::Environment, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("test.yaml");
        std::fs::write(&file, text).unwrap();
        crate::config::load(&file).map_err(|e| e.to_string())
    }

    /// `good()` with `from` replaced by `to` (exactly once).
    fn edit(from: &str, to: &str) -> String {
        let g = good();
        assert_eq!(g.matches(from).count(), 1, "{from:?} must occur once");
        g.replace(from, to)
    }

    #[test]
    fn good_file_loads() {
        let env = load(&good()).unwrap();
        let net = env.infra.network.as_ref().unwrap();
        assert_eq!(net.subnets.len(), 3);
        assert!(net.subnet("public-a").unwrap().public);
        assert!(!net.subnet("private-b").unwrap().public);
        let api = &env.infra.instances[0];
        assert!(api.public_ip, "public subnet: public IP by default");
        assert!(!env.infra.instances[1].public_ip);
        assert_eq!(env.infra.instances[1].count, 3);
        let rds = env.infra.rds.as_ref().unwrap();
        assert_eq!(rds.backup_retention_period, 30, "the default");
        assert_eq!(rds.kms_key_id, KEY);
    }

    #[test]
    fn kms_key_may_name_a_declared_key() {
        let with_kms = |api_key: &str| {
            let text = good().replacen(&format!("security_group: api, kms_key: {KEY}"), &format!("security_group: api, kms_key: {api_key}"), 1);
            format!("{text}aws: {{ region: us-east-1 }}\niam: {{ roles: {{ openbao: {{}} }} }}\nkms:\n  unseal: {{ alias: alias/ctl-unseal, openbao_role: openbao }}\n")
        };
        let env = load(&with_kms("unseal")).unwrap();
        assert_eq!(env.infra.instances[0].kms_key_id, "unseal");
        assert!(crate::config::is_declared_key("unseal") && !crate::config::is_declared_key(KEY));
        fails_at(&with_kms("seal"), 17, 102, "kms_key \"seal\" names no key in kms: (declared: unseal)");
        fails_at(&with_kms("Seal!"), 17, 102, "or the name of a key in kms:");
    }

    #[test]
    fn instance_profile_names_an_iam_role_with_a_profile() {
        let with = |profile: &str, has_profile: bool| {
            let text = good().replacen("security_group: api, kms_key", &format!("security_group: api, instance_profile: {profile}, kms_key"), 1);
            format!("{text}aws: {{ region: us-east-1 }}\niam: {{ roles: {{ api: {{ instance_profile: {has_profile} }} }} }}\n")
        };
        let env = load(&with("api", true)).unwrap();
        assert_eq!(env.infra.instances[0].instance_profile.as_deref(), Some("api"));
        assert_eq!(env.infra.instances[1].instance_profile, None);
        fails_at(&with("api", false), 17, 111, "instance_profile \"api\" names no iam: role with instance_profile: true");
        fails_at(&with("web", true), 17, 111, "(those with one: api)");
    }

    #[track_caller]
    fn fails_at(text: &str, line: usize, col: usize, needle: &str) {
        let err = load(text).expect_err("must fail");
        let at = format!("test.yaml:{line}:{col}: ");
        assert!(
            err.contains(&at) && err.contains(needle),
            "expected {at}…{needle}… in:\n{err}"
        );
    }

    #[test]
    fn errors_are_located() {
        fails_at(
            &edit("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 10.20.0.0/33"),
            5,
            13,
            "invalid CIDR",
        );
        fails_at(
            &edit("10.20.10.0/24", "10.21.10.0/24"),
            9,
            32,
            "not inside vpc_cidr 10.20.0.0/16",
        );
        fails_at(
            &edit("10.20.11.0/24", "10.20.10.128/25"),
            10,
            32,
            "overlaps subnet private-a",
        );
        fails_at(
            &edit("subnet: private-a, count", "subnet: private-x, count"),
            18,
            22,
            "no subnet named \"private-x\"",
        );
        fails_at(
            &edit("count: 3,", "count: 3, public_ip: true,"),
            18,
            54,
            "public_ip is not possible in private subnet",
        );
        fails_at(
            &edit(
                "allocated_storage: 20\n",
                "allocated_storage: 20\n  backup_retention_period: 36\n",
            ),
            24,
            28,
            "1 to 35 days",
        );
        fails_at(
            &edit(
                "allocated_storage: 20\n",
                "allocated_storage: 20\n  backup_retention_period: 0\n",
            ),
            24,
            28,
            "1 to 35 days",
        );
        fails_at(
            &edit("from: api", "from: apx"),
            15,
            47,
            "no security group named \"apx\"",
        );
        fails_at(
            &edit("[private-a, private-b]", "[private-a, public-a]"),
            24,
            24,
            "is public",
        );
        fails_at(
            &edit("subnet: public-a }", "subnet: private-a }"),
            11,
            62,
            "needs a public subnet",
        );
        fails_at(
            &edit("security_group: api,", "security_group: web,"),
            17,
            88,
            "no security group named \"web\"",
        );
        fails_at(
            &edit(&format!("api, kms_key: {KEY}"), "api, kms_key: alias/x"),
            17,
            102,
            "kms_key \"alias/x\" is invalid",
        );
    }

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn containment_and_overlap() {
        assert!(contains(&c("10.0.0.0/16"), &c("10.0.1.0/24")));
        assert!(contains(&c("10.0.0.0/16"), &c("10.0.0.0/16")));
        assert!(!contains(&c("10.0.0.0/16"), &c("10.1.0.0/24")));
        assert!(!contains(&c("10.0.0.0/24"), &c("10.0.0.0/16")));
        assert!(overlaps(&c("10.0.0.0/24"), &c("10.0.0.128/25")));
        assert!(!overlaps(&c("10.0.0.0/25"), &c("10.0.0.128/25")));
        assert!(!overlaps(&c("10.0.0.0/8"), &c("fd00::/8")));
    }

    #[test]
    fn kms_key_references() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(kms_key_id(id).as_deref(), Some(id));
        assert_eq!(
            kms_key_id(&format!("arn:aws:kms:us-east-1:123456789012:key/{id}")).as_deref(),
            Some(id)
        );
        assert_eq!(kms_key_id("alias/foo"), None);
        assert_eq!(
            kms_key_id("arn:aws:kms:us-east-1:123456789012:alias/foo"),
            None
        );
        assert_eq!(kms_key_id("1234abcd"), None);
    }

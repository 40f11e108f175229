//! The rebuild, as one ordered list. [`super::rebuild`] executes it and [`super::runbook`]
//! renders it; neither has a list of its own.
//!
//! Order matters: the two checks that can refuse (KMS, snapshot digest) come before anything is
//! created; artifacts are verified before instances boot from them; RDS is restored before the
//! instances that use it; OpenBao is restored before workspaces are re-applied onto it.

use crate::model::Kind;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepId {
    Kms,
    Snapshot,
    Network,
    Iam,
    Artifacts,
    Rds,
    Compute,
    OpenbaoStart,
    OpenbaoRestore,
    Workspaces,
    Verify,
    Alarms,
}

/// One step: what the automation does, and what a human does (or checks) for it.
#[derive(Debug)]
pub struct Step {
    pub id: StepId,
    /// Stable name, used in the state file and in output.
    pub slug: &'static str,
    pub title: &'static str,
    /// What `ctl dr rebuild` does in this step.
    pub does: &'static str,
    /// The same by hand, for the runbook: a handlebars snippet rendered with the environment's
    /// names (see `runbook::Facts`).
    pub by_hand: &'static str,
    /// Resource kinds this step converges (plan/apply restricted to them).
    pub kinds: &'static [Kind],
    /// Run again on every resumed attempt, even if an earlier one finished it: a check whose
    /// answer can change between attempts (the key may have been disabled meanwhile).
    pub recheck: bool,
}

use Kind::*;

pub const STEPS: &[Step] = &[
    Step {
        id: StepId::Kms,
        slug: "kms",
        title: "Check the seal key",
        does: "Describes the KMS key that wraps OpenBao's root key (recorded in the manifest) and stops, before anything is touched, unless it exists and is enabled. Without that key the raft snapshot cannot be unsealed by anyone.",
        by_hand: "`aws kms describe-key --key-id <manifest: seal.kms_key_id> --region {{region}}` must show `KeyState: Enabled`. Pending deletion: `aws kms cancel-key-deletion` then `aws kms enable-key`. Gone: stop here and restore access to the key's account; nothing below can work without it.",
        kinds: &[],
        recheck: true,
    },
    Step {
        id: StepId::Snapshot,
        slug: "snapshot",
        title: "Fetch and verify the OpenBao snapshot",
        does: "Downloads the raft snapshot at the version pinned in the manifest and checks its SHA-256 against both the manifest and the sidecar (strict `sha256sum` format). Any mismatch refuses the restore.",
        by_hand: "`aws s3api get-object --bucket {{dr_bucket}} --key <manifest: openbao.key> --version-id <manifest: openbao.version_id> raft.snap`, then `aws s3 cp s3://{{dr_bucket}}/<manifest: openbao.sidecar_key> raft.snap.sha256` and `sha256sum -c --strict raft.snap.sha256`; also compare with `openbao.sha256` in the manifest. Mismatch: do not restore; take the previous manifest.",
        kinds: &[],
        recheck: false,
    },
    Step {
        id: StepId::Network,
        slug: "network",
        title: "Re-create the network",
        does: "Plan/apply restricted to the VPC, subnets, internet gateway, NAT instance, route tables, S3 endpoint, security groups and the DB subnet group. Creates and updates only: a rebuild never deletes.",
        by_hand: "`ctl plan -e {{env_file}}` shows the network resources ({{network}}) as creates; apply them with `ctl apply -e {{env_file}}`.",
        kinds: &[Vpc, Subnet, InternetGateway, RouteTable, NatInstance, VpcEndpoint, SecurityGroup, DbSubnetGroup],
        recheck: false,
    },
    Step {
        id: StepId::Iam,
        slug: "iam",
        title: "Re-create IAM roles and key policy",
        does: "Plan/apply restricted to IAM roles, instance profiles and the KMS key/alias declarations (the key itself survived; its policy is converged so only the OpenBao role may decrypt).",
        by_hand: "Same plan/apply; check `aws kms get-key-policy --key-id <seal key> --policy-name default` grants Decrypt to the OpenBao role only. Roles: {{iam_roles}}.",
        kinds: &[IamRole, IamInstanceProfile, KmsKey, KmsAlias],
        recheck: false,
    },
    Step {
        id: StepId::Artifacts,
        slug: "artifacts",
        title: "Re-verify boot artifacts",
        does: "Streams every pinned boot artifact from S3 and checks it against its sidecar and the digest pinned in git, before any instance boots from it.",
        by_hand: "`ctl artifacts verify -e {{env_file}}` ({{artifacts}}). A failure means the bucket was tampered with or lost: republish from CI with `ctl artifacts publish`.",
        kinds: &[],
        recheck: false,
    },
    Step {
        id: StepId::Rds,
        slug: "rds",
        title: "Restore RDS from its snapshot",
        does: "Restores each missing DB instance from the snapshot named in the manifest (into the rebuilt subnet group), converges its settings, then asserts storage encryption with the declared KMS key and the declared backup retention.",
        by_hand: "`aws rds restore-db-instance-from-db-snapshot --db-instance-identifier {{rds_identifier}} --db-snapshot-identifier <manifest: rds[].snapshot> --db-subnet-group-name {{rds_subnet_group}} --no-publicly-accessible`, then `aws rds modify-db-instance --backup-retention-period {{rds_retention}} --apply-immediately`; `describe-db-instances` must show `StorageEncrypted: true`.",
        kinds: &[DbInstance],
        recheck: false,
    },
    Step {
        id: StepId::Compute,
        slug: "compute",
        title: "Launch instances",
        does: "Plan/apply restricted to EC2 instances (API and OpenBao nodes) and their Elastic IPs; the boot artifacts are verified again by the plan, and the boot fetcher verifies them a third time on the instance.",
        by_hand: "`ctl plan -e {{env_file}}` then `ctl apply`: instances {{instances}}. On each, `journalctl -u cloud-final` shows the fetcher's `verified` lines.",
        kinds: &[Instance, ElasticIp],
        recheck: false,
    },
    Step {
        id: StepId::OpenbaoStart,
        slug: "openbao-start",
        title: "Start an empty OpenBao",
        does: "Local stack: starts `bao server` on empty raft storage with the awskms seal on the manifest's key. Servers: waits until {{bao_addr}} answers.",
        by_hand: "{{#if dev_stack}}`ctl dev status` shows the stack; with bao stopped, empty `{{dev_dir}}/raft` and start `bao server -config={{dev_dir}}/server.hcl`.{{else}}`curl -s {{bao_addr}}/v1/sys/health` answers (501 = not initialized is expected).{{/if}}",
        kinds: &[],
        recheck: false,
    },
    Step {
        id: StepId::OpenbaoRestore,
        slug: "openbao-restore",
        title: "Restore the raft snapshot",
        does: "Initializes the empty server (its throw-away root token stays in memory), re-checks the verified snapshot's digest, restores it with `sys/storage/raft/snapshot-force`, and waits until the server is unsealed by KMS and the operator token works again.",
        by_hand: "`bao operator init -recovery-shares=1 -recovery-threshold=1` (throw the output away), then with that root token `bao operator raft snapshot restore -force raft.snap`. `bao status` must show `Sealed false` without any unseal key: KMS did it. From now on the pre-disaster tokens work again.",
        kinds: &[],
        recheck: false,
    },
    Step {
        id: StepId::Workspaces,
        slug: "workspaces",
        title: "Re-apply workspaces",
        does: "Plan/apply of every OpenBao resource (namespaces, KV, policies, AppRoles, transit, quotas) against the restored server; after a good restore this is a no-op, anything else is drift since the snapshot and is repaired.",
        by_hand: "`ctl plan -e {{env_file}}` ({{workspaces}} workspaces) should say `No changes`; if not, `ctl apply -e {{env_file}}`.",
        kinds: &[],
        recheck: false,
    },
    Step {
        id: StepId::Verify,
        slug: "verify",
        title: "Verify access and isolation",
        does: "Logs in with each sampled workspace's AppRole (response-wrapped secret-id), reads its own KV and is refused another workspace's.",
        by_hand: "`ctl verify -e {{env_file}} --sample 0` prints `ok` for every workspace.",
        kinds: &[],
        recheck: false,
    },
    Step {
        id: StepId::Alarms,
        slug: "alarms",
        title: "Recreate alarms",
        does: "Plan/apply restricted to the SNS topic and subscription, CloudWatch alarms and Route 53 health checks.",
        by_hand: "`ctl plan -e {{env_file}}` then `ctl apply`; `ctl alarms status -e {{env_file}}` lists {{alarms}}. Confirm the webhook subscription if it shows PendingConfirmation.",
        kinds: &[SnsTopic, SnsSubscription, MetricAlarm, Route53HealthCheck],
        recheck: false,
    },
];

/// The step with this slug.
pub fn by_slug(slug: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.slug == slug)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;

    #[test]
    fn every_aws_kind_is_rebuilt_by_exactly_one_step() {
        for kind in Kind::ALL.iter().copied().filter(|k| k.provider() == Provider::Aws) {
            let n = STEPS.iter().filter(|s| s.kinds.contains(&kind)).count();
            assert_eq!(n, 1, "{kind:?} is converged by {n} steps");
        }
    }

    #[test]
    fn slugs_are_unique_and_refusals_come_first() {
        let slugs: std::collections::BTreeSet<_> = STEPS.iter().map(|s| s.slug).collect();
        assert_eq!(slugs.len(), STEPS.len());
        assert_eq!(STEPS[0].id, StepId::Kms);
        assert_eq!(STEPS[1].id, StepId::Snapshot);
        let pos = |id| STEPS.iter().position(|s| s.id == id).unwrap();
        assert!(pos(StepId::Artifacts) < pos(StepId::Compute));
        assert!(pos(StepId::OpenbaoRestore) < pos(StepId::Workspaces));
    }
}

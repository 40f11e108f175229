//! The provider interface: one handler per resource kind, registered in one table
//! ([`handler`]). The apply engine ([`crate::engine`]) is the only caller; it turns each
//! executor step into a [`Request`] and hands it to the kind's handler, so the dispatch from a
//! kind to its code exists exactly once.
//!
//! A handler carries out one step, idempotently: `create` finds an object it already made
//! (a retried step) and refuses one that is not ctl's; `delete` treats "already gone" as
//! success; `update` changes the fields in place. Replaces never reach a handler: the
//! executor splits them into a delete of the old object and a create of the new one.
//!
//! Adding a kind: a module with its attribute struct, its pure normalisation of what the API
//! returns, and a unit struct implementing [`KindHandler`] for its provider's connection; one
//! line in [`handler`]. See ARCHITECTURE.md, "Adding a resource kind".

use crate::aws::{Aws, AwsError};
use crate::diff::{Change, FieldChange, Op};
use crate::model::{Kind, Resource};
use crate::openbao::{Bao, BaoError};

/// One step of a plan, as a handler sees it: exactly the state the step needs.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    Create(&'a Resource),
    Update(Update<'a>),
    Delete(&'a Resource),
}

/// An in-place update: the object as read, as desired, and the fields that differ.
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    pub before: &'a Resource,
    pub after: &'a Resource,
    pub fields: &'a [FieldChange],
}

impl Update<'_> {
    /// Whether `field` is among the changed fields.
    pub fn changed(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f.field == field)
    }
}

/// Why a step cannot be handed to a handler (a hand-edited or corrupt plan file).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{address}: {what} (malformed plan); nothing was written")]
pub struct Malformed {
    pub address: String,
    pub what: String,
}

impl<'a> Request<'a> {
    /// The step `change` asks for. A replace (or re-create) is two steps and must have been
    /// split by the executor ([`crate::execute::steps`]); given whole, it is refused. So is a
    /// state that describes another object than the change's address and kind.
    pub fn of(change: &'a Change) -> Result<Request<'a>, Malformed> {
        let malformed = |what: String| Malformed { address: change.address.to_string(), what };
        if let Some((what, r)) = change.stray_state() {
            return Err(malformed(format!("its `{what}` describes {} ({:?})", r.address, r.kind)));
        }
        match &change.op {
            Op::Create { after } => Ok(Request::Create(after)),
            Op::Update { before, after, fields } => Ok(Request::Update(Update { before, after, fields })),
            Op::Delete { before, .. } => Ok(Request::Delete(before)),
            Op::Replace { .. } | Op::Recreate { .. } => Err(malformed("a replace reached a provider whole".into())),
        }
    }
}

/// What a provider's connection brings: its error type.
pub trait Connection: Sync {
    type Error: std::error::Error + Send + Sync + 'static;
}

impl Connection for Aws {
    type Error = AwsError;
}

impl Connection for Bao {
    type Error = BaoError;
}

/// Create, update and delete one kind's objects through the provider connection `C`.
#[async_trait::async_trait]
pub trait KindHandler<C: Connection>: Sync {
    async fn create(&self, conn: &C, new: &Resource) -> Result<(), C::Error>;
    async fn update(&self, conn: &C, update: Update<'_>) -> Result<(), C::Error>;
    async fn delete(&self, conn: &C, old: &Resource) -> Result<(), C::Error>;
}

/// A kind's handler, with the connection it needs.
#[derive(Clone, Copy)]
pub enum Handler {
    OpenBao(&'static dyn KindHandler<Bao>),
    Aws(&'static dyn KindHandler<Aws>),
}

impl Handler {
    /// Carry out `request` on `conn`.
    pub async fn run<C: Connection>(handler: &dyn KindHandler<C>, conn: &C, request: Request<'_>) -> Result<(), C::Error> {
        match request {
            Request::Create(new) => handler.create(conn, new).await,
            Request::Update(u) => handler.update(conn, u).await,
            Request::Delete(old) => handler.delete(conn, old).await,
        }
    }
}

/// THE registry: the handler of every kind. Exhaustive, so a new [`Kind`] does not compile
/// until it is registered here.
pub fn handler(kind: Kind) -> Handler {
    use crate::aws::{cloudwatch, ec2, elastic_ip, iam, internet_gateway, kms, rds, route53, route_table, security_group, sns, subnet, vpc, vpc_endpoint};
    use crate::openbao::kinds as bao;
    match kind {
        Kind::Namespace => Handler::OpenBao(&bao::Namespace),
        Kind::KvMount => Handler::OpenBao(&bao::KvMount),
        Kind::Policy => Handler::OpenBao(&bao::Policy),
        Kind::AuthMount => Handler::OpenBao(&bao::AuthMount),
        Kind::AppRole => Handler::OpenBao(&bao::AppRole),
        Kind::TransitMount => Handler::OpenBao(&bao::TransitMount),
        Kind::TransitKey => Handler::OpenBao(&bao::TransitKey),
        Kind::RateLimitQuota => Handler::OpenBao(&bao::RateLimitQuota),
        Kind::Vpc => Handler::Aws(&vpc::Vpc),
        Kind::Subnet => Handler::Aws(&subnet::Subnet),
        Kind::InternetGateway => Handler::Aws(&internet_gateway::InternetGateway),
        Kind::RouteTable => Handler::Aws(&route_table::RouteTable),
        Kind::VpcEndpoint => Handler::Aws(&vpc_endpoint::VpcEndpoint),
        Kind::SecurityGroup => Handler::Aws(&security_group::SecurityGroup),
        Kind::NatInstance | Kind::Instance => Handler::Aws(&ec2::Instance),
        Kind::ElasticIp => Handler::Aws(&elastic_ip::ElasticIp),
        Kind::DbSubnetGroup => Handler::Aws(&rds::DbSubnetGroup),
        Kind::DbInstance => Handler::Aws(&rds::DbInstance),
        Kind::KmsKey => Handler::Aws(&kms::KmsKey),
        Kind::KmsAlias => Handler::Aws(&kms::KmsAlias),
        Kind::IamRole => Handler::Aws(&iam::IamRole),
        Kind::IamInstanceProfile => Handler::Aws(&iam::IamInstanceProfile),
        Kind::MetricAlarm => Handler::Aws(&cloudwatch::MetricAlarm),
        Kind::SnsTopic => Handler::Aws(&sns::SnsTopic),
        Kind::SnsSubscription => Handler::Aws(&sns::SnsSubscription),
        Kind::Route53HealthCheck => Handler::Aws(&route53::HealthCheck),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Provider, Scope};

    #[test]
    fn every_kind_is_registered_with_the_provider_it_names() {
        for &kind in Kind::ALL {
            let registered = match handler(kind) {
                Handler::OpenBao(_) => Provider::OpenBao,
                Handler::Aws(_) => Provider::Aws,
            };
            assert_eq!(registered, kind.provider(), "{kind:?}");
        }
    }

    fn resource(address: &str, kind: Kind) -> Resource {
        Resource {
            address: Address::new(address),
            kind,
            scope: Scope::Root,
            name: "x".into(),
            attrs: Default::default(),
            depends_on: vec![],
            container: None,
        }
    }

    #[test]
    fn a_step_gets_exactly_the_state_it_needs_or_is_refused() {
        use crate::diff::ChangeReason::Absent;
        let vpc = || resource("network.vpc", Kind::Vpc);
        let create = Change::new(Op::Create { after: vpc() }, Absent, false);
        assert!(matches!(Request::of(&create), Ok(Request::Create(_))));
        let update = Change::new(Op::Update { before: vpc(), after: vpc(), fields: vec![] }, Absent, false);
        assert!(matches!(Request::of(&update), Ok(Request::Update(_))));
        let delete = Change::new(Op::Delete { before: vpc(), implied_by: None }, Absent, false);
        assert!(matches!(Request::of(&delete), Ok(Request::Delete(_))));
        // What a crafted plan file could hold: refused with the address, never a panic.
        let whole = Change::new(Op::Replace { before: vpc(), after: vpc(), fields: vec![] }, Absent, false);
        let mut other_kind = Change::new(Op::Delete { before: resource("network.vpc", Kind::Subnet), implied_by: None }, Absent, false);
        other_kind.kind = Kind::Vpc;
        let mut elsewhere = Change::new(Op::Create { after: resource("network.subnet.a", Kind::Vpc) }, Absent, false);
        elsewhere.address = Address::new("network.vpc");
        for bad in [whole, other_kind, elsewhere] {
            let e = Request::of(&bad).unwrap_err();
            assert_eq!(e.address, "network.vpc");
            assert!(e.to_string().contains("malformed plan"), "{e}");
        }
    }
}

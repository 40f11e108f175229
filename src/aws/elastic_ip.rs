//! Elastic IPs (`network.elastic_ip.<name>`): a public address kept across instance
//! replacements, optionally associated with one instance (`instance: api.0`, or `nat`).
//! Releasing one gives the address back to AWS for good, so a delete loses data
//! (`--allow-destroy`).

use super::network::{address_filters, owned, tag_filters, tag_spec, unless_gone, Ids};
use super::network_common::{api, code, from_attrs};
use super::{Aws, AwsError};
use crate::model::{Address, Resource};
use crate::providers::{KindHandler, Update};
use aws_sdk_ec2::types::{DomainType, ResourceType};
use serde::{Deserialize, Serialize};

pub fn address(name: &str) -> Address {
    Address::new(format!("network.elastic_ip.{name}"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElasticIpAttrs {
    /// `vpc` (EC2-Classic addresses are gone).
    pub domain: String,
    /// The associated instance, by address (a raw id when it is not ctl's); `None` when free.
    pub instance: Option<String>,
}

pub fn normalize(a: &aws_sdk_ec2::types::Address, ids: &Ids) -> ElasticIpAttrs {
    ElasticIpAttrs {
        domain: a.domain().map(|d| d.as_str().to_string()).unwrap_or_default(),
        instance: instance_id(a).map(|id| ids.show(id)),
    }
}

/// The associated instance's id; moto reports a free address with an empty one.
fn instance_id(a: &aws_sdk_ec2::types::Address) -> Option<&str> {
    a.instance_id().filter(|id| !id.is_empty())
}

fn association_id(a: &aws_sdk_ec2::types::Address) -> Option<&str> {
    a.association_id().filter(|id| !id.is_empty())
}

/// This environment's addresses, with their ctl addresses. Instances must be in `ids` first.
pub async fn observe(aws: &Aws, ec2: &aws_sdk_ec2::Client, ids: &Ids) -> Result<Vec<(Address, ElasticIpAttrs)>, AwsError> {
    let addresses = ec2.describe_addresses().set_filters(Some(tag_filters(aws))).send().await;
    let addresses = addresses.map_err(|e| api(aws, "ec2", "DescribeAddresses", e))?;
    Ok(addresses.addresses().iter().filter_map(|a| Some((owned(aws, a.tags())?, normalize(a, ids)))).collect())
}

async fn find(aws: &Aws, ec2: &aws_sdk_ec2::Client, address: &Address) -> Result<Option<aws_sdk_ec2::types::Address>, AwsError> {
    let found = ec2.describe_addresses().set_filters(Some(address_filters(aws, address.as_str()))).send().await;
    Ok(found.map_err(|e| api(aws, "ec2", "DescribeAddresses", e))?.addresses().first().cloned())
}

pub struct ElasticIp;

#[async_trait::async_trait]
impl KindHandler<Aws> for ElasticIp {
    async fn create(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        // A retried create finds the address it allocated by its tags.
        if find(aws, &ec2, &r.address).await?.is_none() {
            let a: ElasticIpAttrs = from_attrs(&r.address, &r.attrs)?;
            ec2.allocate_address()
                .domain(DomainType::from(a.domain.as_str()))
                .tag_specifications(tag_spec(aws, ResourceType::ElasticIp, &r.address))
                .send()
                .await
                .map_err(|e| api(aws, "ec2", "AllocateAddress", e))?;
        }
        associate(aws, &ec2, r).await
    }

    async fn update(&self, aws: &Aws, u: Update<'_>) -> Result<(), AwsError> {
        associate(aws, &super::client::ec2(aws), u.after).await
    }

    async fn delete(&self, aws: &Aws, r: &Resource) -> Result<(), AwsError> {
        let ec2 = super::client::ec2(aws);
        let Some(live) = find(aws, &ec2, &r.address).await? else { return Ok(()) };
        if let Some(association) = association_id(&live) {
            let gone = ec2.disassociate_address().association_id(association).send().await;
            unless_gone(aws, "DisassociateAddress", gone, &[])?;
        }
        let released = ec2.release_address().set_allocation_id(live.allocation_id().map(str::to_string)).send().await;
        unless_gone(aws, "ReleaseAddress", released, &[])
    }
}

/// Associate the address with exactly the declared instance (or none).
async fn associate(aws: &Aws, ec2: &aws_sdk_ec2::Client, r: &Resource) -> Result<(), AwsError> {
    let a: ElasticIpAttrs = from_attrs(&r.address, &r.attrs)?;
    let live = find(aws, ec2, &r.address).await?;
    let live = live.ok_or_else(|| AwsError::Other(format!("{}: the address does not exist (was its allocation skipped?)", r.address)))?;
    let want = match &a.instance {
        Some(instance) => {
            let found = super::ec2::find(aws, ec2, instance).await?.and_then(|i| i.instance_id().map(str::to_string));
            Some(super::network::need(found, "instance", instance)?)
        }
        None => None,
    };
    if instance_id(&live) == want.as_deref() {
        return Ok(());
    }
    if let Some(association) = association_id(&live) {
        unless_gone(aws, "DisassociateAddress", ec2.disassociate_address().association_id(association).send().await, &[])?;
    }
    if let Some(instance) = want {
        let associated = ec2
            .associate_address()
            .set_allocation_id(live.allocation_id().map(str::to_string))
            .instance_id(instance)
            .allow_reassociation(false)
            .send()
            .await;
        match associated {
            Ok(_) => {}
            Err(e) if code(&e) == Some("Resource.AlreadyAssociated") => {
                return Err(AwsError::Other(format!(
                    "{}: the instance already has another public address associated; nothing was changed",
                    r.address
                )))
            }
            Err(e) => return Err(api(aws, "ec2", "AssociateAddress", e)),
        }
    }
    Ok(())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_its_instance_by_address_or_none() {
        let mut ids = Ids::default();
        ids.0.insert("i-1".into(), Address::new("instance.api.0"));
        let bound = aws_sdk_ec2::types::Address::builder().domain(DomainType::Vpc).instance_id("i-1").build();
        assert_eq!(normalize(&bound, &ids), ElasticIpAttrs { domain: "vpc".into(), instance: Some("instance.api.0".into()) });
        let foreign = aws_sdk_ec2::types::Address::builder().domain(DomainType::Vpc).instance_id("i-9").build();
        assert_eq!(normalize(&foreign, &ids).instance.as_deref(), Some("i-9"), "another instance is drift, by id");
        let free = aws_sdk_ec2::types::Address::builder().domain(DomainType::Vpc).build();
        assert_eq!(normalize(&free, &ids).instance, None);
        let free_in_moto = aws_sdk_ec2::types::Address::builder().domain(DomainType::Vpc).instance_id("").build();
        assert_eq!(normalize(&free_in_moto, &ids).instance, None, "an empty id is no instance");
    }
}

//! `resource`: what the finding is about (instance, access key, bucket, container, cluster).
//!
//! Field names are the API model's `locationName`s. Every field is optional on the wire; absent
//! fields, `null` and empty lists are all omitted when Ward writes a finding.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `resource.resourceType` values Ward emits.
pub mod resource_type {
    pub const INSTANCE: &str = "Instance";
    pub const ACCESS_KEY: &str = "AccessKey";
    pub const S3_BUCKET: &str = "S3Bucket";
    pub const EKS_CLUSTER: &str = "EKSCluster";
    pub const ECS_CLUSTER: &str = "ECSCluster";
    pub const CONTAINER: &str = "Container";
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_details: Option<InstanceDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_details: Option<AccessKeyDetails>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3_bucket_details: Vec<S3BucketDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_details: Option<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks_cluster_details: Option<EksClusterDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_details: Option<KubernetesDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_cluster_details: Option<EcsClusterDetails>,
    /// Resource shapes of protection plans Ward does not model (Lambda, RDS, EBS, …), kept verbatim
    /// so findings imported from GuardDuty survive a round trip.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<IamInstanceProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outpost_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_codes: Vec<ProductCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamInstanceProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interface_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_ip_addresses: Vec<PrivateIpAddressDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_dns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateIpAddressDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// `Root`, `IAMUser`, `AssumedRole`, `FederatedUser`, `Role`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3BucketDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Destination` or `Source`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub bucket_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_server_side_encryption: Option<DefaultServerSideEncryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access: Option<PublicAccess>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultServerSideEncryption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_master_key_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicAccess {
    /// `PUBLIC` or `NOT_PUBLIC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_permission: Option<String>,
    /// Bucket/account policy and ACL breakdown; kept as raw JSON until a detector needs it typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_configuration: Option<Value>,
}

/// `containerDetails`, and each element of ECS task / Kubernetes workload `containers[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `docker`, `containerd`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EksClusterDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_user_details: Option<KubernetesUserDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_workload_details: Option<KubernetesWorkloadDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesUserDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_name: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<ImpersonatedUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpersonatedUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesWorkloadDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `pods`, `deployments`, …
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub workload_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    // The API spells these two in capitals (`hostIPC`, `hostPID`), unlike `hostNetwork`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostPID")]
    pub host_pid: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsClusterDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_services_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_container_instances_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_tasks_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_details: Option<EcsTaskDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsTaskDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `FARGATE` or `EC2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
}

impl Resource {
    /// A stable text identity of the affected resource, used in aggregation keys: which instance
    /// (or, without an instance id, network interface),
    /// container, workload, task, access key or bucket. `None` when the resource names nothing
    /// (then every occurrence of a type would share one finding, which the aggregator refuses).
    pub fn identity(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if let Some(id) = self
            .instance_details
            .as_ref()
            .and_then(|i| i.instance_id.as_deref())
        {
            parts.push(format!("instance={id}"));
        } else if let Some(eni) = self
            .instance_details
            .as_ref()
            .and_then(|i| i.network_interfaces.first())
            .and_then(|n| n.network_interface_id.as_deref())
        {
            // Flow logs in the default format name the network interface, not the instance.
            parts.push(format!("eni={eni}"));
        }
        if let Some(cluster) = &self.eks_cluster_details
            && let Some(name) = cluster.arn.as_deref().or(cluster.name.as_deref())
        {
            parts.push(format!("eks={name}"));
        }
        if let Some(workload) = self
            .kubernetes_details
            .as_ref()
            .and_then(|k| k.kubernetes_workload_details.as_ref())
        {
            // namespace/type/name rather than the pod uid: replicas of one workload share findings.
            let ns = workload.namespace.as_deref().unwrap_or("");
            let kind = workload.workload_type.as_deref().unwrap_or("");
            let name = workload.name.as_deref().unwrap_or("");
            if !name.is_empty() {
                parts.push(format!("workload={ns}/{kind}/{name}"));
            }
        }
        if let Some(cluster) = &self.ecs_cluster_details {
            if let Some(name) = cluster.arn.as_deref().or(cluster.name.as_deref()) {
                parts.push(format!("ecs={name}"));
            }
            if let Some(def) = cluster
                .task_details
                .as_ref()
                .and_then(|t| t.definition_arn.as_deref())
            {
                parts.push(format!("taskdef={def}"));
            }
        }
        if let Some(id) = self
            .container_details
            .as_ref()
            .and_then(|c| c.id.as_deref())
        {
            parts.push(format!("container={id}"));
        }
        if let Some(key) = &self.access_key_details
            && let Some(id) = key.access_key_id.as_deref().or(key.principal_id.as_deref())
        {
            parts.push(format!("principal={id}"));
        }
        for bucket in &self.s3_bucket_details {
            if let Some(name) = bucket.arn.as_deref().or(bucket.name.as_deref()) {
                parts.push(format!("bucket={name}"));
            }
        }
        (!parts.is_empty()).then(|| parts.join(";"))
    }
}

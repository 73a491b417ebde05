//! Every finding type Ward may emit, with its default severity, data source and default resource
//! type, so detectors name types by enum variant rather than by free-form string.
//!
//! Sources: the runtime tables (spec §3), the foundational EC2 / IAM / S3 tables (§5.1–5.3) and the
//! attack-sequence table (§10). Retired and historical names (§5.4 and the note under §3.2) are in
//! [`RETIRED_FINDING_TYPES`]: Ward recognises them in imported findings but never emits them.
//!
//! Severity: GuardDuty documents some types as variable (`Low*`: Low when the instance is the
//! target, High when it is the actor; `Variable`: depends on the command or tool). For those the
//! table holds the level to use when the detector has no better information and marks the basis
//! [`SeverityBasis::Variable`]. A few types are listed by AWS without a published severity; their
//! level here is our choice, marked [`SeverityBasis::Unverified`], and the choice is explained next
//! to the row.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::resource::resource_type;
use super::severity::{Severity, SeverityLevel};

/// Where the evidence for a finding type comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataSource {
    /// Ward's agent (GuardDuty Runtime Monitoring).
    Runtime,
    VpcFlowLogs,
    /// Route 53 Resolver query logs.
    DnsLogs,
    CloudTrailManagement,
    S3DataEvents,
    /// Correlation of other findings and signals (attack sequences).
    Correlation,
}

/// How firmly the default severity is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeverityBasis {
    /// One documented severity.
    Fixed,
    /// Documented as variable; the detector should grade each occurrence.
    Variable,
    /// No published severity; ours is a documented guess.
    Unverified,
}

/// `ThreatPurpose`, the first part of a finding type name; GuardDuty's equivalent of a tactic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreatPurpose {
    AttackSequence,
    Backdoor,
    Behavior,
    CredentialAccess,
    CryptoCurrency,
    DefenseEvasion,
    Discovery,
    Execution,
    Exfiltration,
    Impact,
    InitialAccess,
    PenTest,
    Persistence,
    Policy,
    PrivilegeEscalation,
    Recon,
    Stealth,
    Trojan,
    UnauthorizedAccess,
}

impl ThreatPurpose {
    pub fn name(self) -> &'static str {
        match self {
            Self::AttackSequence => "AttackSequence",
            Self::Backdoor => "Backdoor",
            Self::Behavior => "Behavior",
            Self::CredentialAccess => "CredentialAccess",
            Self::CryptoCurrency => "CryptoCurrency",
            Self::DefenseEvasion => "DefenseEvasion",
            Self::Discovery => "Discovery",
            Self::Execution => "Execution",
            Self::Exfiltration => "Exfiltration",
            Self::Impact => "Impact",
            Self::InitialAccess => "InitialAccess",
            Self::PenTest => "PenTest",
            Self::Persistence => "Persistence",
            Self::Policy => "Policy",
            Self::PrivilegeEscalation => "PrivilegeEscalation",
            Self::Recon => "Recon",
            Self::Stealth => "Stealth",
            Self::Trojan => "Trojan",
            Self::UnauthorizedAccess => "UnauthorizedAccess",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        const ALL: [ThreatPurpose; 19] = [
            ThreatPurpose::AttackSequence,
            ThreatPurpose::Backdoor,
            ThreatPurpose::Behavior,
            ThreatPurpose::CredentialAccess,
            ThreatPurpose::CryptoCurrency,
            ThreatPurpose::DefenseEvasion,
            ThreatPurpose::Discovery,
            ThreatPurpose::Execution,
            ThreatPurpose::Exfiltration,
            ThreatPurpose::Impact,
            ThreatPurpose::InitialAccess,
            ThreatPurpose::PenTest,
            ThreatPurpose::Persistence,
            ThreatPurpose::Policy,
            ThreatPurpose::PrivilegeEscalation,
            ThreatPurpose::Recon,
            ThreatPurpose::Stealth,
            ThreatPurpose::Trojan,
            ThreatPurpose::UnauthorizedAccess,
        ];
        ALL.into_iter().find(|p| p.name() == name)
    }
}

/// `ResourceTypeAffected`, the part of the name between `:` and `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AffectedResource {
    Runtime,
    Ec2,
    IamUser,
    S3,
    /// Attack-sequence scopes.
    Iam,
    Eks,
    Ecs,
}

impl AffectedResource {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Runtime" => Self::Runtime,
            "EC2" => Self::Ec2,
            "IAMUser" => Self::IamUser,
            "S3" => Self::S3,
            "IAM" => Self::Iam,
            "EKS" => Self::Eks,
            "ECS" => Self::Ecs,
            _ => return None,
        })
    }

    /// The `resource.resourceType` a finding of this family carries by default. Runtime findings
    /// carry `Instance`, `EKSCluster`, `ECSCluster` or `Container` depending on where the process
    /// ran; `Instance` is the default for a plain host.
    pub fn default_resource_type(self) -> &'static str {
        match self {
            Self::Runtime | Self::Ec2 => resource_type::INSTANCE,
            Self::IamUser | Self::Iam => resource_type::ACCESS_KEY,
            Self::S3 => resource_type::S3_BUCKET,
            Self::Eks => resource_type::EKS_CLUSTER,
            Self::Ecs => resource_type::ECS_CLUSTER,
        }
    }
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingTypeInfo {
    pub name: &'static str,
    pub default_level: SeverityLevel,
    pub severity_basis: SeverityBasis,
    pub source: DataSource,
}

macro_rules! finding_types {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $level:ident, $basis:ident, $source:ident; )*) => {
        /// A finding type Ward can emit. `name()` is the exact GuardDuty type string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FindingType {
            $( $(#[$doc])* $variant, )*
        }

        impl FindingType {
            /// Every type, in catalogue order.
            pub const ALL: &'static [FindingType] = &[ $( FindingType::$variant, )* ];

            pub fn info(self) -> &'static FindingTypeInfo {
                match self {
                    $( FindingType::$variant => &FindingTypeInfo {
                        name: $name,
                        default_level: SeverityLevel::$level,
                        severity_basis: SeverityBasis::$basis,
                        source: DataSource::$source,
                    }, )*
                }
            }
        }
    };
}

finding_types! {
    // §3.1 Runtime: network and DNS threat intelligence, attributed to a process.
    BackdoorRuntimeCncActivityB = "Backdoor:Runtime/C&CActivity.B", High, Fixed, Runtime;
    BackdoorRuntimeCncActivityBDns = "Backdoor:Runtime/C&CActivity.B!DNS", High, Fixed, Runtime;
    CryptoCurrencyRuntimeBitcoinToolB = "CryptoCurrency:Runtime/BitcoinTool.B", High, Fixed, Runtime;
    CryptoCurrencyRuntimeBitcoinToolBDns = "CryptoCurrency:Runtime/BitcoinTool.B!DNS", High, Fixed, Runtime;
    UnauthorizedAccessRuntimeTorRelay = "UnauthorizedAccess:Runtime/TorRelay", High, Fixed, Runtime;
    UnauthorizedAccessRuntimeTorClient = "UnauthorizedAccess:Runtime/TorClient", High, Fixed, Runtime;
    TrojanRuntimeBlackholeTraffic = "Trojan:Runtime/BlackholeTraffic", Medium, Fixed, Runtime;
    TrojanRuntimeBlackholeTrafficDns = "Trojan:Runtime/BlackholeTraffic!DNS", Medium, Fixed, Runtime;
    TrojanRuntimeDropPoint = "Trojan:Runtime/DropPoint", Medium, Fixed, Runtime;
    TrojanRuntimeDropPointDns = "Trojan:Runtime/DropPoint!DNS", Medium, Fixed, Runtime;
    TrojanRuntimeDgaDomainRequestCDns = "Trojan:Runtime/DGADomainRequest.C!DNS", High, Fixed, Runtime;
    TrojanRuntimeDriveBySourceTrafficDns = "Trojan:Runtime/DriveBySourceTraffic!DNS", High, Fixed, Runtime;
    TrojanRuntimePhishingDomainRequestDns = "Trojan:Runtime/PhishingDomainRequest!DNS", High, Fixed, Runtime;
    ImpactRuntimeAbusedDomainRequestReputation = "Impact:Runtime/AbusedDomainRequest.Reputation", Medium, Fixed, Runtime;
    ImpactRuntimeBitcoinDomainRequestReputation = "Impact:Runtime/BitcoinDomainRequest.Reputation", High, Fixed, Runtime;
    ImpactRuntimeMaliciousDomainRequestReputation = "Impact:Runtime/MaliciousDomainRequest.Reputation", High, Fixed, Runtime;
    ImpactRuntimeSuspiciousDomainRequestReputation = "Impact:Runtime/SuspiciousDomainRequest.Reputation", Low, Fixed, Runtime;
    UnauthorizedAccessRuntimeMetadataDnsRebind = "UnauthorizedAccess:Runtime/MetadataDNSRebind", High, Fixed, Runtime;

    // §3.2 Runtime: behaviour.
    ExecutionRuntimeNewBinaryExecuted = "Execution:Runtime/NewBinaryExecuted", Medium, Fixed, Runtime;
    ExecutionRuntimeNewLibraryLoaded = "Execution:Runtime/NewLibraryLoaded", Medium, Fixed, Runtime;
    ExecutionRuntimeReverseShell = "Execution:Runtime/ReverseShell", High, Fixed, Runtime;
    /// Low / Medium / High by command; Medium when ungraded.
    ExecutionRuntimeSuspiciousCommand = "Execution:Runtime/SuspiciousCommand", Medium, Variable, Runtime;
    ExecutionRuntimeSuspiciousShellCreated = "Execution:Runtime/SuspiciousShellCreated", Low, Fixed, Runtime;
    /// High for offensive-only tools, Low for dual-use ones.
    ExecutionRuntimeSuspiciousTool = "Execution:Runtime/SuspiciousTool", High, Variable, Runtime;
    ExecutionRuntimeMaliciousFileExecuted = "Execution:Runtime/MaliciousFileExecuted", High, Fixed, Runtime;
    /// Unpublished severity: same as the AWS-intel variant, since the evidence (a hash on a threat
    /// list) is of the same kind.
    ExecutionRuntimeMaliciousFileExecutedCustom = "Execution:Runtime/MaliciousFileExecuted.Custom", High, Unverified, Runtime;
    ImpactRuntimeCryptoMinerExecuted = "Impact:Runtime/CryptoMinerExecuted", High, Fixed, Runtime;
    PrivilegeEscalationRuntimeDockerSocketAccessed = "PrivilegeEscalation:Runtime/DockerSocketAccessed", Medium, Fixed, Runtime;
    PrivilegeEscalationRuntimeRuncContainerEscape = "PrivilegeEscalation:Runtime/RuncContainerEscape", High, Fixed, Runtime;
    PrivilegeEscalationRuntimeCGroupsReleaseAgentModified = "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified", High, Fixed, Runtime;
    PrivilegeEscalationRuntimeContainerMountsHostDirectory = "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory", Medium, Fixed, Runtime;
    PrivilegeEscalationRuntimeUserfaultfdUsage = "PrivilegeEscalation:Runtime/UserfaultfdUsage", Medium, Fixed, Runtime;
    PrivilegeEscalationRuntimeElevationToRoot = "PrivilegeEscalation:Runtime/ElevationToRoot", Medium, Fixed, Runtime;
    PrivilegeEscalationRuntimeSuspiciousCommand = "PrivilegeEscalation:Runtime/SuspiciousCommand", Medium, Fixed, Runtime;
    /// Unpublished severity for the three SensitiveFileModified types: Medium, the level of the
    /// neighbouring SuspiciousCommand types of the same tactic.
    PrivilegeEscalationRuntimeSensitiveFileModified = "PrivilegeEscalation:Runtime/SensitiveFileModified", Medium, Unverified, Runtime;
    DefenseEvasionRuntimeProcessInjectionProc = "DefenseEvasion:Runtime/ProcessInjection.Proc", High, Fixed, Runtime;
    DefenseEvasionRuntimeProcessInjectionPtrace = "DefenseEvasion:Runtime/ProcessInjection.Ptrace", Medium, Fixed, Runtime;
    DefenseEvasionRuntimeProcessInjectionVirtualMemoryWrite = "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite", High, Fixed, Runtime;
    DefenseEvasionRuntimeFilelessExecution = "DefenseEvasion:Runtime/FilelessExecution", Medium, Fixed, Runtime;
    DefenseEvasionRuntimePtraceAntiDebugging = "DefenseEvasion:Runtime/PtraceAntiDebugging", Low, Fixed, Runtime;
    /// Variable by command (firewall off, crontab wiped, LD_PRELOAD takeover…); Medium when ungraded.
    DefenseEvasionRuntimeSuspiciousCommand = "DefenseEvasion:Runtime/SuspiciousCommand", Medium, Variable, Runtime;
    DefenseEvasionRuntimeKernelModuleLoaded = "DefenseEvasion:Runtime/KernelModuleLoaded", High, Fixed, Runtime;
    DefenseEvasionRuntimeSensitiveFileModified = "DefenseEvasion:Runtime/SensitiveFileModified", Medium, Unverified, Runtime;
    DiscoveryRuntimeSuspiciousCommand = "Discovery:Runtime/SuspiciousCommand", Low, Fixed, Runtime;
    PersistenceRuntimeSuspiciousCommand = "Persistence:Runtime/SuspiciousCommand", Medium, Fixed, Runtime;
    PersistenceRuntimeSensitiveFileModified = "Persistence:Runtime/SensitiveFileModified", Medium, Unverified, Runtime;

    // §5.1 EC2 (VPC Flow Logs and DNS logs).
    BackdoorEc2CncActivityB = "Backdoor:EC2/C&CActivity.B", High, Fixed, VpcFlowLogs;
    BackdoorEc2CncActivityBDns = "Backdoor:EC2/C&CActivity.B!DNS", High, Fixed, DnsLogs;
    BackdoorEc2DenialOfServiceDns = "Backdoor:EC2/DenialOfService.Dns", High, Fixed, VpcFlowLogs;
    BackdoorEc2DenialOfServiceTcp = "Backdoor:EC2/DenialOfService.Tcp", High, Fixed, VpcFlowLogs;
    BackdoorEc2DenialOfServiceUdp = "Backdoor:EC2/DenialOfService.Udp", High, Fixed, VpcFlowLogs;
    BackdoorEc2DenialOfServiceUdpOnTcpPorts = "Backdoor:EC2/DenialOfService.UdpOnTcpPorts", High, Fixed, VpcFlowLogs;
    BackdoorEc2DenialOfServiceUnusualProtocol = "Backdoor:EC2/DenialOfService.UnusualProtocol", High, Fixed, VpcFlowLogs;
    BackdoorEc2Spambot = "Backdoor:EC2/Spambot", Medium, Fixed, VpcFlowLogs;
    BehaviorEc2NetworkPortUnusual = "Behavior:EC2/NetworkPortUnusual", Medium, Fixed, VpcFlowLogs;
    BehaviorEc2TrafficVolumeUnusual = "Behavior:EC2/TrafficVolumeUnusual", Medium, Fixed, VpcFlowLogs;
    CryptoCurrencyEc2BitcoinToolB = "CryptoCurrency:EC2/BitcoinTool.B", High, Fixed, VpcFlowLogs;
    CryptoCurrencyEc2BitcoinToolBDns = "CryptoCurrency:EC2/BitcoinTool.B!DNS", High, Fixed, DnsLogs;
    DefenseEvasionEc2UnusualDnsResolver = "DefenseEvasion:EC2/UnusualDNSResolver", Medium, Fixed, VpcFlowLogs;
    DefenseEvasionEc2UnusualDohActivity = "DefenseEvasion:EC2/UnusualDoHActivity", Medium, Fixed, VpcFlowLogs;
    DefenseEvasionEc2UnusualDotActivity = "DefenseEvasion:EC2/UnusualDoTActivity", Medium, Fixed, VpcFlowLogs;
    ImpactEc2AbusedDomainRequestReputation = "Impact:EC2/AbusedDomainRequest.Reputation", Medium, Fixed, DnsLogs;
    ImpactEc2BitcoinDomainRequestReputation = "Impact:EC2/BitcoinDomainRequest.Reputation", High, Fixed, DnsLogs;
    ImpactEc2MaliciousDomainRequestReputation = "Impact:EC2/MaliciousDomainRequest.Reputation", High, Fixed, DnsLogs;
    ImpactEc2MaliciousDomainRequestCustom = "Impact:EC2/MaliciousDomainRequest.Custom", Medium, Fixed, DnsLogs;
    ImpactEc2SuspiciousDomainRequestReputation = "Impact:EC2/SuspiciousDomainRequest.Reputation", Low, Fixed, DnsLogs;
    ImpactEc2PortSweep = "Impact:EC2/PortSweep", High, Fixed, VpcFlowLogs;
    /// Low when the instance is the target, High when it is the actor.
    ImpactEc2WinRmBruteForce = "Impact:EC2/WinRMBruteForce", Low, Variable, VpcFlowLogs;
    ReconEc2PortProbeEmrUnprotectedPort = "Recon:EC2/PortProbeEMRUnprotectedPort", High, Fixed, VpcFlowLogs;
    /// Low, High when the probed port is 9200 or 9300 (Elasticsearch).
    ReconEc2PortProbeUnprotectedPort = "Recon:EC2/PortProbeUnprotectedPort", Low, Variable, VpcFlowLogs;
    ReconEc2Portscan = "Recon:EC2/Portscan", Medium, Fixed, VpcFlowLogs;
    TrojanEc2BlackholeTraffic = "Trojan:EC2/BlackholeTraffic", Medium, Fixed, VpcFlowLogs;
    TrojanEc2BlackholeTrafficDns = "Trojan:EC2/BlackholeTraffic!DNS", Medium, Fixed, DnsLogs;
    TrojanEc2DgaDomainRequestB = "Trojan:EC2/DGADomainRequest.B", High, Fixed, DnsLogs;
    TrojanEc2DgaDomainRequestCDns = "Trojan:EC2/DGADomainRequest.C!DNS", High, Fixed, DnsLogs;
    TrojanEc2DnsDataExfiltration = "Trojan:EC2/DNSDataExfiltration", High, Fixed, DnsLogs;
    TrojanEc2DriveBySourceTrafficDns = "Trojan:EC2/DriveBySourceTraffic!DNS", High, Fixed, DnsLogs;
    TrojanEc2DropPoint = "Trojan:EC2/DropPoint", Medium, Fixed, VpcFlowLogs;
    TrojanEc2DropPointDns = "Trojan:EC2/DropPoint!DNS", Medium, Fixed, DnsLogs;
    TrojanEc2PhishingDomainRequestDns = "Trojan:EC2/PhishingDomainRequest!DNS", High, Fixed, DnsLogs;
    UnauthorizedAccessEc2MaliciousIpCallerCustom = "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", Medium, Fixed, VpcFlowLogs;
    UnauthorizedAccessEc2MetadataDnsRebind = "UnauthorizedAccess:EC2/MetadataDNSRebind", High, Fixed, DnsLogs;
    /// Low when the instance is the target, High when it is the actor.
    UnauthorizedAccessEc2RdpBruteForce = "UnauthorizedAccess:EC2/RDPBruteForce", Low, Variable, VpcFlowLogs;
    /// Low when the instance is the target, High when it is the actor. Port 22 only.
    UnauthorizedAccessEc2SshBruteForce = "UnauthorizedAccess:EC2/SSHBruteForce", Low, Variable, VpcFlowLogs;
    UnauthorizedAccessEc2TorClient = "UnauthorizedAccess:EC2/TorClient", High, Fixed, VpcFlowLogs;
    UnauthorizedAccessEc2TorRelay = "UnauthorizedAccess:EC2/TorRelay", High, Fixed, VpcFlowLogs;

    // §5.2 IAM (CloudTrail management events).
    CredentialAccessIamUserAnomalousBehavior = "CredentialAccess:IAMUser/AnomalousBehavior", Medium, Fixed, CloudTrailManagement;
    DefenseEvasionIamUserAnomalousBehavior = "DefenseEvasion:IAMUser/AnomalousBehavior", Medium, Fixed, CloudTrailManagement;
    DefenseEvasionIamUserBedrockLoggingDisabled = "DefenseEvasion:IAMUser/BedrockLoggingDisabled", Medium, Fixed, CloudTrailManagement;
    DiscoveryIamUserAnomalousBehavior = "Discovery:IAMUser/AnomalousBehavior", Low, Fixed, CloudTrailManagement;
    ExfiltrationIamUserAnomalousBehavior = "Exfiltration:IAMUser/AnomalousBehavior", High, Fixed, CloudTrailManagement;
    ImpactIamUserAnomalousBehavior = "Impact:IAMUser/AnomalousBehavior", High, Fixed, CloudTrailManagement;
    InitialAccessIamUserAnomalousBehavior = "InitialAccess:IAMUser/AnomalousBehavior", Medium, Fixed, CloudTrailManagement;
    PersistenceIamUserAnomalousBehavior = "Persistence:IAMUser/AnomalousBehavior", Medium, Fixed, CloudTrailManagement;
    PrivilegeEscalationIamUserAnomalousBehavior = "PrivilegeEscalation:IAMUser/AnomalousBehavior", Medium, Fixed, CloudTrailManagement;
    PenTestIamUserKaliLinux = "PenTest:IAMUser/KaliLinux", Medium, Fixed, CloudTrailManagement;
    PenTestIamUserParrotLinux = "PenTest:IAMUser/ParrotLinux", Medium, Fixed, CloudTrailManagement;
    PenTestIamUserPentooLinux = "PenTest:IAMUser/PentooLinux", Medium, Fixed, CloudTrailManagement;
    PolicyIamUserRootCredentialUsage = "Policy:IAMUser/RootCredentialUsage", Low, Fixed, CloudTrailManagement;
    PolicyIamUserShortTermRootCredentialUsage = "Policy:IAMUser/ShortTermRootCredentialUsage", Low, Fixed, CloudTrailManagement;
    ReconIamUserMaliciousIpCaller = "Recon:IAMUser/MaliciousIPCaller", Medium, Fixed, CloudTrailManagement;
    ReconIamUserMaliciousIpCallerCustom = "Recon:IAMUser/MaliciousIPCaller.Custom", Medium, Fixed, CloudTrailManagement;
    ReconIamUserTorIpCaller = "Recon:IAMUser/TorIPCaller", Medium, Fixed, CloudTrailManagement;
    StealthIamUserCloudTrailLoggingDisabled = "Stealth:IAMUser/CloudTrailLoggingDisabled", Low, Fixed, CloudTrailManagement;
    /// Low / Medium / High by how much the policy was weakened.
    StealthIamUserPasswordPolicyChange = "Stealth:IAMUser/PasswordPolicyChange", Low, Variable, CloudTrailManagement;
    UnauthorizedAccessIamUserConsoleLoginSuccessB = "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B", Medium, Fixed, CloudTrailManagement;
    UnauthorizedAccessIamUserInstanceCredentialExfiltrationOutsideAws = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", High, Fixed, CloudTrailManagement;
    /// High; Medium when the calling account is affiliated (`remoteAccountDetails.affiliated`).
    UnauthorizedAccessIamUserInstanceCredentialExfiltrationInsideAws = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS", High, Variable, CloudTrailManagement;
    UnauthorizedAccessIamUserResourceCredentialExfiltrationOutsideAws = "UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.OutsideAWS", High, Fixed, CloudTrailManagement;
    /// Unpublished severity: High like its OutsideAWS sibling and the instance-credential variant.
    UnauthorizedAccessIamUserResourceCredentialExfiltrationInsideAws = "UnauthorizedAccess:IAMUser/ResourceCredentialExfiltration.InsideAWS", High, Unverified, CloudTrailManagement;
    UnauthorizedAccessIamUserMaliciousIpCaller = "UnauthorizedAccess:IAMUser/MaliciousIPCaller", Medium, Fixed, CloudTrailManagement;
    UnauthorizedAccessIamUserMaliciousIpCallerCustom = "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", Medium, Fixed, CloudTrailManagement;
    UnauthorizedAccessIamUserTorIpCaller = "UnauthorizedAccess:IAMUser/TorIPCaller", Medium, Fixed, CloudTrailManagement;

    // §5.3 S3.
    DiscoveryS3AnomalousBehavior = "Discovery:S3/AnomalousBehavior", Low, Fixed, S3DataEvents;
    DiscoveryS3MaliciousIpCaller = "Discovery:S3/MaliciousIPCaller", High, Fixed, S3DataEvents;
    DiscoveryS3MaliciousIpCallerCustom = "Discovery:S3/MaliciousIPCaller.Custom", High, Fixed, S3DataEvents;
    DiscoveryS3TorIpCaller = "Discovery:S3/TorIPCaller", Medium, Fixed, S3DataEvents;
    ExfiltrationS3AnomalousBehavior = "Exfiltration:S3/AnomalousBehavior", High, Fixed, S3DataEvents;
    ExfiltrationS3MaliciousIpCaller = "Exfiltration:S3/MaliciousIPCaller", High, Fixed, S3DataEvents;
    ImpactS3AnomalousBehaviorDelete = "Impact:S3/AnomalousBehavior.Delete", High, Fixed, S3DataEvents;
    ImpactS3AnomalousBehaviorPermission = "Impact:S3/AnomalousBehavior.Permission", High, Fixed, S3DataEvents;
    ImpactS3AnomalousBehaviorWrite = "Impact:S3/AnomalousBehavior.Write", Medium, Fixed, S3DataEvents;
    ImpactS3MaliciousIpCaller = "Impact:S3/MaliciousIPCaller", High, Fixed, S3DataEvents;
    PenTestS3KaliLinux = "PenTest:S3/KaliLinux", Medium, Fixed, S3DataEvents;
    PenTestS3ParrotLinux = "PenTest:S3/ParrotLinux", Medium, Fixed, S3DataEvents;
    PenTestS3PentooLinux = "PenTest:S3/PentooLinux", Medium, Fixed, S3DataEvents;
    PolicyS3AccountBlockPublicAccessDisabled = "Policy:S3/AccountBlockPublicAccessDisabled", Low, Fixed, CloudTrailManagement;
    PolicyS3BucketAnonymousAccessGranted = "Policy:S3/BucketAnonymousAccessGranted", High, Fixed, CloudTrailManagement;
    PolicyS3BucketBlockPublicAccessDisabled = "Policy:S3/BucketBlockPublicAccessDisabled", Low, Fixed, CloudTrailManagement;
    PolicyS3BucketPublicAccessGranted = "Policy:S3/BucketPublicAccessGranted", High, Fixed, CloudTrailManagement;
    StealthS3ServerAccessLoggingDisabled = "Stealth:S3/ServerAccessLoggingDisabled", Low, Fixed, CloudTrailManagement;
    UnauthorizedAccessS3MaliciousIpCallerCustom = "UnauthorizedAccess:S3/MaliciousIPCaller.Custom", High, Fixed, S3DataEvents;
    UnauthorizedAccessS3TorIpCaller = "UnauthorizedAccess:S3/TorIPCaller", High, Fixed, S3DataEvents;

    // §10 Attack sequences (correlation).
    AttackSequenceIamCompromisedCredentials = "AttackSequence:IAM/CompromisedCredentials", Critical, Fixed, Correlation;
    AttackSequenceS3CompromisedData = "AttackSequence:S3/CompromisedData", Critical, Fixed, Correlation;
    AttackSequenceEksCompromisedCluster = "AttackSequence:EKS/CompromisedCluster", Critical, Fixed, Correlation;
    AttackSequenceEcsCompromisedCluster = "AttackSequence:ECS/CompromisedCluster", Critical, Fixed, Correlation;
    AttackSequenceEc2CompromisedInstanceGroup = "AttackSequence:EC2/CompromisedInstanceGroup", Critical, Fixed, Correlation;
}

/// Retired (§5.4) and historical runtime (§3.2 note) type names: recognised, never emitted.
pub const RETIRED_FINDING_TYPES: &[&str] = &[
    "Discovery:S3/BucketEnumeration.Unusual",
    "Exfiltration:S3/ObjectRead.Unusual",
    "Impact:S3/ObjectDelete.Unusual",
    "Impact:S3/PermissionsModification.Unusual",
    "Persistence:IAMUser/NetworkPermissions",
    "Persistence:IAMUser/ResourcePermissions",
    "Persistence:IAMUser/UserPermissions",
    "PrivilegeEscalation:IAMUser/AdministrativePermissions",
    "Recon:IAMUser/NetworkPermissions",
    "Recon:IAMUser/ResourcePermissions",
    "Recon:IAMUser/UserPermissions",
    "ResourceConsumption:IAMUser/ComputeResources",
    "Stealth:IAMUser/LoggingConfigurationModified",
    "UnauthorizedAccess:IAMUser/ConsoleLogin",
    "UnauthorizedAccess:EC2/TorIPCaller",
    "Backdoor:EC2/XORDDOS",
    "Behavior:IAMUser/InstanceLaunchUnusual",
    "CryptoCurrency:EC2/BitcoinTool.A",
    "UnauthorizedAccess:IAMUser/UnusualASNCaller",
    "Discovery:Runtime/RawSocketCreated",
    "Execution:Runtime/MemoryMarkedExecutable",
    "UnauthorizedAccess:Runtime/MaliciousIPCaller.Custom",
];

impl FindingType {
    /// The exact GuardDuty type string.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn default_level(self) -> SeverityLevel {
        self.info().default_level
    }

    /// The numeric severity to emit when the detector does not grade the occurrence.
    pub fn default_severity(self) -> Severity {
        self.info().default_level.default_severity()
    }

    pub fn severity_basis(self) -> SeverityBasis {
        self.info().severity_basis
    }

    pub fn source(self) -> DataSource {
        self.info().source
    }

    /// The tactic-like first part of the name.
    pub fn threat_purpose(self) -> ThreatPurpose {
        let (purpose, _) = self
            .name()
            .split_once(':')
            .expect("catalogue names contain ':'");
        ThreatPurpose::from_name(purpose)
            .expect("catalogue purposes are all known (checked by test)")
    }

    pub fn affected_resource(self) -> AffectedResource {
        AffectedResource::from_name(self.name_parts().1)
            .expect("catalogue resource kinds are all known (checked by test)")
    }

    /// The `resource.resourceType` findings of this type carry by default.
    pub fn default_resource_type(self) -> &'static str {
        self.affected_resource().default_resource_type()
    }

    /// `ThreatFamilyName.DetectionMechanism!Artifact`, the part after `/`.
    pub fn threat_family(self) -> &'static str {
        self.name_parts().2
    }

    /// True for `!DNS` types and `…DomainRequest…` types, whose indicator is a domain name.
    pub fn is_domain_based(self) -> bool {
        let family = self.threat_family();
        family.ends_with("!DNS")
            || family.contains("DomainRequest")
            || family == "MetadataDNSRebind"
    }

    /// True for `.Custom` types, raised from a customer's threat list.
    pub fn is_custom_threat_list(self) -> bool {
        self.threat_family().ends_with(".Custom")
    }

    fn name_parts(self) -> (&'static str, &'static str, &'static str) {
        let name = self.name();
        let (purpose, rest) = name.split_once(':').expect("catalogue names contain ':'");
        let (resource, family) = rest.split_once('/').expect("catalogue names contain '/'");
        (purpose, resource, family)
    }
}

/// Error for a type name not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFindingType(pub String);

impl fmt::Display for UnknownFindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if RETIRED_FINDING_TYPES.contains(&self.0.as_str()) {
            write!(
                f,
                "finding type {:?} is retired and not emitted by Ward",
                self.0
            )
        } else {
            write!(f, "unknown finding type {:?}", self.0)
        }
    }
}

impl std::error::Error for UnknownFindingType {}

impl FromStr for FindingType {
    type Err = UnknownFindingType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FindingType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == name)
            .ok_or_else(|| UnknownFindingType(name.to_owned()))
    }
}

impl fmt::Display for FindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for FindingType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for FindingType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = HashSet::new();
        for &t in FindingType::ALL {
            assert!(seen.insert(t.name()), "duplicate name {}", t.name());
            assert_eq!(t.name().parse::<FindingType>(), Ok(t));
        }
    }

    #[test]
    fn every_name_has_a_known_purpose_and_resource_kind() {
        for &t in FindingType::ALL {
            // These panic on an unknown part; calling them is the check.
            let purpose = t.threat_purpose();
            assert!(t.name().starts_with(purpose.name()));
            let _ = t.affected_resource();
            assert!(!t.threat_family().is_empty());
        }
    }

    #[test]
    fn retired_names_are_not_emittable() {
        for name in RETIRED_FINDING_TYPES {
            let err = name.parse::<FindingType>().unwrap_err();
            assert!(err.to_string().contains("retired"), "{err}");
        }
        let err = "Foo:EC2/Bar".parse::<FindingType>().unwrap_err();
        assert_eq!(err.to_string(), "unknown finding type \"Foo:EC2/Bar\"");
    }

    #[test]
    fn spot_check_rows_against_the_spec_tables() {
        use FindingType as T;
        assert_eq!(
            T::UnauthorizedAccessEc2SshBruteForce.default_level(),
            SeverityLevel::Low
        );
        assert_eq!(
            T::UnauthorizedAccessEc2SshBruteForce.severity_basis(),
            SeverityBasis::Variable
        );
        assert_eq!(
            T::ImpactRuntimeSuspiciousDomainRequestReputation.default_level(),
            SeverityLevel::Low
        );
        assert_eq!(
            T::PrivilegeEscalationRuntimeCGroupsReleaseAgentModified.default_severity(),
            Severity(8.0)
        );
        assert_eq!(
            T::AttackSequenceEc2CompromisedInstanceGroup.default_level(),
            SeverityLevel::Critical
        );
        assert_eq!(T::BackdoorEc2CncActivityBDns.source(), DataSource::DnsLogs);
        assert_eq!(
            T::PolicyS3BucketPublicAccessGranted.source(),
            DataSource::CloudTrailManagement
        );
        assert_eq!(
            T::DiscoveryS3TorIpCaller.default_resource_type(),
            "S3Bucket"
        );
        assert_eq!(
            T::ReconIamUserTorIpCaller.default_resource_type(),
            "AccessKey"
        );
        assert_eq!(
            T::ExecutionRuntimeReverseShell.default_resource_type(),
            "Instance"
        );
        assert_eq!(
            T::BackdoorRuntimeCncActivityBDns.threat_purpose(),
            ThreatPurpose::Backdoor
        );
        assert!(T::TrojanEc2DropPointDns.is_domain_based());
        assert!(T::ImpactEc2MaliciousDomainRequestCustom.is_domain_based());
        assert!(!T::TrojanEc2DropPoint.is_domain_based());
        assert!(T::UnauthorizedAccessEc2MaliciousIpCallerCustom.is_custom_threat_list());
        assert!(!T::ReconIamUserMaliciousIpCaller.is_custom_threat_list());
    }

    #[test]
    fn serde_uses_the_type_string() {
        let json = serde_json::to_string(&FindingType::BackdoorRuntimeCncActivityBDns).unwrap();
        assert_eq!(json, "\"Backdoor:Runtime/C&CActivity.B!DNS\"");
        let back: FindingType = serde_json::from_str(&json).unwrap();
        assert_eq!(back, FindingType::BackdoorRuntimeCncActivityBDns);
        assert!(serde_json::from_str::<FindingType>("\"Nope:EC2/X\"").is_err());
    }
}

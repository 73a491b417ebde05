//! `service.runtimeDetails`: the process behind a runtime finding and the type-specific context.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RuntimeContext>,
}

/// `ProcessDetails`: the acting process. `pid` is the host pid, `namespacePid` the pid inside the
/// container's pid namespace; `uuid` identifies the process instance (Ward derives it from pid and
/// start time, which stay unique where a pid alone is reused).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_pid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euid: Option<i64>,
    /// Ancestors, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<LineageObject>,
}

/// One ancestor in `process.lineage[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_pid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_uuid: Option<String>,
}

/// `RuntimeContext`: which members are set depends on the finding type (see the spec's §2.6 table).
/// Values here (paths, command lines) are attacker-controlled: consumers must escape them before
/// display.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifying_process: Option<Box<ProcessDetails>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ld_preload_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runc_binary_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_agent_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_file_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell_history_file_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_process: Option<Box<ProcessDetails>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iana_protocol_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory_regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line_example: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_file_path: Option<String>,
    /// `Write`, `Delete`, `Rename`, `Link` or `Symlink` on a sensitive file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// At most 25 entries in GuardDuty's findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_file_paths: Vec<String>,
}

//! The facts an event carries beyond its process, one struct per family key.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Ancestor, Text, is_false};

/// `exit`: how a process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitFacts {
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
    pub core_dumped: bool,
}

impl ExitFacts {
    /// From a raw wait status as the kernel keeps it in `task->exit_code`.
    pub fn from_wait_status(status: u32) -> Self {
        let signal = status & 0x7f;
        ExitFacts {
            code: (status >> 8) & 0xff,
            signal: (signal != 0).then_some(signal),
            core_dumped: status & 0x80 != 0,
        }
    }
}

/// `exec`: facts about an exec beyond the process itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecFacts {
    /// The executable was deleted or is a memfd (fileless execution).
    #[serde(skip_serializing_if = "is_false")]
    pub fileless: bool,
    /// A setuid or setgid binary that changed the effective uid or gid.
    #[serde(skip_serializing_if = "is_false")]
    pub setuid: bool,
    /// Which of stdin, stdout, stderr are sockets, and the first such socket.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stdio_sockets: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdio_socket: Option<SocketFacts>,
}

impl ExecFacts {
    pub fn is_empty(&self) -> bool {
        !self.fileless && !self.setuid && self.stdio_sockets.is_empty()
    }
}

/// `file`: the file a call acted on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileFacts {
    /// Absolute path (resolved by the kernel when the file was open, else joined from the call's arguments).
    pub path: String,
    /// The path exactly as the process passed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// For rename and link: the new name; for symlink: what the link points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Open flags as names (`O_WRONLY`, `O_CREAT`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Text>,
    /// The open flags as the kernel passed them (agent side only).
    #[serde(skip)]
    pub flag_bits: u64,
    /// chmod: the new mode; open with O_CREAT: the mode asked for. Octal text in JSON (`"4755"`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "octal::serialize",
        deserialize_with = "octal::deserialize"
    )]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xattr: Option<String>,
    /// Inode of the file the call acted on, when the kernel saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    pub path_truncated: bool,
}

impl FileFacts {
    /// The open asked to write, create or truncate (the agent also reports sensitive reads).
    pub fn opens_for_write(&self) -> bool {
        self.flags
            .iter()
            .any(|f| matches!(&**f, "O_WRONLY" | "O_RDWR" | "O_CREAT" | "O_TRUNC"))
    }
}

/// One end of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// Kept as text: rules compare it as text, only the intel lookup parses it.
    pub ip: String,
    pub port: u16,
}

/// `socket`: a socket and its ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SocketFacts {
    /// `inet`, `inet6`, `unix` or the family number.
    pub family: String,
    /// `tcp`, `udp`, `stream`, `dgram`, ...
    pub protocol: String,
    /// Address family number (agent side only).
    #[serde(skip)]
    pub family_code: u16,
    /// IANA protocol number, 6 TCP, 17 UDP, 0 for unix sockets (agent side only).
    #[serde(skip)]
    pub protocol_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Endpoint>,
    /// AF_UNIX: the socket path (`@name` for abstract sockets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// dup2/dup3 onto stdio: which fd the socket now occupies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdio_fd: Option<u64>,
}

impl SocketFacts {
    pub fn is_inet(&self) -> bool {
        matches!(self.family.as_str(), "inet" | "inet6")
    }
}

/// `dns`: one DNS message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsFacts {
    pub id: u16,
    pub response: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// The response code's number (agent side only).
    #[serde(skip)]
    pub rcode_code: u8,
    pub questions: Vec<DnsQuestion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<DnsAnswer>,
    /// The DNS server's end (the agent always knows it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Endpoint>,
    /// `udp` or `tcp`.
    pub transport: Text,
    /// The message was longer than the captured bytes (answers may be missing).
    #[serde(skip_serializing_if = "is_false")]
    pub truncated_capture: bool,
    /// Set when the message could not be parsed; the error says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsQuestion {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub class: String,
    /// The query type's number (agent side only).
    #[serde(skip)]
    pub qtype_code: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsAnswer {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
    /// The record type's number (agent side only).
    #[serde(skip)]
    pub rtype_code: u16,
}

/// Real and effective user and group ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// `privilege`: set*id and capset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivilegeFacts {
    /// set*id: the ids before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Ids>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Ids>,
    /// The ids asked for (-1 = unchanged), in argument order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<i64>,
    /// capset: the capability sets before and after, hex as `/proc/<pid>/status` shows them.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "hex_pair::serialize",
        deserialize_with = "hex_pair::deserialize"
    )]
    pub effective_caps: Option<[u64; 2]>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "hex_pair::serialize",
        deserialize_with = "hex_pair::deserialize"
    )]
    pub permitted_caps: Option<[u64; 2]>,
}

/// `target`: ptrace and process_vm_readv/writev, the process acted on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetFacts {
    pub pid: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The ptrace request's number (agent side only).
    #[serde(skip)]
    pub request_code: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Ancestor>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemfdFacts {
    pub name: String,
    pub flags: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BpfFacts {
    pub prog_type: u32,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MountFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    pub flags: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceFacts {
    /// CLONE_NEW* names (unshare flags, or setns nstype).
    pub namespaces: Vec<Text>,
    /// setns: what the fd refers to (e.g. `/proc/1/ns/mnt` as the kernel names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd_path: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryFacts {
    pub address: String,
    pub length: u64,
    /// PROT_* names asked for.
    pub protection: Vec<Text>,
}

/// `loss`: records the kernel could not fit in the ring since the last report, by event family.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LossFacts {
    pub dropped: BTreeMap<String, u64>,
}

/// File modes as octal text (`"4755"`); a bare number is read as the mode bits.
mod octal {
    use super::*;

    pub fn serialize<S: Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:o}", mode.unwrap_or_default()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Mode {
            Text(String),
            Number(u32),
        }
        Ok(match Option::<Mode>::deserialize(d)? {
            None => None,
            Some(Mode::Number(n)) => Some(n),
            Some(Mode::Text(t)) => Some(
                u32::from_str_radix(&t, 8)
                    .map_err(|_| serde::de::Error::custom(format!("mode {t:?} is not octal")))?,
            ),
        })
    }
}

/// Capability sets as a pair of 16-digit hex strings, [before, after].
mod hex_pair {
    use super::*;

    pub fn serialize<S: Serializer>(caps: &Option<[u64; 2]>, s: S) -> Result<S::Ok, S::Error> {
        let [before, after] = caps.unwrap_or_default();
        [format!("{before:016x}"), format!("{after:016x}")].serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u64; 2]>, D::Error> {
        let Some([before, after]) = Option::<[String; 2]>::deserialize(d)? else {
            return Ok(None);
        };
        let hex = |t: &str| {
            u64::from_str_radix(t, 16)
                .map_err(|_| serde::de::Error::custom(format!("capability set {t:?} is not hex")))
        };
        Ok(Some([hex(&before)?, hex(&after)?]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_decoding() {
        let status = |code, signal, core_dumped| ExitFacts {
            code,
            signal,
            core_dumped,
        };
        assert_eq!(ExitFacts::from_wait_status(3 << 8), status(3, None, false));
        assert_eq!(ExitFacts::from_wait_status(9), status(0, Some(9), false));
        assert_eq!(
            ExitFacts::from_wait_status(0x80 | 11),
            status(0, Some(11), true)
        );
    }

    #[test]
    fn modes_and_capabilities_keep_their_text_form() {
        let file = FileFacts {
            path: "/x".into(),
            mode: Some(0o4755),
            ..FileFacts::default()
        };
        let json = serde_json::to_string(&file).unwrap();
        assert_eq!(json, r#"{"path":"/x","mode":"4755"}"#);
        let back: FileFacts = serde_json::from_str(&json).unwrap();
        assert_eq!(back.mode, Some(0o4755));
        let number: FileFacts = serde_json::from_str(r#"{"mode":420}"#).unwrap();
        assert_eq!(number.mode, Some(420));
        let err = serde_json::from_str::<FileFacts>(r#"{"mode":"9"}"#).unwrap_err();
        assert!(err.to_string().contains("not octal"), "{err}");

        let caps = PrivilegeFacts {
            effective_caps: Some([0, 0x1ff_ffff_ffff]),
            ..PrivilegeFacts::default()
        };
        let json = serde_json::to_string(&caps).unwrap();
        assert_eq!(
            json,
            r#"{"effective_caps":["0000000000000000","000001ffffffffff"]}"#
        );
        let back: PrivilegeFacts = serde_json::from_str(&json).unwrap();
        assert_eq!(back.effective_caps, caps.effective_caps);
        assert!(serde_json::from_str::<PrivilegeFacts>(r#"{"permitted_caps":["x","0"]}"#).is_err());
    }

    #[test]
    fn agent_side_numbers_stay_out_of_the_json() {
        let dns = DnsFacts {
            rcode: Some("NoError".into()),
            rcode_code: 3,
            questions: vec![DnsQuestion {
                name: "example.com".into(),
                qtype: "A".into(),
                class: "IN".into(),
                qtype_code: 1,
            }],
            server: Some(Endpoint {
                ip: "127.0.0.53".into(),
                port: 53,
            }),
            transport: "udp".into(),
            ..DnsFacts::default()
        };
        let json = serde_json::to_string(&dns).unwrap();
        assert!(!json.contains("_code"), "{json}");
        let back: DnsFacts = serde_json::from_str(&json).unwrap();
        assert_eq!((back.rcode_code, back.questions[0].qtype_code), (0, 0));
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}

//! Ward's runtime event model, shared by the agent (which fills and prints it) and the collector
//! (which reads it back and detects on it): the event types, the process with its ancestry and
//! container, and the per-family facts. One set of types, so the JSON the agent writes (README
//! "Event schema") is by construction what the collector reads.
//!
//! Serialising follows the agent's compact form (absent options, `false` flags and empty lists are
//! left out); deserialising is lenient (every member optional, unknown members ignored) so that a
//! newer agent with more facts still parses. The envelope around the facts is each side's own: the
//! agent's carries a shared, lazily hashed process snapshot, the collector's is a plain parsed record.
//!
//! A few facts carry the kernel's number next to its name (`*_code`, `flag_bits`): the agent keeps
//! them for the wire's typed fields; they are not part of the JSON and read back as zero.

mod facts;
mod kind;
mod process;

pub use facts::*;
pub use kind::{EVENT_TYPE_SLOTS, EventType, Family};
pub use process::{Ancestor, Container, ExeHash, JoinedArgs, Namespaces, Process, basename};

/// Text that is usually one of a fixed set of names (flag names, transports, runtimes): borrowed
/// from a static table when the agent makes it, owned when read from JSON.
pub type Text = std::borrow::Cow<'static, str>;

fn is_false(b: &bool) -> bool {
    !*b
}

//! `STIX` 1.x XML: addresses in `AddressObject:Address_Value`, domains in `DomainNameObj:Value`
//! inside a `cybox:Properties` of the matching `xsi:type`.
//!
//! Namespace prefixes vary between producers, so elements are recognised by local name and by the
//! `xsi:type` of the enclosing `Properties`. A value may hold several entries joined by
//! `##comma##` (STIX's list delimiter); with `condition="InclusiveBetween"` two addresses form a
//! range. Line numbers point at the value element. Malformed XML stops the parse at that line; the
//! entries read before it are kept.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::ParsedList;
use crate::intel::indicator::Indicator;

const LIST_DELIMITER: &str = "##comma##";

#[derive(Debug, Clone, Copy, PartialEq)]
enum ObjectKind {
    Address,
    DomainName,
    Other,
}

struct Capture {
    kind: ObjectKind,
    element: String,
    condition: Option<String>,
    line: usize,
    text: String,
}

/// Maps byte offsets to 1-based line numbers.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        Self(text.match_indices('\n').map(|(i, _)| i).collect())
    }

    fn line_of(&self, offset: u64) -> usize {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        self.0.partition_point(|&newline| newline < offset) + 1
    }
}

pub(super) fn parse(text: &str, out: &mut ParsedList) {
    let lines = LineIndex::new(text);
    let mut reader = Reader::from_str(text);
    let mut properties = ObjectKind::Other;
    let mut capture: Option<Capture> = None;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => {
                out.error(
                    lines.line_of(reader.error_position()),
                    format!("malformed XML: {error}"),
                );
                return;
            }
        };
        let line = || lines.line_of(reader.buffer_position());
        match event {
            Event::Start(element) => {
                let name = element.local_name().into_inner().to_owned();
                if name == "Properties" {
                    properties = object_kind(&element);
                } else if let Some(kind) = value_kind(&name, properties) {
                    capture = Some(Capture {
                        kind,
                        element: name,
                        condition: condition(&element),
                        line: line(),
                        text: String::new(),
                    });
                }
            }
            Event::Empty(element) => {
                let name = element.local_name().into_inner().to_owned();
                if value_kind(&name, properties).is_some() {
                    out.error(line(), format!("empty <{name}> element"));
                }
            }
            Event::Text(content) => {
                if let Some(capture) = capture.as_mut() {
                    capture.text.push_str(&content.xml10_content());
                }
            }
            Event::CData(content) => {
                if let Some(capture) = capture.as_mut() {
                    capture.text.push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(capture) = capture.as_mut() {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(ch)) => Some(ch.to_string()),
                        _ => resolve_predefined_entity(&reference).map(str::to_owned),
                    };
                    match resolved {
                        Some(text) => capture.text.push_str(&text),
                        None => {
                            out.error(capture.line, format!("unknown entity &{};", &*reference))
                        }
                    }
                }
            }
            Event::End(element) => {
                let name = element.local_name().into_inner();
                if name == "Properties" {
                    properties = ObjectKind::Other;
                } else if capture.as_ref().is_some_and(|c| c.element == name) {
                    finish(capture.take().expect("checked above"), out);
                }
            }
            Event::Eof => return,
            _ => {}
        }
    }
}

/// Which capture, if any, an element starts given the enclosing `Properties` kind.
fn value_kind(local_name: &str, properties: ObjectKind) -> Option<ObjectKind> {
    match (local_name, properties) {
        // Address_Value is unambiguous even when xsi:type is missing or oddly prefixed.
        ("Address_Value", _) => Some(ObjectKind::Address),
        ("Value", ObjectKind::DomainName) => Some(ObjectKind::DomainName),
        _ => None,
    }
}

fn attribute(element: &BytesStart<'_>, local: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().into_inner() == local)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn object_kind(element: &BytesStart<'_>) -> ObjectKind {
    match attribute(element, "type") {
        Some(t) if t.ends_with("AddressObjectType") => ObjectKind::Address,
        Some(t) if t.ends_with("DomainNameObjectType") => ObjectKind::DomainName,
        _ => ObjectKind::Other,
    }
}

fn condition(element: &BytesStart<'_>) -> Option<String> {
    attribute(element, "condition")
}

fn finish(capture: Capture, out: &mut ParsedList) {
    let Capture {
        kind,
        condition,
        line,
        text,
        ..
    } = capture;
    let values: Vec<&str> = text
        .split(LIST_DELIMITER)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        out.error(line, "empty indicator value");
        return;
    }
    match (kind, condition.as_deref()) {
        (ObjectKind::Address, Some("InclusiveBetween")) => {
            if let [start, end] = values[..] {
                out.push(line, Indicator::range(start, end));
            } else {
                out.error(
                    line,
                    format!(
                        "InclusiveBetween needs two addresses, found {}",
                        values.len()
                    ),
                );
            }
        }
        (_, None | Some("Equals")) => {
            for value in values {
                let parsed = super::network_only(Indicator::parse(value), "STIX").and_then(
                    |indicator| match (kind, indicator.is_domain()) {
                        (ObjectKind::Address, true) => {
                            Err(format!("{value:?} is not an address (in Address_Value)"))
                        }
                        (ObjectKind::DomainName, false) => Err(format!(
                            "{value:?} is not a domain name (in DomainNameObj:Value)"
                        )),
                        _ => Ok(indicator),
                    },
                );
                out.push(line, parsed);
            }
        }
        (_, Some(other)) => out.error(
            line,
            format!("condition {other:?} is not supported (use Equals or InclusiveBetween)"),
        ),
    }
}

//! DNS messages captured by the kernel, parsed into questions and answers.

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag, QCLASS, QTYPE};

use crate::decode::Dns;
use crate::event::{DnsAnswer, DnsFacts, DnsQuestion, Endpoint};
use crate::interpret::socket_facts;

/// Parses a captured message. A message that does not parse (a TCP segment that is not the first of its
/// message, a truncated capture) still yields the facts the packet gave, with `parse_error` saying why.
pub fn facts(dns: &Dns) -> DnsFacts {
    let socket = socket_facts(&dns.socket);
    // The agent always names the server; an unconnected socket's is the unspecified address.
    let server = socket.remote.clone().unwrap_or_else(|| Endpoint {
        ip: "0.0.0.0".into(),
        port: 0,
    });
    let mut facts = DnsFacts {
        server: Some(server),
        transport: if dns.socket.protocol == 6 {
            "tcp".into()
        } else {
            "udp".into()
        },
        truncated_capture: (dns.payload.len() as u32) < dns.len,
        response: !dns.egress,
        ..DnsFacts::default()
    };
    match Packet::parse(&dns.payload) {
        Ok(packet) => {
            facts.id = packet.id();
            facts.response = packet.has_flags(PacketFlag::RESPONSE);
            if facts.response {
                facts.rcode = Some(format!("{:?}", packet.rcode()));
                facts.rcode_code = packet.rcode() as u8;
            }
            facts.questions = packet
                .questions
                .iter()
                .map(|q| DnsQuestion {
                    name: q.qname.to_string(),
                    qtype: match q.qtype {
                        QTYPE::TYPE(t) => format!("{t:?}"),
                        other => format!("{other:?}"),
                    },
                    class: match q.qclass {
                        QCLASS::CLASS(c) => format!("{c:?}"),
                        other => format!("{other:?}"),
                    },
                    qtype_code: q.qtype.into(),
                })
                .collect();
            facts.answers = packet
                .answers
                .iter()
                .map(|rr| DnsAnswer {
                    name: rr.name.to_string(),
                    rtype: format!("{:?}", rr.rdata.type_code()),
                    ttl: rr.ttl,
                    data: rdata_text(&rr.rdata),
                    rtype_code: rr.rdata.type_code().into(),
                })
                .collect();
        }
        Err(e) => facts.parse_error = Some(e.to_string()),
    }
    facts
}

fn rdata_text(rdata: &RData) -> String {
    match rdata {
        RData::A(a) => std::net::Ipv4Addr::from(a.address).to_string(),
        RData::AAAA(a) => std::net::Ipv6Addr::from(a.address).to_string(),
        RData::CNAME(name) => name.0.to_string(),
        RData::NS(name) => name.0.to_string(),
        RData::PTR(name) => name.0.to_string(),
        RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange),
        RData::TXT(txt) => {
            let strings: Vec<String> = txt
                .iter_raw()
                .map(|(k, v)| match v {
                    Some(v) => format!(
                        "{}={}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    ),
                    None => String::from_utf8_lossy(k).into_owned(),
                })
                .collect();
            strings.join(" ")
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{CLASS, Name, Question, ResourceRecord, TYPE};
    use ward_agent_ebpf::abi::{Header, Socket};

    fn dns(payload: Vec<u8>, egress: bool) -> Dns {
        let socket = Socket {
            family: 2,
            protocol: 17,
            sock_type: 2,
            sport: 40000,
            dport: 53,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ..Socket::default()
        };
        let hdr = Header {
            kind: 4,
            flags: 0,
            cpu: 0,
            time_ns: 0,
            pid: 1,
            tgid: 1,
            start_ns: 0,
        };
        Dns {
            hdr,
            egress,
            len: payload.len() as u32,
            socket,
            payload,
        }
    }

    #[test]
    fn query_and_response() {
        let mut query = Packet::new_query(0x1234);
        query.questions.push(Question::new(
            Name::new_unchecked("pool.example.com"),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        let got = facts(&dns(query.build_bytes_vec().unwrap(), true));
        assert_eq!(got.id, 0x1234);
        assert!(!got.response);
        assert_eq!(got.questions[0].name, "pool.example.com");
        assert_eq!(got.questions[0].qtype, "A");
        assert_eq!(got.questions[0].class, "IN");
        assert_eq!(got.server.as_ref().unwrap().port, 53);

        let mut reply = query.into_reply();
        let rdata = RData::A(simple_dns::rdata::A {
            address: u32::from(std::net::Ipv4Addr::new(192, 0, 2, 7)),
        });
        reply.answers.push(ResourceRecord::new(
            Name::new_unchecked("pool.example.com"),
            CLASS::IN,
            60,
            rdata,
        ));
        let got = facts(&dns(reply.build_bytes_vec().unwrap(), false));
        assert!(got.response);
        assert_eq!(got.rcode.as_deref(), Some("NoError"));
        assert_eq!(got.answers[0].data, "192.0.2.7");
        assert_eq!(got.answers[0].ttl, 60);
    }

    #[test]
    fn garbage_is_reported_not_fatal() {
        let got = facts(&dns(vec![1, 2, 3], true));
        assert!(got.parse_error.is_some());
        assert!(got.questions.is_empty());
    }
}

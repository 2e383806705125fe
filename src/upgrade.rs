//! The WebSocket upgrade: checks a handshake request (origin or token, version, key,
//! subprotocol) and answers it, 101 with the accept key or the refusal that says why.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use crate::acl::Origin;
use crate::connection::Shared;
use crate::connlog::WsLog;
use crate::engine::Dialect;
use crate::gate;
use crate::http::{self, Head};
use crate::rooms::ConnId;

/// WebSocket subprotocols the server speaks, in order of preference for equal offers.
pub const PROTOCOLS: &[&str] = &["notification", "json", "jsonrpc"];

/// A WebSocket handshake that has been accepted.
pub struct Upgrade {
    /// The connection's number (in log lines and in the dispatcher).
    pub conn: ConnId,
    /// What its log lines need, when info lines are written.
    pub log: Option<Box<WsLog>>,
    /// What the connection speaks: Messenger (`/jsonrpc`) or Kurento (`/room`).
    pub dialect: Dialect,
    /// From a verified access token, else from the `Origin` header. Boxed as the dispatcher
    /// keeps it (`Command::Open`): taken when the WebSocket opens, it would otherwise leave
    /// its room empty in this struct, which lives as long as the connection.
    pub origin: Option<Box<Origin>>,
    /// The client presented the `admin_token` from a loopback address.
    pub admin: bool,
    /// Frames the client did not mask are read (a loopback peer, unless `require_masking`):
    /// Thunder's C++ client never masks. Set when the WebSocket opens (`connection::open`).
    pub unmasked_ok: bool,
    /// Relay mode: what the upstream WebSocket repeats of the upgrade (set by the route).
    pub relay: Option<Box<crate::relay::RelayHead>>,
}

impl Upgrade {
    /// Whether a peer may send frames it did not mask: only from loopback (where masking
    /// protects nothing), and not when the operator asks for RFC 6455's rule.
    pub fn allow_unmasked(&mut self, loopback: bool, config: &crate::config::Config) {
        self.unmasked_ok = loopback && !config.require_masking;
    }
}

/// The subprotocol to echo: the first offered that the server speaks, compared without case
/// and echoed as offered (LinkType offers `JSON`; Thunder echoes the first it accepts).
pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    offered
        .into_iter()
        .find(|p| PROTOCOLS.iter().any(|known| known.eq_ignore_ascii_case(p)))
}

/// Answers a WebSocket handshake from `peer`: 101 and the accepted upgrade, or a refusal
/// (`None`: the connection closes). Frames must be masked until the connection opens
/// (`Upgrade::allow_unmasked`, called by `connection::open`): code here is on every
/// connection's deepest stack path (see `connection.rs`). The 101 is put together in the
/// spare capacity of `buf`, the connection's head buffer (after whatever the client sent
/// after its request, which stays): a block allocated and freed here would stay in the
/// thread's malloc cache for the connection's life.
pub fn handshake(
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    head: &Head,
    shared: &Shared,
    peer: Option<SocketAddr>,
    dialect: Dialect,
    admin: bool,
) -> io::Result<Option<Upgrade>> {
    if let Some(why) = gate::long_origin(head, shared) {
        http::refuse(out, 400, "Bad Request", &why)?;
        return Ok(None);
    }
    if gate::foreign_origin(out, head, shared, peer)? {
        return Ok(None);
    }
    let origin = match gate::origin(head, shared) {
        Ok(origin) => origin,
        Err(why) => {
            gate::refuse(out, shared, peer, &why)?;
            return Ok(None);
        }
    };
    if head.header("sec-websocket-version") != Some("13") {
        http::respond(
            out,
            426,
            "Upgrade Required",
            &[("Sec-WebSocket-Version", "13"), ("Connection", "close")],
            b"",
        )?;
        return Ok(None);
    }
    let Some(key) = head.header("sec-websocket-key").filter(|k| !k.is_empty()) else {
        http::refuse(out, 400, "Bad Request", "missing Sec-WebSocket-Key")?;
        return Ok(None);
    };
    // Read off the head again rather than collected into a Vec (see `buf` above).
    let protocol = choose(head.tokens("sec-websocket-protocol"));
    if protocol.is_none() && head.tokens("sec-websocket-protocol").next().is_some() {
        let offered: Vec<&str> = head.tokens("sec-websocket-protocol").collect();
        let why = format!(
            "unsupported subprotocol {offered:?}; this server speaks notification, json, jsonrpc"
        );
        http::refuse(out, 400, "Bad Request", &why)?;
        return Ok(None);
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let kept = buf.len();
    buf.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    buf.extend_from_slice(accept.as_bytes());
    if let Some(p) = protocol {
        buf.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        buf.extend_from_slice(p.as_bytes());
    }
    buf.extend_from_slice(b"\r\n\r\n");
    let written = out.write_all(&buf[kept..]);
    buf.truncate(kept);
    written?;
    Ok(Some(Upgrade {
        conn: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        log: WsLog::new(peer, head),
        dialect,
        origin: origin.map(Box::new),
        admin,
        unmasked_ok: false,
        relay: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::Caps;
    use crate::routes::tests::{head, shared};

    fn answer(request: &str) -> (String, Option<Upgrade>) {
        let (shared, _rx) = shared();
        let mut out = Vec::new();
        let dialect = Dialect::Kurento(Caps::default());
        let mut buf = b"after".to_vec();
        let upgrade = handshake(
            &mut out,
            &mut buf,
            &head(request),
            &shared,
            None,
            dialect,
            false,
        );
        assert_eq!(buf, b"after", "what came after the request stays");
        (String::from_utf8(out).unwrap(), upgrade.unwrap())
    }

    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn answers_the_rfc_example_and_echoes_the_subprotocol() {
        let (text, upgrade) = answer(&format!(
            "GET /room HTTP/1.1\r\nUpgrade: websocket\r\n{KEY}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, json\r\nOrigin: http://localhost:8080\r\n\r\n"
        ));
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{text}"
        );
        // RFC 6455 §1.3's example key and its accept value.
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: json\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        let upgrade = upgrade.expect("accepted");
        assert_eq!(
            upgrade.origin.map(|o| o.to_string()),
            Some("http://localhost:8080".to_owned())
        );
        assert!(matches!(upgrade.dialect, Dialect::Kurento(_)));
    }

    #[test]
    fn subprotocols_match_without_case_and_echo_as_offered() {
        assert_eq!(choose(["JSON"]), Some("JSON"));
        assert_eq!(
            choose(["chat", "Notification", "json"]),
            Some("Notification")
        );
        assert_eq!(choose(["text", "raw"]), None);
        assert_eq!(choose([]), None);
        let (text, upgrade) = answer(&format!(
            "GET /room HTTP/1.1\r\n{KEY}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: JSON\r\n\r\n"
        ));
        assert!(upgrade.is_some(), "{text}");
        assert!(
            text.contains("\r\nSec-WebSocket-Protocol: JSON\r\n"),
            "{text}"
        );
    }

    /// Unmasked frames are read from loopback peers unless `require_masking`; a peer that
    /// is not on loopback (only with `allow_remote`) must always mask.
    #[test]
    fn only_loopback_peers_may_skip_masking() {
        let (_, upgrade) = answer(&format!(
            "GET /room HTTP/1.1\r\n{KEY}Sec-WebSocket-Version: 13\r\n\r\n"
        ));
        let mut upgrade = upgrade.expect("accepted");
        assert!(
            !upgrade.unmasked_ok,
            "masked until the route says otherwise"
        );
        for (loopback, require_masking, unmasked_ok) in [
            (true, false, true),
            (true, true, false),
            (false, false, false),
            (false, true, false),
        ] {
            let config = crate::config::Config {
                require_masking,
                ..Default::default()
            };
            upgrade.allow_unmasked(loopback, &config);
            assert_eq!(
                upgrade.unmasked_ok, unmasked_ok,
                "{loopback} {require_masking}"
            );
        }
    }

    #[test]
    fn no_offered_subprotocol_none_echoed() {
        let (text, upgrade) = answer(&format!(
            "GET /room HTTP/1.1\r\n{KEY}Sec-WebSocket-Version: 13\r\n\r\n"
        ));
        assert!(upgrade.is_some());
        assert!(!text.contains("Sec-WebSocket-Protocol"), "{text}");
    }

    #[test]
    fn refusals_say_why() {
        let (text, upgrade) = answer(&format!(
            "GET /room HTTP/1.1\r\n{KEY}Sec-WebSocket-Version: 8\r\n\r\n"
        ));
        assert!(upgrade.is_none());
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        let (text, upgrade) = answer("GET /room HTTP/1.1\r\nSec-WebSocket-Version: 13\r\n\r\n");
        assert!(upgrade.is_none());
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("Sec-WebSocket-Key"));
        let (text, upgrade) = answer(&format!(
            "GET /room HTTP/1.1\r\n{KEY}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        ));
        assert!(upgrade.is_none());
        assert!(text.contains("unsupported subprotocol"), "{text}");
        let (text, upgrade) = answer(&format!(
            "GET /room?token=forged.token HTTP/1.1\r\n{KEY}Sec-WebSocket-Version: 13\r\n\r\n"
        ));
        assert!(upgrade.is_none());
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    }
}

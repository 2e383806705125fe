//! The `Host` check: every request must name this server in its `Host` header, else it is
//! refused with 421 before anything is read or done. A web page in the box's browser can reach
//! loopback, and through DNS rebinding (its own name, re-pointed at 127.0.0.1) it could read
//! the answers as its own; the browser always sends the page's name as `Host`, which a page
//! cannot change. So only this server's names pass: `127.0.0.1`, `localhost`, `[::1]`, the
//! `listen` address when it is not loopback, and the `allowed_hosts` setting, any case, with or
//! without a port (`:port`, or LinkType's `@port`). The port is not compared: tunnels and port
//! forwards change it, and the name is what a rebinding page cannot fake.
//!
//! A request without `Host` passes: no browser sends one (HTTP/1.0 tools and hand-written
//! scripts do), so it cannot be a rebinding page.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use crate::config::Config;
use crate::http::{self, Head};
use crate::logline;

/// The names that are always this server (compared without case).
const LOOPBACK: &[&str] = &["127.0.0.1", "localhost", "[::1]"];

/// Whether the request may go on: every `Host` header names this server (true without one);
/// else it has been refused (421). Out of line: its locals stay off the HTTP phase's frame
/// (see `connection.rs`).
#[inline(never)]
pub fn admits(
    out: &mut impl Write,
    head: &Head,
    config: &Config,
    peer: Option<SocketAddr>,
) -> io::Result<bool> {
    if names_this_server(head, config) {
        return Ok(true);
    }
    refuse(out, head, peer)?;
    Ok(false)
}

/// Whether every `Host` header of the request names this server (true without one).
fn names_this_server(head: &Head, config: &Config) -> bool {
    let mut hosts = head.headers().filter(|(name, _)| *name == "host");
    hosts.all(|(_, value)| is_ours(value.trim(), config))
}

/// Whether one `Host` value is this server's name, with or without a port.
fn is_ours(value: &str, config: &Config) -> bool {
    let Some(name) = strip_port(value) else {
        return false;
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let listening = config.listen.ip();
    LOOPBACK.iter().any(|n| n.eq_ignore_ascii_case(name))
        || (!listening.is_loopback()
            && !listening.is_unspecified()
            && bare.parse::<IpAddr>() == Ok(listening))
        || config.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.trim_start_matches('[').trim_end_matches(']');
            allowed.eq_ignore_ascii_case(bare)
        })
}

/// The name part of `name[:port]` or `name[@port]` (`[v6]` keeps its brackets); `None` when
/// what follows the name is not a port.
fn strip_port(value: &str) -> Option<&str> {
    let end = if value.starts_with('[') {
        value.find(']')? + 1
    } else {
        value.find([':', '@']).unwrap_or(value.len())
    };
    let (name, rest) = value.split_at(end);
    let port_ok = match rest.strip_prefix([':', '@']) {
        None => rest.is_empty(),
        Some(port) => port.parse::<u16>().is_ok() && port.bytes().all(|c| c.is_ascii_digit()),
    };
    (!name.is_empty() && port_ok).then_some(name)
}

/// Refuses a request whose `Host` names another server: 421 Misdirected Request (RFC 9110
/// §15.5.20: this server will not answer for that name) with a JSON body saying what to do.
fn refuse(out: &mut impl Write, head: &Head, peer: Option<SocketAddr>) -> io::Result<()> {
    let named = head.header("host").unwrap_or("");
    let why = format!(
        "Host {named:?} does not name this server: connect to 127.0.0.1, localhost or [::1] (the operator can add names with the allowed_hosts setting)"
    );
    logline::refused(peer, 421, &why); // log: refusal
    http::refuse(out, 421, "Misdirected Request", &why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(host: &str, config: &Config) -> bool {
        is_ours(host, config)
    }

    #[test]
    fn loopback_names_with_or_without_a_port() {
        let c = Config::default();
        for host in [
            "127.0.0.1",
            "127.0.0.1:9998",
            "127.0.0.1:1",
            "localhost",
            "LocalHost:80",
            "[::1]",
            "[::1]:9998",
            "127.0.0.1@50877",
            "localhost@9998",
            "[::1]@9998",
        ] {
            assert!(ours(host, &c), "{host}");
        }
    }

    #[test]
    fn other_names_are_not_ours() {
        let c = Config::default();
        for host in [
            "evil.example",
            "evil.example:9998",
            "127.0.0.1.evil.example:9998",
            "localhost.evil.example",
            "127.0.0.2",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:+80",
            "127.0.0.1:80:80",
            "127.0.0.1@",
            "[::1]x",
            "[::1",
            "::1",
            "",
            "0.0.0.0",
        ] {
            assert!(!ours(host, &c), "{host}");
        }
    }

    #[test]
    fn allowed_hosts_and_the_listen_address() {
        let mut c = Config {
            allowed_hosts: vec!["STB.local".into(), "[fe80::1]".into(), "10.0.0.5".into()],
            ..Config::default()
        };
        for host in [
            "stb.local:9998",
            "Stb.Local",
            "[fe80::1]:9998",
            "10.0.0.5@1",
        ] {
            assert!(ours(host, &c), "{host}");
        }
        assert!(!ours("stb.local.evil:9998", &c));
        c.listen = "192.168.1.20:9998".parse().unwrap();
        assert!(ours("192.168.1.20:9998", &c));
        assert!(!ours("192.168.1.21:9998", &c));
        c.listen = "0.0.0.0:9998".parse().unwrap();
        assert!(
            !ours("0.0.0.0:9998", &c),
            "the unspecified address names nothing"
        );
    }
}

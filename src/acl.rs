//! Origins and the origin patterns of a secure room's ACL, with Thunder's wildcard rules:
//! `*` in a host matches one or more of `[A-Za-z0-9.-]`, `:*` matches any port, `*:` (a `*`
//! scheme) matches any scheme, and a pattern must match the whole origin. The single pattern
//! `*` matches every origin. Pure functions: no network, no clock.

use std::fmt;

/// A web origin: scheme, host and port, lower-cased, with the scheme's default port dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Reads an origin from an `Origin` header or from a URL (its path, query and fragment
    /// are ignored). `null`, opaque and malformed origins give `None`: such a client has no
    /// origin and cannot join a secure room.
    pub fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.trim().split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        {
            return None;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() || !host.bytes().all(is_host_byte) {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let port = port.filter(|p| Some(*p) != default_port(&scheme));
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// One ACL entry, checked when the room is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// `None` for `*`: any scheme.
    scheme: Option<String>,
    /// The host with `*` wildcards; `None` for the pattern `*` alone (any origin).
    host: Option<String>,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    /// No port in the pattern: the origin must use its scheme's default port.
    Default,
    /// `:*`.
    Any,
    Exact(u16),
}

/// Why an ACL entry was refused; the client sees it in the error's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern(pub String);

impl fmt::Display for BadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad ACL pattern {:?}: expected scheme://host[:port] with optional * wildcards",
            self.0
        )
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, BadPattern> {
        let bad = || BadPattern(text.to_owned());
        if text == "*" {
            return Ok(Pattern {
                scheme: None,
                host: None,
                port: PortPattern::Any,
            });
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)) =>
            {
                Some(s.to_ascii_lowercase())
            }
            _ => return Err(bad()),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) if !host.ends_with(']') || host.starts_with('[') => {
                (host, PortPattern::Any)
            }
            _ => match split_host_port(rest).ok_or_else(bad)? {
                (host, Some(p)) => (host, PortPattern::Exact(p)),
                (host, None) => (host, PortPattern::Default),
            },
        };
        if host.is_empty() || !host.bytes().all(|c| c == b'*' || is_host_byte(c)) {
            return Err(bad());
        }
        let port = match (port, scheme.as_deref().and_then(default_port)) {
            (PortPattern::Exact(p), Some(d)) if p == d => PortPattern::Default,
            (p, _) => p,
        };
        Ok(Pattern {
            scheme,
            host: Some(host.to_ascii_lowercase()),
            port,
        })
    }

    /// Whether `origin` is admitted by this pattern.
    pub fn matches(&self, origin: &Origin) -> bool {
        let Some(host) = &self.host else { return true };
        if self.scheme.as_ref().is_some_and(|s| *s != origin.scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Default => origin.port.is_none(),
            PortPattern::Exact(p) => origin.port == Some(p),
        };
        port_ok && host_matches(host.as_bytes(), origin.host.as_bytes())
    }
}

/// Whether any pattern of `acl` admits `origin`.
pub fn admits(acl: &[Pattern], origin: &Origin) -> bool {
    acl.iter().any(|p| p.matches(origin))
}

fn is_host_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || c == b'.'
        || c == b'-'
        || c == b'_'
        || c == b'['
        || c == b']'
        || c == b':'
}

fn is_wildcard_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (with `[v6]` hosts); a port that is not a number is an error.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        (host, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    match port {
        None => Some((host, None)),
        Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
            Some((host, Some(p.parse().ok()?)))
        }
        Some(_) => None,
    }
}

/// Matches a host against a pattern where `*` stands for one or more wildcard bytes.
/// Dynamic programming over (pattern, host) positions: linear memory, no backtracking
/// blow-up whatever the number of stars.
fn host_matches(pattern: &[u8], host: &[u8]) -> bool {
    // reach[j]: the pattern prefix read so far matches host[..j].
    let mut reach = vec![false; host.len() + 1];
    reach[0] = true;
    for &p in pattern {
        let mut next = vec![false; host.len() + 1];
        if p == b'*' {
            // One or more wildcard bytes after any reachable position.
            let mut run = false;
            for j in 1..=host.len() {
                run = (run || reach[j - 1]) && is_wildcard_byte(host[j - 1]);
                next[j] = run;
            }
        } else {
            for j in 1..=host.len() {
                next[j] = reach[j - 1] && host[j - 1] == p;
            }
        }
        reach = next;
    }
    reach[host.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, origin: &str) -> bool {
        let p = Pattern::parse(pattern).unwrap();
        let o = Origin::parse(origin).unwrap();
        p.matches(&o)
    }

    #[test]
    fn host_wildcard_matches_subdomains_only() {
        assert!(check("https://*.example.com", "https://app.example.com"));
        assert!(check("https://*.example.com", "https://a.b.example.com"));
        assert!(!check("https://*.example.com", "https://example.com"));
        assert!(!check(
            "https://*.example.com",
            "https://example.com.evil.net"
        ));
        assert!(!check("https://*.example.com", "https://evilexample.com"));
        assert!(!check("https://*.example.com", "http://app.example.com"));
        assert!(!check(
            "https://*.example.com",
            "https://app.example.com:8443"
        ));
    }

    #[test]
    fn any_port() {
        assert!(check("http://localhost:*", "http://localhost:8080"));
        assert!(check("http://localhost:*", "http://localhost"));
        assert!(!check(
            "http://localhost:*",
            "http://localhost.evil.net:8080"
        ));
        assert!(!check("http://localhost:*", "https://localhost:8080"));
        assert!(!check("http://localhost", "http://localhost:8080"));
        assert!(check("http://localhost:8080", "http://localhost:8080"));
        assert!(!check("http://localhost:8080", "http://localhost:8081"));
    }

    #[test]
    fn any_scheme() {
        assert!(check("*://app.example", "https://app.example"));
        assert!(check("*://app.example", "http://app.example"));
        assert!(!check("*://app.example", "http://app.example.evil"));
    }

    #[test]
    fn default_ports_are_the_same_origin() {
        assert!(check("https://app.example", "https://app.example:443"));
        assert!(check("https://app.example:443", "https://app.example"));
        assert!(!check("https://app.example", "https://app.example:444"));
    }

    #[test]
    fn case_and_paths_do_not_matter() {
        assert!(check(
            "https://*.Example.com",
            "HTTPS://App.EXAMPLE.com/index.html?x=1"
        ));
    }

    #[test]
    fn star_alone_admits_every_origin() {
        assert!(check("*", "https://anything.example:1234"));
    }

    #[test]
    fn wildcard_does_not_cross_ports_or_paths() {
        assert!(!check("http://*", "http://a.example:81/x"));
        assert!(check("http://*", "http://a.example/x"));
        assert!(!check("http://a*", "http://a"));
        assert!(!check("http://*.com", "http://x.com:81"));
    }

    #[test]
    fn many_stars_stay_fast_and_right() {
        let pattern = format!("https://{}b", "*".repeat(100));
        let host = format!("https://{}", "a".repeat(250));
        assert!(!check(&pattern, &host));
        assert!(check(&pattern, &format!("https://{}b", "a".repeat(150))));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "example.com",
            "https://",
            "https://a b",
            "https://a:port",
            "htt ps://a",
            "://a",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn opaque_origins_are_none() {
        assert_eq!(Origin::parse("null"), None);
        assert_eq!(Origin::parse(""), None);
        assert_eq!(Origin::parse("https://"), None);
        assert_eq!(Origin::parse("https://a:b"), None);
        assert_eq!(
            Origin::parse("https://app.example:443")
                .unwrap()
                .to_string(),
            "https://app.example"
        );
    }
}

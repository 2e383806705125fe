//! Origins and the origin patterns of a secure room's ACL, with Thunder's wildcard rules:
//! `*` in a host matches one or more of `[A-Za-z0-9.-]`, `:*` matches any port, `*:` (a `*`
//! scheme) matches any scheme, and a pattern must match the whole origin. The single pattern
//! `*` matches every origin. Pure functions: no network, no clock.

use std::fmt;

use crate::wildcard::{self, Star};

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
        if !valid_host(host, false) {
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
        if !valid_host(host, true) {
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

    /// The text this pattern keeps on the heap (its scheme and host), in bytes.
    pub fn text_bytes(&self) -> impl Iterator<Item = usize> + '_ {
        [&self.scheme, &self.host]
            .into_iter()
            .filter_map(|t| t.as_ref().map(String::len))
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
        port_ok && host_matches(host, &origin.host)
    }
}

/// Whether any pattern of `acl` admits `origin`.
pub fn admits(acl: &[Pattern], origin: &Origin) -> bool {
    acl.iter().any(|p| p.matches(origin))
}

/// A host as an origin may have it: a name of letters, digits, `.`, `-` and `_`, or an IPv6
/// address in brackets. With `wildcards`, a name may hold `*`. A `:` or bracket anywhere else
/// is refused: such a host would not read back the same once printed (found by fuzzing).
fn valid_host(host: &str, wildcards: bool) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.contains(':')
            && inner
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.');
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c) || (wildcards && c == b'*'))
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
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
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

/// Matches a host against a pattern where `*` stands for one or more wildcard bytes, in time
/// linear in both and without allocating (`wildcard`).
fn host_matches(pattern: &str, host: &str) -> bool {
    let star = Star {
        min: 1,
        takes: Some(is_wildcard_byte),
    };
    wildcard::matches(pattern, host, star)
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

    /// The matcher this module had before: dynamic programming over (pattern, host)
    /// positions, obviously right and quadratic. The linear one must agree with it.
    fn reference(pattern: &[u8], host: &[u8]) -> bool {
        let mut reach = vec![false; host.len() + 1];
        reach[0] = true;
        for &p in pattern {
            let mut next = vec![false; host.len() + 1];
            let mut run = false;
            for j in 1..=host.len() {
                next[j] = if p == b'*' {
                    run = (run || reach[j - 1]) && is_wildcard_byte(host[j - 1]);
                    run
                } else {
                    reach[j - 1] && host[j - 1] == p
                };
            }
            reach = next;
        }
        reach[host.len()]
    }

    /// Every string up to `len` bytes over `alphabet`.
    fn strings(alphabet: &[u8], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |&c| format!("{s}{}", c as char)))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn linear_matching_agrees_with_the_quadratic_one_on_every_small_case() {
        // `_` is a host byte that no star may take; `.` is one that a star may.
        let hosts = strings(b"ab_.", 5);
        let mut compared = 0;
        for pattern in strings(b"ab_*", 5) {
            for host in &hosts {
                let want = reference(pattern.as_bytes(), host.as_bytes());
                assert_eq!(host_matches(&pattern, host), want, "{pattern:?} {host:?}");
                compared += 1;
            }
        }
        assert!(compared > 1_000_000);
    }

    /// Time per `admits` call with the worst ACL the default caps allow (as many patterns as
    /// allowed, each as long as allowed) against the longest origin allowed: patterns whose
    /// anchors fit and whose runs each fit, until the host runs out just before the end.
    /// Run with `--release --nocapture` for the figure on the box's build.
    #[test]
    fn the_worst_acl_the_caps_allow_costs_well_under_a_millisecond() {
        let config = crate::config::Config::default();
        let host_bytes = config.max_acl_pattern_bytes - "*://:*".len();
        let shapes = [
            // A short run after each star: one short search per two bytes.
            "*a".repeat(host_bytes / 2),
            // Runs just long enough for the Two-Way search.
            format!("*{}", "a".repeat(9)).repeat(host_bytes / 10 - 1)
                + &format!("*{}", "a".repeat(host_bytes % 10 + 9)),
            // One long run that fits nowhere.
            format!("*{}", "a".repeat(host_bytes - 1)),
        ];
        let host = "a".repeat(config.max_origin_bytes - "https://".len());
        let origin = Origin::parse(&format!("https://{host}")).unwrap();
        let mut worst = std::time::Duration::ZERO;
        for shape in &shapes {
            assert!(
                shape.len() > host.len(),
                "each shape needs more than the host has"
            );
            let pattern = Pattern::parse(&format!("*://{shape}:*")).unwrap();
            let acl = vec![pattern; config.max_acl_patterns];
            let started = std::time::Instant::now();
            for _ in 0..100 {
                assert!(!admits(std::hint::black_box(&acl), &origin));
            }
            worst = worst.max(started.elapsed() / 100);
        }
        eprintln!("worst ACL at the default caps: {worst:?} per call");
        // Measured in release: about 0.1 ms. The bound is coarse: debug builds, noisy machines.
        assert!(worst < std::time::Duration::from_millis(20), "{worst:?}");
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
    fn colons_and_brackets_only_in_ipv6_hosts() {
        // Fuzzing found "http://R::2]:80" read as host "r::2]", printed as a different origin.
        assert_eq!(Origin::parse("http://R::2]:80"), None);
        assert_eq!(Origin::parse("http://a:b:80"), None);
        assert_eq!(Origin::parse("http://a]:80"), None);
        assert_eq!(Origin::parse("http://[::1]x:80"), None);
        assert_eq!(Origin::parse("http://[nothex]:80"), None);
        assert_eq!(Origin::parse("http://[]"), None);
        let v6 = Origin::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(v6.to_string(), "http://[::1]:8080");
        assert_eq!(Origin::parse(&v6.to_string()), Some(v6));
        assert!(check("http://[::1]:*", "http://[::1]:8080"));
        assert!(check("http://[::1]", "http://[::1]:80"));
        assert!(!check("http://[::1]", "http://[::2]"));
        for bad in ["http://a:b:*", "http://[::1]x", "http://*]:*", "http://[*]"] {
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

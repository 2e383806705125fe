//! Web pages are strangers: which web origins may connect at all (`allowed_origins`) and which
//! may read answers across origins (`cors_origins`), both lists of ACL patterns compiled once
//! at start. Only the `Origin` header counts here, the one thing a page cannot fake.
//!
//! - The allow-list, when set, refuses (403) a WebSocket upgrade or `POST /jsonrpc` whose
//!   `Origin` is a web origin not on it, or `null` (what a sandboxed page or a `file:` page
//!   sends). A request without `Origin`, or with one that is no web origin (LinkType's
//!   `0.0.0.0@0`), is not a web page: native apps and scripts are not affected. The server's
//!   own chat page (`http://127.0.0.1:<port>`, `localhost`, `[::1]`, with the listening port)
//!   is always admitted, so the operator need not list it. Empty: every origin, as Thunder.
//! - CORS headers go only to a listed origin: `Access-Control-Allow-Origin: <that origin>`
//!   (never `*`) on `POST /jsonrpc`, `GET /health` and the preflight, and `Vary: Origin` on
//!   every such answer while the list is set, so a cache keeps the answers apart.

use crate::acl::{self, Origin, Pattern};
use crate::config::Config;

/// The compiled lists, and the server's own origins.
#[derive(Debug, Default)]
pub struct WebOrigins {
    allowed: Vec<Pattern>,
    cors: Vec<Pattern>,
    own: Vec<Origin>,
}

impl WebOrigins {
    /// From the settings (checked by `Config::validate`, so every entry parses; one that did
    /// not would be left out). `config.listen` is the address the server listens on.
    pub fn new(config: &Config) -> WebOrigins {
        let compile =
            |list: &[String]| list.iter().filter_map(|p| Pattern::parse(p).ok()).collect();
        let port = config.listen.port();
        let own = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .filter_map(|host| Origin::parse(&format!("http://{host}:{port}")))
            .collect();
        WebOrigins {
            allowed: compile(&config.allowed_origins),
            cors: compile(&config.cors_origins),
            own,
        }
    }

    /// Why a request with this `Origin` header may not connect, if it may not.
    pub fn refuses(&self, header: Option<&str>) -> Option<String> {
        if self.allowed.is_empty() {
            return None;
        }
        let text = header?.trim();
        if text == "null" {
            return Some("origin null is not in allowed_origins".into());
        }
        let origin = Origin::parse(text)?;
        if self.own.contains(&origin) || acl::admits(&self.allowed, &origin) {
            return None;
        }
        Some(format!("origin {origin} is not in allowed_origins"))
    }

    /// The CORS headers for an answer to a request with this `Origin` header: the origin
    /// itself when it is listed, and `Vary: Origin` whenever the list is set.
    pub fn cors<'a>(&self, header: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
        if self.cors.is_empty() {
            return Vec::new();
        }
        let mut headers = vec![("Vary", "Origin")];
        let listed =
            header.filter(|h| Origin::parse(h).is_some_and(|o| acl::admits(&self.cors, &o)));
        if let Some(origin) = listed {
            headers.push(("Access-Control-Allow-Origin", origin.trim()));
        }
        headers
    }

    /// Whether the `Origin` header names a listed CORS origin (its preflight is answered).
    pub fn cors_listed(&self, header: Option<&str>) -> bool {
        self.cors(header).len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(allowed: &[&str], cors: &[&str]) -> WebOrigins {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        let config = Config {
            listen: "127.0.0.1:9998".parse().unwrap(),
            allowed_origins: list(allowed),
            cors_origins: list(cors),
            ..Config::default()
        };
        WebOrigins::new(&config)
    }

    #[test]
    fn the_allow_list_refuses_other_web_origins_only() {
        let any = origins(&[], &[]);
        assert_eq!(
            any.refuses(Some("https://evil.example")),
            None,
            "empty: any"
        );
        let w = origins(&["https://*.example.com"], &[]);
        assert_eq!(w.refuses(Some("https://app.example.com")), None);
        assert!(w
            .refuses(Some("https://evil.example"))
            .unwrap()
            .contains("allowed_origins"));
        assert!(w.refuses(Some("null")).is_some(), "a sandboxed page");
        assert_eq!(w.refuses(None), None, "no Origin: not a web page");
        assert_eq!(w.refuses(Some("0.0.0.0@0")), None, "LinkType's");
        for own in [
            "http://127.0.0.1:9998",
            "http://localhost:9998",
            "http://[::1]:9998",
        ] {
            assert_eq!(w.refuses(Some(own)), None, "the chat page: {own}");
        }
        assert!(
            w.refuses(Some("http://127.0.0.1:8080")).is_some(),
            "another port"
        );
    }

    #[test]
    fn cors_headers_name_a_listed_origin_never_a_star() {
        assert!(origins(&[], &[])
            .cors(Some("https://app.example.com"))
            .is_empty());
        let c = origins(&[], &["https://app.example.com"]);
        assert_eq!(
            c.cors(Some("https://app.example.com")),
            [
                ("Vary", "Origin"),
                ("Access-Control-Allow-Origin", "https://app.example.com")
            ]
        );
        assert_eq!(c.cors(Some("https://evil.example")), [("Vary", "Origin")]);
        assert_eq!(c.cors(None), [("Vary", "Origin")]);
        assert!(c.cors_listed(Some("https://app.example.com")));
        assert!(!c.cors_listed(Some("null")));
    }
}

//! `messenger token`: issues an access token for a URL with an expiry, signed with the
//! server's key file (made if it does not exist yet, as the server would on first start).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::acl::Origin;
use crate::cli::{print, say};
use crate::keyfile;

const USAGE: &str = "\
usage: messenger token --url URL [--ttl SECONDS] [--config PATH] [--key-file PATH] [--owner USER]

Prints an access token for URL, valid for --ttl seconds (default 3600). A client shows it as
?token=... in the WebSocket URL or as 'Authorization: Bearer ...'; the URL's origin becomes
the connection's origin for secure rooms. The key file is the server's (--key-file, else the
config file's key_file, else the default place); it is made if missing. Run this as the user
the server runs as, or as root with --owner USER so the key belongs to that user.";

/// What the subcommand was asked.
struct Request {
    url: String,
    ttl: u64,
    key_file: Option<PathBuf>,
    config: Option<PathBuf>,
    owner: Option<String>,
}

/// Runs the subcommand; returns the exit code (2 for bad usage, 1 for a key problem).
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let request = match parse(args) {
        Ok(Some(request)) => request,
        Ok(None) => {
            print(USAGE);
            return 0;
        }
        Err(why) => {
            say(&format!(
                "messenger token: {why} (see messenger token --help)"
            ));
            return 2;
        }
    };
    let found = keyfile::target(
        request.config.as_deref(),
        request.key_file.clone(),
        request.owner.as_deref(),
    );
    let (path, owner) = match found {
        Ok(found) => found,
        Err(why) => {
            say(&format!("messenger token: {why}"));
            return 2;
        }
    };
    if request.config.is_none() && request.key_file.is_none() {
        say(&format!(
            "messenger token: signing with {} (no --config or --key-file): the server must use the same key file",
            path.display()
        ));
    }
    let key = match keyfile::ensure(&path, owner) {
        Ok((key, notes)) => {
            notes
                .iter()
                .for_each(|n| say(&format!("messenger token: {n}")));
            key
        }
        Err(why) => {
            say(&format!("messenger token: {why}"));
            return 1;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match key.issue(&request.url, now.saturating_add(request.ttl)) {
        Ok(token) => {
            print(&token);
            0
        }
        Err(e) => {
            say(&format!("messenger token: {e}"));
            2
        }
    }
}

/// Reads the flags; `Ok(None)` for `--help`. The URL is checked here, before any key is
/// touched, so a bad URL is reported as one.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Request>, String> {
    let mut url = None;
    let mut ttl = 3600;
    let mut key_file = None;
    let mut config = None;
    let mut owner = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.replace('_', "-"), Some(value.to_owned())),
            None => (flag.replace('_', "-"), None),
        };
        if !["--url", "--ttl", "--key-file", "--config", "--owner"].contains(&name.as_str()) {
            return Err(format!("unknown flag {name}"));
        }
        let value = value
            .or_else(|| args.next())
            .ok_or(format!("flag {name} needs a value"))?;
        match name.as_str() {
            "--url" => url = Some(value),
            "--ttl" => {
                ttl = value.parse().ok().filter(|t| *t > 0).ok_or(format!(
                    "--ttl {value}: expected a whole number of seconds above 0"
                ))?
            }
            "--key-file" => key_file = Some(PathBuf::from(value)),
            "--config" => config = Some(PathBuf::from(value)),
            _ => owner = Some(value),
        }
    }
    let url = url.ok_or("--url is required")?;
    if Origin::parse(&url).is_none() {
        return Err(format!(
            "--url {url:?} is not a URL with an origin: expected scheme://host[:port][/path], such as https://app.example/index.html"
        ));
    }
    Ok(Some(Request {
        url,
        ttl,
        key_file,
        config,
        owner,
    }))
}

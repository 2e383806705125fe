//! `messenger token`: issues an access token for a URL with an expiry, signed with the
//! server's key file (made if it does not exist yet, as the server would on first start).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::access_token::Key;
use crate::config::Config;

const USAGE: &str = "\
usage: messenger token --url URL [--ttl SECONDS] [--config PATH] [--key-file PATH]

Prints an access token for URL, valid for --ttl seconds (default 3600). A client shows it as
?token=... in the WebSocket URL or as 'Authorization: Bearer ...'; the URL's origin becomes
the connection's origin for secure rooms. The key file is the server's (--key-file, else the
config file's key_file, else the default place); it is made if missing.";

/// What the subcommand was asked.
struct Request {
    url: String,
    ttl: u64,
    key_file: Option<PathBuf>,
    config: Option<PathBuf>,
}

/// Runs the subcommand; returns the exit code (2 for bad usage, 1 for a key problem).
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let request = match parse(args) {
        Ok(Some(request)) => request,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(why) => {
            eprintln!("messenger token: {why}\n{USAGE}");
            return 2;
        }
    };
    let path = match (&request.key_file, &request.config) {
        (Some(path), _) => path.clone(),
        (None, Some(config)) => match Config::from_file(config) {
            Ok(config) => config.key_path(),
            Err(e) => {
                eprintln!("messenger token: {e}");
                return 2;
            }
        },
        (None, None) => Config::default().key_path(),
    };
    let key = match Key::load_or_create(&path) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("messenger token: {e}");
            return 1;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match key.issue(&request.url, now.saturating_add(request.ttl)) {
        Ok(token) => {
            println!("{token}");
            0
        }
        Err(e) => {
            eprintln!("messenger token: {e}");
            2
        }
    }
}

/// Reads the flags; `Ok(None)` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Request>, String> {
    let mut url = None;
    let mut ttl = 3600;
    let mut key_file = None;
    let mut config = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = args.next().ok_or(format!("{flag} needs a value"))?;
                (flag, value)
            }
        };
        match name.as_str() {
            "--url" => url = Some(value),
            "--ttl" => {
                ttl = value
                    .parse()
                    .ok()
                    .filter(|t| *t > 0)
                    .ok_or(format!("--ttl {value:?}: expected seconds above 0"))?
            }
            "--key-file" | "--key_file" => key_file = Some(PathBuf::from(value)),
            "--config" => config = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    Ok(Some(Request {
        url,
        ttl,
        key_file,
        config,
    }))
}

//! The command line: which command was asked for (serve, `check-config`, `token`, `key`,
//! `--help`, `--version`), and the settings for it (defaults, then `--config FILE`, then
//! flags). Writes to stdout and stderr never panic, even when the other end is gone.

use std::io::Write;
use std::path::PathBuf;

use crate::config::{self, Config, ConfigError};

/// What the command line asks for.
pub enum Command {
    /// Run the server with these settings.
    Serve(Config),
    /// Check the settings and print them (`check-config` or `--check`), from this file if any.
    Check(Config, Option<PathBuf>),
    /// Print this text on stdout and exit 0 (`--help`, `--help-markdown`, `--version`).
    Print(String),
}

const USAGE_HEAD: &str = "\
messenger: Thunder Messenger-compatible room chat over a loopback WebSocket

usage: messenger [--config PATH] [--SETTING VALUE ...]
       messenger check-config [--config PATH] [--SETTING VALUE ...]   (or --check)
       messenger token --url URL [--ttl SECONDS] [--config PATH] [--key-file PATH] [--owner USER]
       messenger key [--config PATH] [--key-file PATH] [--owner USER]
       messenger --help | --help-markdown | --version

Settings: every key of the JSON file named by --config is also a flag (--max-rooms 50 or
--max_rooms=50); flags win over the file, the file over the defaults. Switches take on or
off (true and false also work); durations are seconds, fractions allowed; sizes are bytes.
";

const USAGE_TAIL: &str = "
'messenger token' prints an access token for URL (its origin becomes the connection's
origin for secure rooms), valid for --ttl seconds (default 3600), signed with the key file.
'messenger key' makes the key file if it is missing and, with --owner, gives it to the user
the server runs as. 'messenger check-config' checks the settings as the server would at
start, prints each effective setting and exits 0, or prints one line and exits 2.
'messenger --help-markdown' prints docs/configuration.md.

On start it prints 'listening on ADDR:PORT' on stdout. SIGTERM or SIGINT closes every client
with 1001 and exits 0. SIGHUP is ignored: restart to apply a changed configuration. Under
systemd (Type=notify) it sends READY=1, STOPPING=1 and, with WatchdogSec=, WATCHDOG=1.";

/// The whole `--help` text, with every setting from the settings table.
pub fn usage() -> String {
    let key = Config::default().key_path();
    format!(
        "{USAGE_HEAD}\nSettings, with their defaults and allowed values:\n{}\n  The default key file for you here is {}.\n{USAGE_TAIL}",
        config::help(),
        key.display()
    )
}

/// `messenger 0.1.0 (commit 1a2b3c4, x86_64-unknown-linux-gnu)`.
pub fn version() -> String {
    format!(
        "messenger {} (commit {}, {})",
        env!("CARGO_PKG_VERSION"),
        env!("MESSENGER_COMMIT"),
        env!("MESSENGER_TARGET")
    )
}

/// Reads the server's command line (everything after the program name).
pub fn parse(args: &[String]) -> Result<Command, ConfigError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Print(usage()));
    }
    if args.iter().any(|a| a == "--help-markdown") {
        return Ok(Command::Print(config::markdown()));
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Print(version()));
    }
    let (check, args) = match args.split_first() {
        Some((first, rest)) if first == "check-config" => (true, rest),
        _ => (false, args),
    };
    let (config, file, flagged) = settings(args)?;
    Ok(if check || flagged {
        Command::Check(config, file)
    } else {
        Command::Serve(config)
    })
}

/// Defaults, then the file named by `--config`, then the other flags, checked together.
/// Also says which file was read and whether `--check` was given.
fn settings(args: &[String]) -> Result<(Config, Option<PathBuf>, bool), ConfigError> {
    let mut pairs = Vec::new();
    let mut check = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            return Err(ConfigError::Unexpected(arg.clone()));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        if name == "--check" && inline.is_none() {
            check = true;
            continue;
        }
        if name != "--config" && !Config::is_flag(name) {
            return Err(ConfigError::UnknownFlag(name.to_owned()));
        }
        let value = match inline {
            Some(value) => value,
            None => it
                .next()
                .ok_or_else(|| ConfigError::MissingValue(name.to_owned()))?,
        };
        pairs.push((name, value));
    }
    let file = pairs
        .iter()
        .rev()
        .find(|(name, _)| *name == "--config")
        .map(|(_, path)| PathBuf::from(path));
    let mut config = match &file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    for (name, value) in pairs.iter().filter(|(name, _)| *name != "--config") {
        config.set(name, value)?;
    }
    config.validate()?;
    Ok((config, file, check))
}

/// Writes a line to stderr; a closed or broken stderr is ignored (never a panic).
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Writes text to stdout, ending in one newline, and flushes it; a closed stdout is ignored
/// (never a panic).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(list: &[&str]) -> Result<Command, ConfigError> {
        let args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse(&args)
    }

    fn error(list: &[&str]) -> String {
        match run(list) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{list:?} should be refused"),
        }
    }

    #[test]
    fn flags_override_defaults() {
        let Ok(Command::Serve(c)) = run(&["--listen", "127.0.0.1:0", "--max-rooms=5"]) else {
            panic!("serve");
        };
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.max_rooms, 5);
    }

    #[test]
    fn unknown_flags_are_unknown_whatever_follows() {
        assert!(error(&["--bogus"]).starts_with("unknown flag --bogus"));
        assert!(error(&["--bogus", "1"]).starts_with("unknown flag --bogus"));
        assert!(error(&["--bogus=1"]).starts_with("unknown flag --bogus"));
        assert!(error(&["serve"]).starts_with("unexpected argument serve"));
        assert_eq!(error(&["--listen"]), "flag --listen needs a value");
    }

    #[test]
    fn check_config_is_a_command_and_a_flag() {
        assert!(matches!(
            run(&["check-config"]),
            Ok(Command::Check(_, None))
        ));
        assert!(matches!(
            run(&["--check", "--max-rooms", "3"]),
            Ok(Command::Check(c, None)) if c.max_rooms == 3
        ));
        assert!(error(&["check-config", "--idle-timeout", "0"]).contains("out of range"));
    }

    #[test]
    fn help_and_version_win() {
        let Ok(Command::Print(text)) = run(&["--bogus", "--help"]) else {
            panic!("help");
        };
        assert!(text.contains("--max-registrations-per-connection N"));
        let Ok(Command::Print(text)) = run(&["--version"]) else {
            panic!("version");
        };
        assert!(text.starts_with("messenger ") && text.contains("commit "));
    }
}

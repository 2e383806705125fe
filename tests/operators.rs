//! What an operator meets on the command line, against the real binary: every bad setting is
//! one plain line and exit 2 (each case quoted in issue 12), `check-config` prints the
//! effective settings, `--help` lists every setting, `--version` names commit and target, and
//! a server told to accept tokens refuses to start without its key.

mod support;

use std::fs;
use std::path::PathBuf;

use support::{run_to_exit, run_to_exit_with, Server};

/// A fresh directory under target/ for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("operators-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary, expecting exit 2 and exactly one line on stderr; returns that line.
fn refused(args: &[&str]) -> String {
    let (code, stdout, stderr) = run_to_exit(args);
    assert_eq!(code, Some(2), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr:?}"
    );
    assert!(
        stdout.is_empty(),
        "{args:?}: nothing on stdout, got {stdout:?}"
    );
    let line = stderr.trim_end().to_owned();
    assert!(
        !line.contains("invalid type")
            && !line.contains("usize")
            && !line.contains("expected a boolean"),
        "no serde wording: {line}"
    );
    line
}

#[test]
fn useless_values_are_refused_with_the_setting_value_and_range() {
    // Before: accepted, and every HTTP request got an empty reply.
    assert_eq!(
        refused(&["--handshake-timeout", "0"]),
        "messenger: --handshake-timeout 0: out of range: allowed 0.1 to 3600 seconds"
    );
    // Before: accepted, and every WebSocket was dropped before its first reply.
    assert_eq!(
        refused(&["--idle-timeout", "0"]),
        "messenger: --idle-timeout 0: out of range: allowed 0.1 to 86400 seconds"
    );
    // Before: accepted; no request fits in 10 bytes.
    assert_eq!(
        refused(&["--max-message-size", "10"]),
        "messenger: --max-message-size 10: out of range: allowed 256 to 16777216 bytes"
    );
    assert!(refused(&["--max-request-body", "100"]).contains("allowed 256 to"));
    let line = refused(&["--max-outbound-bytes", "65536"]);
    assert!(
        line.contains("max_outbound_bytes (--max-outbound-bytes) 65536"),
        "{line}"
    );
    assert!(line.contains("twice max_message_size"), "{line}");
}

#[test]
fn quoted_error_cases_read_as_plain_english() {
    // Before: `invalid type: string "abc", expected usize`.
    assert_eq!(
        refused(&["--max-rooms", "abc"]),
        "messenger: --max-rooms abc: expected a whole number from 1 to 1000000"
    );
    // Before: "expected a boolean" where --help says on|off.
    assert_eq!(
        refused(&["--page", "maybe"]),
        "messenger: --page maybe: expected on or off"
    );
    // Before: "invalid socket address syntax".
    let line = refused(&["--listen", "localhost:9998"]);
    assert!(line.contains("host names are not looked up"), "{line}");
    assert!(line.contains("127.0.0.1:9998"), "{line}");
    // Before: "flag --bogus needs a value" alone, "unknown flag" with a value.
    for args in [&["--bogus"][..], &["--bogus", "1"], &["--bogus=1"]] {
        let line = refused(args);
        assert!(
            line.starts_with("messenger: unknown flag --bogus"),
            "{line}"
        );
    }
    // Before: "malformed token: ..." and a six-line usage block.
    let line = refused(&["token", "--url", "notaurl"]);
    assert!(line.contains("--url \"notaurl\" is not a URL"), "{line}");
    assert!(!line.contains("malformed token"), "{line}");
}

#[test]
fn a_bad_file_is_one_line_naming_the_file_and_key() {
    let dir = scratch("file");
    let path = dir.join("messenger.json");
    fs::write(&path, r#"{"max_rooms": "abc"}"#).unwrap();
    let line = refused(&["--config", path.to_str().unwrap()]);
    assert!(line.contains(path.to_str().unwrap()), "{line}");
    assert!(line.contains("max_rooms"), "{line}");
    assert!(line.contains("expected a whole number"), "{line}");
}

#[test]
fn check_config_prints_the_effective_settings() {
    let dir = scratch("check");
    let path = dir.join("messenger.json");
    let key = dir.join("key");
    let text = format!(
        r#"{{"page": false, "max_rooms": 50, "key_file": {:?}}}"#,
        key
    );
    fs::write(&path, text).unwrap();
    let config = path.to_str().unwrap();
    let (code, stdout, stderr) = run_to_exit(&["check-config", "--config", config]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("settings are valid"), "{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("{key} missing: {stdout}"))
            .to_owned()
    };
    assert!(
        line("max_rooms").contains("50   (default 1000)"),
        "{stdout}"
    );
    assert!(line("page").contains("off   (default on)"), "{stdout}");
    assert!(!line("listen").contains("default"), "{stdout}");
    assert!(
        stdout.contains("not there yet"),
        "the key is not made: {stdout}"
    );
    assert!(!key.exists(), "check-config writes nothing");
    // --check is the same; a bad value is exit 2 with one line.
    let (code, _, _) = run_to_exit(&["--check", "--config", config, "--max-rooms", "7"]);
    assert_eq!(code, Some(0));
    refused(&["check-config", "--config", config, "--idle-timeout", "0"]);
    // A key file it names that the server could not use: exit 2.
    fs::write(&key, "not hex\n").unwrap();
    let (code, stdout, stderr) = run_to_exit(&["check-config", "--config", config]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("would not start"), "{stderr}");
}

#[test]
fn help_lists_every_setting_and_version_names_commit_and_target() {
    let (code, help, _) = run_to_exit(&["--help"]);
    assert_eq!(code, Some(0));
    // The settings issue 12 found missing from --help, and the key file's place.
    for flag in [
        "--max-registrations-per-connection N",
        "--max-request-head BYTES",
        "--max-request-body BYTES",
        "--thread-stack-size BYTES",
        "--read-buffer-size BYTES",
        "The default key file for you here is",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let doc = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ));
    let (_, markdown, _) = run_to_exit(&["--help-markdown"]);
    assert_eq!(
        doc.unwrap(),
        markdown,
        "docs/configuration.md is current (make docs)"
    );
    let (code, version, _) = run_to_exit(&["--version"]);
    assert_eq!(code, Some(0));
    let version = version.trim();
    assert!(version.starts_with(concat!(
        "messenger ",
        env!("CARGO_PKG_VERSION"),
        " (commit "
    )));
    assert!(version.contains("linux"), "names the target: {version}");
}

#[test]
fn a_server_told_to_accept_tokens_does_not_start_without_its_key() {
    let dir = scratch("nokey");
    let key = dir.join("key");
    fs::write(&key, "not hex\n").unwrap();
    let key_arg = key.to_str().unwrap();
    // key_file set explicitly: the operator asked for tokens.
    let (code, stdout, stderr) = run_to_exit(&["--listen", "127.0.0.1:0", "--key-file", key_arg]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "never listened: {stdout}");
    assert!(
        stderr.contains(key_arg) && stderr.contains("key_file is set"),
        "{stderr}"
    );
    // require_token with the default place unusable.
    let args = ["--listen", "127.0.0.1:0", "--require-token", "on"];
    let (code, _, stderr) = run_to_exit_with(&args, |cmd| {
        cmd.env("STATE_DIRECTORY", "/proc/no-such-dir");
    });
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("require_token is on"), "{stderr}");
}

#[test]
fn without_a_configured_key_tokens_are_off_with_a_warning() {
    let server = Server::start_with(&["--key-file", ""], |cmd| {
        cmd.env("STATE_DIRECTORY", "/proc/no-such-dir");
    });
    let health = server.health();
    assert_eq!(health["connections"], 1, "it started and answers: {health}");
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.rooms"}"#;
    let bearer = [("Authorization", "Bearer a.b")];
    let (status, body) = server.http_with("POST", "/jsonrpc", &bearer, Some(call));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("no signing key"), "{body}");
}

#[test]
fn token_as_another_user_than_the_key_owner_says_whose_key_it_is() {
    let setpriv = std::process::Command::new("setpriv").arg("--help").output();
    let as_root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !as_root || !setpriv.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--reuid")) {
        eprintln!("needs root and util-linux setpriv; skipped");
        return;
    }
    // Under the system's temporary directory, not the checkout: the other user must reach
    // the key whatever the modes of the directories the checkout lies in.
    let dir = std::env::temp_dir().join(format!("messenger-owner-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let key = dir.join("key");
    let key_arg = key.to_str().unwrap();
    let (code, _, stderr) = run_to_exit(&["key", "--key-file", key_arg]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("belongs to root"),
        "root is warned: {stderr}"
    );
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_messenger"))
        .args(["token", "--url", "https://a.example", "--key-file", key_arg])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("belongs to uid 0"), "{stderr}");
    assert!(stderr.contains("--owner USER"), "{stderr}");
    // Given to nobody, it works for nobody.
    let (code, _, stderr) = run_to_exit(&["key", "--key-file", key_arg, "--owner", "65534"]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_messenger"))
        .args(["token", "--url", "https://a.example", "--key-file", key_arg])
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

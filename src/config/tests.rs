//! Unit tests for the settings: the table matches `Config`, flags and files are checked alike,
//! every refusal is one plain line, and `docs/configuration.md` is what the binary prints.

use super::*;

fn set_err(flag: &str, value: &str) -> String {
    let mut c = Config::default();
    c.set(flag, value).unwrap_err().to_string()
}

fn invalid(flag: &str, value: &str) -> String {
    let mut c = Config::default();
    match c.set(flag, value) {
        Err(e) => e.to_string(),
        Ok(()) => c.validate().unwrap_err().to_string(),
    }
}

#[test]
fn the_table_covers_exactly_the_settings() {
    let keys: Vec<String> = Config::default().to_map().keys().cloned().collect();
    for key in &keys {
        assert!(
            table::find(key).is_some(),
            "setting `{key}` has no row in SETTINGS (src/config/table.rs): add its kind \
             (unit and allowed range) and a one-line help"
        );
    }
    for setting in SETTINGS {
        assert!(
            keys.iter().any(|k| k == setting.key),
            "SETTINGS (src/config/table.rs) has a row for `{}`, which Config does not have",
            setting.key
        );
    }
    for setting in SETTINGS {
        assert!(
            setting.help.len() <= 92,
            "the help of `{}` is longer than one --help line (92 characters)",
            setting.key
        );
    }
    let mut seen = std::collections::HashSet::new();
    for setting in SETTINGS {
        assert!(seen.insert(setting.key), "two rows for `{}`", setting.key);
    }
}

#[test]
fn defaults_pass_their_own_checks() {
    Config::default().validate().unwrap();
}

#[test]
fn flags_use_the_table() {
    let mut c = Config::default();
    c.set("--max-rooms", "7").unwrap();
    c.set("--listen", "127.0.0.1:0").unwrap();
    c.set("--page", "off").unwrap();
    c.set("--idle-timeout", "1.5").unwrap();
    c.set("--compat", "r5").unwrap();
    c.set("--max_members_per_room", "9").unwrap();
    c.set("--require-token", "true").unwrap();
    assert_eq!(c.max_rooms, 7);
    assert_eq!(c.listen.port(), 0);
    assert!(!c.page);
    assert_eq!(c.idle_timeout, Duration::from_millis(1500));
    assert_eq!(c.compat, Compat::R5);
    assert_eq!(c.max_members_per_room, 9);
    assert!(c.require_token);
}

#[test]
fn bad_values_say_what_is_allowed_in_plain_words() {
    let e = set_err("--max-rooms", "abc");
    assert_eq!(
        e,
        "--max-rooms abc: expected a whole number from 1 to 1000000"
    );
    let e = set_err("--page", "maybe");
    assert_eq!(e, "--page maybe: expected on or off");
    let e = set_err("--listen", "localhost:9998");
    assert!(e.contains("host names are not looked up"), "{e}");
    assert!(e.contains("127.0.0.1:9998"), "{e}");
    let e = set_err("--listen", "nowhere");
    assert!(e.contains("expected an IP address and port"), "{e}");
    let e = set_err("--compat", "r9");
    assert_eq!(e, "--compat r9: expected one of rdk, r5");
    let e = set_err("--idle-timeout", "-1");
    assert!(
        e.contains("out of range: allowed 0.1 to 86400 seconds"),
        "{e}"
    );
    let e = set_err("--no-such", "1");
    assert!(e.starts_with("unknown flag --no-such"), "{e}");
    for e in [
        set_err("--max-rooms", "-3"),
        set_err("--message-burst", "1.5"),
    ] {
        assert!(!e.contains("usize") && !e.contains("invalid type"), "{e}");
    }
}

#[test]
fn values_that_make_the_server_useless_are_refused() {
    for (flag, value, words) in [
        ("--handshake-timeout", "0", "allowed 0.1 to 3600 seconds"),
        ("--idle-timeout", "0", "allowed 0.1 to 86400 seconds"),
        ("--max-message-size", "10", "allowed 256 to 16777216 bytes"),
        ("--max-request-body", "100", "allowed 256 to 16777216 bytes"),
        ("--max-request-head", "100", "allowed 1024 to 1048576 bytes"),
        ("--max-connections", "0", "allowed 1 to 100000"),
        (
            "--max-registrations-per-connection",
            "0",
            "allowed 1 to 4000000",
        ),
        (
            "--thread-stack-size",
            "4096",
            "allowed 49152 to 16777216 bytes",
        ),
        ("--max-messages-per-second", "0", "allowed 0.01 to"),
        (
            "--http-membership-ttl",
            "1e30",
            "allowed 0.1 to 604800 seconds",
        ),
    ] {
        let e = invalid(flag, value);
        assert!(
            e.starts_with(&format!("{flag} {value}: out of range")),
            "{e}"
        );
        assert!(e.contains(words), "{flag}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn sizes_that_cannot_work_together_are_refused() {
    let mut c = Config::default();
    c.set("--max-outbound-bytes", "100000").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.starts_with("max_outbound_bytes (--max-outbound-bytes) 100000"),
        "{e}"
    );
    assert!(e.contains("twice max_message_size"), "{e}");
    c.set("--max-message-size", "50000").unwrap();
    c.validate().unwrap();
}

#[test]
fn programmatic_values_are_range_checked_too() {
    let c = Config {
        handshake_timeout: Duration::ZERO,
        ..Config::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert_eq!(
        e,
        "handshake_timeout (--handshake-timeout) 0: out of range: allowed 0.1 to 3600 seconds"
    );
}

#[test]
fn remote_listen_needs_explicit_setting() {
    let mut c = Config::default();
    c.set("--listen", "0.0.0.0:9998").unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("--allow-remote on"));
    c.set("--allow-remote", "on").unwrap();
    assert!(c.validate().is_ok());
}

#[test]
fn admin_token_is_long_or_absent() {
    let mut c = Config::default();
    c.set("--admin-token", "short").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("5 characters: allowed 16 or more"), "{e}");
    assert!(!e.contains("short"), "the secret is not printed: {e}");
    c.set("--admin-token", "0123456789abcdef").unwrap();
    assert!(c.validate().is_ok());
    c.set("--server-name", "").unwrap();
    assert!(c.validate().is_err());
}

fn file_with(name: &str, text: &str) -> Result<Config, ConfigError> {
    let path = std::env::temp_dir().join(format!("messenger-config-{name}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let result = Config::from_file(&path);
    let _ = std::fs::remove_file(&path);
    result
}

#[test]
fn files_are_checked_like_flags() {
    let c = file_with(
        "ok",
        r#"{"max_rooms": 3, "page": false, "idle_timeout": 2.5}"#,
    )
    .unwrap();
    assert_eq!(c.max_rooms, 3);
    assert!(!c.page);
    assert_eq!(c.idle_timeout, Duration::from_millis(2500));
    let e = file_with("typo", r#"{"max_romos": 3}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains(r#"unknown setting "max_romos""#), "{e}");
    let e = file_with("type", r#"{"max_rooms": "abc"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with(r#"max_rooms "\"abc\"": expected a whole number from 1 to 1000000"#),
        "{e}"
    );
    let e = file_with("bool", r#"{"page": "maybe"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected true or false"), "{e}");
    let e = file_with("range", r#"{"idle_timeout": 0}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range"), "{e}");
    let e = file_with("array", "[1]").unwrap_err().to_string();
    assert!(e.contains("expected a JSON object"), "{e}");
    let e = file_with("syntax", "{").unwrap_err().to_string();
    assert!(e.contains("not JSON"), "{e}");
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let text = help();
    for setting in SETTINGS {
        assert!(
            text.contains(&setting.flag()),
            "{} missing from --help",
            setting.key
        );
        assert!(
            text.contains(setting.help),
            "{}'s help missing",
            setting.key
        );
    }
    assert!(text.contains("--max-message-size BYTES"));
    assert!(text.contains("default 66560; 256 to 16777216 bytes"));
    assert!(text.contains("--page on|off"));
    assert!(text.contains("--handshake-timeout SECONDS"));
}

#[test]
fn differences_name_changed_settings_and_hide_secrets() {
    let mut c = Config::default();
    assert!(differences(&c).is_empty());
    c.set("--page", "off").unwrap();
    c.set("--admin-token", "0123456789abcdef").unwrap();
    assert_eq!(differences(&c), ["page=off", "admin_token=(set)"]);
    let listing = effective(&c);
    assert!(listing.contains("page") && listing.contains("(default on)"));
    assert!(!listing.contains("0123456789abcdef"));
}

#[test]
fn the_committed_configuration_doc_is_generated() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == markdown(),
        "docs/configuration.md is not what the settings table gives: run `make docs` \
         (messenger --help-markdown > docs/configuration.md) and commit it"
    );
}

#[test]
fn history_budget_fits_the_outbound_queue() {
    let mut c = Config::default();
    c.set("--history-bytes", "0").unwrap();
    assert!(c.validate().is_ok(), "no history, no budget needed");
    c.set("--history", "100").unwrap();
    assert!(c.validate().is_err());
    c.set("--history-bytes", &(c.max_outbound_bytes / 4).to_string())
        .unwrap();
    assert!(c.validate().is_ok());
    c.set("--max-outbound-bytes", "1048576").unwrap();
    assert!(c.validate().is_err());
    assert!(Config::default().history_bytes <= Config::default().max_outbound_bytes / 4);
}

#[test]
fn caps_must_leave_room_for_honest_use() {
    for (flag, useless) in [
        ("--max-user-bytes", "0"),
        ("--max-room-bytes", "0"),
        ("--max-message-bytes", "0"),
        ("--max-acl-patterns", "0"),
        ("--max-acl-pattern-bytes", "0"),
        ("--max-origin-bytes", "0"),
        ("--max-id-bytes", "21"),
        ("--thread-stack-size", "32768"),
    ] {
        let mut c = Config::default();
        let why = match c.set(flag, useless) {
            Err(e) => e.to_string(),
            Ok(()) => c.validate().unwrap_err().to_string(),
        };
        assert!(why.contains(flag), "{flag}: {why}");
    }
}

#[test]
fn allowed_hosts_is_a_list_of_names() {
    let mut c = Config::default();
    c.set("--allowed-hosts", "stb.local, 192.168.1.20").unwrap();
    assert_eq!(c.allowed_hosts, ["stb.local", "192.168.1.20"]);
    assert!(c.validate().is_ok());
    assert_eq!(differences(&c), ["allowed_hosts=stb.local,192.168.1.20"]);
    c.set("--allowed-hosts", r#"["[fe80::1]","box"]"#).unwrap();
    assert_eq!(c.allowed_hosts, ["[fe80::1]", "box"]);
    assert!(c.validate().is_ok());
    c.set("--allowed-hosts", "[fe80::1]").unwrap();
    assert_eq!(c.allowed_hosts, ["[fe80::1]"], "not JSON: one name");
    for bad in ["box:9998", "http://box", "a b", "box/x", "::zz"] {
        c.set("--allowed-hosts", bad).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("allowed_hosts (--allowed-hosts) entry"),
            "{bad}: {e}"
        );
    }
    c.set("--allowed-hosts", "[]").unwrap();
    assert!(c.allowed_hosts.is_empty());
    assert!(differences(&c).is_empty());
    let e = file_with("hosts", r#"{"allowed_hosts": "box"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected a JSON array of strings"), "{e}");
    let c = file_with("hosts-ok", r#"{"allowed_hosts": ["box"]}"#).unwrap();
    assert_eq!(c.allowed_hosts, ["box"]);
}

#[test]
fn the_callsign_is_not_the_controllers() {
    let mut c = Config::default();
    c.set("--callsign", "Controller").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("must not be Controller"), "{e}");
}

#[test]
fn origin_lists_are_arrays_or_commas_of_patterns() {
    let mut c = Config::default();
    c.set("--allowed-origins", r#"["https://app.example.com"]"#)
        .unwrap();
    assert_eq!(c.allowed_origins, ["https://app.example.com"]);
    c.set(
        "--cors-origins",
        "https://*.example.com, http://localhost:*",
    )
    .unwrap();
    assert_eq!(
        c.cors_origins,
        ["https://*.example.com", "http://localhost:*"]
    );
    c.validate().unwrap();
    let shown = effective(&c);
    assert!(
        shown.contains("https://*.example.com,http://localhost:*"),
        "{shown}"
    );
    c.set("--cors-origins", "").unwrap();
    assert!(c.cors_origins.is_empty());
    c.set("--allowed-origins", "ftp//nope").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.starts_with("allowed_origins (--allowed-origins): bad ACL pattern"),
        "{e}"
    );
    let e = set_err("--cors-origins", "[1,2]");
    assert!(e.contains("expected a JSON array of strings"), "{e}");
    let e = file_with("list", r#"{"cors_origins": "https://a.example"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected a JSON array of strings"), "{e}");
}

#[test]
fn the_memory_budget_holds_a_queue_at_its_ceiling_in_half() {
    let mut c = Config::default();
    c.set(
        "--max-memory-bytes",
        &(3 * c.max_outbound_bytes).to_string(),
    )
    .unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.starts_with("max_memory_bytes (--max-memory-bytes)"),
        "{e}"
    );
    assert!(e.contains("four times max_outbound_bytes"), "{e}");
    c.set("--max-outbound-bytes", "1048576").unwrap();
    c.validate().unwrap();
}

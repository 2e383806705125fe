//! The systemd unit `board/messenger.service`: it is `Type=notify` with a watchdog, systemd
//! accepts it (`systemd-analyze verify`, where installed), and its `ExecStartPre=` really gives
//! the signing key, even one root made, to the owner of the state directory.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn unit() -> String {
    fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/board/messenger.service"
    ))
    .unwrap()
}

/// The value of the first `Key=` line.
fn setting(unit: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("unit-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The unit with the installed binary's path replaced by the one under test.
fn local(unit: &str) -> String {
    unit.replace("/usr/bin/messenger", env!("CARGO_BIN_EXE_messenger"))
}

#[test]
fn the_unit_tells_systemd_when_it_is_ready_and_alive() {
    let unit = unit();
    assert_eq!(setting(&unit, "Type"), "notify");
    assert_eq!(setting(&unit, "NotifyAccess"), "main");
    assert!(setting(&unit, "WatchdogSec").ends_with('s'));
    assert_eq!(
        setting(&unit, "Restart"),
        "on-failure",
        "a watchdog timeout restarts it"
    );
    assert!(setting(&unit, "ExecStartPre").starts_with("+/bin/sh -c 'exec /usr/bin/messenger key "));
    assert!(
        setting(&unit, "RestrictAddressFamilies").contains("AF_UNIX"),
        "the notify socket"
    );
}

#[test]
fn systemd_accepts_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; skipped");
        return;
    }
    let dir = scratch("verify");
    let path = dir.join("messenger.service");
    fs::write(&path, local(&unit())).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("messenger.service"),
        "no complaint about the unit: {said}"
    );
}

#[test]
fn exec_start_pre_gives_the_key_to_the_state_directory_owner() {
    let dir = scratch("prestart");
    let state = dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let key = state.join("key");
    let config = dir.join("messenger.json");
    fs::write(&config, format!(r#"{{"key_file": {key:?}}}"#)).unwrap();
    let as_root = fs::metadata("/proc/self").unwrap().uid() == 0;
    if as_root {
        // What systemd does with StateDirectory= and DynamicUser=: the directory belongs to
        // the service's user (here nobody). Root made the key before the first start.
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        let made = Command::new(env!("CARGO_BIN_EXE_messenger"))
            .args(["key", "--key-file"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(made.status.success());
        assert_eq!(fs::metadata(&key).unwrap().uid(), 0);
    }
    // The command as systemd runs it: `%%` is `%` and `$$` is `$` in unit files.
    let command = setting(&local(&unit()), "ExecStartPre")
        .trim_start_matches('+')
        .replace("%%", "%")
        .replace("$$", "$")
        .replace("/etc/messenger/messenger.json", config.to_str().unwrap());
    let out = Command::new("/bin/sh")
        .args(["-c", &command])
        .env("STATE_DIRECTORY", &state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = fs::metadata(&key).expect("the key exists");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        meta.uid(),
        fs::metadata(&state).unwrap().uid(),
        "the key is the service user's"
    );
}

//! The signing key file on the box: what the server does when it cannot read it (refuse to
//! start when it was told to accept tokens, else warn), who owns it (`--owner USER` gives it
//! to the service's user), and the `messenger key` subcommand the init script and the systemd
//! unit run before every start.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::access_token::{Key, KeyError};
use crate::cli::say;
use crate::config::Config;

/// The key the server starts with, and a few words on it for the start line.
pub struct ServerKey {
    pub key: Option<Key>,
    pub state: String,
}

/// Loads (or makes) the server's key. An error means the server must not start: `key_file`
/// is set or `require_token` is on, and the key cannot be used.
pub fn for_server(config: &Config) -> Result<ServerKey, String> {
    let path = config.key_path();
    let existed = path.exists();
    match Key::load_or_create(&path) {
        Ok(key) => {
            let how = if existed { "loaded" } else { "created" };
            let state = format!("key file {} {how}", path.display());
            Ok(ServerKey {
                key: Some(key),
                state,
            })
        }
        Err(e) if config.require_token || !config.key_file.is_empty() => {
            let told = if config.require_token {
                "require_token is on"
            } else {
                "key_file is set"
            };
            Err(format!(
                "{}; {told}, so the server does not start without its key",
                explain(&path, &e)
            ))
        }
        Err(e) => {
            let state = format!("{}; access tokens are refused", explain(&path, &e));
            log::warn!("{state}");
            Ok(ServerKey { key: None, state })
        }
    }
}

/// The key file's state for `check-config`, without making it; false when the server would
/// refuse to start for it.
pub fn describe(config: &Config) -> (String, bool) {
    let path = config.key_path();
    let told = config.require_token || !config.key_file.is_empty();
    let Ok(meta) = fs::metadata(&path) else {
        let line = format!(
            "key file {}: not there yet; the server makes it on first start",
            path.display()
        );
        return (line, true);
    };
    let owner = format!("owner uid {}, mode {:o}", meta.uid(), meta.mode() & 0o777);
    match Key::load(&path) {
        Ok(_) => (
            format!(
                "key file {}: readable by this user ({owner})",
                path.display()
            ),
            true,
        ),
        Err(e) if told => (explain(&path, &e), false),
        Err(e) => (
            format!(
                "{}; the server would start with access tokens refused",
                explain(&path, &e)
            ),
            true,
        ),
    }
}

/// A key error, with the owner and the way out when the file belongs to someone else.
pub fn explain(path: &Path, e: &KeyError) -> String {
    let denied = matches!(e, KeyError::Io(_, io) if io.kind() == io::ErrorKind::PermissionDenied);
    let me = euid();
    match fs::metadata(path).map(|m| m.uid()) {
        Ok(owner) if denied && Some(owner) != me => format!(
            "{e} (the file belongs to uid {owner}, this process runs as uid {}): run as that user, or give the key to this one with `messenger key --owner USER` as root",
            me.map_or_else(|| "?".into(), |u| u.to_string())
        ),
        _ if denied => format!(
            "{e}: this user cannot reach the file (check the directories above it)"
        ),
        _ => e.to_string(),
    }
}

/// The effective user id of this process (the owner of `/proc/self`).
pub fn euid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A user to give the key to: `NAME`, `NAME:GROUP`, `UID` or `UID:GID`; names are looked up
/// in `/etc/passwd` and `/etc/group`.
pub fn owner(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => {
            let entry = lookup("/etc/passwd", user)
                .ok_or_else(|| format!("--owner {spec}: no user {user:?} in /etc/passwd"))?;
            (entry.0, Some(entry.1))
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                lookup("/etc/group", g)
                    .ok_or_else(|| format!("--owner {spec}: no group {g:?} in /etc/group"))?
                    .0
            }
        },
        None => primary.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// The third and fourth fields of the line for `name` in a passwd or group file.
fn lookup(file: &str, name: &str) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) || fields.len() < 3 {
            return None;
        }
        let id = fields[2].parse().ok()?;
        let second = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
        Some((id, second))
    })
}

/// Makes the key if it is missing and, with `owner`, gives it (mode 0600) to that user, and
/// the directory too if this call made it. Returns the key and notes for the operator.
pub fn ensure(path: &Path, owner: Option<(u32, u32)>) -> Result<(Key, Vec<String>), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let new_dir = dir.is_some_and(|d| !d.exists());
    let key = Key::load_or_create(path).map_err(|e| explain(path, &e))?;
    let mut notes = Vec::new();
    let Some((uid, gid)) = owner else {
        if let (Some(0), Ok(meta)) = (euid(), fs::metadata(path)) {
            if meta.uid() == 0 {
                notes.push(format!(
                    "note: key file {} belongs to root; a server running as another user cannot read it. Give it with --owner USER (the board's init script and systemd unit do this before each start)",
                    path.display()
                ));
            }
        }
        return Ok((key, notes));
    };
    let give = |p: &Path| {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .map_err(|e| format!("cannot give {} to uid {uid}: {e}", p.display()))
    };
    give(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod 600 {}: {e}", path.display()))?;
    if let Some(dir) = dir.filter(|_| new_dir) {
        give(dir)?;
    } else if let Some(dir) = dir {
        if !reachable(dir, uid, gid) {
            notes.push(format!(
                "warning: uid {uid} cannot enter {}, so it cannot read the key there",
                dir.display()
            ));
        }
    }
    Ok((key, notes))
}

/// Whether `uid`/`gid` may search a directory (by its mode bits; root always may).
fn reachable(dir: &Path, uid: u32, gid: u32) -> bool {
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    let mode = meta.mode();
    uid == 0
        || (meta.uid() == uid && mode & 0o100 != 0)
        || (meta.gid() == gid && mode & 0o010 != 0)
        || mode & 0o001 != 0
}

/// Reads `--config`, `--key-file` and `--owner` for `messenger key` and `messenger token`:
/// the key file path and the owner to give it to.
pub fn target(
    config: Option<&Path>,
    key_file: Option<PathBuf>,
    owner_spec: Option<&str>,
) -> Result<(PathBuf, Option<(u32, u32)>), String> {
    let path = match (key_file, config) {
        (Some(path), _) => path,
        (None, Some(config)) => Config::from_file(config)
            .map_err(|e| e.to_string())?
            .key_path(),
        (None, None) => Config::default().key_path(),
    };
    let owner = owner_spec.map(owner).transpose()?;
    Ok((path, owner))
}

const USAGE: &str = "\
usage: messenger key [--config PATH] [--key-file PATH] [--owner USER[:GROUP]]

Makes the key file that signs access tokens if it does not exist (mode 0600) and, with
--owner, gives it to that user (a name or a uid), so a server running as that user can read
it. The file is --key-file, else the config file's key_file, else the default place.";

/// `messenger key`; returns the exit code (2 for bad usage, 1 for a key problem).
pub fn main(args: &[String]) -> i32 {
    let mut opts = [("--config", None), ("--key-file", None), ("--owner", None)];
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            crate::cli::print(USAGE);
            return 0;
        }
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.replace('_', "-"), Some(v.to_owned())),
            None => (flag.replace('_', "-"), it.next().cloned()),
        };
        let Some(slot) = opts.iter_mut().find(|(n, _)| *n == name) else {
            say(&format!(
                "messenger key: unknown flag {name} (see messenger key --help)"
            ));
            return 2;
        };
        let Some(value) = value else {
            say(&format!("messenger key: flag {name} needs a value"));
            return 2;
        };
        slot.1 = Some(value);
    }
    let [(_, config), (_, key_file), (_, owner)] = opts;
    let config = config.map(PathBuf::from);
    let (path, owner) = match target(
        config.as_deref(),
        key_file.map(PathBuf::from),
        owner.as_deref(),
    ) {
        Ok(found) => found,
        Err(why) => {
            say(&format!("messenger key: {why}"));
            return 2;
        }
    };
    match ensure(&path, owner) {
        Ok((_, notes)) => {
            notes
                .iter()
                .for_each(|n| say(&format!("messenger key: {n}")));
            crate::cli::print(&path.display().to_string());
            0
        }
        Err(why) => {
            say(&format!("messenger key: {why}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_names_or_numbers() {
        assert_eq!(owner("0"), Ok((0, 0)));
        assert_eq!(owner("1000:100"), Ok((1000, 100)));
        assert_eq!(owner("root"), Ok((0, 0)));
        assert_eq!(owner("root:0"), Ok((0, 0)));
        let e = owner("no-such-user-here").unwrap_err();
        assert!(
            e.contains("no user \"no-such-user-here\" in /etc/passwd"),
            "{e}"
        );
        assert!(owner("root:no-such-group-here").is_err());
    }
}

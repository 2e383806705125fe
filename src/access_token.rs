//! Access tokens: the server's signing key (32 bytes from the OS CSPRNG in a file only its owner
//! can read) and tokens that name a URL with an expiry, signed with HMAC-SHA256. A connection
//! that shows a valid token gets the token URL's origin. Pure apart from the key file; time is
//! passed in as Unix seconds.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))` without padding,
//! where `payload` is the JSON `{"url":"<url>","exp":<unix seconds>}`. The signature covers
//! the payload's exact bytes, so nothing is re-serialized before checking.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::acl::Origin;

/// Longest token accepted, in bytes: far above any real URL, far below the request-head limit.
pub const MAX_TOKEN: usize = 4096;

/// The server's signing key. Never printed; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub url: String,
    /// Expiry, Unix seconds: the token is refused from this second on.
    pub exp: u64,
    /// The URL's origin: the origin of a connection that shows this token.
    pub origin: Origin,
}

/// Why a token was refused. The client sees the `Display` text in the 401 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not `payload.signature` in base64url, longer than `MAX_TOKEN`, or a payload that is
    /// not the expected JSON or has no usable URL.
    Malformed(&'static str),
    /// Well-formed, but the signature is not this server's: forged, altered, or signed with
    /// another key (another box, or a key file that was replaced).
    Forged,
    /// Signed by this server, but its expiry has passed.
    Expired,
    /// No token, and the server requires one (`require_token`).
    Missing,
    /// The server has no key (the key file could not be read or made), so it cannot check
    /// any token.
    NoKey,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(why) => write!(f, "malformed token: {why}"),
            TokenError::Forged => f.write_str("invalid token: bad signature"),
            TokenError::Expired => f.write_str("expired token"),
            TokenError::Missing => f.write_str(
                "this server requires an access token (?token=... or Authorization: Bearer ...)",
            ),
            TokenError::NoKey => f.write_str("this server has no signing key; tokens are off"),
        }
    }
}

/// Why the key file could not be used. The message names the file.
#[derive(Debug)]
pub enum KeyError {
    /// Reading, creating or writing the file (or its directory) failed.
    Io(PathBuf, io::Error),
    /// The file exists but is not 64 hex digits.
    Corrupt(PathBuf),
    /// The file can be read by its group or others: it is not used (like ssh's private keys).
    Exposed(PathBuf, u32),
    /// The OS CSPRNG failed.
    Random(getrandom::Error),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io(path, e) => write!(f, "key file {}: {e}", path.display()),
            KeyError::Corrupt(path) => write!(
                f,
                "key file {} is not 64 hex digits; delete it to make a new key",
                path.display()
            ),
            KeyError::Exposed(path, mode) => write!(
                f,
                "key file {} has mode {:o}: it must be readable by its owner only (chmod 600)",
                path.display(),
                mode & 0o777
            ),
            KeyError::Random(e) => write!(f, "no randomness for a key: {e}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    url: String,
    exp: u64,
}

impl Key {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Key, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Key(bytes))
    }

    /// A key with known bytes, for tests and fuzzing.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Reads the key file, or makes it (and its directory, mode 0700) when it does not exist:
    /// written with mode 0600 to a temporary name and linked into place, so two processes
    /// starting at once agree on one key and nobody reads half a file.
    pub fn load_or_create(path: &Path) -> Result<Key, KeyError> {
        match Key::load(path) {
            Err(KeyError::Io(_, e)) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io_err = |e| KeyError::Io(path.to_owned(), e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err)?;
        }
        let key = Key::generate().map_err(KeyError::Random)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                writeln!(f, "{}", data_encoding::HEXLOWER.encode(&key.0))?;
                f.sync_all()
            })
            .and_then(|()| fs::hard_link(&tmp, path));
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(key),
            // Another process made the key first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Key::load(path),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Reads an existing key file.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let io_err = |e| KeyError::Io(path.to_owned(), e);
        let meta = fs::metadata(path).map_err(io_err)?;
        if meta.mode() & 0o077 != 0 {
            return Err(KeyError::Exposed(path.to_owned(), meta.mode()));
        }
        let text = fs::read_to_string(path).map_err(io_err)?;
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.trim().as_bytes())
            .map_err(|_| KeyError::Corrupt(path.to_owned()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Corrupt(path.to_owned()))?;
        Ok(Key(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// A token for `url` valid until `exp` (Unix seconds). The URL must have an origin.
    pub fn issue(&self, url: &str, exp: u64) -> Result<String, TokenError> {
        if Origin::parse(url).is_none() {
            return Err(TokenError::Malformed(
                "the URL has no origin (scheme://host)",
            ));
        }
        let payload = format!(r#"{{"url":{},"exp":{exp}}}"#, crate::wire::json_string(url));
        let signature = self.mac().chain_update(payload.as_bytes()).finalize();
        Ok(format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(payload.as_bytes()),
            BASE64URL_NOPAD.encode(&signature.into_bytes())
        ))
    }

    /// Checks a token at time `now` (Unix seconds): signature first, in constant time, so
    /// nothing of an unsigned payload is interpreted; then the expiry and the URL.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed("too long"));
        }
        let (payload, signature) = token
            .split_once('.')
            .ok_or(TokenError::Malformed("expected payload.signature"))?;
        let decode = |part: &str| BASE64URL_NOPAD.decode(part.as_bytes());
        let payload =
            decode(payload).map_err(|_| TokenError::Malformed("payload is not base64url"))?;
        let signature =
            decode(signature).map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        self.mac()
            .chain_update(&payload)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Forged)?;
        let Payload { url, exp } = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("payload is not {\"url\":...,\"exp\":...}"))?;
        if now >= exp {
            return Err(TokenError::Expired);
        }
        let origin = Origin::parse(&url).ok_or(TokenError::Malformed("URL has no origin"))?;
        Ok(Claims { url, exp, origin })
    }
}

/// Where the key lives when `key_file` is not set: in `$STATE_DIRECTORY` when systemd gives
/// the service one (`StateDirectory=messenger`, as `board/messenger.service` does); else
/// `/var/lib/messenger/key` when running as root (a SysV init script); otherwise the user's
/// state directory (`$XDG_STATE_HOME/messenger/key`, else `$HOME/.local/state/messenger/key`),
/// so `make run` works without root.
pub fn default_key_path() -> PathBuf {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = env("STATE_DIRECTORY") {
        // systemd separates several state directories with ':'; the first is ours.
        let dirs = dirs.to_string_lossy().into_owned();
        let first = dirs.split(':').next().unwrap_or_default();
        return Path::new(first).join("key");
    }
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        if let Some(state) = env("XDG_STATE_HOME") {
            return Path::new(&state).join("messenger/key");
        }
        if let Some(home) = env("HOME") {
            return Path::new(&home).join(".local/state/messenger/key");
        }
    }
    PathBuf::from("/var/lib/messenger/key")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn key() -> Key {
        Key::from_bytes([7; 32])
    }

    #[test]
    fn issued_tokens_verify_and_give_the_origin() {
        let token = key()
            .issue("https://App.example:443/index.html", NOW + 60)
            .unwrap();
        let claims = key().verify(&token, NOW).unwrap();
        assert_eq!(claims.url, "https://App.example:443/index.html");
        assert_eq!(claims.exp, NOW + 60);
        assert_eq!(claims.origin.to_string(), "https://app.example");
        assert!(token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)));
    }

    #[test]
    fn expiry_is_exclusive() {
        let token = key().issue("https://a.example", NOW).unwrap();
        assert_eq!(key().verify(&token, NOW), Err(TokenError::Expired));
        assert_eq!(key().verify(&token, NOW + 1), Err(TokenError::Expired));
        assert!(key().verify(&token, NOW - 1).is_ok());
    }

    #[test]
    fn other_keys_and_altered_tokens_are_forged() {
        let token = key().issue("https://a.example", NOW + 60).unwrap();
        let other = Key::from_bytes([8; 32]);
        assert_eq!(other.verify(&token, NOW), Err(TokenError::Forged));
        // Swap in a payload for another URL, keeping the signature.
        let (_, signature) = token.split_once('.').unwrap();
        let payload = BASE64URL_NOPAD.encode(br#"{"url":"https://evil.example","exp":1900000000}"#);
        let forged = format!("{payload}.{signature}");
        assert_eq!(key().verify(&forged, NOW), Err(TokenError::Forged));
        // Flip one signature character.
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(key().verify(&altered, NOW), Err(TokenError::Forged));
        // A truncated signature is not accepted as a prefix.
        let short = &altered[..altered.len() - 10];
        assert!(key().verify(short, NOW).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", ".", "abc", "a.b.c", "%%%.%%%", "e30.", "e30"] {
            assert!(
                matches!(
                    key().verify(bad, NOW),
                    Err(TokenError::Malformed(_)) | Err(TokenError::Forged)
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            key().verify(&"a".repeat(MAX_TOKEN + 1), NOW),
            Err(TokenError::Malformed(_))
        ));
        // Signed, but the payload is not what we issue.
        let sign = |payload: &[u8]| {
            let sig = key().mac().chain_update(payload).finalize().into_bytes();
            format!(
                "{}.{}",
                BASE64URL_NOPAD.encode(payload),
                BASE64URL_NOPAD.encode(&sig)
            )
        };
        for payload in [
            &b"[]"[..],
            br#"{"url":"https://a.example"}"#,
            br#"{"url":"https://a.example","exp":-1}"#,
            br#"{"url":"null","exp":1900000000}"#,
            br#"{"url":"https://a.example","exp":1900000000,"admin":true}"#,
        ] {
            assert!(
                matches!(
                    key().verify(&sign(payload), NOW),
                    Err(TokenError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        assert!(key()
            .verify(
                &sign(br#"{"url":"https://a.example","exp":1900000000}"#),
                NOW
            )
            .is_ok());
    }

    #[test]
    fn urls_without_origin_are_not_issued() {
        assert!(key().issue("app.example", NOW + 1).is_err());
        assert!(key().issue("null", NOW + 1).is_err());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("messenger-key-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn key_file_is_made_once_owner_only() {
        let dir = temp_dir("made");
        let path = dir.join("sub/key");
        let a = Key::load_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let b = Key::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, [0; 32]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn exposed_or_corrupt_key_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("bad");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        Key::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Key::load_or_create(&path),
            Err(KeyError::Exposed(..))
        ));
        fs::write(&path, "not hex\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            Key::load_or_create(&path),
            Err(KeyError::Corrupt(_))
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}

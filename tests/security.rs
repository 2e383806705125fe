//! Proves SPEC §4 over real WebSockets: secure rooms admit by origin (from the `Origin` header
//! or a signed access token), tokens that are forged, expired or malformed get 401 and are
//! counted, `require_token` closes the door to everyone without one, the key file is the
//! owner's alone, and the server listens on loopback only unless told otherwise.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use messenger::access_token::Key;
use serde_json::{json, Value};
use support::{parse_response, Client, Server, WAIT};

const ACL: [&str; 2] = ["https://*.example.com", "http://localhost:*"];

fn with_origin(server: &Server, origin: &str) -> Client {
    server.client_with(&server.url("/jsonrpc"), &[("Origin", origin)])
}

fn secure_join(c: &mut Client, user: &str, room: &str) -> Value {
    c.call(
        "join",
        json!({"user": user, "room": room, "secure": "secure"}),
    )
}

/// A fresh directory under target/ for one test's key file.
fn key_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("security-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `messenger token` and returns its exit code and stdout.
fn issue(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_messenger"))
        .arg("token")
        .args(args)
        .output()
        .expect("run messenger token");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

/// A WebSocket upgrade written by hand; returns the status and body of a refusal.
fn raw_upgrade(server: &Server, target: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    // A 101 leaves the connection open: stop at the end of its head.
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    if bytes.starts_with(b"HTTP/1.1 101") {
        return (101, String::new());
    }
    let _ = s.read_to_end(&mut bytes);
    parse_response(&String::from_utf8_lossy(&bytes))
}

/// Runs the server binary expecting it to exit at once; kills it if it is still running
/// after `WAIT`. Returns the exit code and stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_messenger"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn secure_room_admits_only_origins_in_the_creators_acl() {
    let server = Server::start(&[]);
    let mut creator = with_origin(&server, "https://app.example.com");
    let r = creator.call(
        "join",
        json!({"user": "Owner", "room": "Vault", "secure": "secure", "acl": ACL}),
    );
    assert!(r["result"]["roomid"].is_string(), "{r}");
    let admitted = [
        "https://b.example.com",
        "https://a.b.example.com",
        "https://B.Example.COM:443",
        "http://localhost:8080",
        "http://localhost",
    ];
    let mut guests = Vec::new();
    for (i, origin) in admitted.iter().enumerate() {
        let mut c = with_origin(&server, origin);
        let r = secure_join(&mut c, &format!("Guest{i}"), "Vault");
        assert!(r["result"]["roomid"].is_string(), "{origin}: {r}");
        guests.push(c);
    }
    let refused = [
        "https://example.com",
        "https://example.com.evil.net",
        "https://evilexample.com",
        "http://b.example.com",
        "https://b.example.com:8443",
        "http://localhost.evil.net:8080",
        "null",
    ];
    for origin in refused {
        let mut c = with_origin(&server, origin);
        let r = secure_join(&mut c, "Intruder", "Vault");
        assert_eq!(r["error"]["code"], 24, "{origin}: {r}");
        assert!(r["error"]["data"].is_string(), "a refusal says why: {r}");
        // Leaving `secure` out, or saying "insecure", does not bypass the ACL.
        for secure in [json!(null), json!("insecure")] {
            let mut params = json!({"user": "Intruder", "room": "Vault"});
            if !secure.is_null() {
                params["secure"] = secure;
            }
            assert_eq!(c.err("join", params), 24, "{origin}");
        }
    }
    let h = server.health();
    assert_eq!(h["members"], 1 + admitted.len() as u64, "{h}");
}

#[test]
fn no_origin_cannot_join_a_secure_room() {
    let server = Server::start(&[]);
    let mut creator = with_origin(&server, "https://app.example.com");
    creator.ok(
        "join",
        json!({"user": "Owner", "room": "Vault", "secure": "secure", "acl": ACL}),
    );
    let mut anonymous = server.client();
    let r = secure_join(&mut anonymous, "Anon", "Vault");
    assert_eq!(r["error"]["code"], 24, "{r}");
    assert!(r["error"]["data"].as_str().unwrap().contains("no origin"));
    // The same client is not refused anywhere else.
    anonymous.join("Anon", "Lobby");
}

#[test]
fn acls_are_set_once_by_the_creator_and_never_empty() {
    let server = Server::start(&[]);
    let mut a = with_origin(&server, "https://app.example.com");
    assert_eq!(
        a.err(
            "join",
            json!({"user": "A", "room": "Empty", "secure": "secure", "acl": []})
        ),
        24
    );
    assert_eq!(
        server.health()["rooms"],
        0,
        "a refused creation leaves no room"
    );
    a.ok(
        "join",
        json!({"user": "A", "room": "Vault", "secure": "secure", "acl": ACL}),
    );
    // A matching origin still may not bring an ACL to an existing room...
    let mut b = with_origin(&server, "https://b.example.com");
    assert_eq!(
        b.err(
            "join",
            json!({"user": "B", "room": "Vault", "secure": "secure", "acl": ["*"]})
        ),
        24
    );
    // ...nor to an existing insecure room, nor on a re-join of its own.
    a.join("A", "Open");
    assert_eq!(
        b.err(
            "join",
            json!({"user": "B", "room": "Open", "secure": "secure", "acl": ["*"]})
        ),
        24
    );
    assert_eq!(
        a.err(
            "join",
            json!({"user": "A2", "room": "Vault", "secure": "secure", "acl": ACL})
        ),
        24
    );
    // The ACL set first still rules.
    let mut evil = with_origin(&server, "https://example.com.evil.net");
    assert_eq!(secure_join(&mut evil, "E", "Vault")["error"]["code"], 24);
    assert!(secure_join(&mut b, "B", "Vault")["result"]["roomid"].is_string());
}

#[test]
fn roomupdate_says_which_rooms_are_secure() {
    let server = Server::start(&[]);
    let mut watcher = server.client();
    assert_eq!(
        watcher.ok(
            "register",
            json!({"event": "roomupdate", "id": "client.rooms"})
        ),
        0
    );
    let mut a = with_origin(&server, "https://app.example.com");
    a.ok(
        "join",
        json!({"user": "A", "room": "Vault", "secure": "secure", "acl": ACL}),
    );
    a.join("A", "Lobby");
    let events = watcher.drain();
    assert_eq!(
        events,
        [
            (
                "client.rooms.roomupdate".to_owned(),
                json!({"room": "Vault", "secure": "secure", "action": "created"})
            ),
            (
                "client.rooms.roomupdate".to_owned(),
                json!({"room": "Lobby", "secure": "insecure", "action": "created"})
            ),
        ]
    );
    // A late registration replays both with the same flags.
    let mut late = server.client();
    late.ok("register", json!({"event": "roomupdate", "id": "late"}));
    let mut replay: Vec<Value> = late.drain().into_iter().map(|(_, p)| p).collect();
    replay.sort_by_key(|p| p["room"].as_str().unwrap().to_owned());
    assert_eq!(replay[0]["secure"], "insecure");
    assert_eq!(replay[1]["secure"], "secure");
}

#[test]
fn a_token_gives_the_connection_its_urls_origin() {
    let dir = key_dir("origin");
    let key = dir.join("keys/key");
    let key_arg = key.to_str().unwrap();
    let server = Server::start(&["--key-file", key_arg]);
    let meta = std::fs::metadata(&key).expect("the server made its key on start");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(key.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
    let (code, good) = issue(&[
        "--url",
        "https://tv.example.com/app/index.html",
        "--ttl",
        "3600",
        "--key-file",
        key_arg,
    ]);
    assert_eq!(code, 0);
    let (_, evil) = issue(&["--url", "https://evil.example.net", "--key-file", key_arg]);

    let mut creator = with_origin(&server, "https://app.example.com");
    creator.ok(
        "join",
        json!({"user": "Owner", "room": "Vault", "secure": "secure", "acl": ACL}),
    );
    // As ThunderJS sends it: ?token= and no Origin header at all.
    let mut q = server.client_with(&server.url(&format!("/jsonrpc?token={good}")), &[]);
    assert!(secure_join(&mut q, "Q", "Vault")["result"]["roomid"].is_string());
    // As a native app sends it.
    let bearer = format!("Bearer {good}");
    let mut b = server.client_with(&server.url("/jsonrpc"), &[("Authorization", &bearer)]);
    assert!(secure_join(&mut b, "B", "Vault")["result"]["roomid"].is_string());
    // The token's origin wins over the Origin header, both ways.
    let mut t = server.client_with(
        &server.url(&format!("/jsonrpc?token={evil}")),
        &[("Origin", "https://app.example.com")],
    );
    assert_eq!(secure_join(&mut t, "T", "Vault")["error"]["code"], 24);
    let mut u = server.client_with(
        &server.url(&format!("/jsonrpc?token={good}")),
        &[("Origin", "https://example.com.evil.net")],
    );
    assert!(secure_join(&mut u, "U", "Vault")["result"]["roomid"].is_string());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn forged_expired_and_malformed_tokens_get_401_and_are_counted() {
    let dir = key_dir("refused");
    let key_path = dir.join("key");
    let server = Server::start(&["--key-file", key_path.to_str().unwrap()]);
    let key = Key::load(&key_path).unwrap();
    let good = key.issue("https://app.example.com", now() + 600).unwrap();
    let expired = key.issue("https://app.example.com", now() - 1).unwrap();
    let other = Key::from_bytes([1; 32])
        .issue("https://app.example.com", now() + 600)
        .unwrap();
    let (payload, signature) = good.split_once('.').unwrap();
    let mut tampered_sig = signature.to_owned().into_bytes();
    tampered_sig[0] = if tampered_sig[0] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{payload}.{}", String::from_utf8(tampered_sig).unwrap());
    let cases = [
        (expired.as_str(), "expired"),
        (other.as_str(), "signature"),
        (tampered.as_str(), "signature"),
        ("not-a-token", "malformed"),
        ("e30.e30.e30", "malformed"),
    ];
    for (i, (token, why)) in cases.iter().enumerate() {
        let (status, body) = raw_upgrade(&server, &format!("/jsonrpc?token={token}"), "");
        assert_eq!(status, 401, "{token}: {body}");
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(why), "{token}: {error}");
        let (status, _) = raw_upgrade(
            &server,
            "/jsonrpc",
            &format!("Authorization: Bearer {token}\r\n"),
        );
        assert_eq!(status, 401);
        assert_eq!(server.health()["tokens_refused"], 2 * (i as u64 + 1));
    }
    // A bad token is refused on POST /jsonrpc too.
    let body =
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.exists","params":{"method":"join"}}"#;
    let (status, _) = server.http("POST", &format!("/jsonrpc?token={expired}"), Some(body));
    assert_eq!(status, 401);
    // The good token and no token at all still work (require_token is off).
    assert_eq!(
        raw_upgrade(&server, &format!("/jsonrpc?token={good}"), "").0,
        101
    );
    assert_eq!(raw_upgrade(&server, "/jsonrpc", "").0, 101);
    // An empty token is no token.
    assert_eq!(raw_upgrade(&server, "/jsonrpc?token=", "").0, 101);
    assert_eq!(server.health()["tokens_refused"], 11);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn require_token_refuses_everyone_without_one() {
    let dir = key_dir("require");
    let key_path = dir.join("key");
    let server = Server::start(&[
        "--key-file",
        key_path.to_str().unwrap(),
        "--require-token",
        "on",
    ]);
    let (status, body) = raw_upgrade(&server, "/jsonrpc", "Origin: https://app.example.com\r\n");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("requires an access token"), "{body}");
    assert_eq!(raw_upgrade(&server, "/jsonrpc?token=", "").0, 401);
    let call =
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join","params":{"user":"A","room":"R"}}"#;
    let (status, _) = server.http("POST", "/jsonrpc", Some(call));
    assert_eq!(status, 401);
    assert_eq!(server.health()["rooms"], 0, "nothing was done");

    let (_, token) = issue(&[
        "--url",
        "https://app.example.com",
        "--key-file",
        key_path.to_str().unwrap(),
    ]);
    let mut c = server.client_with(&server.url(&format!("/jsonrpc?token={token}")), &[]);
    c.join("A", "R");
    let (status, body) = server.http("POST", &format!("/jsonrpc?token={token}"), Some(call));
    assert_eq!(status, 200, "{body}");
    let h = server.health();
    assert_eq!(h["tokens_refused"], 3);
    assert_eq!(h["rooms"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_world_readable_key_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = key_dir("exposed");
    let key_path = dir.join("key");
    Key::load_or_create(&key_path).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_arg = key_path.to_str().unwrap();
    let (code, token) = issue(&["--url", "https://a.example", "--key-file", key_arg]);
    assert_eq!((code, token.as_str()), (1, ""));
    let (code, _, stderr) = run_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--key-file",
        key_arg,
        "--require-token",
        "on",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_subcommand_checks_its_arguments() {
    let dir = key_dir("cli");
    let key = dir.join("key");
    let key_arg = key.to_str().unwrap();
    assert_eq!(issue(&["--url", "not a url", "--key-file", key_arg]).0, 2);
    assert_eq!(issue(&["--key-file", key_arg]).0, 2);
    assert_eq!(
        issue(&[
            "--url",
            "https://a.example",
            "--ttl",
            "0",
            "--key-file",
            key_arg
        ])
        .0,
        2
    );
    assert_eq!(issue(&["--url", "https://a.example", "--bogus", "1"]).0, 2);
    let (code, token) = issue(&["--url", "https://a.example", "--key-file", key_arg]);
    assert_eq!(code, 0);
    let claims = Key::load(&key).unwrap().verify(&token, now()).unwrap();
    assert!(claims.exp >= now() + 3590 && claims.exp <= now() + 3600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_remote_listen_address_needs_allow_remote() {
    let (code, stdout, stderr) = run_to_exit(&["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("allow_remote"), "{stderr}");
    assert!(stdout.is_empty(), "it never listened: {stdout}");
}

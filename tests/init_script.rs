//! The SysV init script `board/messenger.init` really starts, reports, restarts and stops the
//! daemon, installed in a temporary root, and gives it its key (even one root made first).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for every wait: the daemon normally answers within milliseconds,
/// but CI machines are shared and slow.
const PATIENCE: Duration = Duration::from_secs(30);

/// A board file system laid out under a temporary directory, with the binary,
/// the init script and the default configuration (on a free port) installed.
struct Root {
    dir: PathBuf,
    port: u16,
}

impl Root {
    fn install() -> Root {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "messenger-init-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        for sub in [
            "usr/bin",
            "etc/init.d",
            "etc/messenger",
            "var/run",
            "var/lib/messenger",
            "var/log",
        ] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // /tmp may be private to us, but a daemon that drops to `nobody` must reach its files.
        set_mode(&dir, 0o755);
        fs::copy(
            env!("CARGO_BIN_EXE_messenger"),
            dir.join("usr/bin/messenger"),
        )
        .unwrap();
        set_mode(&dir.join("usr/bin/messenger"), 0o755);
        let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
        fs::copy(
            board.join("messenger.init"),
            dir.join("etc/init.d/messenger"),
        )
        .unwrap();

        let port = free_port();
        let shipped = fs::read_to_string(board.join("messenger.json")).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&shipped).unwrap();
        assert!(
            config["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
            "the shipped configuration listens on loopback"
        );
        config["listen"] = format!("127.0.0.1:{port}").into();
        assert!(
            config["key_file"].is_string(),
            "the shipped configuration names its key file"
        );
        let key = dir.join("var/lib/messenger/key");
        config["key_file"] = key.to_str().unwrap().into();
        fs::write(dir.join("etc/messenger/messenger.json"), config.to_string()).unwrap();
        set_mode(&dir.join("etc/messenger/messenger.json"), 0o644);
        Root { dir, port }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Runs `sh etc/init.d/messenger ACTION` with every path pointed into the root.
    fn init(&self, action: &str) -> Output {
        Command::new("sh")
            .arg(self.path("etc/init.d/messenger"))
            .arg(action)
            .env("DAEMON", self.path("usr/bin/messenger"))
            .env("CONFIG", self.path("etc/messenger/messenger.json"))
            .env("PIDFILE", self.path("var/run/messenger.pid"))
            .env("STATEDIR", self.path("var/lib/messenger"))
            .env("LOGFILE", self.path("var/log/messenger.log"))
            .env("STOP_TIMEOUT", "20")
            .output()
            .expect("run the init script")
    }

    fn init_ok(&self, action: &str) -> String {
        let out = self.init(action);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "`{action}` failed with {}: {text}{}\nlog:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        text
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("var/log/messenger.log")).unwrap_or_default()
    }

    fn pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.path("var/run/messenger.pid")).ok()?;
        text.trim().parse().ok()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // Never leave a daemon behind, whatever failed (but only ever kill ours).
        if let Some(pid) = self.pid() {
            let exe = self.path("usr/bin/messenger");
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.starts_with(exe.to_str().unwrap().as_bytes()) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /health`: the status line and body, or None if the port does not answer.
fn health(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    Some(reply)
}

/// Polls `cond` until it holds or PATIENCE runs out.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` exists and has not exited (a zombie counts as gone).
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'),
        Err(_) => false,
    }
}

fn process_uid(pid: u32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn wait_healthy(root: &Root) {
    wait_for("GET /health to answer 200", || {
        health(root.addr()).is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    });
}

#[test]
fn start_status_restart_stop() {
    let root = Root::install();
    let exe = root.path("usr/bin/messenger");

    let out = root.init_ok("start");
    assert!(out.contains("started"), "start says so: {out}");
    let pid = root.pid().expect("start writes the pid file");
    assert!(process_alive(pid));
    let cmd0 = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmd0.starts_with(exe.to_str().unwrap().as_bytes()),
        "the pid file names the daemon itself"
    );
    if process_uid(std::process::id()) == 0 {
        assert_ne!(
            process_uid(pid),
            0,
            "started as root, the daemon drops root"
        );
    }
    wait_healthy(&root);

    let out = root.init_ok("start");
    assert!(
        out.contains("already running"),
        "a second start is a no-op: {out}"
    );
    assert_eq!(root.pid(), Some(pid));

    let out = root.init_ok("status");
    assert!(
        out.contains(&format!("running (pid {pid})")),
        "status: {out}"
    );

    root.init_ok("restart");
    let new_pid = root.pid().expect("restart writes a new pid file");
    assert_ne!(new_pid, pid, "restart runs a new process");
    assert!(!process_alive(pid), "the old process is gone");
    wait_healthy(&root);

    let out = root.init_ok("stop");
    assert!(out.contains("stopped"), "stop says so: {out}");
    assert!(!process_alive(new_pid), "stop waits for the daemon to exit");
    assert_eq!(root.pid(), None, "stop removes the pid file");
    assert!(
        health(root.addr()).is_none(),
        "the port is closed after stop"
    );

    let out = root.init("status");
    assert_eq!(
        out.status.code(),
        Some(3),
        "status of a stopped daemon is 3 (LSB)"
    );
    root.init_ok("stop");
}

#[test]
fn stale_pid_file_is_not_a_running_daemon() {
    let root = Root::install();
    // A pid that exists but is not our daemon: this test process itself.
    fs::write(
        root.path("var/run/messenger.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let out = root.init("status");
    assert_eq!(out.status.code(), Some(1), "dead but pid file exists");

    root.init_ok("start");
    let pid = root.pid().unwrap();
    assert_ne!(pid, std::process::id(), "start replaces the stale pid file");
    wait_healthy(&root);
    root.init_ok("stop");
    assert!(!process_alive(pid));
}

#[test]
fn start_fails_cleanly_when_the_port_is_taken() {
    let root = Root::install();
    let _holder = TcpListener::bind(root.addr()).unwrap();
    let out = root.init("start");
    assert!(!out.status.success(), "start reports the daemon's failure");
    assert_eq!(root.pid(), None, "no pid file is left behind");
}

/// `POST /jsonrpc` with a bearer token: the status line and body.
fn post_with_token(addr: SocketAddr, token: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.rooms"}"#;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn file_uid(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().uid()
}

#[test]
fn a_key_made_by_root_before_the_first_start_still_signs_tokens() {
    let root = Root::install();
    let key = root.path("var/lib/messenger/key");
    // The trap of issue 12: `messenger token` as root before the first start makes a
    // root-owned 0600 key; the daemon then runs as another user.
    let out = Command::new(root.path("usr/bin/messenger"))
        .args(["token", "--url", "https://app.example", "--config"])
        .arg(root.path("etc/messenger/messenger.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let as_root = process_uid(std::process::id()) == 0;
    if as_root {
        assert_eq!(file_uid(&key), 0, "made by root");
        let warning = String::from_utf8_lossy(&out.stderr);
        assert!(warning.contains("--owner USER"), "token warns: {warning}");
    }
    root.init_ok("start");
    wait_healthy(&root);
    let pid = root.pid().unwrap();
    if as_root {
        assert_ne!(process_uid(pid), 0);
        assert_eq!(
            file_uid(&key),
            process_uid(pid),
            "start gave the key to the daemon"
        );
    }
    let reply = post_with_token(root.addr(), &token);
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "the token is accepted: {reply}"
    );
    let health = health(root.addr()).unwrap();
    assert!(health.contains(r#""tokens_refused":0"#), "{health}");
    root.init_ok("stop");
}

#[test]
fn a_configured_key_the_daemon_cannot_use_stops_the_start() {
    let root = Root::install();
    fs::write(root.path("var/lib/messenger/key"), "not a key\n").unwrap();
    set_mode(&root.path("var/lib/messenger/key"), 0o600);
    let out = root.init("start");
    assert!(!out.status.success(), "start fails");
    assert_eq!(root.pid(), None, "no pid file is left behind");
    // As root the key step cannot fix a corrupt key, so the daemon (dropped to another user)
    // finds it unreadable; otherwise it finds it corrupt. Either way it names the file.
    let log = root.log();
    let key = root.path("var/lib/messenger/key");
    assert!(
        log.contains(key.to_str().unwrap()),
        "the log names the key: {log}"
    );
    assert!(
        log.contains("key_file is set, so the server does not start"),
        "{log}"
    );
}

//! Proves relay mode over plain HTTP (issue 16): `POST /jsonrpc` for other callsigns and
//! Thunder's other paths (`/Service/...`) reach the stand-in Thunder and its responses come
//! back; Messenger's calls and `/health` stay here; bodies are read strictly (chunked done
//! right, Content-Length with Transfer-Encoding refused, no smuggling); Thunder down is 502,
//! too slow 504.

mod support;
#[path = "support/thunder.rs"]
mod thunder;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use support::Server;
use thunder::Upstream;

/// Sends `request` as written (the Host header added) and reads the whole response.
fn exchange(server: &Server, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(support::WAIT)).unwrap();
    let (line, rest) = request.split_once("\r\n").unwrap();
    let host = format!("Host: 127.0.0.1:{}", server.port);
    // One write: a refusal after the head must not race the rest into a reset.
    let text = format!("{line}\r\n{host}\r\n{rest}");
    stream.write_all(text.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn body(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()))
}

fn post(server: &Server, path: &str, method: &str, headers: &str) -> String {
    let call = json!({"jsonrpc":"2.0","id":7,"method":method}).to_string();
    let n = call.len();
    let request = format!("POST {path} HTTP/1.1\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {n}\r\n\r\n{call}");
    exchange(server, &request)
}

#[test]
fn post_for_other_callsigns_is_thunders_and_messengers_stays_here() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let response = post(&server, "/jsonrpc", "DeviceInfo.1.systeminfo", "");
    assert!(
        response.starts_with("HTTP/1.1 200 JSONRPC executed succesfully\r\n"),
        "Thunder's status line: {response}"
    );
    assert_eq!(body(&response)["result"]["serialnumber"], "STANDIN0001");
    let response = post(&server, "/jsonrpc/DeviceInfo", "systeminfo", "");
    assert_eq!(body(&response)["result"]["uptime"], 42, "{response}");
    let before = up.requests().len();
    let response = post(&server, "/jsonrpc", "Messenger.1.rooms", "");
    assert!(body(&response)["result"].is_array(), "{response}");
    let response = post(&server, "/jsonrpc", "Controller.1.status@Messenger", "");
    assert_eq!(
        body(&response)["result"][0]["locator"],
        "messenger",
        "{response}"
    );
    // /health is ours: it answers, and counts only itself once the POSTs' connections (which
    // end a moment after their responses) are gone.
    server.wait_health(|h| h["connections"] == 1);
    assert_eq!(up.requests().len(), before, "none of these reached Thunder");
    let response = post(&server, "/jsonrpc", "Controller.1.status", "");
    let list = body(&response)["result"].clone();
    let messenger = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["callsign"] == "Messenger");
    assert_eq!(
        messenger.unwrap()["state"],
        "Activated",
        "merged: {response}"
    );
}

#[test]
fn a_bearer_token_is_thunders_to_judge() {
    let up = Upstream::start_with_token("thunder-secret");
    let server = Server::start_relaying(&up.addr(), &[]);
    let response = post(&server, "/jsonrpc", "DeviceInfo.1.systeminfo", "");
    assert!(response.starts_with("HTTP/1.1 401 "), "{response}");
    let bearer = "Authorization: Bearer thunder-secret\r\n";
    let response = post(&server, "/jsonrpc", "DeviceInfo.1.systeminfo", bearer);
    assert_eq!(body(&response)["result"]["uptime"], 42, "{response}");
    let seen = up.requests().pop().unwrap();
    let named = |name: &str| seen.headers.iter().any(|(n, _)| n == name);
    assert!(
        named("Authorization") && named("Content-Type"),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("authorization"), Some("Bearer thunder-secret"));
}

#[test]
fn service_paths_are_proxied() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let response = exchange(&server, "GET /Service/Echo/state?x=1 HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let answer = body(&response);
    assert_eq!(answer["standin"], "Thunder");
    assert_eq!(answer["target"], "/Service/Echo/state?x=1");
    assert!(
        response.contains("Access-Control-Allow-Origin: *"),
        "Thunder's headers"
    );
    let response = exchange(&server, "GET /Service/Nothing HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    let upgrade = "GET /Service/Echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let response = exchange(&server, upgrade);
    assert!(
        response.starts_with("HTTP/1.1 501 "),
        "not relayed: {response}"
    );
}

#[test]
fn a_chunked_body_is_read_strictly_and_forwarded_with_its_length() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let request = "PUT /Service/Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6; x=y\r\n world\r\n0\r\n\r\n";
    let response = exchange(&server, request);
    assert_eq!(body(&response)["body"], "hello world", "{response}");
    let seen = up.requests().pop().unwrap();
    assert_eq!(seen.header("content-length"), Some("11"));
    assert_eq!(seen.header("transfer-encoding"), None);
    for bad in [
        "5\r\nhelloXX0\r\n\r\n",
        "zz\r\nhello\r\n0\r\n\r\n",
        "-1\r\n\r\n",
    ] {
        let request =
            format!("PUT /Service/Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{bad}");
        let response = exchange(&server, &request);
        assert!(response.starts_with("HTTP/1.1 400 "), "{bad:?}: {response}");
    }
}

#[test]
fn smuggling_attempts_are_refused_before_thunder() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &["--max-request-body", "256"]);
    let smuggle = "POST /Service/Echo HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /Service/Echo/x HTTP/1.1\r\n\r\n";
    let response = exchange(&server, smuggle);
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    let gzip = "POST /Service/Echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
    assert!(exchange(&server, gzip).starts_with("HTTP/1.1 400 "));
    let large = format!(
        "PUT /Service/Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n{}\r\n0\r\n\r\n",
        "a".repeat(512)
    );
    assert!(exchange(&server, &large).starts_with("HTTP/1.1 413 "));
    assert!(up.requests().is_empty(), "{:?}", up.requests());
}

#[test]
fn thunder_down_is_502_and_too_slow_is_504() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start(&["--upstream", &format!("127.0.0.1:{port}")]);
    let response = exchange(&server, "GET /Service/Echo HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 502 "), "{response}");
    let response = post(&server, "/jsonrpc", "DeviceInfo.1.systeminfo", "");
    assert!(response.starts_with("HTTP/1.1 502 "), "{response}");
    let up = Upstream::start();
    up.slow(Duration::from_millis(1500));
    let server = Server::start_relaying(&up.addr(), &["--upstream-timeout", "0.3"]);
    let response = exchange(&server, "GET /Service/Echo HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 504 "), "{response}");
}

#[test]
fn requests_for_thunder_share_the_http_rate_limit() {
    let up = Upstream::start();
    let flags = [
        "--max-http-requests-per-second",
        "0.01",
        "--http-request-burst",
        "3",
    ];
    let server = Server::start_relaying(&up.addr(), &flags);
    let statuses: Vec<u16> = (0..6)
        .map(|i| {
            let response = if i % 2 == 0 {
                exchange(&server, "GET /Service/Echo HTTP/1.1\r\n\r\n")
            } else {
                post(&server, "/jsonrpc", "DeviceInfo.1.systeminfo", "")
            };
            response[9..12].parse().unwrap()
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    assert_eq!(
        up.requests().len(),
        3,
        "the refused ones never reached Thunder"
    );
}

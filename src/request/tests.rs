//! Unit tests of the Messenger edge parser: designators, envelopes, params, caps, depth.

use super::*;
use crate::caps::Cap;
use crate::config::Compat;

fn names() -> Designators {
    Designators::new("Messenger".into(), false, Caps::default())
}

fn ok(text: &str) -> Call {
    parse(text, &names()).unwrap()
}

fn err(text: &str) -> Rejection {
    parse(text, &names()).unwrap_err()
}

#[test]
fn designators_with_and_without_version() {
    for m in ["Messenger.join", "Messenger.1.join", "Messenger.01.join"] {
        let call = ok(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{m}","params":{{"user":"A","room":"R"}}}}"#
        ));
        assert!(matches!(call.method, Method::Join { .. }), "{m}");
    }
    // Every refusal is -32601 in rdk; r5 words another callsign and another version as
    // Thunder R5 does. `join`, `Messenger` and `` name no callsign: the Controller's.
    for (m, r5) in [
        ("Messenger.2.join", -31038),
        ("Messenger.1.Join", -32601),
        ("messenger.1.join", -31043),
        ("Other.1.join", -31043),
        ("join", -32601),
        ("Messenger", -32601),
        ("Messenger.1.", -32601),
        ("Messenger.1.0.join", -32601),
        ("", -32601),
        ("Controller.2.status", -31038),
    ] {
        let r = err(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}"}}"#));
        assert_eq!(r.error.code(Compat::Rdk), -32601, "{m}: {:?}", r.error);
        assert_eq!(r.error.code(Compat::R5), r5, "{m}: {:?}", r.error);
    }
}

#[test]
fn designators_without_callsign_are_the_controllers() {
    use controller::Method as C;
    for m in [
        "status",
        "Controller.status",
        "Controller.1.status",
        "1.status",
    ] {
        let call = ok(&format!(r#"{{"id":1,"method":"{m}"}}"#));
        assert_eq!(
            call.method,
            Method::Controller(Box::new(C::Status { callsign: None }))
        );
    }
    let call = ok(r#"{"id":1,"method":"Controller.1.status@Messenger"}"#);
    let index = Some("Messenger".to_owned());
    assert_eq!(
        call.method,
        Method::Controller(Box::new(C::Status { callsign: index }))
    );
    let call =
        ok(r#"{"id":1,"method":"register","params":{"event":"statechange","id":"temporary2"}}"#);
    assert!(matches!(call.method, Method::Controller(m) if matches!(*m, C::Register { .. })));
    // Directed to Messenger (`/jsonrpc/Messenger`), a bare `register` is Messenger's.
    let implicit = Designators::new("Messenger".into(), true, Caps::default());
    let text = r#"{"id":1,"method":"register","params":{"event":"message","id":"x"}}"#;
    let call = parse(text, &implicit).unwrap();
    assert!(matches!(call.method, Method::Register { .. }));
}

#[test]
fn callsign_in_path_makes_it_optional() {
    let implicit = Designators::new("Messenger".into(), true, Caps::default());
    for m in ["join", "1.join", "Messenger.1.join"] {
        let call = parse(
            &format!(r#"{{"id":1,"method":"{m}","params":{{"user":"A","room":"R"}}}}"#),
            &implicit,
        )
        .unwrap();
        assert!(matches!(call.method, Method::Join { .. }), "{m}");
    }
}

#[test]
fn ids_are_echoed_as_sent() {
    assert_eq!(
        ok(r#"{"id":"abc","method":"Messenger.versions"}"#)
            .id
            .as_deref(),
        Some("\"abc\"")
    );
    assert_eq!(
        ok(r#"{"id":-3,"method":"Messenger.versions"}"#)
            .id
            .as_deref(),
        Some("-3")
    );
    assert_eq!(
        ok(r#"{"id":null,"method":"Messenger.versions"}"#)
            .id
            .as_deref(),
        Some("null")
    );
    assert_eq!(ok(r#"{"method":"Messenger.versions"}"#).id, None);
    let r = err(r#"{"id":[1],"method":"Messenger.versions"}"#);
    assert!(matches!(r.error, RpcError::InvalidRequest(_)));
}

#[test]
fn envelope_errors() {
    assert!(matches!(
        err(r#"{"id":1,"method":"#).error,
        RpcError::Parse(_)
    ));
    assert!(matches!(err("hello").error, RpcError::Parse(_)));
    assert!(matches!(err("").error, RpcError::Parse(_)));
    assert!(matches!(err("[1,2]").error, RpcError::InvalidRequest(_)));
    assert!(matches!(err("[]").error, RpcError::InvalidRequest(_)));
    assert!(matches!(err("[1]").error, RpcError::InvalidRequest(_)));
    assert!(matches!(
        err(r#"[{"id":1,"method":"Messenger.versions"}]"#).error,
        RpcError::InvalidRequest(_)
    ));
    assert!(matches!(err("42").error, RpcError::InvalidRequest(_)));
    assert!(matches!(err(r#""str""#).error, RpcError::InvalidRequest(_)));
    assert!(matches!(err("null").error, RpcError::InvalidRequest(_)));
    assert!(matches!(
        err(r#"{"id":1}"#).error,
        RpcError::InvalidRequest(_)
    ));
    assert!(matches!(
        err(r#"{"id":1,"method":5}"#).error,
        RpcError::InvalidRequest(_)
    ));
    assert!(matches!(
        err(r#"{"jsonrpc":2,"id":1,"method":"Messenger.versions"}"#).error,
        RpcError::InvalidRequest(_)
    ));
    assert_eq!(err(r#"{"id":5}"#).id, "5");
}

#[test]
fn join_params() {
    let bad = |p: &str| {
        err(&format!(
            r#"{{"id":1,"method":"Messenger.1.join","params":{p}}}"#
        ))
        .error
    };
    assert!(matches!(
        bad(r#"{"room":"R","user":""}"#),
        RpcError::BadRequest(_)
    ));
    assert!(matches!(
        bad(r#"{"room":"","user":"A"}"#),
        RpcError::BadRequest(_)
    ));
    assert!(matches!(bad(r#"{"room":"R"}"#), RpcError::BadRequest(_)));
    assert!(matches!(
        bad(r#"{"room":5,"user":"A"}"#),
        RpcError::BadRequest(_)
    ));
    assert!(matches!(bad("{}"), RpcError::BadRequest(_)));
    assert!(matches!(bad("null"), RpcError::BadRequest(_)));
    assert!(matches!(bad(r#""Lounge""#), RpcError::InvalidParams(_)));
    assert!(matches!(bad("[]"), RpcError::InvalidParams(_)));
    assert!(matches!(
        bad(r#"{"room":"R","user":"A","secure":"bogus"}"#),
        RpcError::InvalidParams(_)
    ));
    assert!(matches!(
        bad(r#"{"room":"R","user":"A","acl":"x"}"#),
        RpcError::InvalidParams(_)
    ));
    assert!(matches!(
        bad(r#"{"room":"R","user":"A","acl":[1]}"#),
        RpcError::InvalidParams(_)
    ));
    let missing = err(r#"{"id":1,"method":"Messenger.1.join"}"#).error;
    assert!(matches!(missing, RpcError::BadRequest(_)));
    let call = ok(
        r#"{"id":1,"method":"Messenger.1.join","params":{"room":"Lou\"nge","user":"Al\u00fc","secure":"secure","acl":["https://*.x"],"extra":1}}"#,
    );
    assert_eq!(
        call.method,
        Method::Join {
            user: "Alü".into(),
            room: "Lou\"nge".into(),
            secure: Some(true),
            acl: Some(vec!["https://*.x".into()])
        }
    );
}

#[test]
fn send_and_register_params() {
    assert!(matches!(
        err(r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"x"}}"#).error,
        RpcError::BadRequest(_)
    ));
    assert!(matches!(
        err(r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"x","message":7}}"#).error,
        RpcError::BadRequest(_)
    ));
    assert!(matches!(
        err(r#"{"id":1,"method":"Messenger.1.register","params":{"event":"roomupdate"}}"#).error,
        RpcError::InvalidParams(_)
    ));
    assert!(matches!(
        err(r#"{"id":1,"method":"Messenger.1.register","params":{"event":"nosuch","id":"x"}}"#)
            .error,
        RpcError::InvalidParams(_)
    ));
    let call = ok(
        r#"{"id":1,"method":"Messenger.1.register@0123456789abcdef0123","params":{"event":"message","id":"client.events"}}"#,
    );
    assert_eq!(
        call.method,
        Method::Register {
            event: Event::Message,
            id: "0123456789abcdef0123.client.events".into()
        }
    );
    let call = ok(r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":""}}"#);
    assert_eq!(
        call.method,
        Method::Send {
            roomid: RoomId::Other("r".into()),
            message: String::new(),
            plain: true,
        }
    );
    assert!(matches!(
        err(r#"{"id":1,"method":"Messenger.1.send@x","params":{}}"#).error,
        RpcError::MethodNotFound(_)
    ));
}

#[test]
fn notifications_are_not_answered_when_refused() {
    let r = err(r#"{"method":"Messenger.1.nosuch"}"#);
    assert!(!r.answer);
}

#[test]
fn jsonrpc_must_be_2_0_when_present() {
    for version in [
        r#""1.0""#,
        r#""2""#,
        r#""""#,
        r#""2.0 ""#,
        "2.0",
        "null",
        "[]",
    ] {
        let r = err(&format!(
            r#"{{"jsonrpc":{version},"id":7,"method":"Messenger.versions"}}"#
        ));
        assert!(matches!(r.error, RpcError::InvalidRequest(_)), "{version}");
        assert_eq!(r.id, "7", "the id is echoed when it could be read");
        assert!(r.answer);
    }
    ok(r#"{"jsonrpc":"2.0","id":7,"method":"Messenger.versions"}"#);
    ok(r#"{"id":7,"method":"Messenger.versions"}"#);
}

/// The request `method` with `params`, refused with `data` naming `setting`.
fn refused(method: &str, params: &str, setting: &str) -> RpcError {
    let text = format!(r#"{{"id":1,"method":"Messenger.1.{method}","params":{params}}}"#);
    let error = err(&text).error;
    let data = error.detail().unwrap_or_default();
    assert!(data.contains(setting), "{method}: {error:?}");
    assert!(data.contains("limit"), "{method}: {error:?}");
    error
}

#[test]
fn every_string_is_held_to_its_cap() {
    let caps = Caps::default();
    let over = |cap: Cap| "x".repeat(cap.limit + 1);
    let (user, room, id, message) = (
        over(caps.user()),
        over(caps.room()),
        over(caps.id()),
        over(caps.message()),
    );
    let bad = |e: RpcError| matches!(e, RpcError::BadRequest(_));
    let cases = [
        (
            "join",
            format!(r#"{{"user":"{user}","room":"R"}}"#),
            "max_user_bytes",
        ),
        (
            "join",
            format!(r#"{{"user":"U","room":"{room}"}}"#),
            "max_room_bytes",
        ),
        ("leave", format!(r#"{{"roomid":"{id}"}}"#), "max_id_bytes"),
        (
            "send",
            format!(r#"{{"roomid":"r","message":"{message}"}}"#),
            "max_message_bytes",
        ),
        (
            "listen",
            format!(r#"{{"room":"R","id":"{id}"}}"#),
            "max_id_bytes",
        ),
        (
            "silence",
            format!(r#"{{"room":"{room}","id":"i"}}"#),
            "max_room_bytes",
        ),
        (
            "roomstatus",
            format!(r#"{{"room":"{room}"}}"#),
            "max_room_bytes",
        ),
        (
            "sendto",
            format!(r#"{{"roomid":"r","user":"{user}","message":"m"}}"#),
            "max_user_bytes",
        ),
        (
            "whisper",
            format!(r#"{{"roomid":"r","to":"{user}","message":"m"}}"#),
            "max_user_bytes",
        ),
        (
            "whisper",
            format!(r#"{{"roomid":"r","to":"u","message":"{message}"}}"#),
            "max_message_bytes",
        ),
        (
            "isonline",
            format!(r#"{{"user":"{user}"}}"#),
            "max_user_bytes",
        ),
        (
            "announce",
            format!(r#"{{"room":"R","message":"{message}"}}"#),
            "max_message_bytes",
        ),
        (
            "evict",
            format!(r#"{{"room":"R","user":"{user}"}}"#),
            "max_user_bytes",
        ),
    ];
    for (method, params, setting) in &cases {
        assert!(bad(refused(method, params, setting)), "{method} {setting}");
    }
    // Registrations answer -32602 for bad params, so they do for a long id too, also when
    // the index in front makes it long.
    let register = format!(r#"{{"event":"message","id":"{id}"}}"#);
    let e = refused("register", &register, "max_id_bytes");
    assert!(matches!(e, RpcError::InvalidParams(_)));
    let half = "x".repeat(caps.id().limit / 2 + 1);
    let text = format!(
        r#"{{"id":1,"method":"Messenger.1.unregister@{half}","params":{{"event":"message","id":"{half}"}}}}"#
    );
    assert!(matches!(err(&text).error, RpcError::InvalidParams(_)));
}

#[test]
fn acls_are_held_to_their_caps() {
    let caps = Caps::default();
    let join = |acl: &[String]| {
        let acl = serde_json::to_string(acl).unwrap();
        format!(r#"{{"user":"U","room":"R","secure":"secure","acl":{acl}}}"#)
    };
    let many = vec!["http://a".to_owned(); caps.acl_patterns().limit + 1];
    assert!(matches!(
        refused("join", &join(&many), "max_acl_patterns"),
        RpcError::BadRequest(_)
    ));
    let long = vec![format!("http://{}", "a".repeat(caps.acl_pattern().limit))];
    assert!(matches!(
        refused("join", &join(&long), "max_acl_pattern_bytes"),
        RpcError::BadRequest(_)
    ));
    // At the caps, with escapes, the ACL is read as sent.
    let mut at_cap = vec!["http://\u{61}".to_owned(); caps.acl_patterns().limit];
    at_cap[0] = format!("http://{}", "a".repeat(caps.acl_pattern().limit - 7));
    let text = format!(
        r#"{{"id":1,"method":"Messenger.1.join","params":{}}}"#,
        join(&at_cap)
    );
    let Method::Join { acl, .. } = ok(&text.replace("http://a\"", "http://\\u0061\"")).method
    else {
        panic!("not a join");
    };
    assert_eq!(acl, Some(at_cap));
}

/// Every nesting of arrays and objects `depth` deep that the edge reads.
fn deep(depth: usize) -> Vec<String> {
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let mut texts = Vec::new();
    for nest in [arrays, objects] {
        for params in [
            format!(r#"{{"user":"A","room":"R","acl":{nest}}}"#),
            format!(r#"{{"user":"A","room":"R","acl":["*",{nest}]}}"#),
            format!(r#"{{"user":{nest},"room":"R"}}"#),
            format!(r#"{{"user":"A","room":"R","x":{nest}}}"#),
            nest.clone(),
        ] {
            texts.push(format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join","params":{params}}}"#
            ));
        }
        texts.push(format!(r#"{{"id":{nest},"method":"x"}}"#));
        texts.push(format!(r#"{{"jsonrpc":{nest},"id":1,"method":"x"}}"#));
        texts.push(nest.clone());
        texts.push(nest[..nest.len() / 2].to_owned());
    }
    texts
}

/// Stack for parsing on a thread of its own: what the deepest input needs here is what any
/// input needs, since nesting is never followed by recursion.
const PARSE_STACK: usize = 32 * 1024;

#[test]
fn nesting_never_becomes_recursion() {
    let parse_all = |depth: usize| {
        std::thread::Builder::new()
            .stack_size(PARSE_STACK)
            .spawn(move || {
                for text in deep(depth) {
                    let _ = parse(&text, &names());
                    let _ = crate::kurento::parse(&text, &Caps::default());
                }
            })
            .unwrap()
            .join()
            .is_ok()
    };
    for depth in [1, 100, 127, 128, 129, 30_000] {
        assert!(parse_all(depth), "depth {depth}");
    }
}

//! The fast path against the full parser: whatever the fast path answers, the full parser
//! answers the same (mutated real requests, seeded); and it does answer the usual shapes.

use super::super::{full, Method};
use super::*;
use crate::caps::Caps;
use crate::config::Config;
use crate::room_token::RoomId;

/// Small caps, so lengths around them are cheap to make.
const ID_CAP: usize = 24;
const MESSAGE_CAP: usize = 48;

fn names(implicit: bool, small: bool) -> Designators {
    let mut config = Config::default();
    if small {
        config.max_id_bytes = ID_CAP;
        config.max_message_bytes = MESSAGE_CAP;
    }
    Designators {
        callsign: "Messenger".into(),
        implicit,
        caps: Caps::from(&config),
    }
}

/// Runs both parsers on `text`; whenever the fast path answers, the results (capacities of
/// the strings included) must be the same. Returns whether the fast path answered.
fn same(text: &str, names: &Designators) -> bool {
    let Some(fast) = send(text, names) else {
        return false;
    };
    let full = full(text, names);
    assert_eq!(Ok(&fast), full.as_ref(), "{text:?}");
    if let (Method::Send { roomid, message }, Ok(Call { method, .. })) = (&fast.method, &full) {
        let Method::Send {
            roomid: r,
            message: m,
        } = method
        else {
            unreachable!()
        };
        if let (RoomId::Other(roomid), RoomId::Other(r)) = (roomid, r) {
            assert_eq!(roomid.capacity(), r.capacity(), "{text:?}");
        }
        assert_eq!(message.capacity(), m.capacity(), "{text:?}");
    }
    true
}

#[test]
fn the_usual_shapes_are_taken() {
    let names = names(false, false);
    for text in [
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"0123456789abcdef0123","message":"hello"}}"#,
        r#"{"jsonrpc":"2.0","id":"a-7","method":"Messenger.send","params":{"message":"","roomid":"r"}}"#,
        r#"{"params":{"roomid":"r","message":"tab\there \"quoted\" \u00e9 \\ \/ \ud83d\ude00"},"method":"Messenger.1.send","jsonrpc":"2.0"}"#,
        " {\n  \"jsonrpc\" : \"2.0\",\r\n\t\"id\" : -12 , \"method\":\"Messenger.1.send\", \"params\" : { \"roomid\" : \"r\" , \"message\" : \"ü\" } }\n",
    ] {
        assert!(same(text, &names), "not taken: {text}");
    }
    let implicit = self::names(true, false);
    let bare =
        r#"{"jsonrpc":"2.0","id":0,"method":"1.send","params":{"roomid":"r","message":"m"}}"#;
    assert!(same(bare, &implicit));
    assert!(
        send(bare, &names).is_none(),
        "the Controller's without the callsign"
    );
}

#[test]
fn the_unusual_is_left_to_the_full_parser() {
    let names = names(false, false);
    for text in [
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"},"x":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":01,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.sendto","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"\ud83d"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"\ud83d\u0041"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":7}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}} x"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Messenger.1.send\",\"params\":{\"roomid\":\"r\",\"message\":\"a\u{1}\"}}",
    ] {
        assert!(send(text, &names).is_none(), "taken: {text}");
    }
}

/// Pieces the generator builds requests from: the valid, the near-valid and the wrong.
const IDS: &[&str] = &[
    "1",
    "0",
    "-1",
    "42",
    "18446744073709551616",
    "-0",
    "01",
    "1.5",
    "1e3",
    "-",
    "\"a\"",
    "\"\"",
    "\"a\\\"b\"",
    "null",
    "true",
    "[1]",
    "{}",
    "\"é\"",
];
const METHODS: &[&str] = &[
    "Messenger.1.send",
    "Messenger.send",
    "Messenger.01.send",
    "Messenger.2.send",
    "send",
    "1.send",
    "Messenger.1.send@x",
    "messenger.1.send",
    "Controller.1.send",
    "Messenger.1.sendto",
    "Messenger.1.Send",
    "Messenger..send",
    "Messenger.1.send.",
    "Messenger.1.",
    "Other.1.send",
    "Messenger.1.s\\u0065nd",
    "Messenger.4294967297.send",
    "",
];
const JSONRPC: &[&str] = &[
    "\"2.0\"",
    "\"1.0\"",
    "2.0",
    "\"2\\u002e0\"",
    "null",
    "\"2.0 \"",
];
const KEYS: &[&str] = &[
    "jsonrpc", "id", "method", "params", "roomid", "message", "user", "x", "i\\u0064", "",
];
const WS: &[&str] = &[" ", "\n", "\t", "\r\n ", " ", "\u{a0}", "\u{c}"];
/// String pieces: plain, escapes (valid, surrogates, invalid), control characters, non-ASCII.
const PIECES: &[&str] = &[
    "a",
    "hello",
    "~0:1:2;",
    "\\n",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\r",
    "\\t",
    "\\u00e9",
    "\\u00E9",
    "\\u0000",
    "\\u001f",
    "\\ud83d\\ude00",
    "\\ud83d",
    "\\ude00",
    "\\uD800\\u0041",
    "\\u12",
    "\\x",
    "\\",
    "\u{1}",
    "\u{1f}",
    "\u{7f}",
    "é",
    "😀",
    "\"",
    "{",
    "}",
];

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

/// A string's body of about `len` bytes of text, mostly plain.
fn body(rng: &mut fastrand::Rng, len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        if rng.u8(..24) == 0 {
            s.push_str(pick(rng, PIECES));
        } else {
            s.push(rng.alphanumeric());
        }
    }
    s
}

/// A string's body of a length around `cap`, or a short one.
fn text(rng: &mut fastrand::Rng, cap: usize) -> String {
    let len = length(rng, cap);
    body(rng, len)
}

/// A room id's body: a token's form, nearly one (a digit upper case or not hex, one short or
/// over, its first digit escaped), or any text.
fn roomid(rng: &mut fastrand::Rng) -> String {
    let mut token: String = (0..20)
        .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
        .collect();
    match rng.u8(..8) {
        0 | 1 => {}
        2 => token.replace_range(7..8, pick(rng, &["A", "F", "g", "-", "é"])),
        3 => {
            token.pop();
        }
        4 => token.push('0'),
        5 => token.replace_range(..1, &format!("\\u00{:x}", token.as_bytes()[0])),
        _ => return text(rng, ID_CAP),
    }
    token
}

/// A length around a cap, or a short one.
fn length(rng: &mut fastrand::Rng, cap: usize) -> usize {
    match rng.u8(..4) {
        0 => rng.usize(..8),
        1 => rng.usize(cap.saturating_sub(3)..cap + 4),
        2 if rng.bool() => rng.usize(..cap * 2),
        _ => rng.usize(..cap),
    }
}

/// A send request built from pieces: members in any order, sometimes missing, doubled, of
/// another type, or unknown.
fn generated(rng: &mut fastrand::Rng) -> String {
    let ws = |rng: &mut fastrand::Rng| match rng.u8(..24) {
        0 => pick(rng, WS),
        _ => "",
    };
    let member = |rng: &mut fastrand::Rng, key: &str, value: &str| {
        format!("{}\"{key}\"{}:{}{value}", ws(rng), ws(rng), ws(rng))
    };
    let mut params = vec![
        ("roomid", format!("\"{}\"", roomid(rng))),
        ("message", format!("\"{}\"", text(rng, MESSAGE_CAP))),
    ];
    if rng.u8(..6) == 0 {
        let value = match rng.u8(..3) {
            0 => format!("\"{}\"", body(rng, 3)),
            1 => "7".into(),
            _ => "null".into(),
        };
        params.push((pick(rng, KEYS), value));
    }
    let mut members = vec![
        (
            "jsonrpc",
            if rng.u8(..6) == 0 {
                pick(rng, JSONRPC)
            } else {
                "\"2.0\""
            }
            .to_owned(),
        ),
        (
            "id",
            if rng.bool() {
                rng.u32(..).to_string()
            } else {
                pick(rng, IDS).into()
            },
        ),
        (
            "method",
            format!(
                "\"{}\"",
                if rng.u8(..4) > 0 {
                    "Messenger.1.send"
                } else {
                    pick(rng, METHODS)
                }
            ),
        ),
        ("params", String::new()),
    ];
    if rng.u8(..6) == 0 {
        members.push((pick(rng, KEYS), pick(rng, IDS).to_owned()));
    }
    for list in [&mut params, &mut members] {
        rng.shuffle(list);
        if rng.u8(..8) == 0 {
            let _ = list.remove(rng.usize(..list.len()));
        }
    }
    let params: Vec<String> = params.iter().map(|(k, v)| member(rng, k, v)).collect();
    let params = format!("{{{}{}}}", params.join(","), ws(rng));
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            member(
                rng,
                k,
                if *k == "params" && v.is_empty() {
                    &params
                } else {
                    v
                },
            )
        })
        .collect();
    format!("{}{{{}{}}}{}", ws(rng), members.join(","), ws(rng), ws(rng))
}

/// `text` with a few random edits: a byte replaced, a piece inserted, a range removed or
/// doubled. `None` if that broke UTF-8 (a frame's text is always UTF-8).
fn mutated(rng: &mut fastrand::Rng, text: &str) -> Option<String> {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(..=b.len());
        match rng.u8(..4) {
            0 if at < b.len() => b[at] = pick(rng, PIECES).as_bytes()[0],
            1 => {
                let piece = match rng.u8(..4) {
                    0 => pick(rng, WS),
                    1 => pick(rng, IDS),
                    _ => pick(rng, PIECES),
                };
                b.splice(at..at, piece.bytes());
            }
            2 => {
                let end = rng.usize(at..=b.len().min(at + 8));
                b.drain(at..end);
            }
            _ => {
                let end = rng.usize(at..=b.len().min(at + 8));
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
        }
    }
    String::from_utf8(b).ok()
}

#[test]
fn whatever_the_fast_path_answers_the_full_parser_answers_the_same() {
    let mut rng = fastrand::Rng::with_seed(14);
    let all = [names(false, true), names(true, true), names(false, false)];
    let (mut texts, mut mutants, mut runs, mut taken, mut escaped) = (0, 0, 0, 0, 0);
    while mutants < 25_000 {
        let base = generated(&mut rng);
        let mutant = mutated(&mut rng, &base);
        mutants += usize::from(mutant.is_some());
        for text in [Some(base), mutant].iter().flatten() {
            texts += 1;
            for names in &all {
                runs += 1;
                let answered = same(text, names);
                taken += usize::from(answered);
                escaped += usize::from(answered && text.contains('\\'));
            }
        }
    }
    // Both answers must be common, escapes among those taken, or the test proves little.
    let counts = format!("{taken} of {runs} runs on {texts} texts taken, {escaped} escaped");
    assert!(taken > runs / 20 && taken < runs / 2, "{counts}");
    assert!(escaped > taken / 10, "{counts}");
}

//! Unit tests of the extension methods: listens, status and lists, targeted messages and
//! their pattern matching, eviction, Kurento members.

use super::super::tests::{join, join_kurento, limits, Frames};
use super::*;

fn glob(pattern: &str, text: &str) -> bool {
    Glob::new(pattern).matches(text, ANY)
}

/// Backtracking over characters: obviously right, and exponential at worst.
fn reference(p: &[char], t: &[char]) -> bool {
    match (p.first(), t.first()) {
        (None, _) => t.is_empty(),
        (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
        (Some(c), Some(d)) => c == d && reference(&p[1..], &t[1..]),
        (Some(_), None) => false,
    }
}

#[test]
fn glob_agrees_with_backtracking_on_every_small_case() {
    let grow = |all: &mut Vec<String>, alphabet: &[char], len: usize| {
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
    };
    let (mut patterns, mut texts) = (vec![String::new()], vec![String::new()]);
    grow(&mut patterns, &['a', 'ü', '*'], 5);
    grow(&mut texts, &['a', 'ü', 'b'], 5);
    for p in &patterns {
        let pc: Vec<char> = p.chars().collect();
        for t in &texts {
            let tc: Vec<char> = t.chars().collect();
            assert_eq!(glob(p, t), reference(&pc, &tc), "{p:?} {t:?}");
        }
    }
}

/// Time for one `sendto` pattern against a full room (`max_members_per_room` names as long
/// as `max_user_bytes` allows), for the patterns that make a matcher work hardest: every
/// run fits, and the last ones just do or just do not. Run with `--release --nocapture`
/// for the figure on the box's build.
#[test]
fn the_worst_sendto_the_caps_allow_costs_about_a_millisecond_at_most() {
    let config = crate::config::Config::default();
    let bytes = config.max_user_bytes;
    let names: Vec<String> = (0..config.max_members_per_room)
        .map(|n| format!("{}{n:04}", "a".repeat(bytes - 4)))
        .collect();
    let shapes = [
        // A short run after each star: one short search per two bytes.
        ("*a".repeat(bytes / 2 - 1) + "*", true),
        // Runs just long enough for the Two-Way search.
        (format!("*{}", "a".repeat(9)).repeat(bytes / 10) + "*", true),
        // Two long runs, the second one byte too long.
        (
            format!("*{}*{}*", "a".repeat(bytes / 2), "a".repeat(bytes / 2 - 3)),
            false,
        ),
    ];
    let mut worst = std::time::Duration::ZERO;
    for (pattern, hit) in &shapes {
        assert!(pattern.len() <= bytes);
        let started = std::time::Instant::now();
        let glob = Glob::new(std::hint::black_box(pattern));
        let hits = names.iter().filter(|n| glob.matches(n, ANY)).count();
        assert_eq!(hits, if *hit { names.len() } else { 0 }, "{pattern}");
        worst = worst.max(started.elapsed());
    }
    eprintln!("worst sendto pattern against a full room: {worst:?}");
    // Measured in release: 0.4-0.8 ms on a busy 2-core x86 machine, about what reading
    // every name once costs. The bound is coarse: debug builds and noisy machines.
    assert!(worst < std::time::Duration::from_millis(50), "{worst:?}");
}

#[test]
fn glob_matches_whole_names() {
    assert!(glob("*", ""));
    assert!(glob("*", "anyone"));
    assert!(glob("team_a-*", "team_a-bob"));
    assert!(!glob("team_a-*", "team_b-bob"));
    assert!(glob("*-bob", "team_a-bob"));
    assert!(glob("a*c*e", "abcde"));
    assert!(!glob("a*c*e", "abcd"));
    assert!(glob("Bob", "Bob"));
    assert!(!glob("Bob", "Bobby"));
    assert!(glob("ü*", "über"));
}

#[test]
fn listeners_hear_the_room_until_it_ends() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    assert_eq!(
        rooms.listen(9, "Nowhere", "l", None, &mut out),
        Err(RpcError::UnknownKey)
    );
    rooms.listen(9, "Lounge", "l", None, &mut out).unwrap();
    rooms.listen(9, "Lounge", "l", None, &mut out).unwrap();
    assert_eq!(
        out.take(),
        vec![(
            9,
            "l.userupdate".into(),
            serde_json::json!({"user":"Alice","action":"joined"})
        )]
    );
    rooms.send(&a.to_string(), "hi", &mut out).unwrap();
    assert_eq!(
        out.take(),
        vec![(
            9,
            "l.message".into(),
            serde_json::json!({"user":"Alice","message":"hi"})
        )]
    );
    rooms.leave(&a.to_string(), &mut out).unwrap();
    assert_eq!(
        out.take(),
        vec![(
            9,
            "l.roomupdate".into(),
            serde_json::json!({"room":"Lounge","secure":"insecure","action":"destroyed"})
        )]
    );
    assert!(rooms.conns[&9].rare().listening.is_empty());
    join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    assert!(out.take().is_empty(), "the listen ended with the room");
}

#[test]
fn listens_count_as_registrations() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    for i in 0..5 {
        rooms
            .listen(9, "Lounge", &format!("l{i}"), None, &mut out)
            .unwrap();
    }
    assert!(matches!(
        rooms.listen(9, "Lounge", "l5", None, &mut out),
        Err(RpcError::Unavailable(_))
    ));
    assert!(matches!(
        rooms.register(9, Event::RoomUpdate, "r", &mut out),
        Err(RpcError::Unavailable(_))
    ));
    rooms.silence(9, "Lounge", "l0").unwrap();
    rooms.listen(9, "Lounge", "l5", None, &mut out).unwrap();
}

#[test]
fn silence_and_disconnect_end_listens() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    rooms.listen(9, "Lounge", "l", None, &mut out).unwrap();
    rooms.listen(8, "Lounge", "m", None, &mut out).unwrap();
    rooms.silence(9, "Lounge", "l").unwrap();
    rooms.silence(9, "Lounge", "never").unwrap();
    assert_eq!(rooms.silence(9, "Nowhere", "l"), Err(RpcError::UnknownKey));
    rooms.disconnect(8);
    rooms.work(usize::MAX, &mut out);
    out.take();
    rooms.send(&a.to_string(), "hi", &mut out).unwrap();
    assert!(out.take().is_empty());
    assert!(rooms.rooms["Lounge"].listeners.is_empty());
}

#[test]
fn status_list_whoami_online() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
    join(&mut rooms, 1, "Al", "Den", &mut out).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&rooms.status("Lounge", None).unwrap()).unwrap();
    assert_eq!(
        status,
        serde_json::json!({"room":"Lounge","members":["Alice","Bob"],"membersCount":2})
    );
    assert_eq!(rooms.status("Nowhere", None), Err(RpcError::UnknownKey));
    let list: serde_json::Value = serde_json::from_str(&rooms.list()).unwrap();
    assert_eq!(
        list,
        serde_json::json!([
            {"room":"Den","secure":"insecure","membersCount":1},
            {"room":"Lounge","secure":"insecure","membersCount":2}
        ])
    );
    let mine: serde_json::Value = serde_json::from_str(&rooms.whoami(1)).unwrap();
    assert_eq!(mine[0]["roomid"], a.to_string());
    assert_eq!(mine[1]["user"], "Al");
    assert_eq!(rooms.whoami(7), "[]");
    assert!(rooms.is_online("Bob"));
    assert!(!rooms.is_online("bob"));
}

#[test]
fn targeted_messages_reach_only_the_matching_members() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    let enter = |conn, user: &str, rooms: &mut Rooms, out: &mut Frames| {
        let t = join(rooms, conn, user, "Field", out).unwrap();
        rooms
            .register(conn, Event::Message, &t.to_string(), out)
            .unwrap();
        t
    };
    let a = enter(1, "a-1", &mut rooms, &mut out);
    enter(2, "a-2", &mut rooms, &mut out);
    enter(3, "b-1", &mut rooms, &mut out);
    rooms.listen(9, "Field", "l", None, &mut out).unwrap();
    out.take();
    assert_eq!(
        rooms.send_to(&a.to_string(), "a-*", "team", &mut out),
        Ok(2)
    );
    let got: Vec<_> = out.take().into_iter().map(|(c, _, p)| (c, p)).collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                serde_json::json!({"user":"a-1","message":"team","to":"a-*"})
            ),
            (
                2,
                serde_json::json!({"user":"a-1","message":"team","to":"a-*"})
            )
        ]
    );
    rooms
        .whisper(&a.to_string(), "b-1", "psst", &mut out)
        .unwrap();
    let got: Vec<_> = out.take().into_iter().map(|(c, _, _)| c).collect();
    assert_eq!(got, vec![3]);
    assert_eq!(
        rooms.whisper(&a.to_string(), "nobody", "x", &mut out),
        Err(RpcError::UnknownKey)
    );
    assert_eq!(
        rooms.send_to("0000000000deadbeef00", "*", "x", &mut out),
        Err(RpcError::UnknownKey)
    );
}

#[test]
fn evicted_member_hears_its_own_leave_first() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    let b = join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
    for (conn, t) in [(1, a), (2, b)] {
        rooms
            .register(conn, Event::UserUpdate, &t.to_string(), &mut out)
            .unwrap();
    }
    out.take();
    assert_eq!(
        rooms.evict("Lounge", "Nobody", &mut out),
        Err(RpcError::UnknownKey)
    );
    rooms.evict("Lounge", "Bob", &mut out).unwrap();
    let left = serde_json::json!({"user":"Bob","action":"left"});
    assert_eq!(
        out.take(),
        vec![
            (2, format!("{b}.userupdate"), left.clone()),
            (1, format!("{a}.userupdate"), left)
        ]
    );
    assert!(rooms.conns[&2].watching.is_empty());
    assert_eq!(
        rooms.leave(&b.to_string(), &mut out),
        Err(RpcError::UnknownKey)
    );
}

#[test]
fn kurento_members_get_their_own_dialect() {
    let mut rooms = Rooms::new(limits());
    let mut out = Frames::default();
    let k = join_kurento(&mut rooms, 5, "K", "Lounge", &mut out).unwrap();
    let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
    assert_eq!(
        out.take(),
        vec![(
            5,
            "participantJoined".into(),
            serde_json::json!({"id":"Alice"})
        )]
    );
    assert_eq!(rooms.peers(a).collect::<Vec<_>>(), ["\"K\""]);
    assert_eq!(
        rooms.register(1, Event::Message, &k.to_string(), &mut out),
        Err(RpcError::UnknownKey),
        "a Kurento membership takes no registrations"
    );
    rooms.send(&a.to_string(), "hi", &mut out).unwrap();
    assert_eq!(
        out.take(),
        vec![(
            5,
            "sendMessage".into(),
            serde_json::json!({"room":"Lounge","user":"Alice","message":"hi"})
        )]
    );
    rooms.evict("Lounge", "K", &mut out).unwrap();
    assert_eq!(
        out.take(),
        vec![(5, "participantEvicted".into(), serde_json::json!({}))]
    );
    assert!(rooms.held(Owner::WebSocket(5)).is_empty());
    rooms.leave(&a.to_string(), &mut out).unwrap();
    assert_eq!(rooms.room_count(), 0);
}

//! Relay mode's pure decisions: routes, the pending table, reply ids, the merged status.

use super::*;
use crate::caps::Caps;
use std::time::Duration;

fn names(implicit: bool) -> Designators {
    Designators::new("Messenger".into(), implicit, Caps::default())
}

fn routed(method: &str, params: &str) -> Route {
    let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    route(&text, &names(false), false)
}

#[test]
fn messenger_and_the_controller_about_it_stay_here() {
    assert_eq!(routed("Messenger.1.join", "{}"), Route::Local);
    assert_eq!(routed("Messenger.join", "{}"), Route::Local);
    assert_eq!(routed("Controller.1.status@Messenger", "{}"), Route::Local);
    assert_eq!(routed("status@Messenger", "{}"), Route::Local);
    let messenger = r#"{"callsign":"Messenger"}"#;
    assert_eq!(routed("Controller.1.activate", messenger), Route::Local);
    assert_eq!(routed("deactivate", messenger), Route::Local);
    // Not a request at all: the edge answers it.
    assert_eq!(route("[1]", &names(false), false), Route::Local);
    // On /jsonrpc/Messenger everything is Messenger's.
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"DeviceInfo.1.systeminfo"}"#;
    assert_eq!(route(text, &names(true), false), Route::Local);
}

#[test]
fn everything_else_goes_to_thunder() {
    assert_eq!(routed("DeviceInfo.1.systeminfo", "{}"), Route::Relay);
    assert_eq!(routed("messenger.1.join", "{}"), Route::Relay);
    assert_eq!(routed("MessengerX.1.join", "{}"), Route::Relay);
    assert_eq!(routed("Controller.1.status@Echo", "{}"), Route::Relay);
    assert_eq!(routed("Controller.1.subsystems", "{}"), Route::Relay);
    assert_eq!(routed("activate", r#"{"callsign":"Echo"}"#), Route::Relay);
    let other = r#"{"event":"all","id":"x"}"#;
    assert_eq!(routed("Controller.1.register", other), Route::Relay);
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join"}"#;
    assert_eq!(route(text, &names(false), true), Route::Relay);
}

#[test]
fn statechange_goes_both_ways_and_status_is_merged() {
    let change = r#"{"event":"statechange","id":"c"}"#;
    assert_eq!(routed("Controller.1.register", change), Route::Both);
    assert_eq!(routed("unregister", change), Route::Both);
    assert_eq!(routed("register@Messenger", change), Route::Local);
    assert_eq!(routed("Controller.1.status", "{}"), Route::MergeStatus);
    assert_eq!(routed("status", "null"), Route::MergeStatus);
}

#[test]
fn pending_is_bounded_expires_and_drops_late_answers() {
    let now = Instant::now();
    let mut pending = Pending::new(2);
    let wait = |ms| Waiting {
        deadline: now + Duration::from_millis(ms),
        merge: false,
    };
    assert!(pending.hold("1", wait(10)));
    assert!(pending.hold("\"a\"", wait(50)));
    assert!(!pending.hold("3", wait(10)), "the limit");
    assert_eq!(
        pending.next_deadline(),
        Some(now + Duration::from_millis(10))
    );
    assert_eq!(pending.expire(now + Duration::from_millis(20)), vec!["1"]);
    assert_eq!(pending.answered("1"), Err(Late));
    assert_eq!(pending.answered("1"), Ok(None), "dropped once");
    assert_eq!(
        pending.answered("\"a\"").unwrap().map(|w| w.merge),
        Some(false)
    );
    assert!(pending.idle());
    assert_eq!(pending.answered("7"), Ok(None));
}

#[test]
fn reply_ids_and_notifications() {
    assert_eq!(
        reply_id(r#"{"jsonrpc":"2.0","id":4,"result":null}"#),
        Some("4".into())
    );
    assert_eq!(reply_id(r#"{"id":"x","result":1}"#), Some("\"x\"".into()));
    assert_eq!(
        reply_id(r#"{"jsonrpc":"2.0","method":"c.statechange","params":{}}"#),
        None
    );
    assert_eq!(reply_id(r#"{"id":null,"error":{}}"#), None);
    assert_eq!(reply_id("not json"), None);
}

#[test]
fn status_gets_messengers_entry_sorted_in() {
    let answer = r#"{"jsonrpc":"2.0","id":9,"result":[{"callsign":"Controller","state":"Activated"},{"callsign":"Messenger","state":"Deactivated"},{"callsign":"Zebra","state":"Activated"}]}"#;
    let merged: serde_json::Value =
        serde_json::from_str(&merge_status(answer, "Messenger")).unwrap();
    assert_eq!(merged["id"], 9);
    let list = merged["result"].as_array().unwrap();
    let names: Vec<&str> = list
        .iter()
        .map(|e| e["callsign"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Controller", "Messenger", "Zebra"]);
    assert_eq!(list[1]["state"], "Activated");
    assert_eq!(list[1]["locator"], "messenger");
    // Added when Thunder lists no Messenger; an error is passed on unchanged.
    let answer = r#"{"jsonrpc":"2.0","id":2,"result":[{"callsign":"Controller"}]}"#;
    assert!(merge_status(answer, "Messenger").contains(r#""callsign":"Messenger""#));
    let error = r#"{"jsonrpc":"2.0","id":2,"error":{"code":-31002,"message":"x"}}"#;
    assert_eq!(merge_status(error, "Messenger"), error);
}

#[test]
fn the_unavailable_error_is_thunders() {
    let text = unavailable("5", "Thunder is down", Compat::R5);
    assert!(text.contains(r#""code":-31002"#), "{text}");
    assert!(text.contains("The service is not active."), "{text}");
    assert!(text.contains(r#""id":5"#), "{text}");
    let text = unavailable("5", "Thunder is down", Compat::Rdk);
    assert!(text.contains(r#""code":2"#), "{text}");
}

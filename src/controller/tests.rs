//! The Controller's designators, parameters and answers, from memory.

use super::*;

#[test]
fn which_designators_name_the_controller() {
    for d in [
        "status",
        "status@Messenger",
        "register",
        "Controller.status",
        "Controller.1.status@Messenger",
        "1.activate",
        "",
        "Messenger",
    ] {
        assert_eq!(names_controller(d), Ok(true), "{d}");
    }
    assert_eq!(names_controller("Other.1.join"), Err("Other".into()));
    assert_eq!(
        names_controller("messenger.1.join"),
        Err("messenger".into())
    );
    assert_eq!(names_controller("a.b.c@x.y"), Err("a.b".into()));
}

#[test]
fn methods_and_their_params() {
    let parsed = |d: &str, p: Option<&str>| parse(d, p, &Caps::default());
    assert_eq!(
        parsed("status@Messenger", None),
        Ok(Method::Status {
            callsign: Some("Messenger".into())
        })
    );
    assert_eq!(
        parsed("Controller.1.services", Some("{}")),
        Ok(Method::Status { callsign: None })
    );
    assert_eq!(
        parsed(
            "register",
            Some(r#"{ "event": "statechange", "id": "temporary2"}"#)
        ),
        Ok(Method::Register {
            event: "statechange".into(),
            id: "temporary2".into(),
            index: None
        })
    );
    assert_eq!(
        parsed("Controller.1.activate", Some(r#"{"callsign":"Messenger"}"#)),
        Ok(Method::Activate {
            callsign: "Messenger".into()
        })
    );
    assert_eq!(
        parsed("activate@Messenger", None),
        Ok(Method::Activate {
            callsign: "Messenger".into()
        })
    );
    let code =
        |d: &str, p: Option<&str>| parse(d, p, &Caps::default()).unwrap_err().code(Compat::R5);
    assert_eq!(code("register", Some(r#"{"event":"statechange"}"#)), -32602);
    assert_eq!(code("unregister", Some(r#"{"id":"x"}"#)), -32602);
    assert_eq!(code("register", Some(r#"{"event":5,"id":"x"}"#)), -32602);
    assert_eq!(code("deactivate", None), -31030);
    assert_eq!(code("Controller.1.clone", None), -32601);
    assert_eq!(code("Controller.2.status", None), -31038);
    assert_eq!(code("join", Some(r#"{"user":"A","room":"R"}"#)), -32601);
}

/// The strings a Controller call keeps or compares are held to the id cap, as a Messenger
/// registration id: the `@index`, `event`, `id` and `callsign`.
#[test]
fn strings_are_held_to_the_id_cap() {
    let caps = Caps::default();
    let limit = caps.id().limit;
    let (fits, long) = ("x".repeat(limit), "x".repeat(limit + 1));
    let params = |event: &str, id: &str| format!(r#"{{"event":"{event}","id":"{id}"}}"#);
    let ok = |d: &str, p: &str| parse(d, Some(p), &caps).is_ok();
    assert!(ok("register", &params(&fits, &fits)));
    assert!(ok(&format!("status@{fits}"), "{}"));
    let refused = |d: &str, p: &str| match parse(d, Some(p), &caps) {
        Err(RpcError::InvalidParams(why)) => why,
        other => panic!("{d} {p}: {other:?}"),
    };
    let why = refused("register", &params(&long, "x"));
    assert!(
        why.starts_with("\"event\" is") && why.ends_with("(max_id_bytes)"),
        "{why}"
    );
    assert!(refused("unregister", &params("statechange", &long)).starts_with("\"id\""));
    assert!(refused(&format!("status@{long}"), "{}").starts_with("\"@index\""));
    let callsign = format!(r#"{{"callsign":"{long}"}}"#);
    assert!(refused("Controller.1.activate", &callsign).starts_with("\"callsign\""));
}

/// The object `status@Messenger` answers: the keys of Thunder R5's, in its order (the
/// recording's object, with this server's locator, module, hash and version).
#[test]
fn status_objects_have_thunders_keys_in_order() {
    let text = status("Messenger", Some("Messenger"), Compat::R5).unwrap();
    let recorded = r#"{"callsign":"Messenger","locator":"libThunderMessenger.so","classname":"Messenger","module":"Plugin_Messenger","state":"Activated","startmode":"Activated","resumed":false,"version":{"hash":"engineering_build_for_debug_purpose_only","major":1,"minor":0,"patch":0},"configuration":{"root":{"mode":"Off"}},"observers":0,"processedrequests":0,"processedobjects":0}"#;
    let ours = recorded
        .replace("libThunderMessenger.so", "messenger")
        .replace("Plugin_Messenger", "messenger")
        .replace(
            "engineering_build_for_debug_purpose_only",
            &format!("messenger {}", env!("CARGO_PKG_VERSION")),
        )
        .replace(r#"{"root":{"mode":"Off"}}"#, "{}");
    assert_eq!(text, ours);
}

#[test]
fn status_lists_sorted_by_callsign_or_one() {
    let callsigns = |text: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["callsign"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = status("Messenger", None, Compat::R5).unwrap();
    assert_eq!(callsigns(all), ["Controller", "Messenger"]);
    let all = status("Chat", None, Compat::Rdk).unwrap();
    assert_eq!(callsigns(all), ["Chat", "Controller"]);
    let one = status("Messenger", Some("Controller"), Compat::Rdk).unwrap();
    assert_eq!(callsigns(one), ["Controller"], "rdk: a one-element array");
    let bare = status("Messenger", Some("Messenger"), Compat::R5).unwrap();
    assert!(bare.starts_with(r#"{"callsign":"Messenger","#), "{bare}");
    assert_eq!(
        status("Messenger", Some("DeviceInfo"), Compat::R5),
        Err(RpcError::UnknownKey)
    );
}

#[test]
fn activation_as_thunder_answers_it() {
    assert_eq!(activation("Messenger", "Messenger", true), Ok(()));
    let refused = |c: &str, a: bool| activation("Messenger", c, a).unwrap_err();
    assert!(matches!(
        refused("Messenger", false),
        RpcError::Privileged(_)
    ));
    assert!(matches!(
        refused("Controller", true),
        RpcError::Privileged(_)
    ));
    assert!(matches!(
        refused("Controller", false),
        RpcError::Privileged(_)
    ));
    assert_eq!(refused("DeviceInfo", true), RpcError::UnknownKey);
    assert_eq!(
        activated("Messenger"),
        r#"{"callsign":"Messenger","state":"Activated","reason":"Startup"}"#
    );
}

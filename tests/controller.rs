//! Proves "just enough Controller": what ThunderJS and native apps ask Thunder's Controller
//! before they use Messenger (`Controller.1.status`, `status@<callsign>`, `activate`,
//! `register` of `statechange`) is answered as Thunder does, over WebSocket and `POST`, in
//! both dialects; its registrations count against the connection's limit (that they end with
//! it, the model test checks); everything else on the Controller is -32601.

mod support;

use serde_json::{json, Value};
use support::{Client, Server};

/// One call by full designator; the whole response.
fn rpc(c: &mut Client, method: &str, params: Value) -> Value {
    c.rpc(method, params)
}

#[test]
fn status_lists_the_plugins_sorted_and_one_by_index() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let all = rpc(&mut c, "Controller.1.status", json!({}));
    let callsigns: Vec<&str> = all["result"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| p["callsign"].as_str().unwrap())
        .collect();
    assert_eq!(callsigns, ["Controller", "Messenger"]);
    for p in all["result"].as_array().unwrap() {
        assert_eq!(p["state"], "Activated", "{p}");
    }
    // rdk: a one-element array, as R4 and SmartLinkType have it.
    let one = rpc(&mut c, "Controller.1.status@Messenger", json!({}));
    assert_eq!(one["result"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["result"][0]["classname"], "Messenger");
    let unknown = rpc(&mut c, "Controller.1.status@DeviceInfo", json!({}));
    assert_eq!(unknown["error"]["code"], 22, "{unknown}");

    let server = Server::start(&["--compat", "r5", "--callsign", "Chat"]);
    let mut c = server.client();
    let one = rpc(&mut c, "status@Chat", json!({}));
    assert_eq!(
        one["result"]["callsign"], "Chat",
        "r5: the bare object: {one}"
    );
    let one = rpc(&mut c, "Controller.services@Controller", json!({}));
    assert_eq!(one["result"]["callsign"], "Controller", "{one}");
    let unknown = rpc(&mut c, "status@Messenger", json!({}));
    assert_eq!(
        unknown["error"],
        json!({"code": -31022, "message": "ERROR_UNKNOWN_KEY"})
    );
    let all = server.post("Controller.1.status", json!({}));
    assert_eq!(all["result"][0]["callsign"], "Chat", "over POST too: {all}");
}

#[test]
fn activate_succeeds_and_deactivate_is_refused() {
    for (compat, refused, unknown) in [("rdk", 24, 22), ("r5", -32604, -31022)] {
        let server = Server::start(&["--compat", compat]);
        let mut c = server.client();
        let params = json!({"callsign": "Messenger"});
        assert_eq!(
            rpc(&mut c, "Controller.1.activate", params.clone())["result"],
            Value::Null
        );
        assert_eq!(
            rpc(&mut c, "Controller.1.activate@Messenger", json!({}))["result"],
            Value::Null
        );
        assert_eq!(
            server.post("activate", params.clone())["result"],
            Value::Null
        );
        let no = rpc(&mut c, "Controller.1.deactivate", params);
        assert_eq!(no["error"]["code"], refused, "{compat}: {no}");
        let no = rpc(&mut c, "activate", json!({"callsign": "Controller"}));
        assert_eq!(no["error"]["code"], refused, "{compat}: {no}");
        let no = rpc(&mut c, "activate", json!({"callsign": "DeviceInfo"}));
        assert_eq!(no["error"]["code"], unknown, "{compat}: {no}");
        // The Messenger connection is still served.
        assert!(c.call("rooms", json!({}))["result"].is_array());
    }
    let server = Server::start(&["--compat", "r5"]);
    let mut c = server.client();
    let no = rpc(
        &mut c,
        "Controller.1.deactivate",
        json!({"callsign": "Messenger"}),
    );
    assert_eq!(
        no["error"],
        json!({"code": -32604, "message": "Method invocation not allowed."})
    );
}

#[test]
fn statechange_registrations_replay_and_count_against_the_limit() {
    let server = Server::start(&["--compat", "r5", "--max-registrations-per-connection", "2"]);
    let mut c = server.client();
    let id = json!({"event": "statechange", "id": "client.Controller.events"});
    assert_eq!(
        rpc(&mut c, "Controller.1.register", id.clone())["result"],
        Value::Null
    );
    let replay = c.drain();
    assert_eq!(
        replay,
        [
            (
                "client.Controller.events.statechange".to_owned(),
                json!({"callsign": "Messenger", "state": "Activated", "reason": "Startup"})
            ),
            (
                "client.Controller.events.statechange".to_owned(),
                json!({"callsign": "Controller", "state": "Activated", "reason": "Startup"})
            ),
        ]
    );
    let again = rpc(&mut c, "Controller.1.register", id.clone());
    assert_eq!(
        again["error"],
        json!({"code": -31048, "message": "Registration failed."})
    );
    // `register@<callsign>`: that plugin's state only, under `<id>.statechange@<callsign>`.
    let one = json!({"event": "statechange", "id": "one"});
    rpc(&mut c, "register@Messenger", one);
    assert_eq!(c.drain()[0].0, "one.statechange@Messenger");
    // Two registrations held: the limit (2) refuses a third, Messenger's or the Controller's.
    let third = rpc(
        &mut c,
        "register",
        json!({"event": "statechange", "id": "x"}),
    );
    assert_eq!(third["error"]["code"], -31002, "{third}");
    let third = c.call("register", json!({"event": "roomupdate", "id": "r"}));
    assert_eq!(third["error"]["code"], -31002, "{third}");
    assert_eq!(rpc(&mut c, "unregister", id.clone())["result"], Value::Null);
    let gone = rpc(&mut c, "unregister", id.clone());
    assert_eq!(
        gone["error"],
        json!({"code": -31048, "message": "Registration failed."})
    );
    assert!(c.call("register", json!({"event": "roomupdate", "id": "r"}))["error"].is_null());
    // Over HTTP there is no connection to hear events.
    let http = server.post("register", id);
    assert_eq!(http["error"]["code"], -32600, "{http}");
}

#[test]
fn everything_else_on_the_controller_is_unknown() {
    let server = Server::start(&[]);
    let mut c = server.client();
    for method in [
        "Controller.1.clone",
        "join",
        "Controller.1.harakiri",
        "subsystems",
    ] {
        let reply = rpc(&mut c, method, json!({"callsign": "Messenger"}));
        assert_eq!(reply["error"]["code"], -32601, "{method}: {reply}");
    }
    let rdk = rpc(&mut c, "register", json!({"event": "statechange"}));
    assert_eq!(rdk["error"]["code"], -32602, "{rdk}");
    let reply = rpc(
        &mut c,
        "register",
        json!({"event": "statechange", "id": "s"}),
    );
    assert_eq!(reply["result"], 0, "rdk: register answers 0");
    let reply = rpc(
        &mut c,
        "unregister",
        json!({"event": "statechange", "id": "t"}),
    );
    assert_eq!(reply["error"]["code"], 49, "{reply}");
    let other = rpc(&mut c, "DeviceInfo.1.systeminfo", json!({}));
    assert_eq!(other["error"]["code"], -32601, "rdk: {other}");
    let server = Server::start(&["--compat", "r5"]);
    let mut c = server.client();
    let other = rpc(&mut c, "DeviceInfo.1.systeminfo", json!({}));
    assert_eq!(
        other["error"],
        json!({"code": -31043, "message": "The service is not available."})
    );
}

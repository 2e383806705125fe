//! Just enough of Thunder's Controller for what apps ask before they use Messenger (SmartLink-
//! Type's `register` of `statechange` and `status@Messenger`, ThunderJS's
//! `Controller.1.status@Messenger` and `Controller.1.activate`): which designators name the
//! Controller, its methods' checked parameters, and its answers as text in either dialect.
//! Pure: no I/O, no state (the engine keeps the `statechange` registrations).

use std::borrow::Cow;

use serde::Deserialize;

use crate::caps::Caps;
use crate::config::Compat;
use crate::error::RpcError;
use crate::request;
use crate::wire;

/// The Controller's callsign (`Controller.1.status`); a configured callsign may not take it.
pub const CALLSIGN: &str = "Controller";

/// The build this server reports as its plugins' version hash.
pub const BUILD: &str = concat!("messenger ", env!("CARGO_PKG_VERSION"));

/// The one event the Controller sends; every plugin this server has is `Activated` and stays
/// so, so its only notifications are the replay a `register` gets.
pub const STATECHANGE: &str = "statechange";

/// A checked Controller call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `status` (or `services`, its R5 name) with the `@<callsign>` index, if any.
    Status { callsign: Option<String> },
    /// Thunder's generic `register`: any event name is accepted, as Thunder does; only
    /// `statechange` ever sends anything. `index` is `register@<callsign>`'s.
    Register {
        event: String,
        id: String,
        index: Option<String>,
    },
    /// Thunder's generic `unregister`.
    Unregister {
        event: String,
        id: String,
        index: Option<String>,
    },
    /// `activate` with `{"callsign": ..}` (or, beyond Thunder, `activate@<callsign>`).
    Activate { callsign: String },
    /// `deactivate`, likewise.
    Deactivate { callsign: String },
}

/// Whether a designator (on `/jsonrpc`, not directed to a plugin) names the Controller, by
/// Thunder's rule: the callsign is what comes before the last `.` (the `@index` aside), minus
/// a numeric version; no callsign, or `Controller`, is the Controller. `Err`: another callsign.
pub fn names_controller(designator: &str) -> Result<bool, String> {
    let head = designator.split('@').next().unwrap_or(designator);
    let Some((prefix, _method)) = head.rsplit_once('.') else {
        return Ok(true);
    };
    let callsign = match prefix.rsplit_once('.') {
        Some((callsign, version)) if is_number(version) => callsign,
        None if is_number(prefix) => "",
        _ => prefix,
    };
    match callsign {
        "" | CALLSIGN => Ok(true),
        other => Err(other.to_owned()),
    }
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit())
}

/// Reads a Controller call: `designator` is the method as sent (`status@Messenger`,
/// `Controller.1.activate`), `params` the params' JSON text, if any.
// Out of line: see `engine::text_command` (one stack page per connection).
#[inline(never)]
pub fn parse(designator: &str, params: Option<&str>, caps: &Caps) -> Result<Method, RpcError> {
    let rest = designator
        .strip_prefix(CALLSIGN)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or(designator);
    let (name, index) = request::name_and_index(rest)?;
    let fields = fields(params)?;
    capped(caps, index, &fields)?;
    let index = index.map(str::to_owned);
    match name {
        "status" | "services" => Ok(Method::Status { callsign: index }),
        "register" | "unregister" => {
            let (Some(event), Some(id)) = (fields.event, fields.id) else {
                return Err(RpcError::InvalidParams(
                    "register and unregister take {\"event\": .., \"id\": ..}".into(),
                ));
            };
            let (event, id) = (event.into_owned(), id.into_owned());
            Ok(match name {
                "register" => Method::Register { event, id, index },
                _ => Method::Unregister { event, id, index },
            })
        }
        "activate" | "deactivate" => {
            let Some(callsign) = fields.callsign.map(Cow::into_owned).or(index) else {
                return Err(RpcError::BadRequest(format!(
                    "{name} takes {{\"callsign\": ..}}"
                )));
            };
            Ok(match name {
                "activate" => Method::Activate { callsign },
                _ => Method::Deactivate { callsign },
            })
        }
        _ => Err(RpcError::MethodNotFound(format!(
            "the Controller here answers status, register, unregister, activate and deactivate; not {name:?}"
        ))),
    }
}

/// Holds the strings a Controller call keeps or compares (the `@index`, `event`, `id` and
/// `callsign`) to the id cap (`max_id_bytes`): -32602 beyond it, as a Messenger
/// registration id.
fn capped(caps: &Caps, index: Option<&str>, fields: &Fields) -> Result<(), RpcError> {
    let strings = [
        ("@index", index),
        ("event", fields.event.as_deref()),
        ("id", fields.id.as_deref()),
        ("callsign", fields.callsign.as_deref()),
    ];
    for (field, text) in strings {
        if let Some(text) = text {
            caps.id()
                .bytes(field, text)
                .map_err(RpcError::InvalidParams)?;
        }
    }
    Ok(())
}

/// The parameters of every Controller method.
#[derive(Default, Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    callsign: Option<Cow<'a, str>>,
}

fn fields(params: Option<&str>) -> Result<Fields<'_>, RpcError> {
    match params {
        None => Ok(Fields::default()),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            RpcError::InvalidParams(
                "params must be an object whose event, id and callsign are strings".into(),
            )
        }),
    }
}

/// The plugins this server is, as the Controller lists them: `(callsign, classname)`, in the
/// order Thunder replays their `statechange` (the recording: Messenger, then Controller).
pub fn plugins(messenger: &str) -> [(&str, &'static str); 2] {
    [(messenger, "Messenger"), (CALLSIGN, CALLSIGN)]
}

/// One plugin's status object, with Thunder R5's keys in its order. Truthful rather than
/// copied: the locator and module name this binary, the hash its version; the version
/// numbers are the interface's (1.0.0, as `versions` says); the counts are 0, as Thunder
/// reports them unless built with runtime statistics (`observers` counts in-process
/// notification sinks, of which there are none here).
pub fn status_object(callsign: &str, classname: &str) -> String {
    format!(
        concat!(
            r#"{{"callsign":{},"locator":"messenger","classname":"{}","module":"messenger","#,
            r#""state":"Activated","startmode":"Activated","resumed":false,"#,
            r#""version":{{"hash":"{}","major":1,"minor":0,"patch":0}},"#,
            r#""configuration":{{}},"observers":0,"processedrequests":0,"processedobjects":0}}"#
        ),
        wire::json_string(callsign),
        classname,
        BUILD,
    )
}

/// The result of `status`: every plugin, sorted by callsign; with an index, that plugin's
/// object, bare in `r5` (Thunder R5 sends a one-element list as its element) and in a
/// one-element array in `rdk` (as R4 did, and as `SmartLinkType` parses it). An unknown
/// callsign is `ERROR_UNKNOWN_KEY`, as Thunder answers.
pub fn status(messenger: &str, index: Option<&str>, compat: Compat) -> Result<String, RpcError> {
    let mut plugins = plugins(messenger);
    let Some(callsign) = index else {
        plugins.sort_by(|a, b| a.0.cmp(b.0));
        let objects: Vec<String> = plugins.iter().map(|p| status_object(p.0, p.1)).collect();
        return Ok(format!("[{}]", objects.join(",")));
    };
    let (callsign, classname) = plugins
        .into_iter()
        .find(|p| p.0 == callsign)
        .ok_or(RpcError::UnknownKey)?;
    let object = status_object(callsign, classname);
    Ok(match compat {
        Compat::R5 => object,
        Compat::Rdk => format!("[{object}]"),
    })
}

/// The `statechange` params for a plugin that is running.
pub fn activated(callsign: &str) -> String {
    format!(
        r#"{{"callsign":{},"state":"Activated","reason":"Startup"}}"#,
        wire::json_string(callsign)
    )
}

/// The answer to `activate` / `deactivate` of `callsign`: every plugin here is active and
/// stays so. Activating one that is active succeeds (Thunder: `null`); the Controller itself
/// cannot be (de)activated, and Messenger cannot be deactivated here (Thunder would stop its
/// plugin; this server is that plugin): Thunder's error for both is the privileged-request one.
pub fn activation(messenger: &str, callsign: &str, activate: bool) -> Result<(), RpcError> {
    match callsign {
        CALLSIGN => Err(RpcError::Privileged(
            "the Controller cannot be activated or deactivated".into(),
        )),
        c if c == messenger && activate => Ok(()),
        c if c == messenger => Err(RpcError::Privileged(format!(
            "{c} is this server: it cannot be deactivated (stop the service instead)"
        ))),
        _ => Err(RpcError::UnknownKey),
    }
}

#[cfg(test)]
mod tests;

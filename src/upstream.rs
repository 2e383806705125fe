//! Relay mode's decisions, pure (no I/O, no clock of its own): where one WebSocket text frame
//! goes (served here, relayed to Thunder, or both), which relayed requests still wait for an
//! answer and until when, what an upstream frame is (a reply to whom, or a notification), the
//! Controller's `status` list with Messenger's entry made ours, and the error a client gets
//! when Thunder cannot answer. The sockets and threads that use it are the binary's
//! (`relay.rs`, `proxy.rs`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::Compat;
use crate::controller::{self, Method};
use crate::error::RpcError;
use crate::request::{self, Designators};
use crate::wire;

/// Where a text frame goes in relay mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Served here as without relay: the Messenger callsign, the Controller about Messenger,
    /// and text that is no request (the edge answers its error).
    Local,
    /// To Thunder, verbatim: other callsigns, the rest of the Controller.
    Relay,
    /// To Thunder, and carried out here without an answer: a Controller `statechange`
    /// (un)registration, so the client hears Thunder's plugins and Messenger in one stream.
    Both,
    /// To Thunder, and its answer (the Controller's `status` list) gets Messenger's entry
    /// from here.
    MergeStatus,
}

/// Where `text` goes, on a connection whose designators are read by `names`; `directed`: its
/// path names another callsign (`/jsonrpc/DeviceInfo`), so everything on it is Thunder's.
pub fn route(text: &str, names: &Designators, directed: bool) -> Route {
    if directed {
        return Route::Relay;
    }
    if names.implicit {
        return Route::Local;
    }
    let Ok(raw) = request::envelope(text) else {
        return Route::Local;
    };
    let method: &str = &raw.method;
    let own = method
        .strip_prefix(&*names.callsign)
        .is_some_and(|r| r.starts_with('.'));
    if own {
        return Route::Local;
    }
    if controller::names_controller(method) != Ok(true) {
        return Route::Relay;
    }
    let messenger = Some(&*names.callsign);
    match controller::parse(method, raw.params, &names.caps) {
        Ok(Method::Status { callsign: None }) => Route::MergeStatus,
        Ok(Method::Status { callsign }) if callsign.as_deref() == messenger => Route::Local,
        Ok(Method::Activate { callsign } | Method::Deactivate { callsign })
            if *callsign == *names.callsign =>
        {
            Route::Local
        }
        Ok(Method::Register { event, index, .. } | Method::Unregister { event, index, .. })
            if event == controller::STATECHANGE =>
        {
            match index.as_deref() {
                i if i == messenger => Route::Local,
                _ => Route::Both,
            }
        }
        _ => Route::Relay,
    }
}

/// One relayed request waiting for Thunder's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// When the client is told the plugin is unavailable instead.
    pub deadline: Instant,
    /// The answer is the Controller's `status` list, to be merged (`merge_status`).
    pub merge: bool,
}

/// The relayed requests of one connection that wait for an answer, by id (as JSON text), and
/// the ids answered for already (timed out) whose late answers are dropped; both bounded.
#[derive(Debug, Default)]
pub struct Pending {
    waiting: HashMap<String, Waiting>,
    given_up: HashSet<String>,
    limit: usize,
}

impl Pending {
    /// At most `limit` requests wait at once.
    pub fn new(limit: usize) -> Pending {
        Pending {
            limit,
            ..Pending::default()
        }
    }

    /// Holds `id` until `waiting.deadline`; `false` when `limit` requests already wait.
    pub fn hold(&mut self, id: &str, waiting: Waiting) -> bool {
        if self.waiting.len() >= self.limit && !self.waiting.contains_key(id) {
            return false;
        }
        self.given_up.remove(id);
        self.waiting.insert(id.to_owned(), waiting);
        true
    }

    /// Thunder answered `id`: what waited for it, `None` for an id nobody waits for (sent on
    /// as it is), `Err(Late)` when it was given up (a late answer, not to be sent on).
    pub fn answered(&mut self, id: &str) -> Result<Option<Waiting>, Late> {
        if let Some(waiting) = self.waiting.remove(id) {
            return Ok(Some(waiting));
        }
        if self.given_up.remove(id) {
            Err(Late)
        } else {
            Ok(None)
        }
    }

    /// Forgets `id` without remembering it as given up (the request never reached Thunder).
    pub fn forget(&mut self, id: &str) {
        self.waiting.remove(id);
    }

    /// The ids whose deadline has passed at `now`, given up (their late answers dropped).
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let late: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &late {
            self.waiting.remove(id);
            if self.given_up.len() >= self.limit {
                self.given_up.clear();
            }
            self.given_up.insert(id.clone());
        }
        late
    }

    /// Every waiting id, given up (Thunder is gone).
    pub fn drain(&mut self) -> Vec<String> {
        self.waiting.drain().map(|(id, _)| id).collect()
    }

    /// The earliest deadline, if any request waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|w| w.deadline).min()
    }

    /// Whether no request waits and no late answer is expected: a frame from Thunder then
    /// needs no reading before it is passed on.
    pub fn idle(&self) -> bool {
        self.waiting.is_empty() && self.given_up.is_empty()
    }
}

/// An answer for a request given up already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late;

/// The id of a frame from Thunder, as JSON text; `None` for a notification (or text that is
/// not a JSON object with an id), which is passed on as it is.
pub fn reply_id(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(default, borrow)]
        id: Option<&'a RawValue>,
    }
    let reply: Reply = serde_json::from_str(text).ok()?;
    let id = reply.id?.get();
    (id != "null").then(|| id.to_owned())
}

/// The error a client gets for a relayed request Thunder did not answer: Thunder's own error
/// for a plugin that is not available (2 `ERROR_UNAVAILABLE`; R5: -31002 "The service is not
/// active."), with `why` as its detail.
pub fn unavailable(id: &str, why: &str, compat: Compat) -> String {
    wire::error(id, &RpcError::Unavailable(why.to_owned()), compat)
}

/// Thunder's answer to the Controller's `status` with Messenger's entry replaced by this
/// server's (or added), the list kept sorted by callsign; the answer unchanged when it holds
/// no list (an error).
pub fn merge_status(answer: &str, messenger: &str) -> String {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
        #[serde(borrow)]
        result: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(default, borrow)]
        callsign: std::borrow::Cow<'a, str>,
    }
    let Ok(parsed) = serde_json::from_str::<Answer>(answer) else {
        return answer.to_owned();
    };
    let ours = controller::status_object(messenger, "Messenger");
    let mut entries: Vec<(String, String)> = parsed
        .result
        .iter()
        .map(|raw| {
            let callsign = serde_json::from_str::<Entry>(raw.get())
                .map(|e| e.callsign.into_owned())
                .unwrap_or_default();
            (callsign, raw.get().to_owned())
        })
        .filter(|(callsign, _)| callsign != messenger)
        .collect();
    entries.push((messenger.to_owned(), ours));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let list: Vec<String> = entries.into_iter().map(|(_, text)| text).collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":[{}]}}"#,
        parsed.id.get(),
        list.join(",")
    )
}

#[cfg(test)]
mod tests;

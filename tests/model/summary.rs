//! What a model case checked, counted by kind, for the test's closing line.

use serde_json::Value;

use super::reference::Want;

/// What a case checked.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub actions: usize,
    pub events: usize,
    pub results: usize,
    pub errors: usize,
    /// Of the events: to connection-wide registrations (`"room"` added), and replayed
    /// history (`"history": true`).
    pub wide: usize,
    pub history: usize,
    /// Of the events: the Controller's `statechange` replays.
    pub statechange: usize,
    /// Of the errors: Kurento `RoomException` codes.
    pub kurento_codes: usize,
    /// Calls the model saw refused for a string over its cap.
    pub capped: usize,
    /// Replays that showed messages dropped for the history budget.
    pub dropped: usize,
    /// New state refused for the memory budget.
    pub memory_full: usize,
    /// HTTP memberships ended to make room for another.
    pub lru: usize,
    /// Runs of `send`s applied as one `Command::Sends`.
    pub runs: usize,
}

impl Summary {
    pub(super) fn count(&mut self, frame: &Want) {
        let Want::Json(v) = frame else {
            self.events += 1;
            return;
        };
        if let Some(code) = v["error"]["code"].as_i64() {
            self.errors += 1;
            self.kurento_codes += usize::from((101..1000).contains(&code));
            return;
        }
        if v.get("result").is_some() {
            self.results += 1;
            return;
        }
        self.events += 1;
        let method = v["method"].as_str().unwrap_or_default();
        let params = &v["params"];
        self.history += usize::from(params["history"] == Value::Bool(true));
        self.statechange += usize::from(method.contains(".statechange"));
        let wide = !method.ends_with(".roomupdate") && params.get("room").is_some();
        self.wide += usize::from(wide && method.contains('.'));
    }
}

/// Adds another case's figures.
impl std::ops::AddAssign<&Summary> for Summary {
    fn add_assign(&mut self, other: &Summary) {
        self.actions += other.actions;
        self.events += other.events;
        self.results += other.results;
        self.errors += other.errors;
        self.wide += other.wide;
        self.history += other.history;
        self.statechange += other.statechange;
        self.kurento_codes += other.kurento_codes;
        self.capped += other.capped;
        self.memory_full += other.memory_full;
        self.lru += other.lru;
        self.dropped += other.dropped;
        self.runs += other.runs;
    }
}

//! The model's budgets: the memory budget's refusal of new state (the harness reads whether
//! room state holds half of `max_memory_bytes` off the engine, whose count the census checks),
//! and `max_http_memberships`, where a full HTTP join first ends the least recently used
//! HTTP membership.

use super::{Model, Owner};

impl Model {
    /// New state (a join, registration or listen) is refused while room state holds half of
    /// `max_memory_bytes`.
    pub(super) fn memory_left(&mut self) -> Result<(), ()> {
        if self.memory_full {
            self.tally.memory_full += 1;
            return Err(());
        }
        Ok(())
    }

    /// Before an HTTP join: when `max_http_memberships` are held, the least recently used
    /// one leaves (a leave like any other).
    pub(super) fn http_make_room(&mut self) {
        while self.held(Owner::Http).len() >= self.s.max_http {
            let http = self.members.iter().filter(|m| m.owner == Owner::Http);
            let Some(oldest) = http.min_by_key(|m| m.used).map(|m| m.key) else {
                return;
            };
            self.tally.lru += 1;
            self.remove_member(oldest);
        }
    }
}

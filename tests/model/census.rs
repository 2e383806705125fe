//! The harness's census check: the engine's counts of everything it holds against the
//! model's, its running memory counts against a recount, and room history within its bounds.

use super::reference::Owner;
use super::Harness;

impl Harness {
    /// The engine's counts against the model's.
    pub(super) fn census(&self) -> Result<(), String> {
        let got = self.engine.census();
        let m = &self.model;
        let http = m.held(Owner::Http).len();
        let watchers: usize = m.members.iter().map(|x| x.watchers.len()).sum();
        let listeners: usize = m.rooms.iter().map(|r| r.listeners.len()).sum();
        let mut want = got;
        want.rooms.rooms = m.rooms.len();
        want.rooms.members = m.members.len();
        want.rooms.http_members = http;
        want.rooms.room_watchers = m.room_watchers.len();
        want.rooms.member_watchers = watchers;
        want.rooms.listeners = listeners;
        want.rooms.indexed_members = m.members.len() - http;
        want.rooms.indexed_member_watchers = watchers;
        want.rooms.indexed_room_watchers = m.room_watchers.len();
        want.rooms.indexed_listeners = listeners;
        want.outboxes = m.conns.len();
        want.origins = m.conns.values().filter(|c| c.origin.is_some()).count();
        want.trusted = m.conns.values().filter(|c| c.admin).count();
        want.sessions = m.conns.values().filter(|c| c.kurento).count();
        want.rooms.wide_registrations = m.conns.values().map(|c| c.wide.len()).sum();
        want.rooms.wide_rooms = m.wide_rooms();
        let controller = m.conns.values().map(|c| c.controller.len()).sum();
        want.controller_registrations = controller;
        want.rooms.indexed_elsewhere = controller;
        want.rooms.stale_recipients = 0;
        if got != want {
            return Err(format!("census {got:#?}\nthe model wants {want:#?}"));
        }
        if got.rooms.memory != got.rooms.memory_recount || got.queues != got.queues_recount {
            return Err(format!(
                "memory counted as it changed differs from a recount: {got:#?}"
            ));
        }
        // History: what it holds is budget-dependent; its bounds are not.
        let (sure, possible) = m.history_counts();
        let held = got.rooms.history_messages;
        if !(sure..=possible).contains(&held) || got.rooms.history_bytes > m.s.history_bytes {
            return Err(format!(
                "history holds {held} messages in {} bytes; the model wants {sure} to {possible} messages within {} bytes",
                got.rooms.history_bytes, m.s.history_bytes
            ));
        }
        Ok(())
    }
}

//! Registrations for `userupdate`, `message` and `roomupdate` (Thunder's `register` /
//! `unregister`, SPEC §3) and the replay a new one gets first: a `created` per room, a
//! `joined` per member, or the room's history. Ids that start with no room token go to
//! `rooms/wide.rs`.

use super::*;

impl Rooms {
    /// Registers `conn` for `event` under `id`, replaying the current state first: a
    /// `created` for every room; for `userupdate` a `joined` for every member of the room, for
    /// `message` the room's history. An id that does not start with a room token registers
    /// the whole connection (`rooms/wide.rs`). Registering again what is registered changes
    /// nothing and is never refused by the limit.
    pub fn register(
        &mut self,
        conn: ConnId,
        event: Event,
        id: &str,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        if event == Event::RoomUpdate {
            if self.room_watchers.iter().any(|w| w.is(conn, event, id)) {
                return Ok(());
            }
            self.conns
                .entry(conn)
                .or_default()
                .may_register(&self.limits)?;
            self.memory_full()?;
            let watcher = Watcher::new(conn, event, id.to_owned());
            self.memory += cost::watcher(&watcher);
            for room in self.rooms.values() {
                let params = room_params(room, "created", self.compat);
                sink.send(conn, &wire::notification(watcher.method_json(), &params));
            }
            self.conns.entry(conn).or_default().rare_mut().room_watches += 1;
            self.room_watchers.push(watcher);
            return Ok(());
        }
        let front = leading_token(id);
        if RoomToken::parse(front).is_none() {
            return self.register_wide(conn, event, id, sink);
        }
        let token = self.known_thunder(front)?;
        let member = &self.members[&token];
        if member.watchers().iter().any(|w| w.is(conn, event, id)) {
            return Ok(());
        }
        self.conns
            .entry(conn)
            .or_default()
            .may_register(&self.limits)?;
        self.memory_full()?;
        let watcher = Watcher::new(conn, event, id.to_owned());
        self.memory += cost::member_watcher(&watcher);
        self.replay(
            &self.rooms[member.room_no].name,
            event,
            (conn, watcher.method_json()),
            false,
            sink,
        );
        let room_no = member.room_no;
        let watchers = self.members.get_mut(&token).and_then(Member::watchers_mut);
        push_few(watchers.expect("known Thunder token"), watcher);
        self.rooms.at_mut(room_no).recipients.forget();
        push_few(&mut self.conns.entry(conn).or_default().watching, token);
        Ok(())
    }

    /// What a new `event` registration in room `name` gets first, sent to `to` (a connection
    /// and a method as a JSON string literal): for `userupdate` a `joined` for every member in
    /// join order, for `message` the room's history, oldest first. `wide` adds `"room"` to
    /// the params (a connection-wide registration).
    pub(super) fn replay(
        &self,
        name: &str,
        event: Event,
        to: (ConnId, &str),
        wide: bool,
        sink: &mut impl Sink,
    ) {
        let room = &self.rooms[name];
        let room_json = wide.then_some(room.name_json.as_str());
        match event {
            Event::UserUpdate => {
                // Sent as pieces: no allocation per member, however many rooms are replayed.
                let [head, method, mid, _, tail] = wire::notification(to.1, "");
                let (with_room, room_json) = match room_json {
                    Some(r) => (r#","action":"joined","room":"#, r),
                    None => (r#","action":"joined""#, ""),
                };
                for user in &room.names {
                    if sink.closed(to.0) {
                        return;
                    }
                    let open = r#"{"user":"#;
                    let parts = [
                        head, method, mid, open, user, with_room, room_json, "}", tail,
                    ];
                    sink.send(to.0, &parts);
                }
            }
            Event::Message => self.history.replay(name, to, room_json, sink),
            Event::RoomUpdate => {}
        }
    }

    /// Counts one registration held outside the rooms (a Controller event) against `conn`'s
    /// registration limit and, at `bytes` (`cost::outside`), the memory budget; refused with
    /// error 2 beyond either, as any registration.
    pub fn hold_registration(&mut self, conn: ConnId, bytes: usize) -> Result<(), RpcError> {
        self.conns
            .entry(conn)
            .or_default()
            .may_register(&self.limits)?;
        self.memory_full()?;
        self.conns.entry(conn).or_default().rare_mut().elsewhere += 1;
        self.memory += bytes;
        Ok(())
    }

    /// Gives back a registration counted by `hold_registration` at `bytes`.
    pub fn release_registration(&mut self, conn: ConnId, bytes: usize) {
        if let Some(index) = self.conns.get_mut(&conn) {
            let rare = index.rare_mut();
            rare.elsewhere = rare.elsewhere.saturating_sub(1);
        }
        self.memory -= bytes;
    }

    /// Gives back `bytes` of registrations held outside the rooms by a connection that has
    /// gone (its index went with `disconnect`).
    pub fn release_memory(&mut self, bytes: usize) {
        self.memory -= bytes;
    }

    /// Ends a registration. Unregistering what is not registered is not an error, nor is an
    /// id whose membership has ended (its registrations ended with it; LinkType apps
    /// unregister after they leave, and Thunder answers `null` there).
    pub fn unregister(&mut self, conn: ConnId, event: Event, id: &str) -> Result<(), RpcError> {
        if event == Event::RoomUpdate {
            let before = self.room_watchers.len();
            let this = |w: &Watcher| w.is(conn, event, id);
            self.memory -= cost::remove_where(&mut self.room_watchers, this, cost::watcher);
            if let Some(index) = self.conns.get_mut(&conn) {
                index.rare_mut().room_watches -= before - self.room_watchers.len();
            }
            return Ok(());
        }
        let front = leading_token(id);
        if RoomToken::parse(front).is_none() {
            self.unregister_wide(conn, event, id);
            return Ok(());
        }
        let Ok(token) = self.known_thunder(front) else {
            return Ok(());
        };
        let member = self.members.get_mut(&token).expect("known Thunder token");
        let room_no = member.room_no;
        let watchers = member.watchers_mut().expect("known Thunder token");
        let before = watchers.len();
        let this = |w: &Watcher| w.is(conn, event, id);
        self.memory -= cost::remove_where(watchers, this, cost::member_watcher);
        if before != watchers.len() {
            self.rooms.at_mut(room_no).recipients.forget();
            if let Some(index) = self.conns.get_mut(&conn) {
                if let Some(at) = index.watching.iter().position(|t| *t == token) {
                    index.watching.swap_remove(at);
                }
            }
        }
        Ok(())
    }
}

/// The room token at the front of a registration id (`<roomid>.<client-id>`).
fn leading_token(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

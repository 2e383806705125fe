//! Joining a room (SPEC §3, §4): the limits, the room's security (a secure room's ACL, set
//! once by its creator), the user name, then the membership and the `joined` it causes. The
//! refusal is a `JoinError`, which each dialect names in its own terms.

use super::*;

/// A join request, checked at the edge.
pub struct Join<'a> {
    pub user: &'a str,
    pub room: &'a str,
    pub secure: Option<bool>,
    pub acl: Option<&'a [String]>,
    /// The joining connection's origin (from a verified token or the `Origin` header).
    pub origin: Option<&'a Origin>,
    /// The membership speaks the Kurento dialect (events go straight to its connection).
    pub kurento: bool,
}

impl<'a> Join<'a> {
    /// The join a Messenger `join` call asks for, made by a connection with `origin`; `None`
    /// for any other method.
    pub fn from_call(method: &'a Method, origin: Option<&'a Origin>) -> Option<Join<'a>> {
        let Method::Join {
            user,
            room,
            secure,
            acl,
        } = method
        else {
            return None;
        };
        Some(Join {
            user,
            room,
            secure: *secure,
            acl: acl.as_deref(),
            origin,
            kurento: false,
        })
    }
}

impl Rooms {
    /// Joins `req.room` as `req.user`, creating the room if needed (SPEC §3, §4).
    pub fn join(
        &mut self,
        owner: Owner,
        req: &Join,
        sink: &mut impl Sink,
    ) -> Result<RoomToken, RpcError> {
        self.try_join(owner, req, sink).map_err(|e| e.rpc(req))
    }

    /// `join`, with the refusal as a `JoinError` (for a dialect with its own error codes).
    pub fn try_join(
        &mut self,
        owner: Owner,
        req: &Join,
        sink: &mut impl Sink,
    ) -> Result<RoomToken, JoinError> {
        self.memory_full().map_err(JoinError::MemoryFull)?;
        if owner == Owner::Http {
            self.http_make_room(sink);
        } else {
            let held = self.held(owner).len();
            let limit = self.limits.max_memberships_per_connection;
            if held >= limit {
                return Err(JoinError::TooManyMemberships { held, limit });
            }
        }
        // The token first: nothing is changed if the OS has no randomness to give.
        let token = RoomToken::generate().map_err(|e| JoinError::NoRandomness(e.to_string()))?;
        match self.rooms.get(req.room) {
            Some(room) => self.admit(room, req)?,
            None => self.create_room(req, sink)?,
        }
        let user_json: Arc<str> = wire::json_string(req.user).into();
        let params = format!(r#"{{"user":{user_json},"action":"joined"}}"#);
        let room_no = self
            .rooms
            .number(req.room)
            .expect("room exists or was just made");
        let room = self.rooms.at_mut(room_no);
        let kurento = || kurento::participant_joined(&user_json);
        let notice = Notice::new(Event::UserUpdate, &params, &kurento);
        notice.to_room(&self.members, &self.conns, room, sink);
        room.members.push(token);
        room.names.push(user_json.clone());
        room.recipients.forget();
        let kind = if req.kurento {
            Kind::Kurento
        } else {
            Kind::Thunder {
                watchers: Vec::new(),
            }
        };
        let member = Member {
            room_no,
            user: req.user.to_owned(),
            user_json,
            owner,
            kind,
        };
        self.memory += cost::member(&member);
        self.members.insert(token, member);
        match owner {
            Owner::WebSocket(conn) => {
                push_few(&mut self.conns.entry(conn).or_default().tokens, token);
                self.wide_entered(conn, req.room, sink);
            }
            Owner::Http => self.http.push(token),
        }
        Ok(token)
    }

    /// Makes the room a first joiner asks for, with the security it asks for, and tells the
    /// `roomupdate` registrations.
    fn create_room(&mut self, req: &Join, sink: &mut impl Sink) -> Result<(), JoinError> {
        if self.rooms.len() >= self.limits.max_rooms {
            return Err(JoinError::TooManyRooms {
                limit: self.limits.max_rooms,
            });
        }
        let (secure, acl) = creator_security(req).map_err(JoinError::Refused)?;
        let room = Room {
            name: req.room.into(),
            name_json: wire::json_string(req.room),
            secure,
            acl,
            members: Vec::new(),
            names: Vec::new(),
            listeners: Vec::new(),
            wide: Vec::new(),
            recipients: Recipients::default(),
        };
        let params = room_params(&room, "created", self.compat);
        for w in &self.room_watchers {
            sink.send(w.conn, &wire::notification(w.method_json(), &params));
        }
        self.memory += cost::room(&room);
        self.rooms.insert(room);
        Ok(())
    }

    /// Checks a join into an existing room: its security first (so a refused client learns
    /// nothing about who is inside), then the member limit and the user name.
    fn admit(&self, room: &Room, req: &Join) -> Result<(), JoinError> {
        if req.acl.is_some() {
            return Err(JoinError::Refused(
                "the room exists; only its creator sets an ACL".into(),
            ));
        }
        room.admits(req.origin).map_err(JoinError::Refused)?;
        if !room.secure && req.secure == Some(true) {
            return Err(JoinError::Refused(
                "the room exists and is not secure".into(),
            ));
        }
        if room.members.len() >= self.limits.max_members_per_room {
            return Err(JoinError::RoomFull {
                limit: self.limits.max_members_per_room,
            });
        }
        if room
            .members
            .iter()
            .any(|t| self.members[t].user == req.user)
        {
            return Err(JoinError::Taken);
        }
        Ok(())
    }
}

/// The security a new room gets from its creator's join; the error says why it is refused.
/// Its ACL's patterns are compiled here, once. A connection without an origin cannot create a
/// secure room, as it cannot join one (SPEC §4).
fn creator_security(req: &Join) -> Result<(bool, Vec<Pattern>), String> {
    match (req.secure, req.acl) {
        (Some(false), Some(_)) => Err("an insecure room takes no ACL".into()),
        (_, Some([])) => Err("a secure room needs a non-empty ACL".into()),
        (_, Some(_)) if req.origin.is_none() => Err(
            "secure room: this connection has no origin (no Origin header, no token), so it cannot create one".into(),
        ),
        (_, Some(acl)) => acl
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map(|acl| (true, acl))
            .map_err(|e| e.to_string()),
        (Some(true), None) => Err("a secure room needs an ACL".into()),
        (_, None) => Ok((false, Vec::new())),
    }
}

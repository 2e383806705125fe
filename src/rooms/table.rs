//! The rooms, found by name or by number. Names are chosen by clients, so the map from name
//! keeps std's keyed hash (SipHash) against chosen collisions; but a member finds its room on
//! every message it sends, so each room also has a number (its slot here) that its members
//! keep, and that lookup hashes nothing. A slot is reused only after its room is destroyed,
//! which happens when its last member has left: no member ever holds the number of a room
//! that is gone. The numbers are a `Slab`'s (`src/slab.rs`).

use std::collections::HashMap;
use std::ops::Index;
use std::sync::Arc;

use super::Room;
use crate::slab::Slab;

/// A room's slot in the table.
pub(super) type RoomNo = u32;

/// Every room, by name and by number.
#[derive(Default)]
pub(super) struct RoomTable {
    slots: Slab<Room>,
    by_name: HashMap<Arc<str>, RoomNo>,
}

impl RoomTable {
    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// The number of the room called `name`.
    pub(super) fn number(&self, name: &str) -> Option<RoomNo> {
        self.by_name.get(name).copied()
    }

    pub(super) fn get(&self, name: &str) -> Option<&Room> {
        self.number(name).map(|no| &self[no])
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut Room> {
        let no = self.number(name)?;
        self.slots.get_mut(no)
    }

    /// The room numbered `no`, which a member of it holds.
    pub(super) fn at_mut(&mut self, no: RoomNo) -> &mut Room {
        self.slots.get_mut(no).expect("a member's room exists")
    }

    /// Adds `room` (its name is `room.name`, not yet in the table) and says its number.
    pub(super) fn insert(&mut self, room: Room) -> RoomNo {
        let name = room.name.clone();
        let no = self.slots.insert(room);
        self.by_name.insert(name, no);
        no
    }

    /// Takes the room numbered `no` (which a member of it holds) out; its number may be
    /// given to a new room.
    pub(super) fn remove_at(&mut self, no: RoomNo) -> Room {
        let room = self.slots.remove(no).expect("a member's room exists");
        self.by_name.remove(&room.name);
        room
    }

    /// Every room, with its name, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &Room)> {
        self.slots.iter().map(|r| (&*r.name, r))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Room> {
        self.slots.iter()
    }
}

impl Index<RoomNo> for RoomTable {
    type Output = Room;

    fn index(&self, no: RoomNo) -> &Room {
        self.slots.get(no).expect("a member's room exists")
    }
}

impl Index<&str> for RoomTable {
    type Output = Room;

    fn index(&self, name: &str) -> &Room {
        self.get(name).expect("the room exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> Room {
        Room {
            name: name.into(),
            name_json: crate::wire::json_string(name),
            secure: false,
            acl: Vec::new(),
            members: Vec::new(),
            names: Vec::new(),
            listeners: Vec::new(),
            wide: Vec::new(),
            recipients: Default::default(),
        }
    }

    #[test]
    fn a_room_is_found_by_name_and_by_number_until_it_is_removed() {
        let mut table = RoomTable::default();
        let a = table.insert(room("A"));
        let b = table.insert(room("B"));
        assert_ne!(a, b);
        assert_eq!(table.len(), 2);
        assert_eq!((table.number("A"), table.number("B")), (Some(a), Some(b)));
        assert_eq!(&*table[a].name, "A");
        assert_eq!(&*table["B"].name, "B");
        table.at_mut(b).wide.push(7);
        assert_eq!(table.get("B").map(|r| r.wide.clone()), Some(vec![7]));
        assert_eq!(&*table.remove_at(a).name, "A");
        assert!(table.get("A").is_none() && table.number("A").is_none());
        assert_eq!(table.len(), 1);
        // The freed number goes to the next room; the other room keeps its own.
        let c = table.insert(room("C"));
        assert_eq!(c, a);
        assert_eq!(&*table[c].name, "C");
        assert_eq!(&*table[b].name, "B");
        let mut names: Vec<&str> = table.iter().map(|(name, _)| name).collect();
        names.sort_unstable();
        assert_eq!(names, ["B", "C"]);
        assert_eq!(table.values().count(), 2);
    }
}

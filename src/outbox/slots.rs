//! The outboxes by slot: a vector, found by connection id through a small map of slot numbers,
//! or by the slot number alone, which a caller that sends to the same connection often keeps
//! (the rooms' recipient lists, `rooms/recipients.rs`) so a delivery hashes nothing. A slot is
//! given to another connection once its outbox has gone, so a number is only a hint: it finds
//! the outbox only while the slot still holds the connection it was given for (connection ids
//! are never reused), and otherwise the id is looked up. A kept number can therefore never
//! reach another connection's outbox. The slots are a `Slab`'s (`src/slab.rs`).

use crate::idmap::IdMap;
use crate::rooms::{ConnId, Slot, NO_SLOT};
use crate::slab::Slab;

/// Values by connection, each in a slot of its own until it is removed.
pub struct Slots<T> {
    /// Each value with the connection it is for, which a kept number is checked against.
    slots: Slab<(ConnId, T)>,
    by_conn: IdMap<ConnId, Slot>,
}

impl<T> Default for Slots<T> {
    fn default() -> Slots<T> {
        Slots {
            slots: Slab::default(),
            by_conn: IdMap::default(),
        }
    }
}

impl<T> Slots<T> {
    /// Makes room for `n` more values without growing.
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.by_conn.reserve(n);
    }

    /// Puts `value` in `conn`'s slot (replacing what it held), or in a free one.
    pub fn insert(&mut self, conn: ConnId, value: T) {
        if let Some(held) = self.get_mut(&conn) {
            *held = value;
            return;
        }
        let slot = self.slots.insert((conn, value));
        self.by_conn.insert(conn, slot);
    }

    /// The slot holding `conn`'s value (`NO_SLOT` if none).
    pub fn slot(&self, conn: ConnId) -> Slot {
        self.by_conn.get(&conn).copied().unwrap_or(NO_SLOT)
    }

    pub fn get(&self, conn: &ConnId) -> Option<&T> {
        let slot = *self.by_conn.get(conn)?;
        self.slots.get(slot).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, conn: &ConnId) -> Option<&mut T> {
        let slot = *self.by_conn.get(conn)?;
        self.slots.get_mut(slot).map(|(_, v)| v)
    }

    /// `conn`'s value, found at `slot` if that slot still holds it, else by `conn`.
    #[inline]
    pub fn at_mut(&mut self, slot: Slot, conn: ConnId) -> Option<&mut T> {
        let holds = matches!(self.slots.get(slot), Some((c, _)) if *c == conn);
        let slot = if holds {
            slot
        } else {
            *self.by_conn.get(&conn)?
        };
        self.slots.get_mut(slot).map(|(_, v)| v)
    }

    /// Takes `conn`'s value out; its slot may be given to another connection.
    pub fn remove(&mut self, conn: &ConnId) -> Option<T> {
        let slot = self.by_conn.remove(conn)?;
        self.slots.remove(slot).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ConnId, &T)> {
        self.slots.iter().map(|(c, v)| (c, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &ConnId> {
        self.iter().map(|(c, _)| c)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_slot_finds_only_the_connection_it_was_given_for() {
        let mut slots = Slots::default();
        slots.insert(1, "one");
        let one = slots.slot(1);
        assert_eq!(slots.at_mut(one, 1).copied(), Some("one"));
        assert_eq!(slots.remove(&1), Some("one"));
        slots.insert(2, "two");
        assert_eq!(slots.slot(2), one, "the freed slot is given again");
        assert_eq!(slots.at_mut(one, 1), None, "not connection 2's value");
        assert_eq!(slots.at_mut(one, 2).copied(), Some("two"));
        // A wrong or unknown number still finds a connection by its id.
        slots.insert(3, "three");
        assert_eq!(slots.at_mut(one, 3).copied(), Some("three"));
        assert_eq!(slots.at_mut(NO_SLOT, 3).copied(), Some("three"));
        assert_eq!(slots.at_mut(NO_SLOT, 1), None);
        slots.insert(3, "three again");
        assert_eq!(
            (slots.len(), slots.get(&3).copied()),
            (2, Some("three again"))
        );
        let mut keys: Vec<_> = slots.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, [2, 3]);
    }
}

//! Values in numbered slots: a value keeps its number until it is removed, and a removed
//! value's number is given to the next one. The rooms (`rooms/table.rs`) and the outboxes
//! (`outbox/slots.rs`) are kept in one, so whoever holds a number (a member its room, a
//! recipient list a connection's outbox) finds the value without hashing; each keeps its own
//! map from name or connection to number beside it.

/// Values by number.
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    /// Numbers whose value was removed, to be given again.
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// Makes room for `n` more values without growing.
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
    }

    /// Puts `value` in a free slot, or a new one; says its number.
    pub fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(no) => {
                self.slots[no as usize] = Some(value);
                no
            }
            None => {
                self.slots.push(Some(value));
                // The callers' limits (`max_rooms`, `max_connections`) keep it far below.
                u32::try_from(self.slots.len() - 1).expect("fewer values than u32::MAX")
            }
        }
    }

    /// Takes the value numbered `no` out; the number may be given to the next value.
    pub fn remove(&mut self, no: u32) -> Option<T> {
        let value = self.slots.get_mut(no as usize)?.take()?;
        self.free.push(no);
        Some(value)
    }

    #[inline]
    pub fn get(&self, no: u32) -> Option<&T> {
        self.slots.get(no as usize)?.as_ref()
    }

    #[inline]
    pub fn get_mut(&mut self, no: u32) -> Option<&mut T> {
        self.slots.get_mut(no as usize)?.as_mut()
    }

    /// Every value, by number.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_given_again_only_once_its_value_is_removed() {
        let mut slab = Slab::default();
        let (a, b) = (slab.insert("a"), slab.insert("b"));
        assert_ne!(a, b);
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None, "removed once");
        assert_eq!(slab.get(a), None);
        let c = slab.insert("c");
        assert_eq!(c, a, "the freed number is given again");
        assert_eq!((slab.get(c), slab.get(b)), (Some(&"c"), Some(&"b")));
        *slab.get_mut(b).unwrap() = "B";
        assert_eq!(slab.iter().copied().collect::<Vec<_>>(), ["c", "B"]);
        assert_eq!(slab.get(99), None);
    }
}

//! Wildcard matching in time linear in the pattern and the text, without allocating: the one
//! engine behind ACL hosts (`acl`) and `sendto` patterns (`rooms/ext.rs`), which differ only
//! in what a `*` may stand for. Pure.

/// What one `*` stands for: at least `min` bytes, each of which `takes` accepts (`None`:
/// any byte).
#[derive(Debug, Clone, Copy)]
pub struct Star {
    pub min: usize,
    pub takes: Option<fn(u8) -> bool>,
}

/// A pattern split at its stars once, to be matched against many texts (`sendto` matches one
/// against every member of a room). Borrows the pattern; holds one vector of its inner runs.
#[derive(Debug)]
pub struct Glob<'a> {
    /// The run before the first star; the whole pattern if it has no star.
    first: &'a str,
    /// The runs between the first star and the last, each with the stars just before it
    /// (an empty run is two stars in a row).
    inner: Vec<(usize, &'a str)>,
    /// Stars before `last` since the last inner run; 0 if the pattern has no star.
    stars: usize,
    /// The run after the last star.
    last: &'a str,
}

impl<'a> Glob<'a> {
    pub fn new(pattern: &'a str) -> Glob<'a> {
        let Some((first, tail)) = pattern.split_once('*') else {
            return Glob {
                first: pattern,
                inner: Vec::new(),
                stars: 0,
                last: "",
            };
        };
        let (middle, last) = match tail.rsplit_once('*') {
            Some((middle, last)) => (Some(middle), last),
            None => (None, tail),
        };
        let mut inner = Vec::new();
        let mut stars = 1;
        for run in middle.into_iter().flat_map(|m| m.split('*')) {
            if run.is_empty() {
                stars += 1;
            } else {
                inner.push((stars, run));
                stars = 1;
            }
        }
        Glob {
            first,
            inner,
            stars,
            last,
        }
    }

    /// Whether the pattern matches the whole of `text`; every character other than `*`
    /// matches itself.
    ///
    /// The first run must start the text and the last must end it, so both are checked
    /// first. Each inner run is taken at its leftmost place that leaves the stars before it
    /// their minimum: that is safe, because when a run also fits further right, the bytes
    /// between the two places are bytes the stars took (and the run itself repeats them), so
    /// the star after it can take them instead. Each text byte is then looked at a bounded
    /// number of times.
    pub fn matches(&self, text: &str, star: Star) -> bool {
        if self.stars == 0 {
            return self.first == text;
        }
        let inner = text
            .strip_prefix(self.first)
            .and_then(|rest| rest.strip_suffix(self.last));
        let Some(mut rest) = inner else {
            return false;
        };
        for &(stars, run) in &self.inner {
            let skip = stars * star.min;
            let Some(at) = rest.get(skip..).and_then(|r| find(r, run)) else {
                return false;
            };
            if !taken(&rest[..skip + at], star) {
                return false;
            }
            rest = &rest[skip + at + run.len()..];
        }
        rest.len() >= self.stars * star.min && taken(rest, star)
    }
}

/// Whether `pattern` matches the whole of `text` (`Glob::matches`, for a pattern used once).
pub fn matches(pattern: &str, text: &str, star: Star) -> bool {
    Glob::new(pattern).matches(text, star)
}

/// Whether stars may take every byte of `gap`.
fn taken(gap: &str, star: Star) -> bool {
    star.takes.is_none_or(|takes| gap.bytes().all(takes))
}

/// The leftmost place of `needle` in `hay`. Short needles by a plain scan (no set-up, a few
/// comparisons per byte), longer ones by `str::find`'s Two-Way search, linear in what it
/// scans, whose set-up is then paid at most once per few pattern bytes.
fn find(hay: &str, needle: &str) -> Option<usize> {
    const SHORT: usize = 8;
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > SHORT {
        return hay.find(needle);
    }
    // A match starts on a character boundary: a valid needle starts with a leading byte.
    let needle = needle.as_bytes();
    match needle {
        [byte] => hay.bytes().position(|b| b == *byte),
        _ => hay
            .as_bytes()
            .windows(needle.len())
            .position(|w| w == needle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY: Star = Star {
        min: 0,
        takes: None,
    };

    #[test]
    fn stars_between_anchored_runs() {
        assert!(matches("", "", ANY));
        assert!(!matches("", "a", ANY));
        assert!(matches("*", "", ANY));
        assert!(matches("**", "abc", ANY));
        assert!(matches("a*", "abc", ANY));
        assert!(matches("*c", "abc", ANY));
        assert!(matches("a*c", "ac", ANY));
        assert!(!matches("ab*bc", "abc", ANY), "runs do not overlap");
        assert!(matches("a*b*c", "aXbYc", ANY));
        assert!(matches("a**c", "ac", ANY));
        let one = Star {
            min: 1,
            takes: Some(|b| b != b'_'),
        };
        assert!(!matches("a**c", "aXc", one), "two stars take two bytes");
        assert!(matches("a**c", "aXYc", one));
        assert!(!matches("a*c", "a_c", one));
        assert!(matches("*_*", "x_y", one));
        assert!(!matches("*_*", "_y", one));
    }

    #[test]
    fn find_uses_both_searches() {
        assert_eq!(find("abcabc", "ca"), Some(2));
        assert_eq!(find("abc", "abcd"), None);
        let long = "0123456789";
        assert_eq!(find(&format!("xx{long}"), long), Some(2));
        assert_eq!(find("üa", "a"), Some(2));
    }
}

//! The params of a Messenger request, read leniently (a wrong type becomes the right error
//! code, not a parse failure) and held to their caps. Nested values are skipped by serde_json's
//! iterative `IgnoredAny`, never walked by recursion of ours.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::caps::{Cap, Caps};
use crate::error::RpcError;

/// The parameters of every method, each read leniently so a wrong type becomes the right
/// error code instead of a parse failure.
#[derive(Default, Deserialize)]
pub(super) struct Fields<'a> {
    #[serde(default, borrow)]
    pub(super) user: Field<'a>,
    #[serde(default, borrow)]
    pub(super) room: Field<'a>,
    #[serde(default, borrow)]
    pub(super) secure: Field<'a>,
    #[serde(default, borrow)]
    pub(super) acl: Option<Strings<'a>>,
    #[serde(default, borrow)]
    pub(super) roomid: Field<'a>,
    #[serde(default, borrow)]
    pub(super) message: Field<'a>,
    #[serde(default, borrow)]
    pub(super) event: Field<'a>,
    #[serde(default, borrow)]
    pub(super) id: Field<'a>,
    #[serde(default, borrow)]
    pub(super) method: Field<'a>,
    #[serde(default, borrow)]
    pub(super) to: Field<'a>,
}

/// One parameter: a string, something else, or absent.
#[derive(Default)]
pub(super) enum Field<'a> {
    #[default]
    Missing,
    Str(Cow<'a, str>),
    Other,
}

impl<'a> Field<'a> {
    /// A required string within `cap` (30 `ERROR_BAD_REQUEST` when missing, not a string, or
    /// too long).
    pub(super) fn string(self, name: &str, cap: Cap) -> Result<String, RpcError> {
        self.str(name, cap).map(Cow::into_owned)
    }

    /// The same, not yet copied out of the request.
    pub(super) fn str(self, name: &str, cap: Cap) -> Result<Cow<'a, str>, RpcError> {
        match self {
            Field::Str(s) => {
                cap.bytes(name, &s).map_err(RpcError::BadRequest)?;
                Ok(s)
            }
            other => Err(other.refused(name)),
        }
    }

    /// A required non-empty string within `cap` (30 `ERROR_BAD_REQUEST` otherwise).
    pub(super) fn non_empty(self, name: &str, cap: Cap) -> Result<String, RpcError> {
        let s = self.string(name, cap)?;
        if s.is_empty() {
            return Err(Field::Str(Cow::Borrowed("")).refused(name));
        }
        Ok(s)
    }

    /// Why this field is not the string `name` must be (30 `ERROR_BAD_REQUEST`). Out of line
    /// and cold: the parse path's frames do not carry its formatting.
    #[cold]
    #[inline(never)]
    fn refused(&self, name: &str) -> RpcError {
        let why = match self {
            Field::Missing => "is missing",
            Field::Other => "must be a string",
            Field::Str(_) => "is empty",
        };
        RpcError::BadRequest(format!("\"{name}\" {why}"))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// An array of strings (borrowed from the text where it has no escapes), or `None` inside if
/// the value was anything else. Read without a `serde_json::Value` tree: an element that is
/// not a string is read as a `Field`, whose nested contents serde_json skips iteratively, so
/// the depth of the input never becomes depth of the stack.
pub(super) struct Strings<'a>(Option<Vec<Cow<'a, str>>>);

impl Strings<'_> {
    /// The ACL of a join, each pattern and their number within the caps.
    pub(super) fn checked(self, caps: &Caps) -> Result<Vec<String>, RpcError> {
        let acl = self.0.ok_or_else(|| {
            RpcError::InvalidParams("\"acl\" must be an array of origin strings".into())
        })?;
        let bad = RpcError::BadRequest;
        caps.acl_patterns().items("acl", acl.len()).map_err(bad)?;
        for pattern in &acl {
            caps.acl_pattern().bytes("acl", pattern).map_err(bad)?;
        }
        Ok(acl.into_iter().map(Cow::into_owned).collect())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Strings<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Field>()? {
                    match item {
                        Field::Str(s) => items.push(s),
                        _ => {
                            while seq.next_element::<IgnoredAny>()?.is_some() {}
                            return Ok(Strings(None));
                        }
                    }
                }
                Ok(Strings(Some(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Strings(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Strings(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Strings(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Strings(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Strings(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Strings(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Strings(None))
            }
        }
        d.deserialize_any(V)
    }
}

//! Typed field values and borrowed views of them.

/// A typed value of one finding field.
///
/// Nessus stores everything as text; the parser types each field by the field catalogue
/// (see [`FieldKind`](crate::FieldKind)), so scores are numbers and `true`/`false` flags are
/// booleans. A value that does not fit its expected type is kept as [`Value::Text`] rather
/// than dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An empty numeric or boolean element.
    Null,
    /// A boolean flag such as `exploit_available`.
    Bool(bool),
    /// An integer (plugin id, port, severity).
    Int(i64),
    /// A score (CVSS, VPR, EPSS).
    Float(f64),
    /// Free text.
    Text(String),
    /// A repeated element (cve, bid, xref, see_also, ...), in document order.
    List(Vec<String>),
}

impl Value {
    /// Borrows the value.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::List(l) => ValueRef::List(ListRef::Owned(l)),
        }
    }
}

/// A borrowed view of a [`Value`], used by filters and the JSON writer so that stored
/// records can be examined without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// See [`Value::Null`].
    Null,
    /// See [`Value::Bool`].
    Bool(bool),
    /// See [`Value::Int`].
    Int(i64),
    /// See [`Value::Float`].
    Float(f64),
    /// See [`Value::Text`].
    Text(&'a str),
    /// See [`Value::List`].
    List(ListRef<'a>),
}

impl ValueRef<'_> {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ValueRef::Int(i) => Some(i as f64),
            ValueRef::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Converts to an owned [`Value`].
    pub fn to_owned_value(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::List(l) => Value::List(l.iter().map(str::to_owned).collect()),
        }
    }
}

/// A borrowed list of strings: either owned strings or the length-prefixed encoding used
/// inside a findings store record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ListRef<'a> {
    /// Strings held by a parsed [`Finding`](crate::Finding).
    Owned(&'a [String]),
    /// `count` items encoded as `u32` little-endian length + UTF-8 bytes.
    Encoded {
        /// Number of items.
        count: u32,
        /// The encoded items.
        bytes: &'a [u8],
    },
}

impl<'a> ListRef<'a> {
    /// Iterates over the items.
    pub fn iter(&self) -> ListIter<'a> {
        match *self {
            ListRef::Owned(items) => ListIter::Owned(items.iter()),
            ListRef::Encoded { count, bytes } => ListIter::Encoded { left: count, bytes },
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match *self {
            ListRef::Owned(items) => items.len(),
            ListRef::Encoded { count, .. } => count as usize,
        }
    }

    /// Whether the list has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Iterator over a [`ListRef`].
#[derive(Debug, Clone)]
pub enum ListIter<'a> {
    /// Over owned strings.
    #[doc(hidden)]
    Owned(std::slice::Iter<'a, String>),
    /// Over encoded strings.
    #[doc(hidden)]
    Encoded {
        /// Items left.
        left: u32,
        /// Remaining bytes.
        bytes: &'a [u8],
    },
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            ListIter::Owned(it) => it.next().map(String::as_str),
            ListIter::Encoded { left, bytes } => {
                if *left == 0 || bytes.len() < 4 {
                    return None;
                }
                let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                let rest = &bytes[4..];
                let item = rest.get(..len)?;
                *bytes = &rest[len..];
                *left -= 1;
                // The store only ever writes valid UTF-8; a corrupt store yields no item
                // rather than a panic.
                std::str::from_utf8(item).ok()
            }
        }
    }
}

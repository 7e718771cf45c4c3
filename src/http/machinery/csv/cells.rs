//! A record's CSV cells, written by serde straight from the record into one reused cell per
//! column: no JSON tree is built for a row. The cells are what flattening the record's JSON
//! whole gives each column (the definition the tests hold them to):
//! - nested objects as `parent_member` (a member named "" adds nothing to the name);
//! - a leaf: null as an empty cell, text as it is, numbers and booleans as JSON writes them,
//!   a list's items joined with `;`, an object inside a list as its members' values joined
//!   with `:` in member-name order;
//! - where several paths give one name, the one met last in the record's order;
//! - a column that no leaf names but a member of the record that is an object (an audit event's
//!   free-form `changes`): that object as JSON text.

use std::collections::HashMap;
use std::fmt::Display;

use serde::ser::{self, Impossible, Serialize};
use serde_json::Value as Json;

/// An export's columns, and where each one's cell goes.
#[derive(Debug)]
pub struct Columns<'n> {
    index: HashMap<&'n str, usize>,
}

impl<'n> Columns<'n> {
    pub fn new(names: &[&'n str]) -> Self {
        let index = names.iter().enumerate().map(|(at, &n)| (n, at)).collect();
        Self { index }
    }
}

/// One row's cells, reused from row to row.
#[derive(Debug)]
pub struct Row<'c> {
    columns: &'c Columns<'c>,
    cells: Vec<String>,
    /// Whether a leaf wrote the cell (an empty one included), so a member's JSON text does not.
    filled: Vec<bool>,
    /// The JSON text of root members that are objects and name a column, kept until the row
    /// ends: a leaf of that name met later still wins.
    fallbacks: Vec<(usize, String)>,
    /// The name of the member being written, as `flatten` builds it.
    name: String,
    /// How many objects enclose the value being written (0: the record itself).
    depth: usize,
    /// Whether the root member being written is an object.
    root_object: bool,
    /// The leaves met so far in this row, by their order: each one's name and column, as the
    /// previous rows met them. Rows of one export are records of one type, so the n-th leaf
    /// has the same name in almost every row, and a comparison replaces a hash lookup.
    seen: Vec<(String, Option<usize>)>,
    /// How many leaves this row has met.
    leaves: usize,
}

impl<'c> Row<'c> {
    pub fn new(columns: &'c Columns<'c>) -> Self {
        let count = columns.index.len();
        Self {
            columns,
            cells: vec![String::new(); count],
            filled: vec![false; count],
            fallbacks: Vec::new(),
            name: String::new(),
            depth: 0,
            root_object: false,
            seen: Vec::new(),
            leaves: 0,
        }
    }

    /// The cells of `record`, in column order.
    pub fn fill<R: Serialize + ?Sized>(&mut self, record: &R) -> Result<&[String], CellError> {
        for cell in &mut self.cells {
            cell.clear();
        }
        self.filled.fill(false);
        self.fallbacks.clear();
        self.name.clear();
        self.depth = 0;
        self.leaves = 0;
        record.serialize(&mut *self)?;
        for (at, text) in self.fallbacks.drain(..) {
            if !self.filled[at] {
                self.cells[at] = text;
            }
        }
        Ok(&self.cells)
    }

    /// The cell the current name goes to, if a column wants it (emptied, and marked written).
    fn cell(&mut self) -> Option<&mut String> {
        let ordinal = self.leaves;
        self.leaves += 1;
        let at = match self.seen.get_mut(ordinal) {
            Some((name, at)) if *name == self.name => *at,
            seen => {
                let at = self.columns.index.get(self.name.as_str()).copied();
                let entry = (self.name.clone(), at);
                match seen {
                    Some(slot) => *slot = entry,
                    None => self.seen.push(entry),
                }
                at
            }
        }?;
        self.filled[at] = true;
        let cell = &mut self.cells[at];
        cell.clear();
        Some(cell)
    }

    fn integer(&mut self, value: impl itoa::Integer) -> Result<(), CellError> {
        self.text(itoa::Buffer::new().format(value))
    }

    fn leaf(&mut self, text: impl Display) -> Result<(), CellError> {
        if let Some(cell) = self.cell() {
            use std::fmt::Write;
            write!(cell, "{text}").map_err(<CellError as ser::Error>::custom)?;
        }
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), CellError> {
        if let Some(cell) = self.cell() {
            cell.push_str(text);
        }
        Ok(())
    }

    /// A leaf written as JSON writes it, through its JSON value (floats, whose text is
    /// serde_json's own, and bytes, a list of numbers; no record here has either).
    fn scalar<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CellError> {
        let value = serde_json::to_value(value)?;
        if let Some(cell) = self.cell() {
            cell.push_str(&super::scalar(&value));
        }
        Ok(())
    }

    /// Steps into member `key` of the object being written: its name, one level deeper.
    /// Answers the outer name's length, for [`Self::leave`].
    fn enter(&mut self, key: &str) -> usize {
        let outer = self.name.len();
        if outer > 0 {
            self.name.push('_');
        }
        self.name.push_str(key);
        if self.depth == 0 {
            self.root_object = false;
        }
        self.depth += 1;
        outer
    }

    /// Steps back out of the member [`Self::enter`] stepped into.
    fn leave(&mut self, outer: usize) {
        self.depth -= 1;
        self.name.truncate(outer);
    }

    /// Writes `value` as member `key` of the object being written.
    fn member<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), CellError> {
        let outer = self.enter(key);
        let written = value.serialize(&mut *self);
        self.leave(outer);
        written?;
        if self.depth == 0 && self.root_object {
            if let Some(&at) = self.columns.index.get(key) {
                if !self.filled[at] {
                    if let Json::Object(map) = serde_json::to_value(value)? {
                        self.fallbacks.push((at, Json::Object(map).to_string()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes a list (or a tuple) as one leaf: its items' cells joined with `;`.
    fn list(&mut self) -> List<'_, 'c> {
        List {
            row: self,
            items: Vec::new(),
        }
    }
}

/// Why a record gave no cells (a type JSON can't hold, such as a map with non-text keys).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CellError(String);

impl ser::Error for CellError {
    fn custom<T: Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl From<serde_json::Error> for CellError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

impl<'r, 'c> ser::Serializer for &'r mut Row<'c> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = List<'r, 'c>;
    type SerializeTuple = List<'r, 'c>;
    type SerializeTupleStruct = List<'r, 'c>;
    type SerializeTupleVariant = Variant<List<'r, 'c>>;
    type SerializeMap = Object<'r, 'c>;
    type SerializeStruct = Object<'r, 'c>;
    type SerializeStructVariant = Variant<Object<'r, 'c>>;

    fn serialize_bool(self, v: bool) -> Result<(), CellError> {
        self.text(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), CellError> {
        self.integer(v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), CellError> {
        self.scalar(&v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), CellError> {
        self.scalar(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), CellError> {
        self.leaf(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        self.text(v)
    }
    /// Straight into the cell (timestamps are written so), not through a string of its own.
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), CellError> {
        self.leaf(value)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CellError> {
        self.scalar(v)
    }
    fn serialize_none(self) -> Result<(), CellError> {
        self.text("")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CellError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        self.text("")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CellError> {
        self.text("")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CellError> {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        value.serialize(self)
    }
    /// As JSON writes it: `{variant: value}`.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        self.member(variant, value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<List<'r, 'c>, CellError> {
        Ok(self.list())
    }
    fn serialize_tuple(self, _: usize) -> Result<List<'r, 'c>, CellError> {
        Ok(self.list())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<List<'r, 'c>, CellError> {
        Ok(self.list())
    }
    /// As JSON writes it: `{variant: [items]}`.
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<List<'r, 'c>>, CellError> {
        Ok(Variant::enter(self, variant, Row::list))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'r, 'c>, CellError> {
        if self.depth == 1 {
            self.root_object = true;
        }
        Ok(Object {
            row: self,
            key: String::new(),
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'r, 'c>, CellError> {
        self.serialize_map(None)
    }
    /// As JSON writes it: `{variant: {fields}}`.
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<Object<'r, 'c>>, CellError> {
        Ok(Variant::enter(self, variant, |row| Object {
            row,
            key: String::new(),
        }))
    }
}

/// The members of an object being written.
pub struct Object<'r, 'c> {
    row: &'r mut Row<'c>,
    key: String,
}

impl ser::SerializeStruct for Object<'_, '_> {
    type Ok = ();
    type Error = CellError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        self.row.member(key, value)
    }
    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_, '_> {
    type Ok = ();
    type Error = CellError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CellError> {
        self.key.clear();
        key.serialize(Key(&mut self.key))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CellError> {
        let key = std::mem::take(&mut self.key);
        let written = self.row.member(&key, value);
        self.key = key;
        written
    }
    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

/// The items of a list being written: each one's cell, joined with `;` at the end.
pub struct List<'r, 'c> {
    row: &'r mut Row<'c>,
    items: Vec<String>,
}

impl<'r, 'c> List<'r, 'c> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CellError> {
        // An item is rarely more than a word; an object in a list sorts its members by name,
        // which its JSON value does.
        self.items
            .push(super::scalar(&serde_json::to_value(value)?));
        Ok(())
    }
    /// Writes the joined items, handing back the row.
    fn finish(self) -> &'r mut Row<'c> {
        let List { row, items } = self;
        if let Some(cell) = row.cell() {
            cell.push_str(&items.join(";"));
        }
        row
    }
}

/// A list, a tuple and a tuple struct are all one leaf of joined items.
macro_rules! list_of_items {
    ($($trait:ident :: $method:ident),+) => {$(
        impl ser::$trait for List<'_, '_> {
            type Ok = ();
            type Error = CellError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CellError> {
                self.item(value)
            }
            fn end(self) -> Result<(), CellError> {
                self.finish();
                Ok(())
            }
        }
    )+};
}

list_of_items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// A variant with content, written as JSON writes it: an object of one member named after the
/// variant. Entering it names that member; ending it steps back out.
pub struct Variant<S> {
    inner: S,
    outer: usize,
}

impl<'r, 'c, S> Variant<S> {
    fn enter(row: &'r mut Row<'c>, variant: &str, open: impl FnOnce(&'r mut Row<'c>) -> S) -> Self {
        let outer = row.enter(variant);
        Self {
            inner: open(row),
            outer,
        }
    }
}

impl ser::SerializeTupleVariant for Variant<List<'_, '_>> {
    type Ok = ();
    type Error = CellError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CellError> {
        self.inner.item(value)
    }
    fn end(self) -> Result<(), CellError> {
        self.inner.finish().leave(self.outer);
        Ok(())
    }
}

impl ser::SerializeStructVariant for Variant<Object<'_, '_>> {
    type Ok = ();
    type Error = CellError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        self.inner.row.member(key, value)
    }
    fn end(self) -> Result<(), CellError> {
        self.inner.row.leave(self.outer);
        Ok(())
    }
}

/// A map key as JSON writes it: text, or a number or boolean as text.
struct Key<'k>(&'k mut String);

impl Key<'_> {
    fn text(self, text: impl Display) -> Result<(), CellError> {
        use std::fmt::Write;
        write!(self.0, "{text}").map_err(<CellError as ser::Error>::custom)
    }
}

fn key_must_be_text() -> CellError {
    CellError("a map's key must be text to be a CSV column".into())
}

impl ser::Serializer for Key<'_> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Impossible<(), CellError>;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn serialize_bool(self, v: bool) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_f32(self, _: f32) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_f64(self, _: f64) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_char(self, v: char) -> Result<(), CellError> {
        self.text(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        self.0.push_str(v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_none(self) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_unit(self) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), CellError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CellError> {
        Err(key_must_be_text())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        Err(key_must_be_text())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CellError> {
        Err(key_must_be_text())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        Err(key_must_be_text())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        Err(key_must_be_text())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(key_must_be_text())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        Err(key_must_be_text())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        Err(key_must_be_text())
    }
}

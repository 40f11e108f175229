//! A fast path for the common shape of configuration files.
//!
//! serde_yaml (libyaml) costs tens of microseconds per small file, which dominates loading
//! thousands of workspace files. [`parse`] handles a deliberately small YAML subset — block
//! mappings and sequences, single-line flow collections, single-line plain and quoted scalars,
//! comments — into a borrowed [`Node`] tree that deserializes the way serde_yaml deserializes
//! the same text. Anything outside the subset (anchors, tags, block scalars, multi-line
//! scalars, escapes, tabs, non-ASCII, duplicate keys, unusual number spellings, …) returns
//! `None`, and so does any value the typed deserialization rejects: callers then parse with
//! serde_yaml, which also produces the positioned error messages. The fast path never reports
//! errors of its own, so it can only change speed, not results.

use serde::de::{self, value::Error, Deserialize, IntoDeserializer, Visitor};
use std::borrow::Cow;

/// Deserialize `text` through the fast path; `None` means "use serde_yaml".
pub(crate) fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Option<T> {
    T::deserialize(parse(text)?).ok()
}

/// A parsed YAML node; scalars are already resolved the way serde_yaml resolves plain scalars.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// Nothing at all after `key:` or `-` (serde_yaml reads it as null, or as an empty
    /// mapping or sequence where one is expected).
    Empty,
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
}

/// Maps larger than this go to serde_yaml (duplicate detection here is quadratic).
const MAX_MAP_ENTRIES: usize = 256;

/// The document, or `None` if it is outside the supported subset.
pub(crate) fn parse(text: &str) -> Option<Node<'_>> {
    if !text.bytes().all(|b| b == b'\n' || (b' '..=b'~').contains(&b)) {
        return None;
    }
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        let content = raw.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if raw.starts_with("---") || raw.starts_with("...") || raw.starts_with('%') {
            return None;
        }
        lines.push(Line { indent: raw.len() - content.len(), text: content });
    }
    let first = lines.first()?.indent;
    let mut parser = Parser { lines, pos: 0 };
    if parser.lines[0].text.starts_with('-') {
        return None;
    }
    let value = parser.mapping(first)?;
    (parser.pos == parser.lines.len()).then_some(value)
}

/// Add `key: value` to `map` unless the key is already there (or the map is too large).
fn insert<'a>(map: &mut Vec<(Node<'a>, Node<'a>)>, key: Node<'a>, value: Node<'a>) -> Option<()> {
    if map.len() >= MAX_MAP_ENTRIES || map.iter().any(|(k, _)| *k == key) {
        return None;
    }
    map.push((key, value));
    Some(())
}

/// Characters that cannot start a plain scalar here (or that we do not support there).
const INDICATORS: &[u8] = b"-?:,[]{}#&*!|>'\"%@`";

/// A non-blank, non-comment line: its indentation and the text after it.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn current(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    /// A block mapping whose keys are at column `indent`.
    fn mapping(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut map = Vec::new();
        while let Some(line) = self.current().filter(|l| l.indent == indent) {
            let (key, rest) = split_key(line.text)?;
            let value = self.entry_value(indent, rest, true)?;
            insert(&mut map, scalar(key)?, value)?;
        }
        self.check_dedent(indent)?;
        Some(Node::Map(map))
    }

    /// A block sequence whose `-` are at column `indent`.
    fn sequence(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut items = Vec::new();
        while let Some(line) = self.current().filter(|l| l.indent == indent && is_item(l.text)) {
            let rest = &line.text[1..];
            let content = rest.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                items.push(self.entry_value(indent, "", false)?);
                continue;
            }
            if content.starts_with('-') && is_item(content) {
                return None;
            }
            if split_key(content).is_some() {
                // A compact mapping: "- key: value" with further keys aligned under `key`.
                let column = indent + 1 + (rest.len() - content.len());
                self.lines[self.pos] = Line { indent: column, text: content };
                items.push(self.mapping(column)?);
            } else {
                items.push(self.entry_value(indent, content, false)?);
            }
        }
        self.check_dedent(indent)?;
        Some(Node::Seq(items))
    }

    /// The value after `key:` or `-` on the current line (`rest`, may be empty); consumes it
    /// and any nested block. In a mapping, a sequence may sit at the key's own indentation.
    fn entry_value(&mut self, indent: usize, rest: &'a str, in_mapping: bool) -> Option<Node<'a>> {
        self.pos += 1;
        let next = self.current();
        if rest.is_empty() || rest.starts_with('#') {
            return match next {
                Some(n) if n.indent > indent => self.block(n),
                Some(n) if in_mapping && n.indent == indent && is_item(n.text) => self.sequence(indent),
                _ => Some(Node::Empty),
            };
        }
        if next.is_some_and(|n| n.indent > indent) {
            return None; // a multi-line scalar or a stray nested block
        }
        inline_value(rest)
    }

    /// A nested block starting at line `first`.
    fn block(&mut self, first: Line<'a>) -> Option<Node<'a>> {
        if is_item(first.text) {
            self.sequence(first.indent)
        } else {
            self.mapping(first.indent)
        }
    }

    /// After a block ends, the next line must not be more indented than it (a stray line).
    fn check_dedent(&self, indent: usize) -> Option<()> {
        match self.current() {
            Some(line) if line.indent > indent => None,
            _ => Some(()),
        }
    }
}

/// `-` alone or followed by a space: a block sequence item.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Split `key: rest` (plain key only) at the first `:` followed by a space or the line end.
fn split_key(text: &str) -> Option<(&str, &str)> {
    if text.as_bytes().first().is_none_or(|c| INDICATORS.contains(c)) {
        return None;
    }
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && bytes[i - 1] == b' ' {
            return None;
        }
        if b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            let key = &text[..i];
            if key.ends_with(' ') {
                return None;
            }
            return Some((key, text[i + 1..].trim_start_matches(' ')));
        }
    }
    None
}

/// A value written on one line in block context: flow collection, quoted or plain scalar, then
/// optionally a comment.
fn inline_value(text: &str) -> Option<Node<'_>> {
    match text.as_bytes()[0] {
        b'[' | b'{' | b'\'' | b'"' => {
            let mut flow = Flow { text, pos: 0 };
            let value = flow.value()?;
            flow.skip_spaces();
            let tail = &text[flow.pos..];
            (tail.is_empty() || (tail.starts_with('#') && text.as_bytes()[flow.pos - 1] == b' ')).then_some(value)
        }
        first => {
            if INDICATORS.contains(&first) && !(first == b'-' && text.len() > 1 && text.as_bytes()[1] != b' ') {
                return None;
            }
            let plain = match text.find(" #") {
                Some(at) => &text[..at],
                None => text,
            };
            let plain = plain.trim_end_matches(' ');
            if plain.contains(": ") || plain.ends_with(':') {
                return None;
            }
            scalar(plain)
        }
    }
}

/// A cursor over a one-line flow collection or quoted scalar.
struct Flow<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Flow<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Node<'a>> {
        self.skip_spaces();
        match self.peek()? {
            b'[' => self.sequence(),
            b'{' => self.mapping(),
            b'\'' => self.single_quoted(),
            b'"' => self.double_quoted(),
            _ => scalar(self.plain()?),
        }
    }

    /// `[a, b]`: no trailing comma, no implicit single-pair mappings.
    fn sequence(&mut self) -> Option<Node<'a>> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_spaces();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Node::Seq(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_spaces();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(Node::Seq(items));
                }
                _ => return None,
            }
        }
    }

    /// `{ k: v, k2: v2 }`: plain keys followed by `: `, no trailing comma.
    fn mapping(&mut self) -> Option<Node<'a>> {
        self.pos += 1;
        let mut map = Vec::new();
        self.skip_spaces();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(Node::Map(map));
        }
        loop {
            self.skip_spaces();
            if matches!(self.peek()?, b'\'' | b'"') {
                return None;
            }
            let key = scalar(self.plain()?)?;
            if self.peek()? != b':' || self.text.as_bytes().get(self.pos + 1) != Some(&b' ') {
                return None;
            }
            self.pos += 1;
            let value = self.value()?;
            insert(&mut map, key, value)?;
            self.skip_spaces();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(Node::Map(map));
                }
                _ => return None,
            }
        }
    }

    /// A plain scalar in flow context: up to `,[]{}`, `: `, `:` before a flow indicator or `?`, or the
    /// end (which leaves the collection unclosed: not supported).
    fn plain(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if self.peek().is_none_or(|c| INDICATORS.contains(&c)) {
            // A leading '-' is fine when it cannot be an indicator ("-1"); keep it simple.
            if !(self.peek() == Some(b'-') && self.text.as_bytes().get(self.pos + 1).is_some_and(u8::is_ascii_digit)) {
                return None;
            }
        }
        while let Some(c) = self.peek() {
            let next = self.text.as_bytes().get(self.pos + 1).copied();
            let ends = match c {
                b',' | b'[' | b']' | b'{' | b'}' => true,
                b':' => next.is_none_or(|n| b" ,[]{}?".contains(&n)),
                b'#' => self.text.as_bytes()[self.pos - 1] == b' ',
                _ => false,
            };
            if ends {
                break;
            }
            self.pos += 1;
        }
        if self.peek().is_none() || self.peek() == Some(b'#') {
            return None;
        }
        let text = self.text[start..self.pos].trim_end_matches(' ');
        (!text.is_empty()).then_some(text)
    }

    /// `'…'` with `''` for a quote; must close on this line.
    fn single_quoted(&mut self) -> Option<Node<'a>> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let c = self.peek()?;
            self.pos += 1;
            if c != b'\'' {
                continue;
            }
            if self.peek() == Some(b'\'') {
                self.pos += 1;
                escaped = true;
                continue;
            }
            let raw = &self.text[start..self.pos - 1];
            return Some(Node::Str(if escaped { Cow::Owned(raw.replace("''", "'")) } else { Cow::Borrowed(raw) }));
        }
    }

    /// `"…"` without escapes; must close on this line.
    fn double_quoted(&mut self) -> Option<Node<'a>> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek()? {
                b'\\' => return None,
                b'"' => {
                    self.pos += 1;
                    return Some(Node::Str(Cow::Borrowed(&self.text[start..self.pos - 1])));
                }
                _ => self.pos += 1,
            }
        }
    }
}

/// A plain scalar resolved as serde_yaml resolves it: null, bool, integer, float, else string.
/// Spellings whose resolution is subtle (`+1`, `0x1f`, `.inf`, huge integers) return `None`.
fn scalar(text: &str) -> Option<Node<'_>> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Node::Null),
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first == b'-' || first == b'.' || first == b'+' || first.is_ascii_digit()) {
        // Cannot be a number (Rust's float parser also takes "inf"/"nan", which serde_yaml
        // keeps as strings since they are not finite).
        return (!is_special_float(text)).then_some(Node::Str(Cow::Borrowed(text)));
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let second = unsigned.as_bytes().get(1).copied();
    let zero_prefixed = unsigned.starts_with('0') && second.is_some_and(|c| c.is_ascii_digit() || b"xob".contains(&c));
    let dot_word = unsigned.eq_ignore_ascii_case(".inf") || unsigned.eq_ignore_ascii_case(".nan");
    let negative_zero = text.starts_with("-0");
    if zero_prefixed || dot_word || negative_zero || unsigned.starts_with(['+', '-']) {
        return None; // leading zeros, "0x…", "+1", ".inf", "-0…", "--1": leave to serde_yaml
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return if text.starts_with('-') {
            text.parse::<i64>().ok().map(Node::I64)
        } else {
            text.parse::<u64>().ok().map(Node::U64)
        };
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(Node::F64(f)),
        Ok(_) => None,
        Err(_) => Some(Node::Str(Cow::Borrowed(text))),
    }
}

/// Words Rust's `f64` parser accepts; serde_yaml's scalar rules are subtle there, so bail.
fn is_special_float(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    matches!(lower.as_str(), "inf" | "infinity" | "nan")
}

// Deserializing a `Node`: what serde_yaml's own deserializer does for the same events. Strings
// are only strings (serde_yaml would also accept a plain `123` where a string is expected; here
// that fails, and the caller falls back to serde_yaml, which then gives the same result).

fn invalid<T>(what: &str) -> Result<T, Error> {
    Err(de::Error::custom(format!("not {what}")))
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Empty | Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::U64(n) => visitor.visit_u64(n),
            Node::I64(n) => visitor.visit_i64(n),
            Node::F64(n) => visitor.visit_f64(n),
            Node::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Node::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Node::Seq(items) => visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter())),
            Node::Map(entries) => visitor.visit_map(de::value::MapDeserializer::new(entries.into_iter())),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Empty | Node::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    /// Like serde_yaml: a mapping, or nothing at all (an empty mapping).
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Map(_) => self.deserialize_any(visitor),
            Node::Empty => visitor.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(Node, Node)>())),
            _ => invalid("a mapping"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    /// Like serde_yaml: a sequence, or nothing at all (an empty sequence).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Seq(_) => self.deserialize_any(visitor),
            Node::Empty => visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<Node>())),
            _ => invalid("a sequence"),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// Strings are only strings here (serde_yaml would also read `123` as "123"; falling back
    /// to it gives that result).
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Str(_) => self.deserialize_any(visitor),
            _ => invalid("a string"),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Bool(b) => visitor.visit_bool(b),
            _ => invalid("a boolean"),
        }
    }

    /// Like serde_yaml: unsigned integers only from unsigned integer scalars.
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::U64(n) => visitor.visit_u64(n),
            _ => invalid("an unsigned integer"),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        invalid("bytes")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        invalid("bytes")
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        invalid("supported here (enums are left to serde_yaml)")
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 f32 f64 unit unit_struct ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for Node<'de> {
    type Deserializer = Node<'de>;

    fn into_deserializer(self) -> Node<'de> {
        self
    }
}

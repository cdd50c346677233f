//! FITS header cards as read from a file: ordered, typed values, HISTORY/COMMENT kept.
//!
//! Invariant: `cards` keeps the file's order; keys are upper-case and trimmed. Lookups return the
//! first card with a key, as cfitsio does.

use std::fmt;

/// A header value, typed as the FITS standard writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A keyword with no value (HISTORY, COMMENT, blank keyword, or `KEY =` with nothing after).
    None,
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            // Some writers quote numbers; accept them when they parse.
            Value::Str(s) => parse_number(s.trim()).and_then(|v| v.as_f64_plain()),
            _ => None,
        }
    }
    fn as_f64_plain(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// One 80-character header card.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub key: String,
    pub value: Value,
    pub comment: String,
}

impl Card {
    pub fn new(key: &str, value: Value, comment: &str) -> Card {
        Card {
            key: key.trim().to_ascii_uppercase(),
            value,
            comment: comment.to_string(),
        }
    }

    /// Parses one card image (up to 80 characters) as the FITS standard lays it out.
    pub fn parse(line: &str) -> Card {
        let line = line.trim_end_matches(['\n', '\r']);
        let key: String = line
            .chars()
            .take(8)
            .collect::<String>()
            .trim()
            .to_ascii_uppercase();
        let rest: String = line.chars().skip(8).collect();
        if key == "HISTORY"
            || key == "COMMENT"
            || key.is_empty()
            || !rest.starts_with("= ") && !rest.starts_with('=')
        {
            // Commentary card: everything after the key is text.
            return Card {
                key,
                value: Value::None,
                comment: rest.trim_end().to_string(),
            };
        }
        let body = &rest[1..];
        let (value, comment) = parse_value_and_comment(body);
        Card {
            key,
            value,
            comment,
        }
    }
}

fn parse_value_and_comment(body: &str) -> (Value, String) {
    let trimmed = body.trim_start();
    if let Some(after_quote) = trimmed.strip_prefix('\'') {
        // String: '' is an escaped quote; the string ends at a lone quote.
        let mut out = String::new();
        let mut chars = after_quote.char_indices().peekable();
        let mut end = after_quote.len();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if let Some(&(_, '\'')) = chars.peek() {
                    out.push('\'');
                    chars.next();
                    continue;
                }
                end = i + 1;
                break;
            }
            out.push(c);
        }
        let remainder = &after_quote[end.min(after_quote.len())..];
        let comment = remainder
            .split_once('/')
            .map(|(_, c)| c.trim().to_string())
            .unwrap_or_default();
        // Trailing spaces in a FITS string are not significant; leading ones are.
        return (Value::Str(out.trim_end().to_string()), comment);
    }
    let (raw, comment) = match trimmed.split_once('/') {
        Some((v, c)) => (v.trim(), c.trim().to_string()),
        None => (trimmed.trim(), String::new()),
    };
    let value = if raw.is_empty() {
        Value::None
    } else if raw == "T" {
        Value::Bool(true)
    } else if raw == "F" {
        Value::Bool(false)
    } else {
        parse_number(raw).unwrap_or_else(|| Value::Str(raw.to_string()))
    };
    (value, comment)
}

fn parse_number(raw: &str) -> Option<Value> {
    if let Ok(i) = raw.parse::<i64>() {
        return Some(Value::Int(i));
    }
    // Fortran-style exponents (1.0D+02) are legal in FITS.
    let normal = raw.replace(['D', 'd'], "E");
    normal.parse::<f64>().ok().map(Value::Float)
}

/// An ordered list of header cards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub cards: Vec<Card>,
}

impl Header {
    pub fn new() -> Header {
        Header { cards: Vec::new() }
    }

    /// Builds a header from card images (80-character records).
    pub fn from_records<I, S>(records: I) -> Header
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cards = records
            .into_iter()
            .map(|r| Card::parse(r.as_ref()))
            .filter(|c| c.key != "END")
            .collect();
        Header { cards }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        let key = key.to_ascii_uppercase();
        self.cards
            .iter()
            .find(|c| c.key == key && c.value != Value::None)
            .map(|c| &c.value)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The text of every HISTORY card, in order.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.cards
            .iter()
            .filter(|c| c.key == "HISTORY")
            .map(|c| c.comment.as_str())
    }

    /// Sets (replacing the first card with this key) or appends a card.
    pub fn set(&mut self, key: &str, value: Value, comment: &str) {
        let card = Card::new(key, value, comment);
        if let Some(existing) = self.cards.iter_mut().find(|c| c.key == card.key) {
            *existing = card;
        } else {
            self.cards.push(card);
        }
    }

    /// Appends HISTORY cards holding `text`, broken between words into cards of at most 72
    /// characters (a card's text columns), so no word is split across two cards, as cfitsio
    /// would split it; a word longer than a card is cut.
    pub fn push_history(&mut self, text: &str) {
        for line in wrap_words(text, HISTORY_WIDTH) {
            self.cards.push(Card {
                key: "HISTORY".into(),
                value: Value::None,
                comment: line,
            });
        }
    }
}

/// The text columns of a HISTORY card (9-80).
const HISTORY_WIDTH: usize = 72;

/// `text` in lines of at most `width` characters, broken at spaces (words longer than a line
/// cut); an empty text is one empty line.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![];
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        if word.is_empty() {
            continue;
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:E}"),
            Value::Bool(b) => write!(f, "{}", if *b { "T" } else { "F" }),
            Value::None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_history_is_broken_between_words() {
        let mut h = Header::default();
        let text = "input 1/1: /data/night/a-very-long-file-name.fits rms=4.4e-4 pbcor=T \
                    beam=unity (a coadd of many pointings (ORIGIN = 'postage 1.2.1 (NVSS postage stamp)'))";
        h.push_history(text);
        let lines: Vec<&str> = h.history().collect();
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 72), "{lines:?}");
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let long = "x".repeat(100);
        h = Header::default();
        h.push_history(&long);
        assert_eq!(h.history().map(str::len).collect::<Vec<_>>(), [72, 28]);
    }

    #[test]
    fn parses_typical_cards() {
        let c = Card::parse("CRVAL1  =   1.9475000000000E+02 / RA at reference pixel");
        assert_eq!(c.key, "CRVAL1");
        assert_eq!(c.value, Value::Float(194.75));
        assert_eq!(c.comment, "RA at reference pixel");
        let c = Card::parse("CTYPE1  = 'RA---SIN'           /");
        assert_eq!(c.value, Value::Str("RA---SIN".into()));
        let c = Card::parse("OBJECT  = 'O''Brien  '");
        assert_eq!(c.value, Value::Str("O'Brien".into()));
        let c = Card::parse("NAXIS   =                    4");
        assert_eq!(c.value, Value::Int(4));
        let c = Card::parse("SIMPLE  =                    T");
        assert_eq!(c.value, Value::Bool(true));
        let c = Card::parse("BMAJ    =   1.0D-02");
        assert_eq!(c.value, Value::Float(0.01));
        let c = Card::parse("HISTORY AIPS   CLEAN BMAJ=  5.0000E-02 BMIN=  5.0000E-02 BPA=   0.00");
        assert_eq!(c.key, "HISTORY");
        assert!(c.comment.contains("CLEAN BMAJ="));
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_first_wins() {
        let h = Header::from_records(["EQUINOX =               2000.0", "equinox = 1950.0", "END"]);
        assert_eq!(h.f64("equinox"), Some(2000.0));
    }
}

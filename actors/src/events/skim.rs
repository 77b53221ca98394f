//! A fast path for reading JSON lines in their compact, plain form: the numbers and strings a
//! caller wants picked out of a flat object, the rest skipped, at about twice serde_json's
//! speed on Nexmark bids.
//!
//! It accepts only what it can read without doubt, and says so with `None`: every byte
//! printable ASCII other than a backslash (so no escape, no control character, no multi-byte
//! character, all valid UTF-8), no white space between tokens, string or unsigned integer
//! values. A caller hands every other line to serde_json, which decodes it or names what is
//! wrong with it; on a line both accept, both give the same record. A line the fast path reads
//! differently from serde_json is a bug: the tests in `nexmark.rs` compare the two on
//! generated and on altered lines.

/// True when every byte of `line` is printable ASCII other than a backslash: a line in which
/// every string stands as it is written. (A branch-free fold, which the compiler vectorises.)
pub fn plain(line: &[u8]) -> bool {
    (line.iter()).fold(true, |ok, &b| ok & (0x20..0x7f).contains(&b) & (b != b'\\'))
}

/// A reader of a [`plain`] line, token by token; each method takes one token or returns `None`.
#[derive(Debug)]
pub struct Cursor<'a> {
    line: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `line`, which must be [`plain`].
    pub fn new(line: &'a [u8]) -> Self {
        debug_assert!(plain(line));
        Cursor { line, at: 0 }
    }

    /// Takes the byte `c`.
    #[inline]
    pub fn eat(&mut self, c: u8) -> Option<()> {
        (self.line.get(self.at) == Some(&c)).then(|| self.at += 1)
    }

    /// Takes a string and returns what is between its quotes.
    #[inline]
    pub fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.line[self.at..];
        let end = memchr::memchr(b'"', rest)?;
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// Takes an object's key and the colon after it.
    #[inline]
    pub fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.string()?;
        self.eat(b':')?;
        Some(key)
    }

    /// Takes an unsigned integer as JSON writes one (no leading zero, no fraction or exponent)
    /// of at most 19 digits, so it fits in a `u64`.
    #[inline]
    pub fn unsigned(&mut self) -> Option<u64> {
        let rest = &self.line[self.at..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let leading_zero = digits > 1 && rest[0] == b'0';
        let fraction = matches!(rest.get(digits), Some(b'.' | b'e' | b'E'));
        if digits == 0 || digits > 19 || leading_zero || fraction {
            return None;
        }
        self.at += digits;
        Some((rest[..digits].iter()).fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    }

    /// Takes a value that is a string or an unsigned integer.
    #[inline]
    pub fn skip_value(&mut self) -> Option<()> {
        match self.line.get(self.at)? {
            b'"' => self.string().map(drop),
            _ => self.unsigned().map(drop),
        }
    }

    /// Takes the fields of an object whose opening brace was taken, up to and with its closing
    /// brace, handing each key to `field`, which takes its value.
    pub fn fields(&mut self, mut field: impl FnMut(&[u8], &mut Self) -> Option<()>) -> Option<()> {
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.key()?;
            field(key, self)?;
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }

    /// True when the whole line was taken.
    pub fn at_end(&self) -> bool {
        self.at == self.line.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_hold_printable_ascii_without_backslashes() {
        assert!(plain(br#"{"a":"b c","n":12}"#));
        for line in [
            &br#"{"a":"\n"}"#[..],
            b"{\"a\":\"\t\"}",
            "{\"a\":\"é\"}".as_bytes(),
        ] {
            assert!(!plain(line), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn numbers_are_taken_only_as_json_writes_an_unsigned_integer() {
        let read = |text: &str| Cursor::new(text.as_bytes()).unsigned();
        assert_eq!(read("0"), Some(0));
        assert_eq!(
            read("1234567890123456789,"),
            Some(1_234_567_890_123_456_789)
        );
        for refused in ["", "-1", "01", "1.5", "1e3", "12345678901234567890", "x"] {
            assert_eq!(read(refused), None, "{refused}");
        }
    }

    #[test]
    fn fields_hand_over_each_key_and_check_the_object_closes() {
        let mut seen = Vec::new();
        let mut c = Cursor::new(br#"{"a":1,"s":"x,}","b":22}"#);
        c.eat(b'{').unwrap();
        c.fields(|key, c| {
            seen.push(String::from_utf8_lossy(key).into_owned());
            c.skip_value()
        })
        .unwrap();
        assert!(c.at_end());
        assert_eq!(seen, ["a", "s", "b"]);
        for broken in [
            &br#"{"a":1,}"#[..],
            br#"{"a":1"#,
            br#"{"a":[1]}"#,
            br#"{"a"1}"#,
        ] {
            let mut c = Cursor::new(broken);
            c.eat(b'{').unwrap();
            assert_eq!(c.fields(|_, c| c.skip_value()), None);
        }
    }
}

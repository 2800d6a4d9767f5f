//! Text from outside (an upstream's error message, a token realm, a name in
//! an archive) made safe to print: control characters (C0, DEL, C1) and
//! bidirectional overrides are escaped as `\u{1b}`, so no clear-screen,
//! window-title or cursor sequence reaches a terminal or a log, and the
//! length is capped. Used where such text is displayed: the errors' Display.

use std::fmt;

/// The most characters of one piece of outside text that are shown.
pub const MAX_CHARS: usize = 512;

/// `text`, escaped and capped at [`MAX_CHARS`] when displayed.
pub fn printable(text: &str) -> Printable<'_> {
    Printable {
        text,
        max: MAX_CHARS,
    }
}

/// `text`, escaped and capped at `max` characters when displayed.
pub fn printable_max(text: &str, max: usize) -> Printable<'_> {
    Printable { text, max }
}

pub struct Printable<'a> {
    text: &'a str,
    max: usize,
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, (at, c)) in self.text.char_indices().enumerate() {
            if shown == self.max {
                let rest = self.text.len().saturating_sub(at);
                return write!(f, "… ({rest} more bytes)");
            }
            if is_unsafe(c) {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_length_is_capped() {
        let shown = printable("a\u{1b}[2J\u{1b}]0;t\u{7}\u{9b}b\u{202e}c\nd").to_string();
        assert_eq!(
            shown,
            "a\\u{1b}[2J\\u{1b}]0;t\\u{7}\\u{9b}b\\u{202e}c\\u{a}d"
        );
        assert_eq!(printable("plain: ünïcode").to_string(), "plain: ünïcode");
        let long = "x".repeat(100_000);
        let shown = printable(&long).to_string();
        assert!(shown.len() < MAX_CHARS + 40, "{}", shown.len());
        assert!(shown.ends_with(&format!("… ({} more bytes)", 100_000 - MAX_CHARS)));
        assert_eq!(printable_max("abc", 3).to_string(), "abc");
    }
}

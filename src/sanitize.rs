//! The one terminal sanitiser. Text from outside (AWS error messages, secret ids and JSON keys
//! echoed back) passes through here before it reaches a terminal, so it can neither steer the
//! terminal (escape sequences), break a one-line message (newlines), nor hide or reorder what is
//! shown (invisible and bidirectional code points).

/// Characters that must not reach a terminal as they are: controls (C0, DEL, C1), and the
/// invisible or direction-changing ones a reader cannot see — soft hyphen, zero-width and
/// directional marks, line/paragraph separators, bidi embeddings and isolates, word joiner and
/// invisible operators, the byte-order mark, and the tag characters.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{e0000}'..='\u{e007f}')
}

/// For one-line messages: every unsafe character becomes a space, trailing space is dropped.
pub fn one_line(text: &str) -> String {
    let out: String = text
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect();
    out.trim_end().to_string()
}

/// For a column that must show exactly what is there (`--dry-run` keys): unsafe characters and
/// the backslash are written as Rust escapes, so distinct keys stay distinct on screen.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '\t' | '\n' | '\r') {
            out.extend(c.escape_debug());
        } else if is_unsafe(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_strips_controls() {
        let cases = [
            ("plain", "plain"),
            ("a\nb", "a b"),
            ("\x1b[31mred", " [31mred"),
            ("tail\n", "tail"),
            ("bidi\u{202e}x", "bidi x"),
            ("é😀", "é😀"),
        ];
        for (input, want) in cases {
            assert_eq!(one_line(input), want, "{input:?}");
        }
    }

    /// Each attack hides or reorders text on screen; none of its characters may get through.
    #[test]
    fn attacks_are_neutralised() {
        let attacks = [
            ("trojan source", "admin\u{202e}nimda\u{202c}"),
            ("isolate", "a\u{2066}b\u{2069}"),
            ("zero width", "pro\u{200b}d/db"),
            ("joiner", "pro\u{2060}d"),
            ("soft hyphen", "pro\u{ad}d"),
            ("bom", "\u{feff}prod"),
            ("tag smuggling", "ok\u{e0041}\u{e0042}\u{e007f}"),
            ("c1 csi", "x\u{9b}31m"),
            ("osc title", "\x1b]0;owned\x07"),
            ("carriage return", "real\rfake"),
            ("line separator", "a\u{2028}b"),
            ("lrm", "a\u{200e}b"),
        ];
        for (what, text) in attacks {
            let shown = one_line(text);
            assert!(!shown.chars().any(is_unsafe), "{what}: {shown:?}");
            let shown = escaped(text);
            assert!(!shown.chars().any(is_unsafe), "{what}: {shown:?}");
            assert_ne!(shown, text, "{what}: escaping changed nothing");
        }
    }
}

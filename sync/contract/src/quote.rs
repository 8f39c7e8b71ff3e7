//! Refusals quote input only briefly. serde's messages name what they met — an unknown
//! field or variant in backticks, a string value in double quotes — and both come from the
//! sender, so a hostile or broken message could otherwise put kilobytes of itself into a
//! refusal, an ack and a log line.

/// Characters of one quoted name or value kept in a refusal.
pub const QUOTED_CHARS: usize = 40;

/// `msg` (a serde or serde_path_to_error message) with every span quoted in backticks or
/// double quotes cut to [`QUOTED_CHARS`] characters, followed by its length when it was
/// cut: `` unknown field `{{{{…` (900 characters), expected … ``.
#[must_use]
pub fn bounded_serde_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(512));
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '`' && c != '"' {
            continue;
        }
        // A quoted span: backticks end at the next backtick; double quotes are Debug
        // escaped, so a backslash escapes the next character.
        let mut n = 0usize;
        let mut closed = false;
        let mut escaped = false;
        for q in chars.by_ref() {
            if !escaped && q == c {
                closed = true;
                break;
            }
            escaped = c == '"' && !escaped && q == '\\';
            if n < QUOTED_CHARS {
                out.push(q);
            }
            n += 1;
        }
        if n > QUOTED_CHARS {
            out.push('…');
        }
        if closed {
            out.push(c);
        }
        if n > QUOTED_CHARS {
            out.push_str(&format!(" ({n} characters)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_quotes_are_kept_and_long_ones_cut_with_their_length() {
        let m = "unknown field `x`, expected one of `id`, `kind`";
        assert_eq!(bounded_serde_message(m), m);
        let long = format!("unknown field `{}`, expected `id`", "{".repeat(900));
        let b = bounded_serde_message(&long);
        assert_eq!(
            b,
            format!(
                "unknown field `{}…` (900 characters), expected `id`",
                "{".repeat(40)
            )
        );
        let s = format!(
            "invalid type: string \"{}\\\"{}\", expected u32",
            "a".repeat(10),
            "b".repeat(100)
        );
        let b = bounded_serde_message(&s);
        assert!(b.ends_with("(112 characters), expected u32"), "{b}");
        // Unterminated quotes are cut as well.
        let b = bounded_serde_message(&format!("`{}", "z".repeat(100)));
        assert_eq!(b.chars().count(), 1 + 40 + 1 + " (100 characters)".len());
    }

    proptest! {
        #[test]
        fn a_long_quote_keeps_its_head_and_the_text_around_it(
            before in "[a-z ,:]{0,40}",
            quoted in "[^`]{41,2000}",
            after in "[a-z ,:]{0,40}",
        ) {
            let b = bounded_serde_message(&format!("{before}`{quoted}`{after}"));
            let head: String = quoted.chars().take(QUOTED_CHARS).collect();
            let n = quoted.chars().count();
            prop_assert_eq!(b, format!("{before}`{head}…` ({n} characters){after}"));
        }

        #[test]
        fn no_message_grows_by_more_than_a_note_per_quote(m in "[a-z `\"\\\\]{0,3000}") {
            let b = bounded_serde_message(&m);
            let quotes = m.matches(['`', '"']).count();
            prop_assert!(b.chars().count() <= m.chars().count() + quotes * 24);
        }
    }
}

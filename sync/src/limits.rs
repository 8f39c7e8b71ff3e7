//! Bounds on what the board echoes back: refusals and acks quote input only as a short,
//! escaped excerpt, and an ack lists a bounded number of problems, so no input can make a
//! record too large to send (see [`crate::MAX_RECORD_BYTES`]).

/// Characters of input quoted in a problem.
pub const EXCERPT_CHARS: usize = 40;

/// Characters of one problem in an ack.
pub const PROBLEM_CHARS: usize = 300;

/// Problems listed in one ack; more are summarised in one last line.
pub const MAX_PROBLEMS: usize = 20;

/// `s` quoted and escaped like `{:?}`, cut to [`EXCERPT_CHARS`] characters of input with
/// the total length named when it was cut: `"abc…" (480000 characters)`.
#[must_use]
pub fn excerpt(s: &str) -> String {
    let n = s.chars().count();
    if n <= EXCERPT_CHARS {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(EXCERPT_CHARS).collect();
    let quoted = format!("{head:?}");
    format!("{}…\" ({n} characters)", &quoted[..quoted.len() - 1])
}

/// Checks text field `field` of a downlink: required (present and not blank), at most
/// `max` characters, no control characters (a line break allowed when `lines`). Each
/// problem is pushed to `p`, naming the field.
pub fn check_text(
    p: &mut Vec<String>,
    field: &str,
    v: Option<&str>,
    max: usize,
    required: bool,
    lines: bool,
) {
    match v {
        None if required => p.push(format!("{field} is required")),
        Some(s) if required && s.trim().is_empty() => p.push(format!("{field} is empty")),
        Some(s) if s.chars().count() > max => p.push(format!(
            "{field} has {} characters (at most {max})",
            s.chars().count()
        )),
        Some(s) if s.chars().any(|c| c.is_control() && !(lines && c == '\n')) => {
            p.push(format!("{field} contains control characters"));
        }
        _ => {}
    }
}

/// At most [`MAX_PROBLEMS`] problems of at most [`PROBLEM_CHARS`] characters each.
#[must_use]
pub fn bound_problems(problems: &[String]) -> Vec<String> {
    let mut out: Vec<String> = problems
        .iter()
        .take(MAX_PROBLEMS)
        .map(|p| {
            if p.chars().count() <= PROBLEM_CHARS {
                p.clone()
            } else {
                let mut s: String = p.chars().take(PROBLEM_CHARS).collect();
                s.push('…');
                s
            }
        })
        .collect();
    if problems.len() > MAX_PROBLEMS {
        out.push(format!(
            "… and {} more problems",
            problems.len() - MAX_PROBLEMS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_escaped_and_say_how_long_the_input_was() {
        assert_eq!(excerpt("hf-1"), "\"hf-1\"");
        let tabs = "\t".repeat(480_000);
        let e = excerpt(&tabs);
        assert!(e.len() < 128, "{e}");
        assert!(e.starts_with("\"\\t\\t"), "{e}");
        assert!(e.ends_with("…\" (480000 characters)"), "{e}");
        // Multi-byte input is cut on a character boundary.
        let e = excerpt(&"班".repeat(100));
        assert!(e.contains("(100 characters)"), "{e}");
    }

    #[test]
    fn problem_lists_are_bounded_in_count_and_length() {
        let many: Vec<String> = (0..1000)
            .map(|i| format!("{i}{}", "x".repeat(5000)))
            .collect();
        let b = bound_problems(&many);
        assert_eq!(b.len(), MAX_PROBLEMS + 1);
        assert!(b.iter().all(|p| p.chars().count() <= PROBLEM_CHARS + 1));
        assert_eq!(b[MAX_PROBLEMS], "… and 980 more problems");
        assert_eq!(bound_problems(&["ok".into()]), vec!["ok".to_owned()]);
    }
}

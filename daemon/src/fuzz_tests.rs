//! Fuzzing the board's own input files (docs/development.md, "Fuzzing"): the config TOML
//! (`Config::parse`) and the provisioning file (`provision::checked`). Property: no panic;
//! every outcome is a config or errors that name what was wrong (a key, a line). proptest
//! over arbitrary text and over mutations of the committed seeds in
//! `hw-tests/fuzz/corpus/{config,provision}/`; `PROPTEST_CASES` sets the length.

use std::path::Path;

use proptest::prelude::*;

fn seeds(name: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hw-tests/fuzz/corpus")
        .join(name);
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

/// A seed with random line edits: lines dropped, duplicated, cut, or given a character.
fn mutated(name: &str) -> impl Strategy<Value = String> + use<> {
    let seeds = seeds(name);
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((0usize..4, any::<usize>(), any::<char>()), 0..8),
    )
        .prop_map(move |(i, edits)| {
            let mut lines: Vec<String> = seeds[i].lines().map(str::to_owned).collect();
            for (op, at, c) in edits {
                if lines.is_empty() {
                    break;
                }
                let at = at % lines.len();
                match op {
                    0 => {
                        lines.remove(at);
                    }
                    1 => {
                        let l = lines[at].clone();
                        lines.insert(at, l);
                    }
                    2 => {
                        let keep = lines[at].chars().count() / 2;
                        lines[at] = lines[at].chars().take(keep).collect();
                    }
                    _ => {
                        let mid = lines[at].chars().count() / 2;
                        let mut l: String = lines[at].chars().take(mid).collect();
                        l.push(c);
                        l.extend(lines[at].chars().skip(mid));
                        lines[at] = l;
                    }
                }
            }
            lines.join("\n")
        })
}

proptest! {
    #[test]
    fn any_config_text_is_a_config_or_errors_that_say_where(
        text in prop_oneof!["\\PC{0,400}", mutated("config")],
    ) {
        let dir = std::env::temp_dir();
        if let Err(errs) = crate::config::Config::parse(&text, &dir.join("ketang.toml")) {
            let shown = errs.to_string();
            prop_assert!(!shown.trim().is_empty(), "an error without words");
        }
    }

    #[test]
    fn any_provisioning_text_is_a_file_or_an_error_that_says_why(
        text in prop_oneof!["\\PC{0,400}", mutated("provision")],
    ) {
        if let Err(e) = crate::system::provision::checked(&text, "provision.toml") {
            prop_assert!(format!("{e:#}").contains("provision.toml"), "{e:#}");
        }
    }
}

#[test]
fn every_seed_is_valid() {
    let dir = std::env::temp_dir();
    for (i, text) in seeds("config").iter().enumerate() {
        // The example names TLS files that do not exist here; only its syntax is the seed's.
        if let Err(e) = crate::config::Config::parse(text, &dir.join("ketang.toml")) {
            assert!(
                i == 0 || !e.to_string().contains("unknown"),
                "seed {i}: {e}"
            );
        }
    }
    for text in seeds("provision") {
        crate::system::provision::checked(&text, "provision.toml").unwrap();
    }
}

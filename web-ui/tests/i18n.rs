#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The board's two languages (web-ui/src/assets/board.js `I18N`): no key defined twice in a
//! language (in a JavaScript object literal the later one silently wins: the flat panel's
//! state words once replaced its button labels), the same keys in Chinese and English, and
//! every `data-i18n` key of the page defined.

use std::collections::{BTreeMap, BTreeSet};

const JS: &str = include_str!("../src/assets/board.js");
const HTML: &str = include_str!("../src/assets/board.html");

/// The keys of one language block (`  zh: {` … up to the next language or the end).
fn keys(lang: &str) -> BTreeMap<String, usize> {
    let start = JS
        .find(&format!("\n  {lang}: {{"))
        .expect("the language block");
    let rest = &JS[start + 6..];
    let end = rest
        .find("\n  },")
        .or_else(|| rest.find("\n  }\n"))
        .expect("its end");
    let mut out = BTreeMap::new();
    for line in rest[..end].lines() {
        // Keys are at the start of a line or after ", ": `name: "…"` / `name: n => …`.
        let mut s = line.trim_start();
        loop {
            let key: String = s
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !key.is_empty() && s[key.len()..].starts_with(": ") {
                *out.entry(key.clone()).or_insert(0) += 1;
            }
            // Next entry: after the next `", "` or `", ` that ends a string or function.
            match s.find("\", ").or_else(|| s.find("`, ")) {
                Some(i) => s = s[i + 3..].trim_start(),
                None => break,
            }
        }
    }
    out
}

#[test]
fn no_key_is_defined_twice_and_both_languages_have_the_same_keys() {
    let zh = keys("zh");
    let en = keys("en");
    assert!(
        zh.len() > 50,
        "found only {} keys: is the parser right?",
        zh.len()
    );
    for (lang, k) in [("zh", &zh), ("en", &en)] {
        let twice: Vec<_> = k.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k).collect();
        assert!(
            twice.is_empty(),
            "{lang}: defined twice (the later wins): {twice:?}"
        );
    }
    let zk: BTreeSet<_> = zh.keys().collect();
    let ek: BTreeSet<_> = en.keys().collect();
    assert_eq!(
        zk.symmetric_difference(&ek).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "keys in only one language"
    );
}

#[test]
fn every_label_of_the_page_has_a_text() {
    let zh = keys("zh");
    let missing: Vec<&str> = HTML
        .split("data-i18n=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|k| !zh.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "data-i18n keys without a text: {missing:?}"
    );
}

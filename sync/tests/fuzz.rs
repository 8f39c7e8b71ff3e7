#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fuzzing what the cloud sends (docs/development.md, "Fuzzing"): downlink envelopes and
//! bodies of every kind, and remote commands with their arguments. Property: no panic,
//! every outcome is a parsed downlink or a refusal naming its problems (none echoing input
//! beyond an excerpt; the ack bounds them), and a parse allocates at most [`ALLOC_FACTOR`] times the payload
//! (plus 1 MiB): 64 MiB for the largest downlink accepted (1 MiB). proptest over arbitrary
//! bytes and over mutations of the committed seeds in `hw-tests/fuzz/corpus/downlink/`;
//! `PROPTEST_CASES` sets the length.

use std::alloc::System;

use chrono::DateTime;
use ketang_sync::RemoteCommand;
use ketang_sync::mqtt::{MAX_DOWNLINK_BYTES, parse_downlink, topics::Target};
use proptest::prelude::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A parse may allocate this many bytes per payload byte (serde_json's values of a dense
/// array, and a second parse to name a refused message's id), plus 1 MiB.
const ALLOC_FACTOR: usize = 64;

/// The allocation counter is global: the tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const KINDS: [&str; 11] = [
    "roster",
    "timetable",
    "calendar",
    "honours",
    "duty",
    "homework",
    "leave",
    "notice",
    "config",
    "command",
    "nonsense",
];

fn seeds() -> Vec<Vec<u8>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-tests/fuzz/corpus/downlink");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(out.len() >= 5, "seeds in {}", dir.display());
    out
}

/// A seed with random edits: byte flips, inserts (also of JSON's own punctuation), deletes,
/// a cut, or a span repeated (deep or long input).
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((0usize..5, any::<usize>(), any::<u8>()), 0..10),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds[i].clone();
            for (op, at, byte) in edits {
                let at = if b.is_empty() { 0 } else { at % (b.len() + 1) };
                match op {
                    0 if at < b.len() => b[at] ^= byte | 1,
                    1 => b.insert(at, b"{}[]\",:0\\"[usize::from(byte) % 9]),
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    3 => {
                        let end = (at + usize::from(byte) % 16 + 1).min(b.len());
                        let span = b[at.min(end)..end].to_vec();
                        for _ in 0..usize::from(byte) % 64 {
                            b.splice(at..at, span.iter().copied());
                        }
                    }
                    _ => b.truncate(at),
                }
            }
            b
        })
}

fn parse(kind: &str, payload: &[u8]) -> Result<(), Vec<String>> {
    let now = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    let d = parse_downlink(kind, &Target::Device, payload, "hf-1", "kt-1", now)
        .map_err(|r| r.problems)?;
    // A calendar is checked as a whole before it is stored: that must not panic either.
    // So are the board's content kinds.
    use ketang_sync::DownlinkData as D;
    let problems = match &d.body {
        ketang_sync::mqtt::DownlinkBody::Data(D::Calendar(c)) => {
            ketang_sync::calendar::check_calendar(c)
        }
        ketang_sync::mqtt::DownlinkBody::Data(D::Honours(h)) => {
            ketang_sync::content::check_honours(h)
        }
        ketang_sync::mqtt::DownlinkBody::Data(D::Duty(x)) => {
            ketang_sync::content::check_duty(x, |s| s.starts_with('S'))
        }
        ketang_sync::mqtt::DownlinkBody::Data(D::Homework(h)) => {
            ketang_sync::content::check_homework(h)
        }
        _ => Vec::new(),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(())
}

/// Parses, and checks the refusal and the bytes allocated.
fn check(kind: &str, payload: &[u8]) -> Result<(), TestCaseError> {
    let region = Region::new(GLOBAL);
    let r = parse(kind, payload);
    let allocated = region.change().bytes_allocated;
    if let Err(problems) = &r {
        prop_assert!(!problems.is_empty(), "a refusal without a reason");
        // Input is never echoed beyond a short excerpt ...
        for p in problems {
            prop_assert!(
                p.chars().count() <= 1_000,
                "a problem of {} chars: {p}",
                p.chars().count()
            );
        }
        // ... and the ack carries at most 20 problems of at most 300 characters.
        let acked = ketang_sync::limits::bound_problems(problems);
        prop_assert!(acked.len() <= ketang_sync::limits::MAX_PROBLEMS + 1);
        for p in &acked {
            prop_assert!(p.chars().count() <= ketang_sync::limits::PROBLEM_CHARS + 1);
        }
    }
    let cap = ALLOC_FACTOR * payload.len() + (1 << 20);
    prop_assert!(
        allocated <= cap,
        "{kind} of {} bytes allocated {allocated} bytes (cap {cap})",
        payload.len()
    );
    Ok(())
}

proptest! {
    // One test, so no other test's allocations are counted with it.
    #[test]
    fn any_downlink_parses_or_is_refused_with_reasons_within_its_allocation_cap(
        payload in prop_oneof![prop::collection::vec(any::<u8>(), 0..4096), mutated()],
        kind in 0usize..KINDS.len(),
        name in prop::sample::select(vec!["whiteboard.power", "whiteboard.input", "system.update", "x"]),
        args in "\\PC{0,64}",
    ) {
        let _turn = turn();
        check(KINDS[kind], &payload)?;
        // The same body under every kind.
        for k in KINDS {
            let _ = parse(k, &payload);
        }
        // Commands with arbitrary JSON arguments.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&payload) {
            let _ = RemoteCommand::parse(name, &v);
        }
        let _ = RemoteCommand::parse(name, &serde_json::Value::String(args));
    }
}

#[test]
fn the_largest_dense_downlinks_stay_within_the_allocation_cap() {
    let _turn = turn();
    // Worst cases for a JSON parser at the size limit: a dense array, deep nesting, long
    // strings, many keys.
    let n = MAX_DOWNLINK_BYTES - 64;
    let dense = format!("[{}0]", "0,".repeat(n / 2 - 2));
    let deep = format!("{}{}", "[".repeat(n / 2), "]".repeat(n / 2));
    let string = format!("{{\"id\":\"{}\"}}", "\\u00e9".repeat(n / 7));
    let keys: String = (0..n / 12).map(|i| format!("\"k{i:07}\":1,")).collect();
    let keys = format!("{{{}\"z\":1}}", keys);
    let notice = seeds()
        .into_iter()
        .find(|s| String::from_utf8_lossy(s).contains("\"kind\":\"notice\""))
        .unwrap();
    let big_notice = String::from_utf8(notice)
        .unwrap()
        .replace("停课", &"停".repeat(n / 4));
    for payload in [dense, deep, string, keys, big_notice] {
        let p = payload.as_bytes();
        for kind in KINDS {
            let region = Region::new(GLOBAL);
            let r = parse(kind, p);
            let allocated = region.change().bytes_allocated;
            assert!(r.is_err() || p.len() <= MAX_DOWNLINK_BYTES);
            assert!(
                allocated <= ALLOC_FACTOR * MAX_DOWNLINK_BYTES + (1 << 20),
                "{kind} of {} bytes allocated {allocated}",
                p.len()
            );
        }
    }
}

#[test]
fn every_seed_is_a_downlink_the_board_accepts() {
    let _turn = turn();
    for seed in seeds() {
        let v: serde_json::Value = serde_json::from_slice(&seed).unwrap();
        let kind = v["kind"].as_str().unwrap().to_owned();
        assert_eq!(parse(&kind, &seed), Ok(()), "{v}");
    }
}

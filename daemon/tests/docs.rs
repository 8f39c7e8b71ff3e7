#![allow(clippy::unwrap_used)]
//! The technician guide exists in English and Chinese (`docs/technician.md`,
//! `docs/zh/technician.md`): field technicians read Chinese. Both must stay true: the same
//! sections, and every command and config line of the English guide's code blocks
//! verbatim in the Chinese one.

const EN: &str = include_str!("../../docs/technician.md");
const ZH: &str = include_str!("../../docs/zh/technician.md");

fn code_lines(md: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside && !line.trim().is_empty() {
            out.push(line.trim());
        }
    }
    out
}

#[test]
fn the_chinese_technician_guide_has_every_section_and_command_of_the_english_one() {
    let sections = |md: &str| md.lines().filter(|l| l.starts_with("## ")).count();
    assert_eq!(
        sections(EN),
        sections(ZH),
        "a section is missing in one of the two"
    );
    let zh: Vec<&str> = ZH.lines().map(str::trim).collect();
    let missing: Vec<&str> = code_lines(EN)
        .into_iter()
        .filter(|l| !zh.contains(l))
        .collect();
    assert!(
        missing.is_empty(),
        "lines of the English guide's code blocks not in docs/zh/technician.md: {missing:#?}"
    );
    assert!(ZH.contains("技术员手册") && ZH.contains("学校的报警通道"));
}

#![allow(clippy::unwrap_used)]
//! Level 1: the door sign's e-paper panels through `epd-waveshare`, against a simulated
//! controller that records commands and data and drives BUSY.

use embedded_hal::delay::DelayNs;
use ketang_drivers::epaper::{EpaperError, EpdModel, show};
use ketang_drivers::sign::{Framebuffer, SignContent, render};
use ketang_hw_tests::epaper::SimEpd;

#[derive(Debug, Default)]
struct Slept(u64);

impl DelayNs for Slept {
    fn delay_ns(&mut self, ns: u32) {
        self.0 += u64::from(ns);
    }
}

fn sign_frame(model: EpdModel) -> Vec<u8> {
    let (w, h) = model.size();
    let mut buf = vec![0u8; Framebuffer::bytes(w, h)];
    let mut fb = Framebuffer::new(&mut buf, w, h);
    let c = SignContent {
        class_name: "七年级(3)班",
        date: "11月23日 星期一",
        lesson: Some(("语文", "第1节")),
        attendance: Some((38, 40)),
        ..SignContent::default()
    };
    render(&c, &mut fb).unwrap();
    buf
}

fn run(sim: &SimEpd, model: EpdModel, ink: &[u8], d: &mut Slept) -> Result<(), String> {
    let mut scratch = vec![0u8; ink.len()];
    show(
        model,
        &mut sim.spi(),
        &mut sim.busy(),
        &mut sim.dc(),
        &mut sim.rst(),
        d,
        ink,
        &mut scratch,
        15_000,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_sign_frame_reaches_each_panel_in_its_polarity_then_the_panel_sleeps() {
    for model in [EpdModel::Epd7in5V2, EpdModel::Epd5in83V2, EpdModel::Epd4in2] {
        let sim = SimEpd::new();
        let ink = sign_frame(model);
        assert!(ink.iter().any(|&b| b != 0), "the frame has ink");
        run(&sim, model, &ink, &mut Slept::default()).unwrap();
        let cmds = sim.commands();
        assert!(sim.resets() >= 1, "{model:?}: reset pulsed");
        // DataStartTransmission2 carries the new frame, 1 = white.
        let frame: Vec<&Vec<u8>> = cmds
            .iter()
            .filter(|(c, _)| *c == 0x13)
            .map(|(_, d)| d)
            .collect();
        let want: Vec<u8> = ink.iter().map(|b| !b).collect();
        assert!(
            frame.iter().any(|d| **d == want),
            "{model:?}: frame data sent inverted"
        );
        let refresh = cmds.iter().position(|(c, _)| *c == 0x12).unwrap();
        let sent = cmds
            .iter()
            .rposition(|(c, d)| *c == 0x13 && *d == want)
            .unwrap();
        assert!(sent < refresh, "{model:?}: refresh after the data");
        assert_eq!(
            cmds.last().unwrap(),
            &(0x07, vec![0xA5]),
            "{model:?}: deep sleep last"
        );
    }
}

#[test]
fn a_panel_that_stays_busy_fails_after_the_deadline_instead_of_hanging() {
    let sim = SimEpd::new();
    sim.set_stuck_busy(true);
    let model = EpdModel::Epd4in2;
    let ink = vec![0u8; model.frame_bytes()];
    let mut d = Slept::default();
    let e = run(&sim, model, &ink, &mut d).unwrap_err();
    assert!(e.contains("stayed busy past the deadline"), "{e}");
    // One BUSY phase of 15 s at most, plus the reset pulses.
    assert!(d.0 < 20_000_000_000, "slept {} ns", d.0);
}

#[test]
fn bus_failures_and_wrong_frame_sizes_are_errors_that_say_so() {
    let sim = SimEpd::new();
    sim.set_spi_fails(true);
    let model = EpdModel::Epd7in5V2;
    let e = run(
        &sim,
        model,
        &vec![0u8; model.frame_bytes()],
        &mut Slept::default(),
    )
    .unwrap_err();
    assert!(e.contains("spi error"), "{e}");
    let mut scratch = vec![0u8; 10];
    let e = show(
        model,
        &mut sim.spi(),
        &mut sim.busy(),
        &mut sim.dc(),
        &mut sim.rst(),
        &mut Slept::default(),
        &[0u8; 10],
        &mut scratch,
        1000,
    )
    .unwrap_err();
    assert_eq!(e, EpaperError::FrameSize(10, 48_000));
}

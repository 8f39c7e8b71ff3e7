#![allow(clippy::unwrap_used)]
//! Level 1: the panel driver against simulated panels of each dialect on a pseudo-terminal.

use std::time::{Duration, Instant};

use ketang_drivers::panel::{Dialect, Input, Panel, PanelError, Reply, Request};
use ketang_hw_tests::sim::{self, Fault, SimDialect};
use ketang_hw_tests::{PtyLink, StdDelay, pty};

const DIALECTS: [(Dialect, SimDialect); 3] = [
    (Dialect::Benq, SimDialect::Benq),
    (Dialect::Smart, SimDialect::Smart),
    (Dialect::Lg { set_id: 1 }, SimDialect::Lg(1)),
];

fn panel(d: Dialect, s: SimDialect, fault: Fault, timeout_ms: u32) -> (Panel<PtyLink>, sim::Panel) {
    let (ours, theirs) = pty::pair();
    (
        Panel::new(ours, d, timeout_ms),
        sim::Panel::start(theirs, s, fault),
    )
}

#[test]
fn every_dialect_powers_on_selects_an_input_and_verifies_by_reading_back() {
    for (d, s) in DIALECTS {
        let (mut p, sim) = panel(d, s, Fault::None, 500);
        let delay = &mut StdDelay;
        assert!(!p.power(delay).unwrap(), "{d:?}");
        p.set_power(true, delay).unwrap();
        assert!(sim.state().power, "{d:?}");
        assert!(p.power(delay).unwrap());
        p.set_input(Input::Hdmi2, delay).unwrap();
        assert_eq!(p.input(delay).unwrap(), Input::Hdmi2, "{d:?}");
        assert_eq!(
            p.request(Request::SetVolume(20), delay).unwrap(),
            Reply::Volume(20)
        );
        assert_eq!(sim.state().volume, 20);
        assert_eq!(
            p.request(Request::SetMute(true), delay).unwrap(),
            Reply::Mute(true)
        );
        assert!(sim.state().mute, "{d:?}");
        assert_eq!(
            p.request(Request::SetLock(true), delay).unwrap(),
            Reply::Lock(true)
        );
        assert!(sim.state().lock, "{d:?}");
        p.set_power(false, delay).unwrap();
        assert!(!sim.state().power);
    }
}

#[test]
fn echoing_and_slow_panels_are_understood() {
    for (d, s) in DIALECTS {
        let (mut p, _sim) = panel(d, s, Fault::Echo, 500);
        p.set_power(true, &mut StdDelay).unwrap();
        let (mut p, _sim) = panel(d, s, Fault::Slow(Duration::from_millis(150)), 1000);
        p.set_input(Input::Ops, &mut StdDelay).unwrap();
        assert_eq!(p.input(&mut StdDelay).unwrap(), Input::Ops, "{d:?}");
    }
}

#[test]
fn a_silent_panel_times_out_cleanly_within_its_deadline() {
    for (d, s) in DIALECTS {
        let (mut p, _sim) = panel(d, s, Fault::Silent, 200);
        let t = Instant::now();
        let e = p.power(&mut StdDelay).unwrap_err();
        assert!(
            matches!(
                e,
                PanelError::Timeout {
                    request: Request::GetPower,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(e.to_string().contains("no answer"), "{e}");
    }
}

#[test]
fn garbage_refusals_and_sets_that_do_not_take_are_errors_that_say_so() {
    for (d, s) in DIALECTS {
        let (mut p, _sim) = panel(d, s, Fault::Garbage, 200);
        let e = p.power(&mut StdDelay).unwrap_err();
        assert!(matches!(e, PanelError::Garbage { .. }), "{d:?}: {e:?}");
        let (mut p, _sim) = panel(d, s, Fault::Refuse, 200);
        let e = p.set_power(true, &mut StdDelay).unwrap_err();
        assert!(matches!(e, PanelError::Refused { .. }), "{d:?}: {e:?}");
        let (mut p, _sim) = panel(d, s, Fault::IgnoreSets, 200);
        let e = p.set_power(true, &mut StdDelay).unwrap_err();
        assert!(
            matches!(
                e,
                PanelError::NotApplied {
                    wanted: Reply::Power(true),
                    got: Reply::Power(false)
                }
            ),
            "{d:?}: {e:?}"
        );
    }
}

#[test]
fn an_lg_panel_answers_only_to_its_set_id() {
    let (mut p, _sim) = panel(
        Dialect::Lg { set_id: 2 },
        SimDialect::Lg(1),
        Fault::None,
        200,
    );
    assert!(matches!(
        p.power(&mut StdDelay).unwrap_err(),
        PanelError::Timeout { .. }
    ));
    // Set ID 0 addresses every panel.
    let (mut p, _sim) = panel(
        Dialect::Lg { set_id: 0 },
        SimDialect::Lg(1),
        Fault::None,
        200,
    );
    p.set_power(true, &mut StdDelay).unwrap();
}

//! Debouncing for push buttons (the emergency button), with an optional long press.
//!
//! Pure logic: feed it the sampled level and a millisecond clock; it reports a press or a
//! release only after the level has been stable for `debounce_ms`, and a long press once
//! after the button has been held `long_press_ms`.

/// What a button did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Pressed (stable).
    Pressed,
    /// Held down for the long-press time (once per press).
    LongPress,
    /// Released (stable).
    Released,
}

/// A debouncer for one button.
#[derive(Debug, Clone)]
pub struct Debouncer {
    debounce_ms: u32,
    long_press_ms: Option<u32>,
    stable: bool,
    candidate: bool,
    candidate_since: u64,
    pressed_at: u64,
    long_fired: bool,
}

impl Debouncer {
    /// A released button; `long_press_ms` enables [`ButtonEvent::LongPress`].
    #[must_use]
    pub const fn new(debounce_ms: u32, long_press_ms: Option<u32>) -> Self {
        Self {
            debounce_ms,
            long_press_ms,
            stable: false,
            candidate: false,
            candidate_since: 0,
            pressed_at: 0,
            long_fired: false,
        }
    }

    /// Feeds one sample (`pressed` is the logical level, after any active-low inversion)
    /// taken at `now_ms` (monotonic).
    pub fn update(&mut self, pressed: bool, now_ms: u64) -> Option<ButtonEvent> {
        if pressed != self.candidate {
            self.candidate = pressed;
            self.candidate_since = now_ms;
        }
        if self.candidate != self.stable
            && now_ms.saturating_sub(self.candidate_since) >= u64::from(self.debounce_ms)
        {
            self.stable = self.candidate;
            if self.stable {
                self.pressed_at = now_ms;
                self.long_fired = false;
                return Some(ButtonEvent::Pressed);
            }
            return Some(ButtonEvent::Released);
        }
        if let Some(long) = self.long_press_ms
            && self.stable
            && !self.long_fired
            && now_ms.saturating_sub(self.pressed_at) >= u64::from(long)
        {
            self.long_fired = true;
            return Some(ButtonEvent::LongPress);
        }
        None
    }

    /// Whether a long press is configured.
    #[must_use]
    pub const fn has_long_press(&self) -> bool {
        self.long_press_ms.is_some()
    }

    /// Whether the button is (stably) pressed.
    #[must_use]
    pub const fn is_pressed(&self) -> bool {
        self.stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_shorter_than_the_debounce_time_are_ignored() {
        let mut d = Debouncer::new(20, None);
        // Contact bounce: flips every 2 ms for 10 ms, then settles pressed.
        let mut events = [None; 64];
        let mut n = 0;
        for t in 0..10u64 {
            events[n] = d.update(t % 4 < 2, t);
            n += 1;
        }
        for t in 10..40u64 {
            events[n] = d.update(true, t);
            n += 1;
        }
        let got: usize = events[..n].iter().filter(|e| e.is_some()).count();
        assert_eq!(got, 1);
        assert!(d.is_pressed());
        assert_eq!(d.update(false, 41), None);
        assert_eq!(d.update(false, 61), Some(ButtonEvent::Released));
    }

    #[test]
    fn a_long_press_fires_once_per_press() {
        let mut d = Debouncer::new(10, Some(2000));
        assert_eq!(d.update(true, 0), None);
        assert_eq!(d.update(true, 10), Some(ButtonEvent::Pressed));
        assert_eq!(d.update(true, 1000), None);
        assert_eq!(d.update(true, 2010), Some(ButtonEvent::LongPress));
        assert_eq!(d.update(true, 5000), None);
        assert_eq!(d.update(false, 5001), None);
        assert_eq!(d.update(false, 5011), Some(ButtonEvent::Released));
        assert_eq!(d.update(true, 6000), None);
        assert_eq!(d.update(true, 6010), Some(ButtonEvent::Pressed));
    }
}

//! When an IR thermometer reading is a measurement: the MLX90614 reads continuously, so a
//! forehead (or wrist) in front of it shows as the object temperature rising well above
//! the ambient, then settling. One reading is taken per approach: the first that is stable
//! (three samples within 0.3 °C) while the object is at least 3 °C above ambient; the
//! trigger re-arms when the object falls back near ambient (the person stepped away).

/// Samples agreeing within this many °C count as stable.
const STABLE_C: f32 = 0.3;
/// How many agreeing samples make a reading.
const STABLE_SAMPLES: usize = 3;
/// An object this much warmer than ambient is someone in front of the sensor.
const PRESENT_ABOVE_AMBIENT_C: f32 = 3.0;
/// Within this of ambient, nobody is there (re-arm).
const GONE_WITHIN_AMBIENT_C: f32 = 1.5;

/// The trigger's state.
#[derive(Debug, Default)]
pub(crate) struct IrTrigger {
    recent: Vec<f32>,
    fired: bool,
}

impl IrTrigger {
    /// Feeds one sample (object and ambient °C); returns a measurement to report, at most
    /// one per approach.
    pub(crate) fn sample(&mut self, object_c: f32, ambient_c: f32) -> Option<f32> {
        if !object_c.is_finite() || !ambient_c.is_finite() {
            return None;
        }
        if object_c - ambient_c < GONE_WITHIN_AMBIENT_C {
            self.recent.clear();
            self.fired = false;
            return None;
        }
        if self.fired || object_c - ambient_c < PRESENT_ABOVE_AMBIENT_C {
            self.recent.clear();
            return None;
        }
        self.recent.push(object_c);
        if self.recent.len() > STABLE_SAMPLES {
            self.recent.remove(0);
        }
        let (lo, hi) = self
            .recent
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if self.recent.len() == STABLE_SAMPLES && hi - lo <= STABLE_C {
            self.fired = true;
            let mean = self.recent.iter().sum::<f32>() / STABLE_SAMPLES as f32;
            self.recent.clear();
            return Some(mean);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_per_approach_once_it_settles() {
        let mut t = IrTrigger::default();
        let amb = 22.0;
        // Nobody there.
        for _ in 0..5 {
            assert_eq!(t.sample(22.5, amb), None);
        }
        // Someone approaches: rising, then stable.
        assert_eq!(t.sample(30.0, amb), None);
        assert_eq!(t.sample(35.8, amb), None);
        assert_eq!(t.sample(36.5, amb), None);
        assert_eq!(t.sample(36.6, amb), None);
        let r = t.sample(36.5, amb).unwrap();
        assert!((r - 36.53).abs() < 0.05, "{r}");
        // Still there: no second reading.
        for _ in 0..10 {
            assert_eq!(t.sample(36.6, amb), None);
        }
        // Steps away, next person.
        assert_eq!(t.sample(22.8, amb), None);
        for v in [37.4, 37.5, 37.5] {
            let _ = t.sample(v, amb);
        }
        assert!(t.fired);
    }

    #[test]
    fn noise_and_garbage_never_fire() {
        let mut t = IrTrigger::default();
        for v in [30.0, 36.0, 31.0, 37.0, 30.5, 36.9] {
            assert_eq!(t.sample(v, 22.0), None);
        }
        assert_eq!(t.sample(f32::NAN, 22.0), None);
        assert_eq!(t.sample(36.0, f32::INFINITY), None);
    }
}

//! Who speaks with one room microphone: the teacher's voice told from the students'.
//!
//! * **The model**: Resemblyzer's voice encoder (GE2E: a 3-layer LSTM over 40 mel channels,
//!   PyPI `Resemblyzer` 0.1.4, Apache-2.0), converted by `models/convert/resemblyzer_to_onnx.py`.
//!   It maps 1.6 s of speech (160 frames of 10 ms) to a 256-value voice embedding; the same
//!   voice gives close embeddings (cosine), whatever is said.
//! * **Features** ([`MelSpectrogram`]): librosa's `melspectrogram` as Resemblyzer calls it
//!   (25 ms periodic Hann window, 10 ms hop, centred frames with zero padding, power
//!   spectrum, 40 Slaney mel bands from 0 to 8 kHz, not log-scaled); checked against
//!   librosa's own numbers in this module's tests. Audio quieter than −30 dBFS is raised to
//!   it first (Resemblyzer's `normalize_volume`, increase only).
//! * **The teacher's voiceprint** ([`VoiceEncoder::voiceprint`]): the speech of a short
//!   enrolment (the teacher reads aloud on the board, ≥ [`MIN_ENROL_SPEECH_S`] of speech),
//!   embedded as Resemblyzer embeds an utterance: windows every 0.77 s, their unit
//!   embeddings averaged and normalised.
//! * **Labelling a lesson** ([`VoiceEncoder::label`]): each speech segment (from the VAD) is
//!   cut into 1.6 s windows every 0.8 s (a shorter segment is one window); a window is the
//!   teacher's when its embedding is at least `threshold` similar to a teacher's voiceprint. A
//!   segment is split where its windows change side, halfway between their centres.
//! * **Student turns** ([`student_turns`]): student speech separated by under
//!   [`TURN_GAP_S`] of silence is one turn; turns under [`MIN_TURN_S`] are not counted.

use std::path::Path;
use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use tract_onnx::prelude::*;

use crate::error::{ModelError, Result};
use crate::runtime::Model;
use crate::vad::{RATE, Segment};

/// Mel bands.
pub const MELS: usize = 40;
/// Frames per model call (1.6 s).
pub const FRAMES: usize = 160;
/// Embedding size.
pub const DIM: usize = 256;
/// FFT size and window (25 ms).
const N_FFT: usize = 400;
/// Hop (10 ms).
const HOP: usize = 160;
/// Samples in one window of [`FRAMES`] frames.
const WINDOW_SAMPLES: usize = FRAMES * HOP;
/// Step between windows when labelling a lesson (0.8 s).
const LABEL_STEP: usize = WINDOW_SAMPLES / 2;
/// Step between windows of an enrolment (Resemblyzer: 1.3 windows a second).
const ENROL_STEP_FRAMES: usize = 77;
/// The loudness Resemblyzer raises quieter audio to.
const TARGET_DBFS: f32 = -30.0;
/// Enrolment needs this much speech.
pub const MIN_ENROL_SPEECH_S: f32 = 6.0;
/// Student speech closer than this is one turn.
pub const TURN_GAP_S: f32 = 1.0;
/// Shorter student turns are not counted (a cough, a word from the back).
pub const MIN_TURN_S: f32 = 0.5;
/// The default threshold of [`VoiceEncoder::label`] (`docs/models.md`: how it was chosen).
pub const DEFAULT_THRESHOLD: f32 = 0.78;

/// A stretch of speech and whose it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    /// Start, seconds.
    pub start_s: f32,
    /// End, seconds.
    pub end_s: f32,
    /// The teacher's voice.
    pub teacher: bool,
    /// The similarity to the voiceprint (the mean over the piece's windows).
    pub score: f32,
}

/// The voice encoder and its features.
#[derive(Debug)]
pub struct VoiceEncoder {
    model: Model,
    mel: MelSpectrogram,
}

/// librosa's mel power spectrogram as Resemblyzer calls it (see the module's notes).
pub struct MelSpectrogram {
    bank: Vec<Vec<f32>>,
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
}

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MelSpectrogram(16 kHz, 400/160, 40 Slaney bands)")
    }
}

impl Default for MelSpectrogram {
    fn default() -> Self {
        Self {
            bank: mel_bank(),
            window: (0..N_FFT)
                .map(|n| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / N_FFT as f32).cos())
                .collect(),
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        }
    }
}

impl MelSpectrogram {
    /// One row of [`MELS`] per 10 ms of 16 kHz `samples`, `1 + len / 160` rows.
    #[must_use]
    pub fn compute(&self, samples: &[f32]) -> Vec<[f32; MELS]> {
        let frames = 1 + samples.len() / HOP;
        let pad = N_FFT / 2;
        let mut buf = vec![Complex32::new(0.0, 0.0); N_FFT];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0f32; N_FFT / 2 + 1];
        let mut out = Vec::with_capacity(frames);
        for f in 0..frames {
            for (k, b) in buf.iter_mut().enumerate() {
                // Sample index in the zero-padded signal.
                let i = (f * HOP + k).checked_sub(pad);
                let x = i.and_then(|i| samples.get(i)).copied().unwrap_or(0.0);
                *b = Complex32::new(x * self.window[k], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for (p, b) in power.iter_mut().zip(&buf) {
                *p = b.norm_sqr();
            }
            let mut row = [0f32; MELS];
            for (r, w) in row.iter_mut().zip(&self.bank) {
                *r = w.iter().zip(&power).map(|(a, b)| a * b).sum();
            }
            out.push(row);
        }
        out
    }
}

impl VoiceEncoder {
    /// Loads `resemblyzer_voice_encoder.onnx`.
    ///
    /// # Errors
    /// The file is missing, not ONNX, or its shapes differ (named).
    pub fn load(path: &Path) -> Result<Self> {
        let model = Model::load(path, &[(f32::datum_type(), &[1, FRAMES, MELS])], 1)?;
        let v = Self {
            model,
            mel: MelSpectrogram::default(),
        };
        v.embed_window(&vec![[0.0; MELS]; FRAMES])?;
        Ok(v)
    }

    /// The unit embedding of one window of at most [`FRAMES`] mel rows (zero-padded).
    fn embed_window(&self, mels: &[[f32; MELS]]) -> Result<Vec<f32>> {
        self.raw(mels).map(unit)
    }

    /// The model's output (before normalisation) for one window of at most [`FRAMES`] mel
    /// rows, zero-padded.
    ///
    /// # Errors
    /// The model failed.
    pub fn raw(&self, mels: &[[f32; MELS]]) -> Result<Vec<f32>> {
        let mut flat = vec![0f32; FRAMES * MELS];
        for (dst, row) in flat.chunks_exact_mut(MELS).zip(mels.iter().take(FRAMES)) {
            dst.copy_from_slice(row);
        }
        let input = Tensor::from_shape(&[1, FRAMES, MELS], &flat)
            .map_err(|e| ModelError::Input(e.to_string()))?;
        let out = self.model.run(tvec!(input.into()))?;
        self.model.floats(&out, 0, DIM)
    }

    /// The unit embedding of one stretch of speech, scored as one window.
    fn embed_clip(&self, samples: &[f32]) -> Result<Vec<f32>> {
        let loud = normalise_volume(samples);
        self.embed_window(&self.mel.compute(&loud))
    }

    /// The voiceprint of an enrolment: `speech` is the speech heard (silence cut out), at
    /// least [`MIN_ENROL_SPEECH_S`] seconds of it.
    ///
    /// # Errors
    /// Too little speech (how much was heard is named), or the model failed.
    pub fn voiceprint(&self, speech: &[f32]) -> Result<Vec<f32>> {
        let secs = speech.len() as f32 / RATE as f32;
        if secs < MIN_ENROL_SPEECH_S {
            return Err(ModelError::Input(format!(
                "{secs:.1} s of speech heard; the voice enrolment needs {MIN_ENROL_SPEECH_S:.0} s: read the text aloud, closer to the board"
            )));
        }
        let loud = normalise_volume(speech);
        let mels = self.mel.compute(&loud);
        let mut sum = vec![0f32; DIM];
        let mut n = 0usize;
        let mut start = 0;
        while start + FRAMES <= mels.len() {
            let e = self.embed_window(&mels[start..start + FRAMES])?;
            sum.iter_mut().zip(&e).for_each(|(s, x)| *s += x);
            n += 1;
            start += ENROL_STEP_FRAMES;
        }
        if n == 0 {
            return Err(ModelError::Input("no full window of speech".into()));
        }
        Ok(unit(sum))
    }

    /// Splits the speech `segments` of 16 kHz `samples` into the teachers' and the others'
    /// by their similarity to the nearest of `voiceprints` (see the module's notes).
    ///
    /// # Errors
    /// The model failed.
    pub fn label(
        &self,
        samples: &[f32],
        segments: &[Segment],
        voiceprints: &[Vec<f32>],
        threshold: f32,
    ) -> Result<Vec<Labelled>> {
        let mut out = Vec::new();
        for seg in segments {
            let s0 = ((seg.start_s * RATE as f32) as usize).min(samples.len());
            let s1 = ((seg.end_s * RATE as f32) as usize).min(samples.len());
            if s1 <= s0 {
                continue;
            }
            // Windows (start sample, end sample) covering the segment; the last ends at it.
            let mut wins = Vec::new();
            if s1 - s0 <= WINDOW_SAMPLES {
                wins.push((s0, s1));
            } else {
                let mut w = s0;
                while w + WINDOW_SAMPLES < s1 {
                    wins.push((w, w + WINDOW_SAMPLES));
                    w += LABEL_STEP;
                }
                wins.push((s1 - WINDOW_SAMPLES, s1));
            }
            let mut scored = Vec::with_capacity(wins.len());
            for &(a, b) in &wins {
                let e = self.embed_clip(&samples[a..b])?;
                let best = voiceprints
                    .iter()
                    .map(|v| crate::gallery::cosine(&e, v))
                    .fold(f32::NEG_INFINITY, f32::max);
                scored.push(((a + b) as f32 / 2.0, best));
            }
            // Pieces: runs of windows on the same side, cut halfway between centres.
            let secs = |s: f32| s / RATE as f32;
            let mut piece_start = s0 as f32;
            let mut i = 0;
            while i < scored.len() {
                let side = scored[i].1 >= threshold;
                let mut j = i;
                while j + 1 < scored.len() && (scored[j + 1].1 >= threshold) == side {
                    j += 1;
                }
                let end = if j + 1 < scored.len() {
                    (scored[j].0 + scored[j + 1].0) / 2.0
                } else {
                    s1 as f32
                };
                let mean = scored[i..=j].iter().map(|x| x.1).sum::<f32>() / (j + 1 - i) as f32;
                out.push(Labelled {
                    start_s: secs(piece_start),
                    end_s: secs(end),
                    teacher: side,
                    score: mean,
                });
                piece_start = end;
                i = j + 1;
            }
        }
        Ok(out)
    }
}

/// Student speaking turns in `students` (sorted or not): what the `teacher` said is cut
/// out of them first (a room microphone also hears the teacher's wireless one), pieces
/// closer than [`TURN_GAP_S`] join, and turns shorter than [`MIN_TURN_S`] do not count.
/// Teacher speech between two pieces separates them whatever the gap.
#[must_use]
pub fn student_turns(students: &[Segment], teacher: &[Segment]) -> u32 {
    let mut s: Vec<Segment> = Vec::new();
    for g in students {
        let mut rest = vec![*g];
        for t in teacher {
            rest = rest
                .into_iter()
                .flat_map(|r| {
                    if t.end_s <= r.start_s || t.start_s >= r.end_s {
                        return vec![r];
                    }
                    let mut out = Vec::new();
                    if t.start_s > r.start_s {
                        out.push(Segment {
                            start_s: r.start_s,
                            end_s: t.start_s,
                        });
                    }
                    if t.end_s < r.end_s {
                        out.push(Segment {
                            start_s: t.end_s,
                            end_s: r.end_s,
                        });
                    }
                    out
                })
                .collect();
        }
        s.extend(rest);
    }
    s.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let teacher_between = |a: f32, b: f32| teacher.iter().any(|t| t.start_s < b && t.end_s > a);
    let mut turns = 0;
    let mut cur: Option<Segment> = None;
    for g in s {
        cur = match cur {
            Some(c) if g.start_s - c.end_s < TURN_GAP_S && !teacher_between(c.end_s, g.start_s) => {
                Some(Segment {
                    start_s: c.start_s,
                    end_s: c.end_s.max(g.end_s),
                })
            }
            Some(c) => {
                turns += u32::from(c.end_s - c.start_s >= MIN_TURN_S);
                Some(g)
            }
            None => Some(g),
        };
    }
    if let Some(c) = cur {
        turns += u32::from(c.end_s - c.start_s >= MIN_TURN_S);
    }
    turns
}

/// `v` scaled to unit length (a zero vector stays zero: it matches nothing).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Raises audio quieter than −30 dBFS to it (never lowers).
fn normalise_volume(x: &[f32]) -> Vec<f32> {
    if x.is_empty() {
        return Vec::new();
    }
    let rms = (x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / x.len() as f64).sqrt()
        as f32;
    let dbfs = 20.0 * rms.max(1e-9).log10();
    let gain = if dbfs < TARGET_DBFS {
        10f32.powf((TARGET_DBFS - dbfs) / 20.0)
    } else {
        1.0
    };
    x.iter().map(|v| v * gain).collect()
}

/// librosa's `filters.mel(sr=16000, n_fft=400, n_mels=40)`: Slaney's mel scale and area
/// normalisation; one row of 201 FFT-bin weights per band.
fn mel_bank() -> Vec<Vec<f32>> {
    // (f64 throughout, as librosa computes it.)
    fn hz_to_mel(f: f64) -> f64 {
        let f_sp = 200.0 / 3.0;
        let min_log_hz = 1000.0;
        let logstep = 6.4f64.ln() / 27.0;
        if f >= min_log_hz {
            min_log_hz / f_sp + (f / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    }
    fn mel_to_hz(m: f64) -> f64 {
        let f_sp = 200.0 / 3.0;
        let min_log_hz = 1000.0;
        let min_log_mel = min_log_hz / f_sp;
        let logstep = 6.4f64.ln() / 27.0;
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    }
    let bins = N_FFT / 2 + 1;
    let sr = f64::from(RATE);
    let fft_f: Vec<f64> = (0..bins)
        .map(|i| i as f64 * sr / 2.0 / (bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (MELS + 1) as f64))
        .collect();
    (0..MELS)
        .map(|m| {
            let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
            fft_f
                .iter()
                .map(|&f| {
                    let lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
                    let upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(a: f32, b: f32) -> Segment {
        Segment {
            start_s: a,
            end_s: b,
        }
    }

    /// librosa 0.10.2.post1's `melspectrogram` of the same signal
    /// (`models/convert/voice_reference.py`): rows 0 and 100 test the zero padding of the
    /// centred frames, row 50 the bands between the tones.
    #[test]
    fn the_mel_spectrogram_is_librosas() {
        let x: Vec<f32> = (0..16_000)
            .map(|n| {
                let t = f64::from(n) / 16_000.0;
                (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 0.2 * (2.0 * std::f64::consts::PI * (300.0 * t + 1500.0 * t * t)).sin())
                    as f32
            })
            .collect();
        let mel = MelSpectrogram::default().compute(&x);
        assert_eq!(mel.len(), 101);
        let want: [(usize, [f32; 8]); 3] = [
            (
                0,
                [
                    3.332896e-01,
                    4.853999e-01,
                    1.293026e+00,
                    2.406329e+00,
                    1.325466e+00,
                    4.634705e+00,
                    1.809895e+00,
                    2.4979e-1,
                ],
            ),
            (
                50,
                [
                    8.275536e-14,
                    2.558029e-13,
                    5.706222e-13,
                    1.117706e-12,
                    1.958125e+00,
                    1.478798e+01,
                    1.603728e+00,
                    1.031507e-11,
                ],
            ),
            (
                100,
                [
                    9.298272e-02,
                    1.118445e-01,
                    1.603196e-01,
                    3.360132e-01,
                    1.935333e+00,
                    4.835264e+00,
                    1.447668e+00,
                    1.470583e-01,
                ],
            ),
        ];
        for (row, w) in want {
            let scale = w.iter().copied().fold(0f32, f32::max);
            for (i, (g, w)) in mel[row].iter().zip(w).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * scale + 1e-4 * w.abs(),
                    "row {row} band {i}: {g:e}, librosa {w:e}"
                );
            }
        }
        // Bands further up (row 50: the chirp at 2.3 kHz, band 20; row 100: 3.3 kHz, 28).
        for (row, band, w) in [(50, 20, 2.998559), (50, 21, 1.388349), (100, 28, 0.8121486)] {
            let g = mel[row][band];
            assert!(
                (g - w).abs() < 1e-4 * w,
                "row {row} band {band}: {g}, librosa {w}"
            );
        }
    }

    #[test]
    fn quiet_audio_is_raised_to_minus_30_dbfs_and_loud_audio_left_alone() {
        let quiet = vec![0.001f32; 1000];
        let raised = normalise_volume(&quiet);
        let rms = (raised.iter().map(|v| v * v).sum::<f32>() / 1000.0).sqrt();
        assert!((20.0 * rms.log10() + 30.0).abs() < 0.01, "{rms}");
        let loud = vec![0.5f32; 10];
        assert_eq!(normalise_volume(&loud), loud);
        assert!(normalise_volume(&[]).is_empty());
        assert_eq!(normalise_volume(&[0.0; 4]), vec![0.0; 4]);
    }

    #[test]
    fn student_turns_join_short_pauses_but_not_across_the_teacher() {
        // One turn with a 0.5 s pause, then a second after 2 s of silence.
        assert_eq!(
            student_turns(&[seg(0.0, 2.0), seg(2.5, 4.0), seg(6.0, 7.0)], &[]),
            2
        );
        // The teacher speaks in the pause: two turns.
        assert_eq!(
            student_turns(&[seg(0.0, 2.0), seg(2.5, 4.0)], &[seg(2.1, 2.4)]),
            2
        );
        // A 0.3 s cough is no turn; order does not matter.
        assert_eq!(student_turns(&[seg(9.0, 9.3), seg(0.0, 1.0)], &[]), 1);
        assert_eq!(student_turns(&[], &[seg(0.0, 10.0)]), 0);
        // The room microphone hears the teacher (teacher_mic): her speech is not a turn,
        // and a student answering inside her pause is.
        assert_eq!(student_turns(&[seg(0.0, 10.0)], &[seg(0.0, 10.0)]), 0);
        assert_eq!(
            student_turns(&[seg(0.0, 10.0)], &[seg(0.0, 4.0), seg(6.0, 10.0)]),
            1
        );
    }

    #[test]
    fn a_zero_embedding_stays_zero() {
        assert_eq!(unit(vec![0.0; 3]), vec![0.0; 3]);
        let u = unit(vec![3.0, 4.0]);
        assert!((u[0] - 0.6).abs() < 1e-6 && (u[1] - 0.8).abs() < 1e-6);
    }
}

//! Voice activity with silero VAD (16 kHz) and talk-time / S-T analysis of a lesson.
//!
//! * **Audio in**: WAV files (any rate, mono or multi-channel; 16-bit, 24/32-bit int or
//!   float), each channel resampled linearly to 16 kHz. Silent or clipped audio is reported
//!   by [`check_audio`] so a dead or overdriven microphone is visible, not "nobody spoke".
//! * **VAD**: silero's `_sequence` model takes rows of 576 samples (the previous 64
//!   samples of context, then a 512-sample chunk of 32 ms) and its LSTM state; this runs
//!   blocks of [`BLOCK`] rows (about one second) with the state carried between blocks and
//!   returns one speech probability per 32 ms chunk.
//! * **Segments**: speech starts when the probability reaches 0.5 and ends when it stays
//!   under 0.35 for 100 ms; segments shorter than 250 ms are dropped (silero's own
//!   defaults).
//! * **S-T analysis** (S-T分析法): the lesson is sampled every `interval` seconds; a sample is
//!   T when the teacher speaks in it, otherwise S. Rt = T / all, Ch = (runs − 1) / all.
//!   Who speaks: with two channels, channel 0 is the teacher's wireless microphone (speech
//!   there is the teacher); with one room microphone, every speech sample counts as T (a
//!   documented first heuristic that over-counts the teacher when students answer aloud).

use std::path::Path;

use tract_onnx::prelude::*;

use crate::error::{ModelError, Result};
use crate::runtime::Model;

/// Samples per second the model takes.
pub const RATE: u32 = 16_000;
/// Samples per chunk (32 ms).
pub const CHUNK: usize = 512;
const CONTEXT: usize = 64;
/// Chunks per model call (~1 s).
pub const BLOCK: usize = 31;

/// The silero VAD model.
#[derive(Debug)]
pub struct Vad {
    model: Model,
}

impl Vad {
    /// Loads `silero_vad_16k_sequence.onnx` (the variant without `If` nodes, which tract
    /// runs).
    ///
    /// # Errors
    /// The file is missing or its shapes differ (named).
    pub fn load(path: &Path) -> Result<Self> {
        let model = Model::load(
            path,
            &[
                (f32::datum_type(), &[BLOCK, CHUNK + CONTEXT]),
                (f32::datum_type(), &[1, 1, 128]),
                (f32::datum_type(), &[1, 1, 128]),
            ],
            3,
        )?;
        let v = Self { model };
        v.speech_probs(&[0.0; CHUNK])?;
        Ok(v)
    }

    /// One speech probability per 32 ms chunk of 16 kHz mono `samples` (−1…1); a last
    /// partial chunk is padded with silence.
    ///
    /// # Errors
    /// Running the model failed.
    pub fn speech_probs(&self, samples: &[f32]) -> Result<Vec<f32>> {
        let chunks = samples.len().div_ceil(CHUNK);
        let mut probs = Vec::with_capacity(chunks);
        let mut h =
            Tensor::zero::<f32>(&[1, 1, 128]).map_err(|e| ModelError::Input(e.to_string()))?;
        let mut c = h.clone();
        let mut context = [0f32; CONTEXT];
        let mut rows = vec![0f32; BLOCK * (CHUNK + CONTEXT)];
        for block_start in (0..chunks).step_by(BLOCK) {
            let n = (chunks - block_start).min(BLOCK);
            rows.fill(0.0);
            for r in 0..n {
                let row = &mut rows[r * (CHUNK + CONTEXT)..(r + 1) * (CHUNK + CONTEXT)];
                row[..CONTEXT].copy_from_slice(&context);
                let s0 = (block_start + r) * CHUNK;
                let s1 = (s0 + CHUNK).min(samples.len());
                row[CONTEXT..CONTEXT + (s1 - s0)].copy_from_slice(&samples[s0..s1]);
                context.copy_from_slice(&row[CHUNK..CHUNK + CONTEXT]);
            }
            let input = Tensor::from_shape(&[BLOCK, CHUNK + CONTEXT], &rows)
                .map_err(|e| ModelError::Input(e.to_string()))?;
            let out = self
                .model
                .run(tvec!(input.into(), h.clone().into(), c.clone().into()))?;
            let p = self.model.floats(&out, 0, BLOCK)?;
            probs.extend_from_slice(&p[..n]);
            // The state after a padded block is discarded with the block's end; only full
            // blocks carry it on, and a padded block is always the last.
            h = out[1].clone().into_tensor();
            c = out[2].clone().into_tensor();
        }
        Ok(probs)
    }
}

/// A stretch of speech, in seconds from the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Start.
    pub start_s: f32,
    /// End.
    pub end_s: f32,
}

/// Speech segments from per-chunk probabilities (silero's thresholds and durations).
#[must_use]
pub fn segments(probs: &[f32]) -> Vec<Segment> {
    let chunk_s = CHUNK as f32 / RATE as f32;
    let min_silence = (0.1 / chunk_s).ceil() as usize;
    let min_speech = 0.25;
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quiet = 0usize;
    for (i, &p) in probs.iter().enumerate() {
        match start {
            None if p >= 0.5 => {
                start = Some(i);
                quiet = 0;
            }
            Some(s) => {
                if p < 0.35 {
                    quiet += 1;
                    if quiet >= min_silence {
                        let end = i + 1 - quiet;
                        out.push(Segment {
                            start_s: s as f32 * chunk_s,
                            end_s: end as f32 * chunk_s,
                        });
                        start = None;
                    }
                } else {
                    quiet = 0;
                }
            }
            None => {}
        }
    }
    if let Some(s) = start {
        out.push(Segment {
            start_s: s as f32 * chunk_s,
            end_s: (probs.len() - quiet) as f32 * chunk_s,
        });
    }
    out.retain(|g| g.end_s - g.start_s >= min_speech);
    out
}

/// Seconds of speech in `segs`.
#[must_use]
pub fn speech_seconds(segs: &[Segment]) -> f32 {
    segs.iter().map(|s| s.end_s - s.start_s).sum()
}

/// Something wrong with a recording.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioProblem {
    /// The channel carries (almost) nothing: RMS under −60 dBFS.
    Silent {
        /// Which channel.
        channel: usize,
    },
    /// More than 1 % of samples at full scale: the input gain is too high.
    Clipped {
        /// Which channel.
        channel: usize,
        /// Share of clipped samples.
        share: f32,
    },
}

impl std::fmt::Display for AudioProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Silent { channel } => write!(
                f,
                "channel {channel} is silent (under -60 dBFS): microphone off, muted or unplugged?"
            ),
            Self::Clipped { channel, share } => write!(
                f,
                "channel {channel} clips on {:.1} % of samples: lower the input gain",
                share * 100.0
            ),
        }
    }
}

/// Problems with the channels of a recording.
#[must_use]
pub fn check_audio(channels: &[Vec<f32>]) -> Vec<AudioProblem> {
    let mut out = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        if ch.is_empty() {
            out.push(AudioProblem::Silent { channel: i });
            continue;
        }
        let rms = (ch.iter().map(|x| x * x).sum::<f32>() / ch.len() as f32).sqrt();
        if rms < 0.001 {
            out.push(AudioProblem::Silent { channel: i });
        }
        let clipped = ch.iter().filter(|x| x.abs() >= 0.999).count() as f32 / ch.len() as f32;
        if clipped > 0.01 {
            out.push(AudioProblem::Clipped {
                channel: i,
                share: clipped,
            });
        }
    }
    out
}

/// Reads a WAV file as 16 kHz channels (−1…1).
///
/// # Errors
/// The file cannot be read or decoded, or is empty (named).
pub fn read_wav(path: &Path) -> Result<Vec<Vec<f32>>> {
    let r = hound::WavReader::open(path)
        .map_err(|e| ModelError::Input(format!("audio {}: {e}", path.display())))?;
    wav_channels(r).map_err(|e| ModelError::Input(format!("audio {}: {e}", path.display())))
}

/// Decodes WAV bytes (an upload) as 16 kHz channels (−1…1).
///
/// # Errors
/// The bytes are not a WAV file that can be decoded, or it is empty.
pub fn decode_wav(bytes: &[u8]) -> Result<Vec<Vec<f32>>> {
    let r = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| ModelError::Input(format!("audio: {e}")))?;
    wav_channels(r).map_err(|e| ModelError::Input(format!("audio: {e}")))
}

fn wav_channels<R: std::io::Read>(
    mut r: hound::WavReader<R>,
) -> std::result::Result<Vec<Vec<f32>>, String> {
    let spec = r.spec();
    let n_ch = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| e.to_string())?,
        hound::SampleFormat::Int => {
            let full = (1i64 << (spec.bits_per_sample.clamp(8, 32) - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 / full))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| e.to_string())?
        }
    };
    if interleaved.is_empty() {
        return Err("no samples".into());
    }
    let mut chans = vec![Vec::with_capacity(interleaved.len() / n_ch); n_ch];
    for frame in interleaved.chunks_exact(n_ch) {
        for (c, s) in chans.iter_mut().zip(frame) {
            c.push(*s);
        }
    }
    Ok(chans
        .into_iter()
        .map(|c| resample(&c, spec.sample_rate, RATE))
        .collect())
}

/// Linear resampling from `from` Hz to `to` Hz.
#[must_use]
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let n = (x.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = from as f64 / to as f64;
    (0..n)
        .map(|i| {
            let t = i as f64 * step;
            let j = t.floor() as usize;
            let f = (t - j as f64) as f32;
            let a = x[j.min(x.len() - 1)];
            let b = x[(j + 1).min(x.len() - 1)];
            a + (b - a) * f
        })
        .collect()
}

/// A lesson's S-T analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StAnalysis {
    /// Samples taken.
    pub samples: u32,
    /// Share of T samples.
    pub rt: f32,
    /// Changes between T and S per sample.
    pub ch: f32,
}

/// The S-T lesson types (thresholds of the standard method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonType {
    /// 练习型: Rt ≤ 0.3.
    Practice,
    /// 讲授型: Rt ≥ 0.7.
    Lecture,
    /// 对话型: Ch ≥ 0.4.
    Dialogue,
    /// 混合型: the rest.
    Mixed,
}

impl StAnalysis {
    /// Samples every `interval_s` over `duration_s`; a sample is T when `teacher` speech
    /// covers its midpoint.
    #[must_use]
    pub fn from_segments(teacher: &[Segment], duration_s: f32, interval_s: f32) -> Self {
        Self::from_sequence(&Self::sequence(teacher, duration_s, interval_s))
    }

    /// The samples themselves, every `interval_s` over `duration_s`: `true` (T) when
    /// `teacher` speech covers the sample's midpoint, `false` (S) otherwise.
    #[must_use]
    pub fn sequence(teacher: &[Segment], duration_s: f32, interval_s: f32) -> Vec<bool> {
        let n = (duration_s / interval_s).floor().max(0.0) as u32;
        (0..n)
            .map(|i| {
                let mid = (i as f32 + 0.5) * interval_s;
                teacher.iter().any(|s| s.start_s <= mid && mid < s.end_s)
            })
            .collect()
    }

    /// Rt and Ch of a sequence of samples (`true`: T).
    #[must_use]
    pub fn from_sequence(samples: &[bool]) -> Self {
        let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        let mut t = 0u32;
        let mut runs = 0u32;
        let mut last: Option<bool> = None;
        for &is_t in samples {
            t += u32::from(is_t);
            if last != Some(is_t) {
                runs += 1;
            }
            last = Some(is_t);
        }
        if n == 0 {
            return Self {
                samples: 0,
                rt: 0.0,
                ch: 0.0,
            };
        }
        Self {
            samples: n,
            rt: t as f32 / n as f32,
            ch: runs.saturating_sub(1) as f32 / n as f32,
        }
    }

    /// The lesson type.
    #[must_use]
    pub fn lesson_type(&self) -> LessonType {
        if self.rt <= 0.3 {
            LessonType::Practice
        } else if self.rt >= 0.7 {
            LessonType::Lecture
        } else if self.ch >= 0.4 {
            LessonType::Dialogue
        } else {
            LessonType::Mixed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_silero_thresholds_and_drop_blips() {
        let mut p = vec![0.0f32; 100];
        // 0.32 s of speech at chunks 10..20, a 1-chunk dip inside, a 2-chunk blip at 50.
        for x in &mut p[10..20] {
            *x = 0.9;
        }
        p[14] = 0.2;
        p[50] = 0.9;
        p[51] = 0.9;
        let s = segments(&p);
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(
            (s[0].start_s - 0.32).abs() < 1e-3 && (s[0].end_s - 0.64).abs() < 1e-3,
            "{s:?}"
        );
    }

    #[test]
    fn st_analysis_gives_rt_ch_and_the_lesson_type() {
        // 10 samples of 30 s: T T T S S T T S S S
        let t = [
            Segment {
                start_s: 0.0,
                end_s: 90.0,
            },
            Segment {
                start_s: 150.0,
                end_s: 210.0,
            },
        ];
        let a = StAnalysis::from_segments(&t, 300.0, 30.0);
        assert_eq!(a.samples, 10);
        assert!((a.rt - 0.5).abs() < 1e-6);
        assert!((a.ch - 0.3).abs() < 1e-6);
        assert_eq!(a.lesson_type(), LessonType::Mixed);
        let lecture = StAnalysis::from_segments(
            &[Segment {
                start_s: 0.0,
                end_s: 300.0,
            }],
            300.0,
            30.0,
        );
        assert_eq!(lecture.lesson_type(), LessonType::Lecture);
        assert_eq!(
            StAnalysis::from_segments(&[], 300.0, 30.0).lesson_type(),
            LessonType::Practice
        );
    }

    #[test]
    fn silent_and_clipped_channels_are_named() {
        let silent = vec![0.0f32; 1000];
        let clipped: Vec<f32> = (0..1000)
            .map(|i| if i % 10 == 0 { 1.0 } else { 0.3 })
            .collect();
        let p = check_audio(&[silent, clipped]);
        assert_eq!(p.len(), 2);
        assert!(p[0].to_string().contains("channel 0 is silent"));
        assert!(p[1].to_string().contains("channel 1 clips on 10.0 %"));
    }

    #[test]
    fn resampling_keeps_duration_and_a_ramp() {
        let x: Vec<f32> = (0..22050).map(|i| i as f32 / 22050.0).collect();
        let y = resample(&x, 22050, 16000);
        assert_eq!(y.len(), 16000);
        assert!((y[8000] - 0.5).abs() < 1e-3);
    }
}

//! Matching a face embedding against the enrolled gallery of a lesson's roster.
//!
//! Embeddings are L2-normalised, so cosine similarity is their dot product. A face matches
//! the most similar enrolled student when that similarity reaches the threshold **and**
//! beats the second most similar student by a margin (a face halfway between two students
//! is nobody, not a guess). Both numbers are configurable; their defaults belong to the
//! embedder (`crate::face::EmbedderSpec`), and `docs/models.md` says how they were chosen.

/// A match: which enrolled student, and how sure.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The student's id (as the roster names them).
    pub student_id: String,
    /// Cosine similarity with the best template of that student.
    pub similarity: f32,
    /// How far ahead of the next student (1.0 when nobody else is enrolled).
    pub margin: f32,
}

/// Enrolled templates, several per student allowed.
#[derive(Clone, Default)]
pub struct Gallery {
    entries: Vec<(String, Vec<f32>)>,
    threshold: f32,
    margin: f32,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the templates or the ids.
        write!(f, "Gallery({} templates)", self.entries.len())
    }
}

/// Cosine similarity of two L2-normalised vectors (0 when their lengths differ).
#[must_use]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Gallery {
    /// An empty gallery with these decision rules.
    #[must_use]
    pub fn new(threshold: f32, margin: f32) -> Self {
        Self {
            entries: Vec::new(),
            threshold,
            margin,
        }
    }

    /// Adds a template for `student_id`.
    pub fn add(&mut self, student_id: &str, template: Vec<f32>) {
        self.entries.push((student_id.to_owned(), template));
    }

    /// Removes every template of `student_id` (consent withdrawn, or left the class).
    pub fn remove(&mut self, student_id: &str) {
        self.entries.retain(|(id, _)| id != student_id);
    }

    /// The similarity a match needs.
    #[must_use]
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Templates held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nobody is enrolled.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The highest similarity of `embedding` to any template, matched or not: shown (as a
    /// number, never who) to the technician for tuning the threshold on site.
    #[must_use]
    pub fn nearest(&self, embedding: &[f32]) -> Option<f32> {
        self.entries
            .iter()
            .map(|(_, t)| cosine(embedding, t))
            .max_by(f32::total_cmp)
    }

    /// The enrolled student `embedding` belongs to, if any.
    #[must_use]
    pub fn best(&self, embedding: &[f32]) -> Option<Match> {
        // Best similarity per student.
        let mut per: Vec<(&str, f32)> = Vec::new();
        for (id, t) in &self.entries {
            let s = cosine(embedding, t);
            match per.iter_mut().find(|(i, _)| i == id) {
                Some(e) => e.1 = e.1.max(s),
                None => per.push((id, s)),
            }
        }
        per.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (id, sim) = *per.first()?;
        let margin = per.get(1).map_or(1.0, |s| sim - s.1);
        (sim >= self.threshold && margin >= self.margin).then(|| Match {
            student_id: id.to_owned(),
            similarity: sim,
            margin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn the_closest_student_above_threshold_and_margin_matches() {
        let mut g = Gallery::new(0.6, 0.05);
        g.add("s01", unit(&[1.0, 0.0, 0.0]));
        g.add("s02", unit(&[0.0, 1.0, 0.0]));
        let m = g.best(&unit(&[0.9, 0.2, 0.1])).unwrap();
        assert_eq!(m.student_id, "s01");
        assert!(m.similarity > 0.9 && m.margin > 0.5);
        // Far from everyone: nobody.
        assert_eq!(g.best(&unit(&[0.0, 0.0, 1.0])), None);
        // Halfway between two students: nobody, not a guess.
        assert_eq!(g.best(&unit(&[1.0, 1.0, 0.1])), None);
    }

    #[test]
    fn withdrawn_students_are_never_matched_again() {
        let mut g = Gallery::new(0.5, 0.0);
        g.add("s01", unit(&[1.0, 0.0]));
        g.add("s01", unit(&[0.9, 0.1]));
        g.remove("s01");
        assert!(g.is_empty());
        assert_eq!(g.best(&unit(&[1.0, 0.0])), None);
        assert_eq!(format!("{g:?}"), "Gallery(0 templates)");
    }

    #[test]
    fn nearest_reports_the_closest_template_even_below_the_threshold() {
        let mut g = Gallery::new(0.9, 0.0);
        assert_eq!(g.nearest(&unit(&[1.0, 0.0])), None);
        g.add("a", unit(&[1.0, 0.0]));
        g.add("b", unit(&[0.0, 1.0]));
        let probe = unit(&[1.0, 1.0]);
        assert!(g.best(&probe).is_none());
        let n = g.nearest(&probe).unwrap();
        assert!((n - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5, "{n}");
        assert!((g.threshold() - 0.9).abs() < f32::EPSILON);
    }
}

#![allow(clippy::unwrap_used)]
//! Face detection and recognition on the real models and real photos.

mod common;

use common::{data, model};
use ketang_models::face::{DLIB_RESNET, MOBILEFACENET};
use ketang_models::face::{Face, FaceDetector, FaceEmbedder, Range};
use ketang_models::gallery::Gallery;
use ketang_models::{Frame, ModelError};

fn full() -> FaceDetector {
    FaceDetector::load(&model("face_detection_full_range.onnx"), Range::Full, 0.5).unwrap()
}

fn short() -> FaceDetector {
    FaceDetector::load(&model("face_detection_short_range.onnx"), Range::Short, 0.5).unwrap()
}

fn near(f: &Face, x: f32, y: f32, tol: f32) -> bool {
    let (cx, cy) = f.centre();
    (cx - x).abs() <= tol && (cy - y).abs() <= tol
}

#[test]
fn one_face_is_found_where_it_is_in_each_photo_by_both_ranges() {
    for det in [full(), short()] {
        let a = det
            .detect(&Frame::open(&data("astronaut.png")).unwrap())
            .unwrap();
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(near(&a[0], 226.0, 124.0, 20.0), "{a:?}");
        // Eyes level and apart, inside the box.
        let (r, l) = (a[0].keypoints[0], a[0].keypoints[1]);
        assert!(l.0 - r.0 > 25.0 && (l.1 - r.1).abs() < 15.0, "{a:?}");
        // The cameraman, in profile behind his camera.
        let c = det
            .detect(&Frame::open(&data("camera.png")).unwrap())
            .unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(near(&c[0], 232.0, 160.0, 20.0), "{c:?}");
    }
}

#[test]
fn every_face_of_the_mosaic_is_found_once_by_tiling_and_not_by_one_small_pass() {
    let d = full();
    let m = Frame::open(&data("mosaic.png")).unwrap();
    let want = [
        (112.0, 59.0),
        (624.0, 59.0),
        (368.0, 315.0),
        (376.0, 79.0),
        (120.0, 336.0),
        (632.0, 336.0),
    ];
    let faces = d.detect_tiled(&m, 256).unwrap();
    assert_eq!(faces.len(), 6, "{faces:?}");
    for (x, y) in want {
        assert_eq!(
            faces.iter().filter(|f| near(f, x, y, 15.0)).count(),
            1,
            "one face near ({x}, {y}): {faces:?}"
        );
    }
    // The short-range model on the whole frame misses these small faces: why tiling exists.
    assert!(short().detect(&m).unwrap().len() < 6);
}

#[test]
fn the_same_person_matches_across_mirrored_and_shifted_crops_and_others_do_not() {
    // Per embedder: the least similarity of the astronaut's probes and of the cameraman's
    // (he is in profile behind his camera, so his mirror image is harder), whether his
    // probes reach the embedder's threshold, the lead over the other person, and the most
    // two different people may score. dlib's descriptors lie in a narrow cone (different
    // people score ~0.85, docs/models.md), hence its own numbers; and dlib does not
    // recognise this profile at its threshold (a miss falls back to the card, never a
    // wrong name), MobileFaceNet does.
    for (spec, dim, astronaut_min, camera_min, camera_matches, lead, cross_max) in [
        (DLIB_RESNET, 128, 0.97, 0.9, false, 0.05, 0.9),
        (MOBILEFACENET, 192, 0.8, 0.5, true, 0.3, 0.3),
    ] {
        let d = short();
        let e = FaceEmbedder::load(&model(spec.file), spec).unwrap();
        assert_eq!(e.dim(), dim);
        let emb = |f: &Frame| {
            let faces = d.detect(f).unwrap();
            assert_eq!(faces.len(), 1);
            e.embed(f, &faces[0]).unwrap()
        };
        let astronaut = Frame::open(&data("astronaut.png")).unwrap();
        let camera = Frame::open(&data("camera.png")).unwrap();
        let mut g = Gallery::new(spec.threshold, spec.margin);
        let mut ranking = Gallery::new(0.0, 0.0);
        for (id, f) in [("s-astronaut", &astronaut), ("s-camera", &camera)] {
            g.add(id, emb(f));
            ranking.add(id, emb(f));
        }
        for (probe, who, at_least, matches) in [
            (astronaut.mirrored(), "s-astronaut", astronaut_min, true),
            (
                astronaut.crop(30, 20, 460, 470).unwrap(),
                "s-astronaut",
                astronaut_min,
                true,
            ),
            (camera.mirrored(), "s-camera", camera_min, camera_matches),
            (
                camera.crop(12, 20, 490, 480).unwrap(),
                "s-camera",
                camera_min,
                camera_matches,
            ),
        ] {
            let p = emb(&probe);
            let nearest = ranking.best(&p).unwrap();
            assert_eq!(nearest.student_id, who, "{}", spec.name);
            assert!(
                nearest.similarity >= at_least,
                "{} {who}: {nearest:?}",
                spec.name
            );
            assert!(nearest.margin > lead, "{} {who}: {nearest:?}", spec.name);
            let m = g.best(&p);
            assert_eq!(
                m.map(|m| m.student_id),
                matches.then(|| who.to_owned()),
                "{} {who}: {nearest:?} against the threshold {}",
                spec.name,
                spec.threshold
            );
        }
        // Different people are far apart.
        let cross = ketang_models::gallery::cosine(&emb(&astronaut), &emb(&camera));
        assert!(cross < cross_max, "{}: {cross}", spec.name);
        // Nobody enrolled matches a stranger: the astronaut against the cameraman alone.
        let mut only_camera = Gallery::new(spec.threshold, spec.margin);
        only_camera.add("s-camera", emb(&camera));
        assert_eq!(only_camera.best(&emb(&astronaut)), None, "{}", spec.name);
    }
}

#[test]
fn black_and_tiny_frames_and_bad_model_files_are_clear_errors_or_nothing() {
    let d = full();
    let black = Frame::from_rgb(640, 480, vec![0; 640 * 480 * 3]).unwrap();
    assert!(d.detect_tiled(&black, 320).unwrap().is_empty());
    assert!(Frame::from_rgb(16, 16, vec![0; 16 * 16 * 3]).is_err());
    let e = Frame::open(&data("nope.png")).unwrap_err().to_string();
    assert!(e.contains("nope.png"), "{e}");

    let dir = std::env::temp_dir().join(format!("ketang-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = dir.join("corrupt.onnx");
    std::fs::write(&corrupt, b"not a model at all").unwrap();
    let e = FaceDetector::load(&corrupt, Range::Full, 0.5).unwrap_err();
    assert!(matches!(e, ModelError::Load { .. }), "{e}");
    assert!(e.to_string().contains("corrupt.onnx"), "{e}");
    let missing = FaceEmbedder::load(&dir.join("missing.onnx"), MOBILEFACENET)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("missing.onnx") && missing.contains("no such file"),
        "{missing}"
    );
    // A real model of the wrong kind: shapes are checked and named.
    let e = FaceDetector::load(&model("face_detection_short_range.onnx"), Range::Full, 0.5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("face_detection_short_range.onnx"), "{e}");
    let e = FaceEmbedder::load(&model("face_detection_full_range.onnx"), MOBILEFACENET)
        .unwrap_err()
        .to_string();
    assert!(e.contains("face_detection_full_range.onnx"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nanodet_finds_each_person_and_the_head_count_merges_faces_inside_them() {
    use ketang_models::person::{PersonDetector, head_count};
    let d = PersonDetector::load(&model("nanodet.onnx"), 0.5).unwrap();
    for (img, face) in [
        ("astronaut.png", (226.0, 124.0)),
        ("camera.png", (232.0, 160.0)),
    ] {
        let people = d.detect(&Frame::open(&data(img)).unwrap()).unwrap();
        assert_eq!(people.len(), 1, "{img}: {people:?}");
        assert!(
            people[0].contains(face),
            "{img}: the face is inside the person: {people:?}"
        );
        assert!(
            people[0].h > 350.0,
            "{img}: a whole person, not a part: {people:?}"
        );
        assert_eq!(head_count(&people, &[face]), 1);
    }
    let m = Frame::open(&data("mosaic.png")).unwrap();
    let people = d.detect(&m).unwrap();
    let faces: Vec<(f32, f32)> = full()
        .detect_tiled(&m, 256)
        .unwrap()
        .iter()
        .map(Face::centre)
        .collect();
    let n = head_count(&people, &faces);
    assert_eq!(
        n,
        6,
        "{} people, {} faces: {people:?}",
        people.len(),
        faces.len()
    );
}

/// Crowded rooms (#20): a face inside another person's box is someone else when that
/// person's own face is already there (a student half hidden behind a classmate). Built from
/// a packaged photo with a known answer: the astronaut, and a second head pasted over her
/// suit, inside her person box: two people.
#[test]
fn a_face_inside_another_persons_box_counts_when_that_person_has_their_own() {
    const K: usize = 2;
    const DX: usize = 60;
    const DY: usize = 330;
    use ketang_models::person::{PersonDetector, head_count};
    let a = Frame::open(&data("astronaut.png")).unwrap();
    let (w, h) = (512usize, 512usize);
    assert_eq!(a.rgb().len(), w * h * 3);
    let mut rgb = a.rgb().to_vec();
    // Her head (about x 150..300, y 30..210) copied at scale 1/K onto her suit: the head
    // of someone behind her, whose body she hides.
    let (sx, sy, cw, ch, dx, dy) = (150usize, 30usize, 150usize, 180usize, DX, DY);
    for y in 0..ch / K {
        for x in 0..cw / K {
            let s = ((sy + y * K) * w + sx + x * K) * 3;
            let d = ((dy + y) * w + dx + x) * 3;
            let px = [a.rgb()[s], a.rgb()[s + 1], a.rgb()[s + 2]];
            rgb[d..d + 3].copy_from_slice(&px);
        }
    }
    let crowd = Frame::from_rgb(512, 512, rgb).unwrap();
    let people = PersonDetector::load(&model("nanodet.onnx"), 0.5)
        .unwrap()
        .detect(&crowd)
        .unwrap();
    let faces: Vec<(f32, f32)> = full()
        .detect(&crowd)
        .unwrap()
        .iter()
        .map(Face::centre)
        .collect();
    assert_eq!(faces.len(), 2, "both faces are found: {faces:?}");
    let inside = faces
        .iter()
        .filter(|f| people.iter().any(|p| p.contains(**f)))
        .count();
    assert_eq!(
        inside, 2,
        "the test needs both faces inside a person box: {people:?} {faces:?}"
    );
    assert_eq!(
        head_count(&people, &faces),
        2,
        "{} people, faces {faces:?}: {people:?}",
        people.len()
    );
}

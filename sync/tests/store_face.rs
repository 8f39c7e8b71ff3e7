#![allow(clippy::unwrap_used)]
//! Face consent and sealed templates: no template without consent, withdrawal deletes,
//! the roster is authoritative for the consents it gave, nothing reaches the outbox.

mod common;

use common::*;
use ketang_sync::*;

fn audit(action: &str, target: &str) -> Audit {
    Audit {
        actor: "technician".into(),
        role: "technician".into(),
        action: action.into(),
        target: target.into(),
        detail: serde_json::json!({}),
        at: at("2026-11-23T08:10:00+08:00"),
        clock_synced: true,
    }
}

fn template(student: &str) -> SealedTemplate {
    SealedTemplate {
        student_id: student.into(),
        model: "mobilefacenet_192".into(),
        nonce: vec![1; 12],
        sealed: vec![7; 784],
    }
}

#[tokio::test]
async fn a_template_needs_consent_and_withdrawal_deletes_every_template_with_an_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    let e = store
        .face_enrol(template("S001"), audit("face.enrol", "S001"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no guardian consent record"), "{e}");
    let e = store
        .face_consent_grant(
            "S999".into(),
            "2026-09-01T00:00:00+08:00".into(),
            "technician".into(),
            Some("tech".into()),
            audit("face.consent", "S999"),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no student \"S999\""), "{e}");

    store
        .face_consent_grant(
            "S001".into(),
            "2026-09-01T00:00:00+08:00".into(),
            "technician".into(),
            Some("tech".into()),
            audit("face.consent", "S001"),
        )
        .await
        .unwrap();
    store
        .face_enrol(template("S001"), audit("face.enrol", "S001"))
        .await
        .unwrap();
    store
        .face_enrol(template("S001"), audit("face.enrol", "S001"))
        .await
        .unwrap();
    assert_eq!(
        store
            .face_templates("mobilefacenet_192".into())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .face_templates("other_model".into())
            .await
            .unwrap()
            .is_empty()
    );
    let c = store.face_consents().await.unwrap();
    assert_eq!(
        (
            c[0].student_id.as_str(),
            c[0].templates,
            c[0].source.as_str()
        ),
        ("S001", 2, "technician")
    );
    // Nothing of this is queued for the cloud.
    assert!(
        store
            .outbox_pending()
            .await
            .unwrap()
            .values()
            .all(|&n| n == 0)
    );

    let n = store
        .face_consent_withdraw("S001".into(), audit("face.consent_withdrawn", "S001"))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(
        store
            .face_templates("mobilefacenet_192".into())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.face_consents().await.unwrap().is_empty());
    let log = store.audit_tail(1).await.unwrap();
    assert_eq!(log[0].action, "face.consent_withdrawn");
    assert_eq!(log[0].detail["templates_deleted"], 2);
}

#[tokio::test]
async fn the_roster_grants_and_withdraws_its_own_consents_but_not_a_technicians() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let mut s = school();
    s.students[0].face_consent = Some("2026-09-01T00:00:00+08:00".into());
    store.replace_school(s.clone()).await.unwrap();
    store
        .face_consent_grant(
            "S002".into(),
            "2026-09-02T00:00:00+08:00".into(),
            "technician".into(),
            Some("tech".into()),
            audit("face.consent", "S002"),
        )
        .await
        .unwrap();
    store
        .face_enrol(template("S001"), audit("face.enrol", "S001"))
        .await
        .unwrap();
    store
        .face_enrol(template("S002"), audit("face.enrol", "S002"))
        .await
        .unwrap();
    let c = store.face_consents().await.unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].source, "roster");

    // The next roster no longer lists S001's consent: withdrawn, templates gone, audited.
    let mut s2 = s;
    s2.students[0].face_consent = None;
    store.replace_school(s2).await.unwrap();
    let c = store.face_consents().await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].student_id, "S002", "the technician's consent stands");
    let t = store
        .face_templates("mobilefacenet_192".into())
        .await
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].student_id, "S002");
    let log = store.audit_tail(1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].target.as_str()),
        ("face.consent_withdrawn", "S001")
    );
    assert_eq!(log[0].detail["templates_deleted"], 1);
}

/// A student the roster snapshot no longer lists has left (#18, docs/privacy.md): consent,
/// face templates, cards, roster places and name go, with an audit row; the records the
/// school keeps (attendance) stay under the school number until retention prunes them.
#[tokio::test]
async fn a_student_who_left_loses_consent_templates_cards_and_name_with_an_audit_row() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    store
        .face_consent_grant(
            "S003".into(),
            "2026-09-01T00:00:00+08:00".into(),
            "technician".into(),
            Some("tech".into()),
            audit("face.consent", "S003"),
        )
        .await
        .unwrap();
    store
        .face_enrol(template("S003"), audit("face.enrol", "S003"))
        .await
        .unwrap();
    store
        .check_in(check_in("S003", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    // S003 leaves the school: the next snapshot lists S001 and S002 only.
    let mut next = school();
    next.students.retain(|s| s.id != "S003");
    next.rosters[0].members.retain(|m| m != "S003");
    store.replace_school(next).await.unwrap();

    assert!(
        store
            .face_templates("mobilefacenet_192".into())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .face_consents()
            .await
            .unwrap()
            .iter()
            .all(|c| c.student_id != "S003")
    );
    assert_eq!(store.card_owner("04A1B2C3".into()).await.unwrap(), None);
    let name = store.student_name("S003".into()).await.unwrap();
    assert!(
        name.as_deref().is_none_or(str::is_empty),
        "the name is kept: {name:?}"
    );
    let audit = store.audit_tail(20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "student.departed" && a.target == "S003"),
        "{audit:?}"
    );
    // The others are untouched, and a second snapshot does not audit S003 again.
    assert_eq!(
        store.student_name("S001".into()).await.unwrap().as_deref(),
        Some("学生1")
    );
    let mut again = school();
    again.students.retain(|s| s.id != "S003");
    again.rosters[0].members.retain(|m| m != "S003");
    store.replace_school(again).await.unwrap();
    let n = store
        .audit_tail(50)
        .await
        .unwrap()
        .iter()
        .filter(|a| a.action == "student.departed")
        .count();
    assert_eq!(n, 1);
    store.shutdown().await.unwrap();
}

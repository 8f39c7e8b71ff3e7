//! The uplink contract is typed once (`ketang-contract`) and documented once
//! (`docs/asyncapi.yaml`): this test generates the JSON Schema of every body type (as serde
//! serialises it) and compares it with the published schema, so the two cannot drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use ketang_sync::*;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// What the test compares of an object schema.
#[derive(Debug, Default, PartialEq)]
struct Shape {
    properties: BTreeSet<String>,
    required: BTreeSet<String>,
    /// Property → the values it may take, where the schema lists them.
    enums: BTreeMap<String, BTreeSet<String>>,
}

fn asyncapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn generated<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap()
}

/// The values a property schema allows, if it lists them (`enum`, `const`, through `$ref`,
/// `anyOf`/`oneOf` and nullable unions); `null` is left out.
fn values(schema: &Value, root: &Value) -> Option<BTreeSet<String>> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        let defs = root.get("$defs").or_else(|| root.get("definitions"))?;
        return values(&defs[name], root);
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        return Some(
            e.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        );
    }
    if let Some(c) = schema.get("const").and_then(Value::as_str) {
        return Some(BTreeSet::from([c.to_owned()]));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let mut all = BTreeSet::new();
            let mut any = false;
            for a in alts {
                if a.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                }
                all.extend(values(a, root)?);
                any = true;
            }
            return any.then_some(all);
        }
    }
    None
}

/// The shape of an object schema; a tagged enum (`oneOf` of objects) is the union of its
/// variants' properties, what all of them require, and each property's values over all.
fn shape(schema: &Value, root: &Value) -> Shape {
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let shapes: Vec<Shape> = variants.iter().map(|v| shape(v, root)).collect();
        let mut out = Shape::default();
        for (i, s) in shapes.iter().enumerate() {
            out.properties.extend(s.properties.iter().cloned());
            out.required = if i == 0 {
                s.required.clone()
            } else {
                out.required.intersection(&s.required).cloned().collect()
            };
            for (k, v) in &s.enums {
                out.enums
                    .entry(k.clone())
                    .or_default()
                    .extend(v.iter().cloned());
            }
        }
        return out;
    }
    let mut out = Shape::default();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            out.properties.insert(k.clone());
            if let Some(vals) = values(v, root) {
                out.enums.insert(k.clone(), vals);
            }
        }
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        out.required = req.iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    }
    out
}

fn check<T: JsonSchema + Body>(component: &str, problems: &mut Vec<String>) {
    check_as::<T>(component, T::STREAM.as_str(), problems);
}

fn check_as<T: JsonSchema>(component: &str, stream: &str, problems: &mut Vec<String>) {
    let spec = asyncapi();
    let published = &spec["components"]["schemas"][component];
    assert!(
        published.is_object(),
        "docs/asyncapi.yaml has no {component}"
    );
    let published = shape(published, &spec);
    let root = generated::<T>();
    let ours = shape(&root, &root);
    if ours.properties != published.properties {
        problems.push(format!(
            "{stream} ({component}): fields sent but not published: {:?}; published but never sent: {:?}",
            ours.properties.difference(&published.properties).collect::<Vec<_>>(),
            published.properties.difference(&ours.properties).collect::<Vec<_>>(),
        ));
    }
    let missing: Vec<_> = published.required.difference(&ours.required).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{stream} ({component}): published as required but not always sent: {missing:?}"
        ));
    }
    for (field, allowed) in &published.enums {
        if let Some(sent) = ours.enums.get(field)
            && sent != allowed
        {
            problems.push(format!(
                "{stream} ({component}).{field}: the type sends {sent:?}, the schema allows {allowed:?}"
            ));
        }
    }
}

#[test]
fn every_uplink_body_type_matches_its_published_schema() {
    let mut problems = Vec::new();
    check::<AttendanceBody>("AttendanceBody", &mut problems);
    check::<HealthCheckBody>("HealthCheckBody", &mut problems);
    check::<AlarmBody>("AlarmBody", &mut problems);
    check::<AckBody>("AckBody", &mut problems);
    check::<DroppedBody>("DroppedBody", &mut problems);
    check::<RejectedBody>("RejectedBody", &mut problems);
    check::<FollowupBody>("FollowupBody", &mut problems);
    check::<LessonBody>("LessonBody", &mut problems);
    check::<WhiteboardBody>("WhiteboardBody", &mut problems);
    check::<UpdateBody>("UpdateBody", &mut problems);
    check::<BehaviourBody>("BehaviourBody", &mut problems);
    check::<TelemetryBody>("TelemetryBody", &mut problems);
    check::<LessonReport>("LessonReportBody", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_school_path_message_matches_its_published_schema() {
    let mut problems = Vec::new();
    check_as::<ketang_sync::SchoolAlarmState>("SchoolAlarmState", "school/alarm", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_stream_has_a_body_type_and_a_published_schema() {
    // Every stream's body is typed in ketang-contract.
    let typed = [
        AttendanceBody::STREAM,
        HealthCheckBody::STREAM,
        AlarmBody::STREAM,
        AckBody::STREAM,
        DroppedBody::STREAM,
        RejectedBody::STREAM,
        FollowupBody::STREAM,
        LessonBody::STREAM,
        WhiteboardBody::STREAM,
        UpdateBody::STREAM,
        BehaviourBody::STREAM,
        TelemetryBody::STREAM,
        LessonReport::STREAM,
    ];
    let spec = asyncapi().to_string();
    for stream in Stream::ALL {
        assert!(typed.contains(&stream), "{stream} has no body type");
        assert!(
            spec.contains(&format!("\"const\":\"{}\"", stream.as_str())),
            "docs/asyncapi.yaml has no schema for {stream}"
        );
    }
}

#[test]
fn a_tagged_body_serialises_its_tag_as_the_state_field() {
    let raised = AlarmBody::Raised {
        alarm_id: "a1".into(),
        source: "button".into(),
        drill: false,
        raised_by: None,
    };
    let v = serde_json::to_value(&raised).unwrap();
    assert_eq!(v["state"], "raised");
    assert!(v.get("raised_by").is_none(), "absent, not null: {v}");
    let r = OutboxRecord::new(
        &raised,
        chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap(),
        true,
    );
    assert_eq!(r.stream, Stream::Alarm);
}

use std::path::Path;

use super::hardware::{GpioLine, WhiteboardDialect};
use super::*;

const GOOD: &str = r#"
data_dir = "/var/lib/ketang"

[device]
school_id = "hf-0042"
classroom_id = "g7-c3"
device_id = "kt-0001"
class_name = "七年级(3)班"

[http]
listen = "0.0.0.0:8080"

[sync]
broker_url = "mqtts://mqtt.edu.example.cn:8883"

[school]
timezone = "Asia/Shanghai"
late_after_min = 3
term_start = "2026-09-01"
term_end = "2027-01-22"

[[hardware.card_readers]]
name = "door"
driver = "mfrc522"
spi = "/dev/spidev0.0"
reset_line = 25

[[hardware.card_readers]]
name = "wedge"
driver = "evdev"
device = "/dev/input/by-id/usb-reader-event-kbd"

[hardware.thermometer]
driver = "mlx90614"
i2c = "/dev/i2c-1"

[[hardware.buttons]]
name = "alarm"
driver = "gpio"
line = 17
long_press_ms = 500

[hardware.siren]
driver = "gpio"
line = 22

[hardware.whiteboard]
driver = "serial"
port = "/dev/ttyS0"
dialect = "smart"
"#;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("/etc/ketang/ketang.toml"))
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn has(errs: &[String], needle: &str) -> bool {
    errs.iter().any(|e| e.contains(needle))
}

#[test]
fn a_complete_config_validates_into_checked_types() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.device.school_id, "hf-0042");
    assert_eq!(c.http.listen.port(), 8080);
    let b = c.sync.broker.unwrap();
    assert!(b.tls);
    assert_eq!(b.port, 8883);
    assert_eq!(c.school.late_after, std::time::Duration::from_secs(180));
    assert_eq!(c.school.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(c.hardware.devices.len(), 6);
    let wb = c.hardware.of_kind(DeviceKind::Whiteboard).next().unwrap();
    assert!(matches!(
        wb.driver,
        DeviceDriver::Serial {
            baud: 19_200,
            dialect: WhiteboardDialect::Smart,
            ..
        }
    ));
    let button = c.hardware.of_kind(DeviceKind::Button).next().unwrap();
    assert!(matches!(
        &button.driver,
        DeviceDriver::Gpio(GpioLine {
            line: 17,
            active_low: true,
            ..
        })
    ));
}

#[test]
fn several_errors_are_reported_together_with_their_paths() {
    let text = r#"
[device]
school_id = "hf 0042"
device_id = "kt/1"

[http]
listen = "0.0.0.0:0"

[school]
fever_threshold_c = 42.0
timezone = "Mars/Olympus"

[[hardware.card_readers]]
name = "door"
driver = "mfrc522"
i2c = "/dev/i2c-1"
"#;
    let errs = errors(text);
    assert!(
        has(&errs, "device.school_id: \"hf 0042\" is not valid"),
        "{errs:#?}"
    );
    assert!(has(&errs, "device.classroom_id: missing"), "{errs:#?}");
    assert!(has(&errs, "device.device_id"), "{errs:#?}");
    assert!(has(&errs, "http.listen: port 0"), "{errs:#?}");
    assert!(has(&errs, "school.fever_threshold_c"), "{errs:#?}");
    assert!(has(&errs, "school.timezone"), "{errs:#?}");
    assert!(
        has(
            &errs,
            "hardware.card_readers[0].i2c: does not apply to driver \"mfrc522\""
        ),
        "{errs:#?}"
    );
    assert!(
        has(&errs, "hardware.card_readers[0].spi: missing"),
        "{errs:#?}"
    );
    assert!(errs.len() >= 8, "{errs:#?}");
}

#[test]
fn unknown_keys_are_refused_in_every_section_at_once() {
    let text = GOOD
        .replace("[http]", "[http]\nlisten_port = 80")
        .replace("[sync]", "[sync]\nbroker = \"x\"")
        + "\n[extra]\nx = 1\n";
    let errs = errors(&text);
    assert!(has(&errs, "extra: unknown key"), "{errs:#?}");
    assert!(has(&errs, "unknown field `listen_port`"), "{errs:#?}");
    assert!(has(&errs, "unknown field `broker`"), "{errs:#?}");
}

#[test]
fn wrong_types_name_the_field_and_the_line_of_the_section() {
    let errs = errors(&GOOD.replace("late_after_min = 3", "late_after_min = \"three\""));
    assert!(
        has(
            &errs,
            "school.late_after_min: invalid type: string \"three\", expected i64"
        ),
        "{errs:#?}"
    );
    assert!(
        has(&errs, "expected i64 (in the section at line 16)"),
        "{errs:#?}"
    );
}

#[test]
fn malformed_toml_gives_the_line() {
    let errs = errors("[device\nschool_id = 1");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("line 1") && errs[0].contains("not valid TOML"),
        "{errs:#?}"
    );
}

#[test]
fn a_missing_device_section_is_an_error() {
    let errs = errors("data_dir = \"/tmp/x\"");
    assert!(has(&errs, "device: missing"), "{errs:#?}");
}

#[test]
fn unreadable_tls_files_are_named() {
    let text = GOOD.replace(
        "broker_url = \"mqtts://mqtt.edu.example.cn:8883\"",
        "broker_url = \"mqtts://mqtt.edu.example.cn:8883\"\nca_file = \"/nonexistent/ca.pem\"\nclient_cert = \"/nonexistent/c.pem\"",
    );
    let errs = errors(&text);
    assert!(
        has(&errs, "sync.ca_file: cannot read /nonexistent/ca.pem"),
        "{errs:#?}"
    );
    assert!(
        has(&errs, "sync.client_key: mutual TLS needs both"),
        "{errs:#?}"
    );
}

#[test]
fn the_schools_proxy_is_an_http_url_with_a_port_and_its_login_lives_in_a_private_file() {
    let with = |line: &str| {
        GOOD.replace(
            "broker_url = \"mqtts://mqtt.edu.example.cn:8883\"",
            &format!("broker_url = \"mqtts://mqtt.edu.example.cn:8883\"\n{line}"),
        )
    };
    let c = parse(&with("proxy_url = \"http://10.20.0.8:3128\"")).unwrap();
    let p = c.sync.proxy.clone().unwrap();
    assert_eq!((p.host.as_str(), p.port), ("10.20.0.8", 3128));
    assert_eq!(c.update.proxy, c.sync.proxy, "downloads use the same proxy");
    for (line, want) in [
        (
            "proxy_url = \"https://proxy.cn:3128\"",
            "sync.proxy_url: scheme \"https\" is not http",
        ),
        (
            "proxy_url = \"http://proxy.cn\"",
            "sync.proxy_url: the URL has no port",
        ),
        (
            "proxy_credentials_file = \"/nonexistent\"",
            "sync.proxy_credentials_file: cannot read",
        ),
    ] {
        let errs = errors(&with(line));
        assert!(has(&errs, want), "{line}: {errs:#?}");
    }
    let errs = errors(&with("proxy_url = \"http://kt:hunter2@proxy.cn:3128\""));
    assert!(
        has(
            &errs,
            "sync.proxy_url: credentials in the URL are not allowed"
        ),
        "{errs:#?}"
    );
    assert!(!errs.iter().any(|e| e.contains("hunter2")));
}

#[test]
fn credentials_in_the_broker_url_are_refused_without_echoing_them() {
    let errs = errors(&GOOD.replace("mqtts://mqtt.edu", "mqtts://user:hunter2@mqtt.edu"));
    assert!(
        has(
            &errs,
            "sync.broker_url: credentials in the URL are not allowed"
        ),
        "{errs:#?}"
    );
    assert!(!errs.iter().any(|e| e.contains("hunter2")));
}

#[test]
fn a_credentials_file_must_be_private_and_its_password_is_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mqtt.credentials");
    std::fs::write(&f, "username = \"kt-0001\"\npassword = \"s3cret-pw\"\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = GOOD.replace(
        "broker_url = \"mqtts://mqtt.edu.example.cn:8883\"",
        &format!(
            "broker_url = \"mqtts://mqtt.edu.example.cn:8883\"\ncredentials_file = \"{}\"",
            f.display()
        ),
    );
    let errs = errors(&text);
    assert!(has(&errs, "chmod 600"), "{errs:#?}");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = parse(&text).unwrap();
    let creds = c.sync.credentials.clone().unwrap();
    assert_eq!(creds.password.expose(), "s3cret-pw");
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

#[test]
fn hardware_simulated_gives_the_standard_set() {
    let text = GOOD
        .split("[[hardware.card_readers]]")
        .next()
        .unwrap()
        .to_owned()
        + "[hardware]\nsimulated = true\n";
    let c = parse(&text).unwrap();
    assert_eq!(c.hardware, HardwareConfig::all_simulated());
}

#[test]
fn unknown_drivers_list_the_valid_ones() {
    let errs = errors(&GOOD.replace("driver = \"mlx90614\"", "driver = \"dht22\""));
    assert!(
        has(
            &errs,
            "hardware.thermometer.driver: \"dht22\" is not a thermometer driver; expected one of simulated, mlx90614"
        ),
        "{errs:#?}"
    );
}

#[test]
fn duplicate_device_names_are_refused() {
    let errs = errors(&GOOD.replace("name = \"wedge\"", "name = \"door\""));
    assert!(has(&errs, "\"door\" is used twice"), "{errs:#?}");
}

#[test]
fn impossible_windows_and_terms_are_refused() {
    let errs = errors(&GOOD.replace(
        "term_end = \"2027-01-22\"",
        "term_end = \"2026-01-22\"\nmorning_check = \"09:00-08:00\"",
    ));
    assert!(
        has(&errs, "school.term_end: is not after term_start"),
        "{errs:#?}"
    );
    assert!(
        has(
            &errs,
            "school.morning_check: \"09:00-08:00\" ends before it starts"
        ),
        "{errs:#?}"
    );
}

#[test]
fn relative_paths_resolve_against_the_config_file() {
    let c = parse(&GOOD.replace("data_dir = \"/var/lib/ketang\"", "data_dir = \"data\"")).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/ketang/data"));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = include_str!("../../../image/ketang.example.toml");
    let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.hardware.devices.len(), 9);
}

#[test]
fn data_max_mb_caps_the_database_and_refuses_nonsense() {
    let c = parse(&GOOD.replace(
        "data_dir = \"/var/lib/ketang\"",
        "data_dir = \"/var/lib/ketang\"\ndata_max_mb = 512",
    ))
    .unwrap();
    assert_eq!(c.data_max_bytes, Some(512 * 1024 * 1024));
    let errs = errors(&GOOD.replace(
        "data_dir = \"/var/lib/ketang\"",
        "data_dir = \"/var/lib/ketang\"\ndata_max_mb = 1",
    ));
    assert!(
        has(&errs, "data_max_mb: expected an integer number of MiB"),
        "{errs:#?}"
    );
}

#[test]
fn holidays_and_makeup_days_build_the_calendar() {
    let text = GOOD.replace(
        "term_end = \"2027-01-22\"",
        "term_end = \"2027-01-22\"\nholidays = [\"2026-10-01/2026-10-07\", \"2027-01-01\"]\nmakeup_days = [{ date = \"2026-10-10\", runs = \"周一\" }]",
    );
    let c = parse(&text).unwrap();
    let d = |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(c.school.calendar.holidays.len(), 8);
    assert_eq!(c.school.calendar.runs(d("2026-10-03")), None);
    assert_eq!(c.school.calendar.runs(d("2026-10-10")), Some(1));
}

#[test]
fn bad_holidays_and_makeup_days_are_named() {
    let text = GOOD.replace(
        "term_end = \"2027-01-22\"",
        "term_end = \"2027-01-22\"\nholidays = [\"2026-10-07/2026-10-01\", \"2026-13-01\"]\nmakeup_days = [{ date = \"2026-10-10\", runs = \"someday\" }]",
    );
    let errs = errors(&text);
    assert!(
        has(
            &errs,
            "school.holidays[0]: \"2026-10-07/2026-10-01\" must run forwards"
        ),
        "{errs:#?}"
    );
    assert!(
        has(&errs, "school.holidays[1]: \"2026-13-01\" is not a date"),
        "{errs:#?}"
    );
    assert!(
        has(
            &errs,
            "school.makeup_days[0].runs: \"someday\" is not a weekday"
        ),
        "{errs:#?}"
    );
}

#[test]
fn a_keyboard_wedge_reader_takes_a_card_number_format() {
    let c = parse(&GOOD.replace(
        "device = \"/dev/input/by-id/usb-reader-event-kbd\"",
        "device = \"/dev/input/by-id/usb-reader-event-kbd\"\nformat = \"decimal_reversed\"",
    ))
    .unwrap();
    let r = c
        .hardware
        .of_kind(DeviceKind::CardReader)
        .find(|d| d.driver.name() == "evdev")
        .unwrap();
    assert!(matches!(
        r.driver,
        DeviceDriver::Evdev {
            format: ketang_drivers::wedge::WedgeFormat::DecimalReversed,
            ..
        }
    ));
    let errs = errors(&GOOD.replace(
        "device = \"/dev/input/by-id/usb-reader-event-kbd\"",
        "device = \"/dev/input/by-id/usb-reader-event-kbd\"\nformat = \"octal\"",
    ));
    assert!(has(&errs, ".format"), "{errs:#?}");
    assert!(has(&errs, "decimal, decimal_reversed or hex"), "{errs:#?}");
}

#[test]
fn an_epaper_panel_model_must_be_one_the_sign_supports() {
    let base = format!(
        "{}[hardware.epaper]\ndriver = \"waveshare\"\nspi = \"/dev/spidev0.1\"\nchip = \"/dev/gpiochip0\"\n\
         dc_line = 25\nrst_line = 17\nbusy_line = 24\n",
        &GOOD[..["\n[[hardware", "\n[hardware"]
            .iter()
            .filter_map(|m| GOOD.find(m))
            .min()
            .unwrap_or(GOOD.len())]
    );
    let c = parse(&format!("{base}model = \"4in2\"\n")).unwrap();
    let d = c
        .hardware
        .devices
        .iter()
        .find(|d| d.name == "epaper")
        .unwrap();
    assert!(matches!(
        d.driver,
        DeviceDriver::Waveshare {
            model: ketang_drivers::epaper::EpdModel::Epd4in2,
            ..
        }
    ));
    let errs = errors(&format!("{base}model = \"epd2in13_v3\"\n"));
    assert!(
        has(
            &errs,
            "hardware.epaper.model: \"epd2in13_v3\" is not a supported panel; expected one of epd7in5_v2, epd5in83_v2, epd4in2"
        ),
        "{errs:#?}"
    );
}

#[test]
fn telemetry_every_s_takes_0_or_10_to_86400_and_defaults_to_five_minutes() {
    let with = |v: &str| GOOD.replace("[sync]", &format!("[sync]\ntelemetry_every_s = {v}"));
    assert_eq!(
        parse(GOOD).unwrap().sync.telemetry_every,
        Some(Duration::from_secs(300))
    );
    assert_eq!(parse(&with("0")).unwrap().sync.telemetry_every, None);
    assert_eq!(
        parse(&with("10")).unwrap().sync.telemetry_every,
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        parse(&with("86400")).unwrap().sync.telemetry_every,
        Some(Duration::from_secs(86_400))
    );
    for bad in ["9", "86401", "-5"] {
        let errs = errors(&with(bad));
        assert!(has(&errs, "sync.telemetry_every_s"), "{bad}: {errs:?}");
    }
}

#[test]
fn the_school_path_needs_the_boards_own_login_named_by_its_device_id() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("school.credentials");
    let write = |user: &str| {
        std::fs::write(&f, format!("username = \"{user}\"\npassword = \"pw-9x\"\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // No login at all: refused (anyone on the LAN could then raise alarms).
    let bare = format!("{GOOD}\n[school_link]\nbroker_url = \"mqtt://192.168.1.10:1883\"\n");
    assert!(
        has(&errors(&bare), "school_link.credentials_file: missing"),
        "{:#?}",
        errors(&bare)
    );
    let with = format!("{bare}credentials_file = \"{}\"\n", f.display());
    write("kt-0002");
    let errs = errors(&with);
    assert!(has(&errs, "must be this board's device id"), "{errs:#?}");
    write("kt-0001");
    let c = parse(&with).unwrap_or_else(|e| panic!("{e}"));
    let link = c.school_link.unwrap();
    assert_eq!((link.broker.port, link.duty_room), (1883, false));
    assert_eq!(link.keep_alive, std::time::Duration::from_secs(5));
    assert!(!format!("{:?}", link.credentials).contains("pw-9x"));
    let duty = format!("{with}role = \"duty_room\"\n");
    assert!(parse(&duty).unwrap().school_link.unwrap().duty_room);
    let odd = format!("{with}role = \"gate\"\nkeep_alive_s = 1\n");
    let errs = errors(&odd);
    assert!(
        has(&errs, "school_link.role") && has(&errs, "school_link.keep_alive_s"),
        "{errs:#?}"
    );
    // Without a school path the board runs as before.
    assert!(parse(GOOD).unwrap().school_link.is_none());
}

#[test]
fn alarm_sms_numbers_are_checked_without_echoing_them() {
    let c = parse(&format!(
        "{GOOD}\n[alarm]\nsms_numbers = [\"+8613800000001\", \"13900000002\"]\nsms_after_s = 15\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.alarm.sms_numbers.len(), 2);
    assert_eq!(c.alarm.sms_after, std::time::Duration::from_secs(15));
    assert!(!c.alarm.sms_on_drill);
    let errs = errors(&format!(
        "{GOOD}\n[alarm]\nsms_numbers = [\"call 110 now\"]\nsms_after_s = 1\n"
    ));
    assert!(
        has(&errs, "alarm.sms_numbers[0]: not a phone number"),
        "{errs:#?}"
    );
    assert!(!errs.iter().any(|e| e.contains("call 110")), "{errs:#?}");
    assert!(has(&errs, "alarm.sms_after_s"), "{errs:#?}");
    assert!(parse(GOOD).unwrap().alarm.sms_numbers.is_empty());
}

#[test]
fn face_attendance_is_on_with_a_camera_and_the_face_model_brings_its_thresholds() {
    // A camera configured: on, with dlib's descriptor and its threshold.
    let c = parse(&format!("{GOOD}\n[inference]\ncamera = \"simulated\"\n")).unwrap();
    assert!(c.inference.enabled && c.inference.camera.is_some());
    assert_eq!(c.inference.embedder.name, "dlib_resnet_v1");
    assert!((c.inference.match_threshold - 0.94).abs() < 1e-6);
    // Turned off by hand, or no camera: off.
    let c = parse(&format!(
        "{GOOD}\n[inference]\nenabled = false\ncamera = \"simulated\"\n"
    ))
    .unwrap();
    assert!(!c.inference.enabled && c.inference.camera.is_none());
    assert!(!parse(GOOD).unwrap().inference.enabled);
    // The other model brings its own threshold; a threshold given wins.
    let c = parse(&format!(
        "{GOOD}\n[inference]\ncamera = \"simulated\"\nface_model = \"mobilefacenet_192_b1\"\n"
    ))
    .unwrap();
    assert!((c.inference.match_threshold - 0.45).abs() < 1e-6);
    assert!((c.inference.match_margin - 0.05).abs() < 1e-6);
    let c = parse(&format!(
        "{GOOD}\n[inference]\ncamera = \"simulated\"\nmatch_threshold = 0.9\n"
    ))
    .unwrap();
    assert!((c.inference.match_threshold - 0.9).abs() < 1e-6);
    // An unknown model is named with the ones there are.
    let e = errors(&format!(
        "{GOOD}\n[inference]\ncamera = \"simulated\"\nface_model = \"arcface\"\n"
    ));
    assert!(
        has(&e, "inference.face_model") && has(&e, "\"dlib_resnet_v1\", \"mobilefacenet_192_b1\""),
        "{e:?}"
    );
}

#[test]
fn the_voice_threshold_defaults_to_0_78_and_is_checked_at_its_edges() {
    let with =
        |v: &str| format!("{GOOD}\n[inference]\ncamera = \"simulated\"\nvoice_threshold = {v}\n");
    let c = parse(&format!("{GOOD}\n[inference]\ncamera = \"simulated\"\n")).unwrap();
    assert!((c.inference.voice_threshold - 0.78).abs() < 1e-6);
    for ok in ["0.5", "0.99"] {
        let c = parse(&with(ok)).unwrap();
        assert!((f64::from(c.inference.voice_threshold) - ok.parse::<f64>().unwrap()).abs() < 1e-6);
    }
    for bad in ["0.49", "1.0"] {
        assert!(
            has(&errors(&with(bad)), "inference.voice_threshold"),
            "{bad}"
        );
    }
}

#[test]
fn the_doors_health_order_is_one_of_two() {
    use crate::engine::health::Order;
    assert_eq!(
        parse(GOOD).unwrap().school.health_order,
        Order::ReadingFirst
    );
    let c = parse(&GOOD.replace(
        "late_after_min = 3",
        "late_after_min = 3\nhealth_order = \"card_first\"",
    ))
    .unwrap();
    assert_eq!(c.school.health_order, Order::CardFirst);
    let e = errors(&GOOD.replace(
        "late_after_min = 3",
        "late_after_min = 3\nhealth_order = \"either\"",
    ));
    assert!(
        has(&e, "school.health_order") && has(&e, "card_first"),
        "{e:?}"
    );
}

#[test]
fn the_evening_check_is_optional_and_apart_from_the_others() {
    assert!(parse(GOOD).unwrap().school.evening_check.is_none());
    let with = |w: &str| {
        GOOD.replace(
            "late_after_min = 3",
            &format!("late_after_min = 3\nevening_check = \"{w}\""),
        )
    };
    let c = parse(&with("18:30-20:30")).unwrap();
    assert_eq!(
        c.school
            .evening_check
            .map(|(a, b)| (a.to_string(), b.to_string())),
        Some(("18:30:00".to_owned(), "20:30:00".to_owned()))
    );
    let e = errors(&with("13:00-19:00"));
    assert!(
        has(&e, "school.evening_check") && has(&e, "overlaps school.noon_check"),
        "{e:?}"
    );
    let e = errors(&with("20:30-18:30"));
    assert!(has(&e, "ends before it starts"), "{e:?}");
}

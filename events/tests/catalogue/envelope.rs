//! Parsing a CloudEvent an integrating body published.

use serde_json::{json, Value};
use tledger_events::envelope::CONTENT_TYPE;
use tledger_events::FactErrorKind::{InvalidValue, Malformed};
use tledger_events::{CloudEvent, Fact, FactType};

use crate::support::{assert_error, bytes, cloudevent, nomination, remove, set, with};

fn published() -> Value {
    cloudevent(FactType::TrainingNominated, nomination())
}

#[test]
fn a_published_event_gives_back_its_envelope_and_fact() {
    let (event, fact) = CloudEvent::parse_published(&bytes(&published())).expect("a valid event");
    let expected = Fact::from_data(FactType::TrainingNominated, &nomination()).expect("valid data");
    assert_eq!(fact, expected);
    assert_eq!(
        (
            event.specversion.as_str(),
            event.id.as_str(),
            event.source.as_str(),
            event.event_type.as_str()
        ),
        (
            "1.0",
            "moha-2008-000123",
            "/publishers/qn-moha",
            "training.nominated.v1"
        )
    );
    assert_eq!(event.time.as_deref(), Some("2008-08-15T09:30:00+07:00"));
    assert_eq!(event.data, nomination());
    assert_eq!(CONTENT_TYPE, "application/cloudevents+json");
}

#[test]
fn optional_envelope_attributes_and_a_publisher_signature_may_be_left_out_or_set() {
    let minimal = with(&published(), |e| {
        remove(e, "/time");
        remove(e, "/datacontenttype");
    });
    let (event, _) = CloudEvent::parse_published(&bytes(&minimal))
        .expect("time and datacontenttype are optional");
    assert_eq!((event.time, event.datacontenttype), (None, None));
    let signed = with(&published(), |e| {
        set(e, "/tlsignature", json!("ab01"));
        set(e, "/subject", json!("dl-2008-0001"));
    });
    let (event, _) = CloudEvent::parse_published(&bytes(&signed))
        .expect("a signature is a publisher's attribute");
    assert_eq!(event.tlsignature.as_deref(), Some("ab01"));
}

#[test]
fn it_should_not_accept_a_message_that_is_not_json() {
    assert_error(
        CloudEvent::parse_published(b"specversion=1.0"),
        Malformed,
        "",
        "the message is not JSON",
    );
}

#[test]
fn it_should_not_accept_a_cloudevent_given_as_an_array() {
    let e = published();
    let as_array = json!([
        e["specversion"],
        e["id"],
        e["source"],
        e["type"],
        e["time"],
        e["datacontenttype"],
        null,
        null,
        e["data"]
    ]);
    assert_error(
        CloudEvent::parse_published(&bytes(&as_array)),
        Malformed,
        "",
        "expected an object",
    );
}

#[test]
fn it_should_not_accept_specversion_0_3() {
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| {
            set(e, "/specversion", json!("0.3"))
        }))),
        Malformed,
        "/specversion",
        "only CloudEvents 1.0 is accepted, not \"0.3\"",
    );
}

#[test]
fn it_should_not_accept_an_unknown_envelope_attribute() {
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| {
            set(e, "/traceparent", json!("00-abc"))
        }))),
        Malformed,
        "/traceparent",
        "unknown field `traceparent`",
    );
}

#[test]
fn it_should_not_accept_a_missing_envelope_attribute() {
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| remove(e, "/source")))),
        Malformed,
        "/source",
        "missing field `source`",
    );
}

#[test]
fn it_should_not_accept_an_unknown_type() {
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| {
            set(e, "/type", json!("training.started.v1"))
        }))),
        InvalidValue,
        "/type",
        "unknown fact type \"training.started.v1\"",
    );
}

#[test]
fn it_should_not_accept_a_ledger_only_attribute_from_a_publisher() {
    let ledger_only = [
        ("position", json!(42)),
        ("recordedat", json!("2008-08-15T02:31:00Z")),
        ("effectivedate", json!("2008-08-15")),
        ("publisher", json!("/publishers/qn-moha")),
        ("correlationid", json!("c-1")),
    ];
    for (attribute, value) in ledger_only {
        assert_error(
            CloudEvent::parse_published(&bytes(&with(&published(), |e| {
                set(e, &format!("/{attribute}"), value)
            }))),
            Malformed,
            &format!("/{attribute}"),
            "this attribute is set by the ledger, not by a publisher",
        );
    }
}

#[test]
fn it_should_not_accept_bad_data_and_locates_its_errors_under_data() {
    let cases = [
        (
            with(&nomination(), |d| remove(d, "/program/title")),
            Malformed,
            "/data/program/title",
            "missing field `title`",
        ),
        (
            with(&nomination(), |d| set(d, "/official_id", json!("dl.007"))),
            InvalidValue,
            "/data/official_id",
            "not '.'",
        ),
        (
            with(&nomination(), |d| {
                set(d, "/funding/1/amount_vnd", json!(-5))
            }),
            InvalidValue,
            "/data/funding/1/amount_vnd",
            "not -5",
        ),
        (
            with(&nomination(), |d| {
                set(d, "/planned_end", json!("2008-01-01"))
            }),
            InvalidValue,
            "/data/planned_end",
            "is after planned_end",
        ),
        (
            json!("not an object"),
            Malformed,
            "/data",
            "invalid type: string",
        ),
    ];
    for (data, kind, pointer, message) in cases {
        let event = cloudevent(FactType::TrainingNominated, data);
        assert_error(
            CloudEvent::parse_published(&bytes(&event)),
            kind,
            pointer,
            message,
        );
    }
}

#[test]
fn it_should_not_accept_a_time_that_is_not_rfc_3339() {
    for bad in ["2008-08-15 09:30:00", "2008-08-15", "yesterday"] {
        assert_error(
            CloudEvent::parse_published(&bytes(&with(&published(), |e| {
                set(e, "/time", json!(bad))
            }))),
            Malformed,
            "/time",
            &format!("time must be an RFC 3339 timestamp, not {bad:?}"),
        );
    }
}

#[test]
fn it_should_not_accept_data_that_is_not_application_json() {
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| {
            set(e, "/datacontenttype", json!("text/xml"))
        }))),
        Malformed,
        "/datacontenttype",
        "data must be application/json, not \"text/xml\"",
    );
}

#[test]
fn it_should_not_accept_an_empty_id_or_source() {
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| set(e, "/id", json!(""))))),
        Malformed,
        "/id",
        "id must not be empty",
    );
    assert_error(
        CloudEvent::parse_published(&bytes(&with(&published(), |e| {
            set(e, "/source", json!(""))
        }))),
        Malformed,
        "/source",
        "source must not be empty",
    );
}

/// The message as text with `member` written again first in the document.
fn with_repeated(message: &Value, member: &str) -> Vec<u8> {
    format!("{{{member},{}", &message.to_string()[1..]).into_bytes()
}

#[test]
fn it_should_not_accept_an_envelope_attribute_or_data_member_twice() {
    for (member, pointer) in [
        (r#""id":"moha-2008-000999""#, "/id"),
        (r#""type":"training.enrolled.v1""#, "/type"),
        (r#""source":"/publishers/other""#, "/source"),
    ] {
        assert_error(
            CloudEvent::parse_published(&with_repeated(&published(), member)),
            Malformed,
            pointer,
            "appears more than once",
        );
    }
    let text =
        published()
            .to_string()
            .replacen("\"data\":{", "\"data\":{\"enrollment_id\":\"other\",", 1);
    assert_error(
        CloudEvent::parse_published(text.as_bytes()),
        Malformed,
        "/data/enrollment_id",
        "appears more than once",
    );
}

#[test]
fn it_should_not_accept_nul_in_an_envelope_attribute_or_in_data() {
    for pointer in ["/source", "/id", "/subject", "/data/program/title"] {
        let message = with(&published(), |e| set(e, pointer, json!("x\u{0}")));
        assert_error(
            CloudEvent::parse_published(&bytes(&message)),
            Malformed,
            pointer,
            "U+0000",
        );
    }
}

#[test]
fn a_source_has_at_most_255_bytes() {
    // Vietnamese letters are two or three bytes: bytes are what the
    // receipts' index holds.
    let long = format!("/publishers/{}", "ộ".repeat(81));
    assert_eq!(long.len(), 255);
    let message = with(&published(), |e| set(e, "/source", json!(long)));
    assert!(CloudEvent::parse_published(&bytes(&message)).is_ok());
    let longer = with(&published(), |e| {
        set(e, "/source", json!(format!("{long}x")))
    });
    assert_error(
        CloudEvent::parse_published(&bytes(&longer)),
        InvalidValue,
        "/source",
        "at most 255 bytes",
    );
}

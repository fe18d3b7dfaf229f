//! The one home of proto <-> domain conversions that every service, the CLI and the tests
//! share: calendar dates, timestamps, claim statuses and denial categories (as proto enums and
//! as the enum names events carry), and the type name of every event payload.
//!
//! Wire strings (`CLAIM_STATUS_PAID`, `DENIAL_CATEGORY_ELIGIBILITY`, `arflow.events.v1.…`)
//! are read and written here and nowhere else: a consumer parses a payload's strings into
//! domain types at its edge ([`parse_claim_status`], [`parse_denial_category`]) and asks the
//! domain its questions (`ClaimStatus::is_open`).
use arflow_domain::{ClaimStatus, DenialCategory, FieldViolation};
use chrono::{DateTime, Datelike as _, NaiveDate, TimeZone as _, Utc};

use crate::claims::v1 as pb;
use crate::common::v1::Date;
use crate::events::v1 as events;

/// A calendar date as `arflow.common.v1.Date`.
pub fn date_to_pb(d: NaiveDate) -> Date {
    Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// The date a `Date` message names; None when it is not a calendar date (month 13, day 0,
/// the all-zero default).
pub fn date_from_pb(d: &Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

/// An optional request date: absent is None; present but not a calendar date adds a
/// violation on `field` (and is None downstream).
pub fn opt_date(d: Option<&Date>, field: &str, v: &mut Vec<FieldViolation>) -> Option<NaiveDate> {
    let d = d?;
    let parsed = date_from_pb(d);
    if parsed.is_none() {
        v.push(FieldViolation {
            field: field.to_string(),
            description: "not a valid calendar date".into(),
        });
    }
    parsed
}

/// An instant as `google.protobuf.Timestamp`.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos().min(999_999_999) as i32,
    }
}

/// The instant a `Timestamp` names; None when out of range.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).ok()?)
        .single()
}

/// `claims.v1.ClaimStatus` of a domain status.
pub fn claim_status_to_pb(s: ClaimStatus) -> pb::ClaimStatus {
    use pb::ClaimStatus as P;
    match s {
        ClaimStatus::Draft => P::Draft,
        ClaimStatus::Submitted => P::Submitted,
        ClaimStatus::Accepted => P::Accepted,
        ClaimStatus::Rejected => P::Rejected,
        ClaimStatus::Pending => P::Pending,
        ClaimStatus::Paid => P::Paid,
        ClaimStatus::PartiallyPaid => P::PartiallyPaid,
        ClaimStatus::Denied => P::Denied,
        ClaimStatus::Appealed => P::Appealed,
        ClaimStatus::WrittenOff => P::WrittenOff,
        ClaimStatus::Closed => P::Closed,
    }
}

/// The domain status of a `claims.v1.ClaimStatus` value; None for UNSPECIFIED and unknown
/// numbers.
pub fn claim_status_from_pb(s: i32) -> Option<ClaimStatus> {
    let p = pb::ClaimStatus::try_from(s).ok()?;
    ClaimStatus::ALL
        .into_iter()
        .find(|&c| claim_status_to_pb(c) == p)
}

/// The name events carry for a status: the claims.v1 enum name (`CLAIM_STATUS_PAID`).
pub fn claim_status_name(s: ClaimStatus) -> &'static str {
    claim_status_to_pb(s).as_str_name()
}

/// Inverse of [`claim_status_name`]; None for `CLAIM_STATUS_UNSPECIFIED`, the empty string
/// and anything else unknown.
pub fn parse_claim_status(name: &str) -> Option<ClaimStatus> {
    claim_status_from_pb(pb::ClaimStatus::from_str_name(name)? as i32)
}

/// `claims.v1.DenialCategory` of a domain category. The API has no value for the two
/// adjustment groups that are not denials (contractual, patient responsibility): they read as
/// OTHER there.
pub fn denial_category_to_pb(c: DenialCategory) -> pb::DenialCategory {
    use pb::DenialCategory as P;
    match c {
        DenialCategory::MissingInformation => P::MissingInformation,
        DenialCategory::Eligibility => P::Eligibility,
        DenialCategory::Authorization => P::Authorization,
        DenialCategory::CodingModifier => P::CodingModifier,
        DenialCategory::MedicalNecessity => P::MedicalNecessity,
        DenialCategory::NonCovered => P::NonCovered,
        DenialCategory::Credentialing => P::Credentialing,
        DenialCategory::Duplicate => P::Duplicate,
        DenialCategory::CoordinationOfBenefits => P::CoordinationOfBenefits,
        DenialCategory::TimelyFiling => P::TimelyFiling,
        DenialCategory::Contractual
        | DenialCategory::PatientResponsibility
        | DenialCategory::Other => P::Other,
    }
}

/// The domain category of a `claims.v1.DenialCategory` value: `Ok(None)` for UNSPECIFIED (no
/// filter), `Err(())` for a number the API does not define.
#[allow(clippy::result_unit_err)]
pub fn denial_category_from_pb(c: i32) -> Result<Option<DenialCategory>, ()> {
    match pb::DenialCategory::try_from(c) {
        Ok(pb::DenialCategory::Unspecified) => Ok(None),
        Ok(pb::DenialCategory::Other) => Ok(Some(DenialCategory::Other)),
        Ok(p) => Ok(DenialCategory::ALL
            .into_iter()
            .find(|&d| denial_category_to_pb(d) == p)),
        Err(_) => Err(()),
    }
}

/// The name events carry for a category: the claims.v1 enum name where the API has one
/// (`DENIAL_CATEGORY_ELIGIBILITY`), and the same spelling for the two adjustment groups that
/// are not denials (`DENIAL_CATEGORY_CONTRACTUAL`, `DENIAL_CATEGORY_PATIENT_RESPONSIBILITY`),
/// so a consumer can tell them from a real denial and skip them.
pub fn denial_category_name(c: DenialCategory) -> &'static str {
    match c {
        DenialCategory::Contractual => "DENIAL_CATEGORY_CONTRACTUAL",
        DenialCategory::PatientResponsibility => "DENIAL_CATEGORY_PATIENT_RESPONSIBILITY",
        _ => denial_category_to_pb(c).as_str_name(),
    }
}

/// Inverse of [`denial_category_name`]; None for UNSPECIFIED, empty and unknown names.
pub fn parse_denial_category(name: &str) -> Option<DenialCategory> {
    DenialCategory::ALL
        .into_iter()
        .find(|&c| denial_category_name(c) == name)
}

/// One status composite of a 277 as ClaimStatusReported carries it.
pub fn reported_status_to_pb(
    r: &arflow_domain::followup::ReportedStatus,
) -> events::claim_status_reported::Status {
    events::claim_status_reported::Status {
        category_code: r.category.clone(),
        status_code: r.status_code.clone(),
        entity_code: r.entity_code.clone(),
        code_list_qualifier: r.code_list_qualifier.clone(),
        status_date: r.date.map(date_to_pb),
        message: r.message.clone(),
    }
}

/// Inverse of [`reported_status_to_pb`], at a consumer's edge (an unreadable date is None).
pub fn reported_status_from_pb(
    s: events::claim_status_reported::Status,
) -> arflow_domain::followup::ReportedStatus {
    arflow_domain::followup::ReportedStatus {
        date: s.status_date.as_ref().and_then(date_from_pb),
        category: s.category_code,
        status_code: s.status_code,
        entity_code: s.entity_code,
        code_list_qualifier: s.code_list_qualifier,
        message: s.message,
    }
}

/// An event payload: a message of `arflow.events.v1` that travels in an envelope. Its
/// envelope `event_type` is [`EventPayload::TYPE`], the message's full protobuf name, defined
/// here once for every payload (`platform::bus::envelope` writes it, `bus::payload` reads it).
pub trait EventPayload: prost::Message + Default {
    /// The full protobuf name, e.g. `arflow.events.v1.ClaimSubmitted`.
    const TYPE: &'static str;
}

macro_rules! event_payloads {
    ($($name:ident),* $(,)?) => {
        $(impl EventPayload for events::$name {
            const TYPE: &'static str = concat!("arflow.events.v1.", stringify!($name));
        })*
        /// Every event payload's type name, for tests that check the list is complete.
        pub const EVENT_TYPES: &[&str] = &[$(concat!("arflow.events.v1.", stringify!($name))),*];
    };
}

event_payloads!(
    ClaimSubmitted,
    ClaimStatusChanged,
    ClaimPaid,
    ClaimDenied,
    RemittancePosted,
    ClaimStatusReported,
    TimerFired,
    AgingSnapshotTaken,
    DenialDigestCompiled,
    TaskCreated,
    TaskAssigned,
    TaskCompleted,
    TaskUnassigned,
    FollowUpScheduled,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_the_proto_enum_and_the_event_name() {
        for s in ClaimStatus::ALL {
            assert_eq!(claim_status_from_pb(claim_status_to_pb(s) as i32), Some(s));
            assert_eq!(parse_claim_status(claim_status_name(s)), Some(s));
            assert_eq!(
                claim_status_name(s),
                format!("CLAIM_STATUS_{}", s.as_str().to_ascii_uppercase())
            );
        }
        assert_eq!(claim_status_from_pb(0), None);
        assert_eq!(parse_claim_status("CLAIM_STATUS_UNSPECIFIED"), None);
        assert_eq!(parse_claim_status(""), None);
        assert_eq!(parse_claim_status("paid"), None);
    }

    #[test]
    fn denial_categories_round_trip() {
        for c in DenialCategory::ALL {
            assert_eq!(parse_denial_category(denial_category_name(c)), Some(c));
            assert_eq!(
                denial_category_name(c),
                format!("DENIAL_CATEGORY_{}", c.as_str().to_ascii_uppercase())
            );
            let api = denial_category_from_pb(denial_category_to_pb(c) as i32);
            match c {
                // Not denials: the API has no value for them.
                DenialCategory::Contractual | DenialCategory::PatientResponsibility => {
                    assert_eq!(api, Ok(Some(DenialCategory::Other)))
                }
                _ => assert_eq!(api, Ok(Some(c))),
            }
        }
        assert_eq!(denial_category_from_pb(0), Ok(None));
        assert_eq!(denial_category_from_pb(99), Err(()));
        assert_eq!(parse_denial_category("DENIAL_CATEGORY_UNSPECIFIED"), None);
        assert_eq!(parse_denial_category(""), None);
    }

    #[test]
    fn dates_and_timestamps_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 28).expect("date");
        assert_eq!(date_from_pb(&date_to_pb(d)), Some(d));
        assert_eq!(date_from_pb(&Date::default()), None);
        let mut v = Vec::new();
        let bad = Date {
            year: 2026,
            month: 2,
            day: 30,
        };
        assert_eq!(opt_date(Some(&bad), "claim.submission_date", &mut v), None);
        assert_eq!(v[0].field, "claim.submission_date");
        assert_eq!(opt_date(None, "x", &mut v), None);
        assert_eq!(v.len(), 1);
        let at = Utc
            .timestamp_opt(1_700_000_000, 123_000)
            .single()
            .expect("instant");
        assert_eq!(from_timestamp(&timestamp(at)), Some(at));
    }

    #[test]
    fn event_types_are_the_full_protobuf_names() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut payloads: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "arflow.events.v1")
            .flat_map(|f| {
                f.message_type
                    .iter()
                    .map(|m| format!("arflow.events.v1.{}", m.name()))
            })
            // Envelopes and the messages nested in payloads are not payloads themselves.
            .filter(|n| !n.starts_with("arflow.events.v1.Envelope"))
            .filter(|n| !n.ends_with("Total") && !n.ends_with("Line"))
            .collect();
        payloads.sort();
        let mut ours: Vec<String> = EVENT_TYPES.iter().map(|s| s.to_string()).collect();
        ours.sort();
        assert_eq!(
            ours, payloads,
            "every event payload implements EventPayload, by its name"
        );
        assert_eq!(
            <events::ClaimSubmitted as EventPayload>::TYPE,
            "arflow.events.v1.ClaimSubmitted"
        );
    }
}

//! Store <-> proto conversions of the assignment API, and the names the service's events
//! carry for task kinds and outcomes (the assignment.v1 enum names, from the enums).
use super::*;

pub(super) fn specialist_to_proto(s: &store::Specialist) -> pb::Specialist {
    let f = &s.fields;
    pb::Specialist {
        id: s.id.clone(),
        display_name: f.display_name.clone(),
        payer_ids: f.payer_ids.clone(),
        clinic_ids: f.clinic_ids.clone(),
        capacity: i32::try_from(f.capacity).unwrap_or(i32::MAX),
        working_hours: Some(hours_to_proto(&f.working_hours)),
        active: f.active,
        out_of_office: f.out_of_office,
        key_id: f.key_id.clone().unwrap_or_default(),
        open_tasks: i32::try_from(s.open_tasks).unwrap_or(i32::MAX),
        create_time: Some(wire::timestamp(s.created_at)),
        update_time: Some(wire::timestamp(s.updated_at)),
    }
}

pub(super) fn hours_to_proto(h: &WorkingHours) -> pb::WorkingHours {
    pb::WorkingHours {
        days: h.days.clone(),
        start_time: h.start_time.clone(),
        end_time: h.end_time.clone(),
        time_zone: h.time_zone.clone(),
    }
}

/// The assignment.v1 `TaskKind` of a stored kind: the one conversion of task kinds.
pub(crate) fn kind_to_proto(k: TaskKindName) -> pb::TaskKind {
    match k {
        TaskKindName::Denial => pb::TaskKind::Denial,
        TaskKindName::Rejected => pb::TaskKind::Rejected,
        TaskKindName::Aging => pb::TaskKind::Aging,
        TaskKindName::NoResponse => pb::TaskKind::NoResponse,
        TaskKindName::Deadline => pb::TaskKind::Deadline,
        TaskKindName::FollowUp => pb::TaskKind::FollowUp,
        TaskKindName::Resubmission => pb::TaskKind::Resubmission,
        TaskKindName::InformationRequested => pb::TaskKind::InformationRequested,
        TaskKindName::Recoupment => pb::TaskKind::Recoupment,
    }
}

/// The name events and queue statistics carry for a task kind: the assignment.v1 enum name
/// (`TASK_KIND_DENIAL`).
pub fn task_kind_name(k: TaskKindName) -> &'static str {
    kind_to_proto(k).as_str_name()
}

pub(super) fn status_to_proto(s: &str) -> pb::TaskStatus {
    match s {
        "unassigned" => pb::TaskStatus::Unassigned,
        "assigned" => pb::TaskStatus::Assigned,
        "in_progress" => pb::TaskStatus::InProgress,
        "completed" => pb::TaskStatus::Completed,
        _ => pb::TaskStatus::Unspecified,
    }
}

pub(super) const OUTCOMES: [(pb::TaskOutcome, &str); 6] = [
    (pb::TaskOutcome::Paid, "paid"),
    (pb::TaskOutcome::Appealed, "appealed"),
    (
        pb::TaskOutcome::CorrectedAndResubmitted,
        "corrected_and_resubmitted",
    ),
    (pb::TaskOutcome::WrittenOff, "written_off"),
    (pb::TaskOutcome::PatientBilled, "patient_billed"),
    (pb::TaskOutcome::Other, "other"),
];

/// The stored outcome (`appealed`) of an assignment.v1 `TaskOutcome`; None for UNSPECIFIED
/// and unknown numbers.
pub(crate) fn outcome_from_proto(outcome: i32) -> Option<&'static str> {
    OUTCOMES
        .iter()
        .find(|(p, _)| *p as i32 == outcome)
        .map(|(_, n)| *n)
}

/// The name TaskCompleted carries for a stored outcome: the assignment.v1 enum name
/// (`TASK_OUTCOME_APPEALED`); UNSPECIFIED for a name the API does not know.
pub fn outcome_name(outcome: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(_, n)| *n == outcome)
        .map_or(pb::TaskOutcome::Unspecified, |(p, _)| *p)
        .as_str_name()
}

pub(super) fn task_to_proto(t: &store::Task) -> pb::Task {
    let outcome = t
        .outcome
        .as_deref()
        .and_then(|o| OUTCOMES.iter().find(|(_, n)| *n == o))
        .map_or(pb::TaskOutcome::Unspecified, |(p, _)| *p);
    pb::Task {
        id: t.id.clone(),
        claim_id: t.claim_id.clone(),
        clinic_id: t.clinic_id.clone(),
        payer_id: t.payer_id.clone(),
        kind: kind_to_proto(t.kind) as i32,
        status: status_to_proto(&t.status) as i32,
        detail: t.detail.clone(),
        specialist_id: t.specialist_id.clone().unwrap_or_default(),
        priority: i32::try_from(t.priority).unwrap_or(i32::MAX),
        priority_reasons: t
            .reasons
            .iter()
            .map(|r| pb::PriorityReason {
                factor: r.factor.clone(),
                points: r.points,
                why: r.why.clone(),
            })
            .collect(),
        balance_cents: t.balance_cents,
        denial_category: t.denial_category.clone(),
        denial_resolution: t.denial_resolution.clone(),
        denial_owner: t.denial_owner.clone(),
        appealable: t.appealable,
        denied_amount_cents: t.denied_amount_cents,
        denial_id: t.denial_id.clone(),
        deadline: t.deadline.map(wire::date_to_pb),
        notes: t.notes.clone(),
        snooze_until: t.snooze_until.map(wire::timestamp),
        due_time: Some(wire::timestamp(t.due_at)),
        outcome: outcome as i32,
        create_time: Some(wire::timestamp(t.created_at)),
        update_time: Some(wire::timestamp(t.updated_at)),
    }
}

pub(super) const CHANNELS: [(pb::FollowUpChannel, &str); 5] = [
    (pb::FollowUpChannel::Phone, "phone"),
    (pb::FollowUpChannel::Portal, "portal"),
    (pb::FollowUpChannel::Edi276277, "edi_276_277"),
    (pb::FollowUpChannel::Fax, "fax"),
    (pb::FollowUpChannel::Mail, "mail"),
];

pub(super) const ANSWERS: [(pb::FollowUpAnswer, &str); 5] = [
    (pb::FollowUpAnswer::InProcess, "in_process"),
    (pb::FollowUpAnswer::Paid, "paid"),
    (pb::FollowUpAnswer::Denied, "denied"),
    (pb::FollowUpAnswer::MoreInfoNeeded, "more_info_needed"),
    (pb::FollowUpAnswer::NoRecord, "no_record"),
];

pub(super) fn follow_up_to_proto(f: &store::FollowUp) -> pb::FollowUp {
    let channel = CHANNELS
        .iter()
        .find(|(_, n)| *n == f.channel)
        .map_or(pb::FollowUpChannel::Unspecified, |(p, _)| *p);
    let answer = ANSWERS
        .iter()
        .find(|(_, n)| *n == f.answer)
        .map_or(pb::FollowUpAnswer::Unspecified, |(p, _)| *p);
    pb::FollowUp {
        id: f.id.clone(),
        claim_id: f.claim_id.clone(),
        task_id: f.task_id.clone().unwrap_or_default(),
        specialist_id: f.specialist_id.clone().unwrap_or_default(),
        channel: channel as i32,
        payer_reference: f.payer_reference.clone(),
        representative: f.representative.clone(),
        answer: answer as i32,
        paid_date: f.paid_date.map(wire::date_to_pb),
        check_number: f.check_number.clone(),
        denial_reason: f.denial_reason.clone(),
        notes: f.notes.clone(),
        next_follow_up_date: f.next_follow_up_date.map(wire::date_to_pb),
        contact_time: Some(wire::timestamp(f.contacted_at)),
    }
}

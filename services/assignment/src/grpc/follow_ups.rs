//! LogFollowUp and ListFollowUps.
use super::*;

pub(super) async fn log_follow_up(
    api: &AssignmentApi,
    request: Request<pb::LogFollowUpRequest>,
) -> Result<Response<pb::LogFollowUpResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let r = request.into_inner();
    let f = r.follow_up.unwrap_or_default();
    let mut v = Violations::new();
    if f.claim_id.trim().is_empty() {
        v.push(("follow_up.claim_id".into(), "required".into()));
    }
    let channel = CHANNELS
        .iter()
        .find(|(p, _)| *p as i32 == f.channel)
        .map(|(_, n)| n.to_string());
    if channel.is_none() {
        v.push((
            "follow_up.channel".into(),
            "required: how the payer was reached".into(),
        ));
    }
    let answer = ANSWERS
        .iter()
        .find(|(p, _)| *p as i32 == f.answer)
        .map(|(_, n)| n.to_string());
    if answer.is_none() {
        v.push((
            "follow_up.answer".into(),
            "required: what the payer said".into(),
        ));
    }
    let paid_date = f.paid_date.as_ref().and_then(wire::date_from_pb);
    if f.paid_date.is_some() && paid_date.is_none() {
        v.push(("follow_up.paid_date".into(), "not a valid date".into()));
    }
    if answer.as_deref() == Some("paid") {
        if paid_date.is_none() {
            v.push((
                "follow_up.paid_date".into(),
                "required when the payer says paid".into(),
            ));
        }
        if f.check_number.trim().is_empty() {
            v.push((
                "follow_up.check_number".into(),
                "required when the payer says paid (check or EFT number)".into(),
            ));
        }
    }
    if answer.as_deref() == Some("denied") && f.denial_reason.trim().is_empty() {
        v.push((
            "follow_up.denial_reason".into(),
            "required when the payer says denied".into(),
        ));
    }
    let next = f.next_follow_up_date.as_ref().and_then(wire::date_from_pb);
    if f.next_follow_up_date.is_some() && next.is_none() {
        v.push((
            "follow_up.next_follow_up_date".into(),
            "not a valid date".into(),
        ));
    }
    if let Some(n) = next
        && n < api.clock.today()
    {
        v.push((
            "follow_up.next_follow_up_date".into(),
            "must not be in the past".into(),
        ));
    }
    if !f.task_id.is_empty() {
        check_uuid(&mut v, "follow_up.task_id", &f.task_id);
    }
    let payer_reference = text(&mut v, "follow_up.payer_reference", &f.payer_reference, 100);
    let representative = text(&mut v, "follow_up.representative", &f.representative, 200);
    let check_number = text(&mut v, "follow_up.check_number", &f.check_number, 100);
    let denial_reason = text(
        &mut v,
        "follow_up.denial_reason",
        &f.denial_reason,
        MAX_TEXT,
    );
    let notes = text(&mut v, "follow_up.notes", &f.notes, MAX_TEXT);
    bad(v)?;
    let tenant = tenant(&principal);
    // Clinic scope: a key limited to clinics logs follow-ups only on claims it can see; any
    // other claim answers like a missing one.
    api.visible_claim(&principal, &tenant, f.claim_id.trim())
        .await?;
    let specialist = if principal.role == Role::Specialist || !r.specialist_id.is_empty() {
        Some(
            api.acting_specialist(&principal, &r.specialist_id, "specialist_id")
                .await?
                .id,
        )
    } else {
        None
    };
    if !f.task_id.is_empty() {
        let task = api.visible_task(&principal, &f.task_id).await?;
        if task.claim_id != f.claim_id {
            return Err(invalid("follow_up.task_id", "is a task of another claim").into());
        }
    }
    let entry = store::FollowUp {
        claim_id: f.claim_id.trim().to_string(),
        task_id: (!f.task_id.is_empty()).then(|| f.task_id.clone()),
        specialist_id: specialist,
        channel: channel.unwrap_or_default(),
        payer_reference,
        representative,
        answer: answer.unwrap_or_default(),
        paid_date,
        check_number,
        denial_reason,
        notes,
        next_follow_up_date: next,
        ..Default::default()
    };
    let (stored, raised) = store::log_follow_up(&api.db, &tenant, &entry, api.clock.now()).await?;
    let mut response = Response::new(pb::LogFollowUpResponse {
        follow_up: Some(follow_up_to_proto(&stored)),
        raised_task_id: raised.map(|t| t.id).unwrap_or_default(),
    });
    audit_objects(&mut response, [stored.claim_id]);
    Ok(response)
}

pub(super) async fn list_follow_ups(
    api: &AssignmentApi,
    request: Request<pb::ListFollowUpsRequest>,
) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let claim_id = request.into_inner().claim_id;
    if claim_id.trim().is_empty() {
        return Err(invalid("claim_id", "required").into());
    }
    let tenant = tenant(&principal);
    // Clinic scope: a key limited to clinics sees the log only of claims it can see.
    api.visible_claim(&principal, &tenant, &claim_id).await?;
    let log = store::list_follow_ups(&api.db, &tenant, &claim_id).await?;
    let mut response = Response::new(pb::ListFollowUpsResponse {
        follow_ups: log.iter().map(follow_up_to_proto).collect(),
    });
    audit_objects(&mut response, [claim_id]);
    Ok(response)
}

impl AssignmentApi {
    /// For a clinic-scoped key, the claim must be one of its clinics' (as the claim projection
    /// knows it); another clinic's claim, or one not known yet, answers NOT_FOUND like a
    /// missing one. A tenant-wide key may name any claim.
    pub(super) async fn visible_claim(
        &self,
        principal: &Principal,
        tenant: &TenantId,
        claim_id: &str,
    ) -> Result<(), Error> {
        if principal.clinic_ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.db.pool().acquire().await.map_err(Error::from)?;
        let view = store::claim_view(&mut conn, tenant, claim_id).await?;
        if view.is_some_and(|v| principal.can_access_clinic(&v.clinic_id)) {
            Ok(())
        } else {
            Err(Error::NotFound("claim"))
        }
    }
}

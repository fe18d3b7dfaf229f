//! The follow-up log (`asg_follow_ups`): payer contacts, FollowUpScheduled, resubmission
//! tasks for a payer with no record.
use super::*;
use crate::error::Context as _;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowUp {
    pub id: String,
    pub claim_id: String,
    pub task_id: Option<String>,
    pub specialist_id: Option<String>,
    /// phone | portal | edi_276_277 | fax | mail
    pub channel: String,
    pub payer_reference: String,
    pub representative: String,
    /// in_process | paid | denied | more_info_needed | no_record
    pub answer: String,
    pub paid_date: Option<NaiveDate>,
    pub check_number: String,
    pub denial_reason: String,
    pub notes: String,
    pub next_follow_up_date: Option<NaiveDate>,
    pub contacted_at: DateTime<Utc>,
}

/// Records a payer contact. A `no_record` answer opens a resubmission task (returned); a next
/// follow-up date publishes FollowUpScheduled for the scheduler to keep as a timer.
pub async fn log_follow_up(
    db: &Db,
    tenant: &TenantId,
    f: &FollowUp,
    now: DateTime<Utc>,
) -> Result<(FollowUp, Option<Task>)> {
    let mut tx = db.begin().await.context("log follow-up")?;
    lock_tenant(&mut tx, tenant).await?;
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO asg_follow_ups (id, tenant_id, claim_id, task_id, specialist_id, channel, \
         payer_reference, representative, answer, paid_date, check_number, denial_reason, notes, \
         next_follow_up_date, contacted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(&f.claim_id)
    .bind(f.task_id.as_deref())
    .bind(f.specialist_id.as_deref())
    .bind(&f.channel)
    .bind(&f.payer_reference)
    .bind(&f.representative)
    .bind(&f.answer)
    .bind(f.paid_date.map(date_to_sql))
    .bind(&f.check_number)
    .bind(&f.denial_reason)
    .bind(&f.notes)
    .bind(f.next_follow_up_date.map(date_to_sql))
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await
    .context("log follow-up")?;

    if let Some(due) = f.next_follow_up_date {
        let payload = events::FollowUpScheduled {
            follow_up_id: id.clone(),
            claim_id: f.claim_id.clone(),
            due_date: Some(wire::date_to_pb(due)),
            specialist_id: f.specialist_id.clone().unwrap_or_default(),
            task_id: f.task_id.clone().unwrap_or_default(),
        };
        let envelope = bus::envelope(PRODUCER, tenant.as_str(), &id, 1, now, &payload);
        bus::publish(&mut tx, &envelope)
            .await
            .context("log follow-up")?;
    }

    let mut raised = None;
    if f.answer == "no_record" {
        let view = claim_view(&mut tx, tenant, &f.claim_id).await?;
        let from_task = match &f.task_id {
            Some(t) => Some(get_task_on(&mut tx, tenant, t).await?),
            None => None,
        };
        let (clinic_id, payer_id, balance) = match (&view, &from_task) {
            (Some(v), _) => (v.clinic_id.clone(), v.payer_id.clone(), v.balance_cents),
            (None, Some(t)) => (t.clinic_id.clone(), t.payer_id.clone(), t.balance_cents),
            (None, None) => (String::new(), String::new(), 0),
        };
        let req = TaskRequest {
            claim_id: f.claim_id.clone(),
            clinic_id,
            payer_id,
            kind: TaskKindName::Resubmission,
            detail: "payer_has_no_record".into(),
            balance_cents: balance,
            age_basis: view.as_ref().and_then(ClaimView::age_basis),
            ..Default::default()
        };
        raised = Some(
            open_task(&mut tx, db.backend(), tenant, &req, now)
                .await?
                .task,
        );
    }
    tx.commit().await.context("log follow-up")?;
    let mut stored = f.clone();
    stored.id = id;
    stored.contacted_at = now;
    Ok((stored, raised))
}

/// A claim's follow-up log, oldest first.
pub async fn list_follow_ups(db: &Db, tenant: &TenantId, claim_id: &str) -> Result<Vec<FollowUp>> {
    let rows = sqlx::query(
        "SELECT id, claim_id, task_id, specialist_id, channel, payer_reference, representative, \
         answer, paid_date, check_number, denial_reason, notes, next_follow_up_date, contacted_at \
         FROM asg_follow_ups WHERE tenant_id = $1 AND claim_id = $2 ORDER BY contacted_at, id",
    )
    .bind(tenant.as_str())
    .bind(claim_id)
    .fetch_all(db.pool())
    .await
    .context("list follow-ups")?;
    rows.iter()
        .map(|r| {
            let date = |col: &str| -> Result<Option<NaiveDate>> {
                Ok(match r.try_get::<Option<String>, _>(col)? {
                    Some(s) => Some(date_from_sql(&s)?),
                    None => None,
                })
            };
            Ok(FollowUp {
                id: r.try_get("id")?,
                claim_id: r.try_get("claim_id")?,
                task_id: r.try_get("task_id")?,
                specialist_id: r.try_get("specialist_id")?,
                channel: r.try_get("channel")?,
                payer_reference: r.try_get("payer_reference")?,
                representative: r.try_get("representative")?,
                answer: r.try_get("answer")?,
                paid_date: date("paid_date")?,
                check_number: r.try_get("check_number")?,
                denial_reason: r.try_get("denial_reason")?,
                notes: r.try_get("notes")?,
                next_follow_up_date: date("next_follow_up_date")?,
                contacted_at: from_micros(r.try_get("contacted_at")?),
            })
        })
        .collect()
}

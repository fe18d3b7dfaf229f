//! Firing durable timers: exactly once across replicas, catching up after downtime, at a cost
//! that follows what is due.
//!
//! A round is one transaction: claim up to `fire_batch_size` due pending timers (Postgres:
//! `FOR UPDATE SKIP LOCKED`, so replicas take disjoint sets instead of waiting on each other;
//! SQLite: one writer at a time under `BEGIN IMMEDIATE`), mark them fired, write one TimerFired
//! per timer to the outbox, set the next status check of a recurring cadence, commit. A replica
//! that crashes mid-round rolls back and the timers are due again for whoever comes next;
//! nothing fires twice because the state change and the event commit together.
//!
//! Both the claim and the loop's "when is the next one due" read the partial index of pending
//! timers by `due_at`, so an idle tick is two index probes whether 100 or 5 million timers
//! wait. A timer due while no replica ran is simply due: the first round after start fires it.
use std::collections::HashMap;
use std::time::Duration;

use arflow_api::events::v1 as events;
use arflow_api::wire;
use arflow_domain::calendar::Calendar;
use arflow_domain::followup::{self, AgingBasis, FiredStatusCheck, kinds};
use arflow_platform::bus::{self, Envelope};
use arflow_platform::db::{Backend, date_from_sql};
use arflow_platform::{Clock, Db};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use crate::PRODUCER;
use crate::error::{Context as _, Error};
use crate::settings::Settings;
use crate::store::{self, NewTimer, StoredTimer, TenantId, TimerPayload};

/// Shortest real pause between rounds when timers are due but another replica holds them.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// Fires up to `limit` timers due at `now` in one transaction; returns how many fired.
pub async fn fire_due(
    db: &Db,
    settings: &Settings,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<usize, Error> {
    let mut tx = db.begin().await.context("begin firing round")?;
    let mut fired = store::claim_due(&mut tx, db, now, limit).await?;
    if fired.is_empty() {
        tx.rollback()
            .await
            .context("roll back empty firing round")?;
        return Ok(0);
    }
    // RETURNING has no order: publish in due order.
    fired.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    let envelopes: Vec<Envelope> = fired.iter().map(|t| timer_fired(t, now)).collect();
    bus::publish_many(&mut tx, &envelopes)
        .await
        .context("publish TimerFired")?;
    schedule_next_checks(&mut tx, settings, &fired, now).await?;
    tx.commit().await.context("commit firing round")?;
    let m = crate::metrics::metrics();
    for t in &fired {
        m.timers_fired
            .with_label_values(&[kind_label(&t.kind)])
            .inc();
        m.fire_delay
            .observe((now - t.due_at).num_milliseconds().max(0) as f64 / 1000.0);
    }
    Ok(fired.len())
}

/// The firing loop until `shutdown`: `fire_workers` workers (one on SQLite, which has one
/// writer), each probing for the earliest pending timer and firing rounds while timers are
/// due; otherwise sleeping until the next due instant (on the injected clock) or
/// `poll_interval_ms`, whichever is sooner. Workers of one replica, like replicas, take
/// disjoint timers through SKIP LOCKED.
pub async fn run(
    db: Db,
    clock: Clock,
    settings: std::sync::Arc<Settings>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let workers = match db.backend() {
        Backend::Postgres => settings.fire_workers.max(1),
        Backend::Sqlite => 1,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (db, clock, settings, shutdown) = (
            db.clone(),
            clock.clone(),
            settings.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move { work(db, clock, settings, shutdown).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| Error::other("firing worker panicked", e))?;
    }
    Ok(())
}

/// One firing worker (see [`run`]). Errors are logged and retried after `poll_interval_ms`:
/// a database that is down for a while delays timers, it does not stop the scheduler.
async fn work(
    db: Db,
    clock: Clock,
    settings: std::sync::Arc<Settings>,
    shutdown: CancellationToken,
) {
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let batch = settings.fire_batch_size;
    while !shutdown.is_cancelled() {
        // The idle tick is this one probe of the partial index: no write transaction (which
        // on SQLite would take the database's only write lock) unless something is due.
        let wait = match store::next_due_at(&db).await {
            Ok(Some(at)) if at <= clock.now() => {
                crate::metrics::metrics()
                    .next_due
                    .set((at - clock.now()).num_seconds());
                match fire_due(&db, &settings, clock.now(), batch).await {
                    Ok(n) if n > 0 => continue,
                    // Due, but other workers or replicas hold them: look again shortly.
                    Ok(_) => MIN_PAUSE,
                    Err(e) => {
                        tracing::warn!(error = %e, "scheduler: firing round failed; retrying");
                        poll
                    }
                }
            }
            Ok(Some(at)) => {
                crate::metrics::metrics()
                    .next_due
                    .set((at - clock.now()).num_seconds());
                clock.real_duration_until(at).clamp(MIN_PAUSE, poll)
            }
            Ok(None) => {
                crate::metrics::metrics().next_due.set(0);
                poll
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: reading the next due timer failed");
                poll
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => break,
        }
    }
}

/// A recurring status check sets its successor as it fires, while the claim is open and the
/// cadence allows more checks (`followup::plan_next_status_check`), so a claim never holds
/// more than one pending check.
async fn schedule_next_checks(
    conn: &mut AnyConnection,
    settings: &Settings,
    fired: &[StoredTimer],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut calendars: HashMap<String, (chrono_tz::Tz, Calendar)> = HashMap::new();
    for t in fired.iter().filter(|t| t.kind == kinds::STATUS_CHECK) {
        let check = FiredStatusCheck {
            due_at: t.due_at,
            sequence: t.payload.sequence.unwrap_or(1),
            repeat_business_days: t.payload.repeat_business_days.unwrap_or(0),
            max_checks: t.payload.max_checks.unwrap_or(0),
        };
        if !check.has_next() {
            continue;
        }
        let tenant = TenantId::new(&t.tenant_id);
        let open = store::get_claim(conn, &tenant, &t.subject)
            .await?
            .is_some_and(|c| !c.is_closed());
        if !open {
            continue;
        }
        if !calendars.contains_key(&t.tenant_id) {
            let policy = store::load_policy(conn, &tenant, settings).await?;
            let calendar = store::load_calendar(conn, &tenant).await?;
            calendars.insert(t.tenant_id.clone(), (policy.time_zone, calendar));
        }
        let Some((tz, calendar)) = calendars.get(&t.tenant_id) else {
            continue;
        };
        let Some((due_at, sequence)) = followup::plan_next_status_check(&check, *tz, calendar)
        else {
            continue;
        };
        let next = NewTimer {
            tenant_id: t.tenant_id.clone(),
            subject: t.subject.clone(),
            kind: t.kind.clone(),
            due_at,
            clinic_id: t.clinic_id.clone(),
            payload: TimerPayload {
                sequence: Some(sequence),
                ..t.payload.clone()
            },
        };
        store::insert_timers(conn, &[next], now).await?;
    }
    Ok(())
}

/// The proto kind of a stored kind name.
pub fn kind_of(name: &str) -> events::TimerKind {
    match name {
        kinds::STATUS_CHECK => events::TimerKind::StatusCheck,
        kinds::TIMELY_FILING_WARNING => events::TimerKind::TimelyFilingWarning,
        kinds::APPEAL_DEADLINE_WARNING => events::TimerKind::AppealDeadlineWarning,
        kinds::FOLLOW_UP => events::TimerKind::FollowUp,
        n if kinds::is_aging(n) => events::TimerKind::Aging,
        _ => events::TimerKind::Unspecified,
    }
}

/// The metric label of a stored kind name: its kind family, a bounded set. The
/// corrected-claim warning and the "no ERA yet" timer have no proto kind yet (TimerFired
/// carries them as `kind_name`).
fn kind_label(name: &str) -> &'static str {
    if name == kinds::CORRECTED_CLAIM_DEADLINE_WARNING {
        return kinds::CORRECTED_CLAIM_DEADLINE_WARNING;
    }
    if name == kinds::NO_ERA {
        return kinds::NO_ERA;
    }
    match kind_of(name) {
        events::TimerKind::Aging => "aging",
        events::TimerKind::StatusCheck => "status_check",
        events::TimerKind::TimelyFilingWarning => "timely_filing_warning",
        events::TimerKind::AppealDeadlineWarning => "appeal_deadline_warning",
        events::TimerKind::FollowUp => "follow_up",
        events::TimerKind::Unspecified => "other",
    }
}

/// The proto basis of a stored basis name.
fn basis_of(text: Option<&str>) -> events::AgingBasis {
    match text.and_then(AgingBasis::parse) {
        Some(AgingBasis::Submission) => events::AgingBasis::Submission,
        Some(AgingBasis::DateOfService) => events::AgingBasis::DateOfService,
        None => events::AgingBasis::Unspecified,
    }
}

fn int(v: Option<u32>) -> i32 {
    v.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// A stored payload date as a proto date (None when absent or unreadable).
fn stored_date(text: Option<&str>) -> Option<arflow_api::common::v1::Date> {
    date_from_sql(text?).ok().map(wire::date_to_pb)
}

/// The TimerFired event of a timer fired at `now`.
pub fn timer_fired(t: &StoredTimer, now: DateTime<Utc>) -> Envelope {
    let p = &t.payload;
    let payload = events::TimerFired {
        timer_id: t.id.clone(),
        subject: t.subject.clone(),
        kind: kind_of(&t.kind) as i32,
        kind_name: t.kind.clone(),
        due_time: Some(wire::timestamp(t.due_at)),
        fire_time: Some(wire::timestamp(now)),
        clinic_id: t.clinic_id.clone(),
        payer_id: p.payer_id.clone().unwrap_or_default(),
        threshold_days: int(p.threshold_days),
        basis: basis_of(p.basis.as_deref()) as i32,
        basis_date: stored_date(p.basis_date.as_deref()),
        sequence: int(p.sequence),
        deadline: stored_date(p.deadline.as_deref()),
        lead_days: int(p.lead_days),
        denial_id: p.denial_id.clone().unwrap_or_default(),
        note: p.note.clone().unwrap_or_default(),
        follow_up_id: p.follow_up_id.clone().unwrap_or_default(),
        specialist_id: p.specialist_id.clone().unwrap_or_default(),
        task_id: p.task_id.clone().unwrap_or_default(),
    };
    bus::envelope(PRODUCER, &t.tenant_id, &t.id, 1, now, &payload)
}

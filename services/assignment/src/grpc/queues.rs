//! GetQueueStats and the WatchQueues stream.
use std::pin::Pin;

use futures::Stream;

use super::*;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchQueuesResponse, Status>> + Send>>;

/// Age bucket of a claim, as AR aging reports use them (docs/design.md §7).
fn age_bucket(days: Option<i64>) -> &'static str {
    match days {
        None => "",
        Some(d) if d <= 30 => "0-30",
        Some(d) if d <= 60 => "31-60",
        Some(d) if d <= 90 => "61-90",
        Some(d) if d <= 120 => "91-120",
        Some(_) => "120+",
    }
}

/// Counts open tasks by specialist, payer, clinic, kind and age bucket.
fn queue_stats(
    open: impl Iterator<Item = (store::Task, Option<NaiveDate>)>,
    now: DateTime<Utc>,
) -> pb::GetQueueStatsResponse {
    use std::collections::BTreeMap;
    type Groups = BTreeMap<String, pb::QueueCount>;
    fn bump(groups: &mut Groups, key: &str, t: &store::Task, breached: bool) {
        let c = groups
            .entry(key.to_string())
            .or_insert_with(|| pb::QueueCount {
                key: key.to_string(),
                ..Default::default()
            });
        count(c, t, breached);
    }
    fn count(c: &mut pb::QueueCount, t: &store::Task, breached: bool) {
        c.open += 1;
        if t.specialist_id.is_none() {
            c.unassigned += 1;
        }
        if breached {
            c.sla_breached += 1;
        }
        c.balance_cents += t.balance_cents;
    }
    let mut total = pb::QueueCount::default();
    let (mut by_s, mut by_p, mut by_c, mut by_k, mut by_a) = (
        Groups::new(),
        Groups::new(),
        Groups::new(),
        Groups::new(),
        Groups::new(),
    );
    let today = now.date_naive();
    for (t, basis) in open {
        let breached = t.due_at < now;
        count(&mut total, &t, breached);
        bump(
            &mut by_s,
            t.specialist_id.as_deref().unwrap_or(""),
            &t,
            breached,
        );
        bump(&mut by_p, &t.payer_id, &t, breached);
        bump(&mut by_c, &t.clinic_id, &t, breached);
        bump(&mut by_k, task_kind_name(t.kind), &t, breached);
        bump(
            &mut by_a,
            age_bucket(basis.map(|b| (today - b).num_days())),
            &t,
            breached,
        );
    }
    pb::GetQueueStatsResponse {
        total: Some(total),
        by_specialist: by_s.into_values().collect(),
        by_payer: by_p.into_values().collect(),
        by_clinic: by_c.into_values().collect(),
        by_kind: by_k.into_values().collect(),
        by_age: by_a.into_values().collect(),
    }
}

pub(super) async fn get_queue_stats(
    api: &AssignmentApi,
    request: Request<pb::GetQueueStatsRequest>,
) -> Result<Response<pb::GetQueueStatsResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let open = store::open_tasks(&api.db, &tenant(&principal)).await?;
    let now = api.clock.now();
    let visible = open
        .into_iter()
        .filter(|(t, _)| principal.can_access_clinic(&t.clinic_id));
    Ok(Response::new(queue_stats(visible, now)))
}

pub(super) async fn watch_queues(
    api: &AssignmentApi,
    request: Request<pb::WatchQueuesRequest>,
) -> Result<Response<WatchStream>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let r = request.into_inner();
    if r.after_sequence < 0 {
        return Err(invalid("after_sequence", "must not be negative").into());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let (db, poll, stop) = (api.db.clone(), api.watch_poll, api.stop.clone());
    let tenant = tenant(&principal);
    tokio::spawn(async move {
        let mut cursor = r.after_sequence;
        loop {
            let batch = match store::changes_after(&db, &tenant, cursor, 500).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(Status::from(e))).await;
                    return;
                }
            };
            let full = batch.len() == 500;
            for change in batch {
                cursor = change.seq;
                if !r.specialist_id.is_empty()
                    && change.specialist_id.as_deref() != Some(r.specialist_id.as_str())
                {
                    continue;
                }
                let task = match store::get_task(&db, &tenant, &change.task_id).await {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                if !principal.can_access_clinic(&task.clinic_id) {
                    continue;
                }
                let item = pb::WatchQueuesResponse {
                    sequence: change.seq,
                    change: change.change,
                    task: Some(task_to_proto(&task)),
                    change_time: Some(wire::timestamp(change.changed_at)),
                };
                if tx.send(Ok(item)).await.is_err() {
                    return; // the client went away
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tx.closed() => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    });
    Ok(Response::new(Box::pin(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_buckets() {
        assert_eq!(
            [Some(0), Some(31), Some(61), Some(91), Some(121), None].map(age_bucket),
            ["0-30", "31-60", "61-90", "91-120", "120+", ""]
        );
    }
}

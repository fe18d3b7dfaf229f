//! Timer benchmark on Postgres (`cargo bench -p arflow-scheduler --bench timers`):
//!
//! - the idle firing tick (a firing round that finds nothing due, plus the next-due probe the
//!   loop sleeps on) with 100k and with 5M pending timers that are not due: the budget is the
//!   same cost at both sizes, because both read the partial index of pending timers by due_at;
//! - firing throughput: 200k due timers fired in rounds of `fire_batch_size` (each round marks
//!   its timers fired and writes their TimerFired rows to the outbox in one transaction), by
//!   one worker, by `fire_workers` (the default per replica) and by six concurrent workers
//!   (replicas x workers); budget >= 20k timers/s.
//!
//! `cargo test --all-targets` runs bench binaries without `--bench`: then this prints
//! "skipped" and returns.
#![allow(clippy::unwrap_used, clippy::print_stdout)]
use std::time::{Duration, Instant};

use arflow_platform::Db;
use arflow_scheduler::Settings;
use arflow_scheduler::jobs::timers;
use arflow_testkit::PgDatabase;
use chrono::{DateTime, Utc};

const IDLE_TICKS: u32 = 300;
const DUE: i64 = 200_000;

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped");
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// Inserts `n` pending timers due after `now()` (not due), numbered from `from`.
async fn insert_pending(db: &Db, from: i64, n: i64) -> anyhow::Result<()> {
    let start = now().timestamp_micros() + 86_400_000_000;
    let chunk = 500_000;
    let mut done = 0;
    while done < n {
        let k = chunk.min(n - done);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO scheduler_timers (id, tenant_id, subject, kind, due_at, clinic_id, payload, \
             state, created_at) SELECT gen_random_uuid()::text, 't' || (i % 50), 'claim-' || i, \
             'aging_30', {start} + i::bigint * 1000, 'clinic-1', '{{\"threshold_days\":30}}', 'pending', 0 \
             FROM generate_series({lo}, {hi}) AS i",
            lo = from + done,
            hi = from + done + k - 1,
        )))
        .execute(db.pool())
        .await?;
        done += k;
    }
    sqlx::query("ANALYZE scheduler_timers")
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Inserts `n` timers already due (in the hour before `now()`).
async fn insert_due(db: &Db, n: i64) -> anyhow::Result<()> {
    let start = now().timestamp_micros() - 3_600_000_000;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO scheduler_timers (id, tenant_id, subject, kind, due_at, clinic_id, payload, \
         state, created_at) SELECT gen_random_uuid()::text, 't' || (i % 50), 'due-' || i, \
         'aging_60', {start} + i::bigint * 10, 'clinic-1', '{{\"threshold_days\":60,\"payer_id\":\"87726\"}}', \
         'pending', 0 FROM generate_series(1, {n}) AS i"
    )))
    .execute(db.pool())
    .await?;
    sqlx::query("ANALYZE scheduler_timers")
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Mean and p99 of `IDLE_TICKS` runs of `op`.
async fn measure<F, Fut>(mut op: F) -> anyhow::Result<(Duration, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    // Warm the caches and the connection's statements.
    for _ in 0..20 {
        op().await?;
    }
    let mut samples = Vec::with_capacity(IDLE_TICKS as usize);
    for _ in 0..IDLE_TICKS {
        let t = Instant::now();
        op().await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / IDLE_TICKS;
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    Ok((mean, p99))
}

/// The idle tick as the loop runs it (the next-due probe), and, for comparison, a firing
/// round that finds nothing due (a write transaction the loop skips when nothing is due).
async fn idle_tick(db: &Db, settings: &Settings, label: &str) -> anyhow::Result<Duration> {
    let (probe, probe_p99) = measure(|| async {
        let next = arflow_scheduler::store::next_due_at(db).await?;
        anyhow::ensure!(next.is_some_and(|at| at > now()), "nothing is due");
        Ok(())
    })
    .await?;
    let (round, round_p99) = measure(|| async {
        let fired = timers::fire_due(db, settings, now(), settings.fire_batch_size).await?;
        anyhow::ensure!(fired == 0, "nothing is due");
        Ok(())
    })
    .await?;
    println!(
        "idle tick, {label} pending: probe mean {probe:?} (p99 {probe_p99:?}); \
         empty firing round mean {round:?} (p99 {round_p99:?})"
    );
    Ok(probe + round)
}

/// Fires every due timer with `loops` concurrent firing loops; timers per second.
async fn fire_all(db: &Db, settings: &Settings, loops: usize) -> anyhow::Result<(i64, f64)> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..loops {
        let (db, settings) = (db.clone(), settings.clone());
        tasks.push(tokio::spawn(async move {
            let mut fired = 0usize;
            loop {
                let n = timers::fire_due(&db, &settings, now(), settings.fire_batch_size).await?;
                if n == 0 {
                    return anyhow::Ok(fired);
                }
                fired += n;
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?? as i64;
    }
    Ok((total, total as f64 / t.elapsed().as_secs_f64()))
}

async fn outbox_rows(db: &Db) -> anyhow::Result<i64> {
    use sqlx::Row as _;
    Ok(sqlx::query(
        "SELECT COALESCE(SUM(events), 0) FROM bus_outbox WHERE event_type = 'arflow.events.v1.TimerFired'",
    )
    .fetch_one(db.pool())
    .await?
    .try_get::<i64, _>(0)?)
}

async fn run() -> anyhow::Result<()> {
    let pg = PgDatabase::create().await?;
    let db = Db::connect(&pg.url, 8).await?;
    db.migrate().await?;
    let settings = Settings::default();
    println!(
        "scheduler timers on Postgres (fire_batch_size {})",
        settings.fire_batch_size
    );

    insert_pending(&db, 0, 100_000).await?;
    let small = idle_tick(&db, &settings, "100k").await?;

    // ARFLOW_BENCH_BATCHES=1000,4000: firing throughput by batch size, before the 5M insert
    // (ARFLOW_BENCH_ONLY_BATCHES=1 stops there).
    if let Ok(sizes) = std::env::var("ARFLOW_BENCH_BATCHES") {
        for size in sizes
            .split(',')
            .filter_map(|s| s.trim().parse::<usize>().ok())
        {
            let s = Settings {
                fire_batch_size: size,
                ..settings.clone()
            };
            insert_due(&db, DUE).await?;
            let (fired, rate) = fire_all(&db, &s, 1).await?;
            println!(
                "  batch {size}: fired {fired} with 1 worker (100k pending): {rate:.0} timers/s"
            );
            sqlx::query("DELETE FROM scheduler_timers WHERE state = 'fired'")
                .execute(db.pool())
                .await?;
        }
        if std::env::var("ARFLOW_BENCH_ONLY_BATCHES").is_ok() {
            return Ok(());
        }
    }
    let t = Instant::now();
    insert_pending(&db, 100_000, 4_900_000).await?;
    println!(
        "  (inserted 4.9M more pending timers in {:.1?})",
        t.elapsed()
    );
    let big = idle_tick(&db, &settings, "5M").await?;
    println!(
        "  ratio 5M/100k (probe + round): {:.2}",
        big.as_secs_f64() / small.as_secs_f64()
    );

    for loops in [1usize, settings.fire_workers, 6] {
        insert_due(&db, DUE).await?;
        let before = outbox_rows(&db).await?;
        let (fired, rate) = fire_all(&db, &settings, loops).await?;
        let published = outbox_rows(&db).await? - before;
        anyhow::ensure!(
            fired == DUE && published == DUE,
            "fired {fired}, published {published}"
        );
        println!(
            "fired {fired} due timers with {loops} worker(s) (5M pending beside): {rate:.0} timers/s"
        );
        // Next round starts from a clean slate of due timers.
        sqlx::query("DELETE FROM scheduler_timers WHERE state = 'fired'")
            .execute(db.pool())
            .await?;
    }
    db.close().await;
    Ok(())
}

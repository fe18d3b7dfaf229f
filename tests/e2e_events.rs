//! End-to-end: ClaimSubmitted reaches a consumer group through the outbox, the relay and Redis
//! Streams, and takes effect exactly once even when it is delivered again — after a consumer
//! died holding it, and after the same entry was published twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use arflow_api::events::v1 as events;
use arflow_platform::Db;
use arflow_platform::bus::{self, Bus, Envelope, Handler, Subscription};
use arflow_platform::config::BusConfig;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{Server, claim, create};
use redis::AsyncCommands as _;
use sqlx::{AnyConnection, Row};

/// The consumer's effect: one row per handled ClaimSubmitted (no unique key, so a second
/// application would show as a second row).
struct RecordSubmitted;

#[async_trait::async_trait]
impl Handler for RecordSubmitted {
    async fn handle(&self, conn: &mut AnyConnection, event: &Envelope) -> anyhow::Result<()> {
        if event.event_type == "arflow.events.v1.ClaimSubmitted" {
            let payload: events::ClaimSubmitted = bus::decode_payload(event)?;
            sqlx::query("INSERT INTO e2e_effects (event_id, claim_id) VALUES ($1, $2)")
                .bind(&event.event_id)
                .bind(&payload.claim_id)
                .execute(conn)
                .await?;
        }
        Ok(())
    }
}

async fn effects_for(db: &Db, claim_id: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM e2e_effects WHERE claim_id = $1")
        .bind(claim_id)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

/// (pending, lag) of a group on a stream, from XINFO GROUPS.
async fn group_state(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Option<(i64, i64)> {
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .ok()?;
    let g = groups.into_iter().find(
        |g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == group.as_bytes()),
    )?;
    let int = |k: &str| match g.get(k) {
        Some(redis::Value::Int(n)) => Some(*n),
        _ => None,
    };
    Some((int("pending")?, int("lag")?))
}

#[tokio::test]
async fn claim_submitted_is_applied_once_despite_forced_redelivery() {
    let pg = PgDatabase::create().await.unwrap();
    let redis_prefix = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis_prefix));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    let db = Db::connect(&pg.url, 4).await.unwrap();
    sqlx::query("CREATE TABLE e2e_effects (event_id TEXT NOT NULL, claim_id TEXT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let client = redis::Client::open(redis_prefix.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{}stream:claims", redis_prefix.prefix);
    let group = "e2e-consumer";
    let _: Result<(), _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;

    // A claim is submitted through the API; its event goes outbox -> relay -> stream.
    let created = api
        .create_claim(create(claim("clinic-a", "EV-1"), "ev-1"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();

    // A replica of the consumer reads the entry and dies before acknowledging it.
    let entry_id = eventually(Duration::from_secs(10), || {
        let (mut conn, stream) = (conn.clone(), stream.clone());
        async move {
            let opts = redis::streams::StreamReadOptions::default()
                .group(group, "crashed-replica")
                .count(10)
                .block(200);
            let reply: redis::streams::StreamReadReply =
                conn.xread_options(&[&stream], &[">"], &opts).await.ok()?;
            reply
                .keys
                .into_iter()
                .flat_map(|k| k.ids)
                .next()
                .map(|e| e.id)
        }
    })
    .await
    .unwrap();

    // A live replica starts; it must take the dead replica's entry over after the idle timeout.
    let bus_cfg = BusConfig {
        block_ms: 100,
        claim_idle_ms: 500,
        poll_interval_ms: 20,
        ..BusConfig::default()
    };
    let bus = Bus::redis(db.clone(), &redis_prefix.url, &redis_prefix.prefix, bus_cfg)
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let consumer = tokio::spawn({
        let (bus, token) = (bus.clone(), shutdown.clone());
        let sub = Subscription {
            group: group.into(),
            consumer: "live-replica".into(),
            streams: vec!["claims".into()],
            handler: Arc::new(RecordSubmitted),
        };
        async move { bus.run_consumer(sub, token).await }
    });
    eventually(Duration::from_secs(15), || {
        let (db, id) = (db.clone(), created.id.clone());
        async move { (effects_for(&db, &id).await == 1).then_some(()) }
    })
    .await
    .unwrap();

    // The same entry published again (a relay that died between XADD and marking the row).
    let entries: redis::streams::StreamRangeReply =
        conn.xrange(&stream, &entry_id, &entry_id).await.unwrap();
    let fields: Vec<(String, Vec<u8>)> = entries.ids[0]
        .map
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                redis::from_redis_value::<Vec<u8>>(v.clone()).unwrap(),
            )
        })
        .collect();
    let _: String = conn.xadd(&stream, "*", &fields).await.unwrap();

    // Wait until the group has read and acknowledged everything, then count effects.
    eventually(Duration::from_secs(15), || {
        let (mut conn, stream) = (conn.clone(), stream.clone());
        async move { (group_state(&mut conn, &stream, group).await == Some((0, 0))).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(
        effects_for(&db, &created.id).await,
        1,
        "exactly one effect for one event"
    );
    let inbox: i64 = sqlx::query("SELECT COUNT(*) AS n FROM bus_inbox WHERE consumer_group = $1")
        .bind(group)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(inbox, 1);

    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

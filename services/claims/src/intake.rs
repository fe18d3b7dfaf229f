//! The intake pipeline of CreateClaim, CorrectClaim and ImportClaims, behind the transport:
//! a validated claim (`grpc::convert::claim_from_pb` ran `domain::validate_claim`) is scrubbed
//! against the rule pack and its payer's rules, with the patient's earlier services with that
//! payer as history; scrubber errors refuse it, warnings are stored with it. Writes are
//! idempotent by request id (`claim_requests` keeps a SHA-256 of the request's claim, see
//! [`request_hash`]).
//!
//! ImportClaims ([`Import`]) writes chunks with multi-row INSERTs (`store::create_claims`), one
//! chunk while the next streams in.
use std::collections::VecDeque;
use std::sync::Arc;

use arflow_api::claims::v1 as pb;
use arflow_domain::rules::{PayerRuleSet, ScrubFinding, Severity};
use arflow_domain::{FieldViolation, ValidClaim};
use arflow_platform::{Backend, Clock, Db};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::store::{self, Created, NewClaim, StoredFinding, TenantId};

/// How many streamed claims are written per transaction by ImportClaims. Measured with the
/// foundation benchmark (ratio to raw COPY, three runs each): 128 gave 26-30%, 200 29-32%, 256
/// 30-33%, 500 was 15% slower than 200. 256 is also a whole outbox statement
/// (`bus::publish_many` pads to powers of two). SQLite binding cost grows faster than linearly
/// with the statement's parameter count, so it takes smaller chunks.
const IMPORT_CHUNK_POSTGRES: usize = 256;
const IMPORT_CHUNK_SQLITE: usize = 25;
/// An import refreshes the planner's statistics ([`store::refresh_intake_stats`]) once it has
/// sent this many claims to be written, then each time that count has grown fourfold.
const IMPORT_STATS_FIRST: usize = 1_000;

/// Scrubbing and writing of new claims. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    db: Db,
    clock: Clock,
    payer_rules: Arc<PayerRuleSet>,
}

/// One claim to create: its request id, the hash of the request's claim, the validated claim.
pub struct Item {
    pub request_id: String,
    pub request_hash: String,
    pub claim: ValidClaim,
}

impl Intake {
    pub fn new(db: Db, clock: Clock, payer_rules: PayerRuleSet) -> Intake {
        Intake {
            db,
            clock,
            payer_rules: Arc::new(payer_rules),
        }
    }

    /// Scrubs a validated claim against the rule pack and its payer's rules, with the
    /// patient's earlier services with that payer as history (`replacing`: the claim a
    /// correction replaces, left out of the history).
    pub async fn scrub(
        &self,
        tenant: &TenantId,
        claim: &ValidClaim,
        replacing: Option<&str>,
    ) -> Result<Vec<ScrubFinding>, Error> {
        let on = claim.first_service_date();
        let payer = self
            .payer_rules
            .for_payer(tenant.as_str(), &claim.payer.id, on);
        let history = store::prior_services_many(&self.db, tenant, &[claim], replacing)
            .await
            .map_err(Error::db("load the patient's prior services"))?
            .pop()
            .unwrap_or_default();
        let mut findings = arflow_domain::rules::scrub(claim, payer, &history, self.clock.today());
        findings.sort_by_key(|f| f.severity);
        Ok(findings)
    }

    /// [`Intake::scrub`] for a bulk chunk, with one history query for all of it. Claims of
    /// the same chunk do not count as each other's history.
    async fn scrub_batch(
        &self,
        tenant: &TenantId,
        claims: &[&ValidClaim],
    ) -> Result<Vec<Vec<ScrubFinding>>, Error> {
        let histories = store::prior_services_many(&self.db, tenant, claims, None)
            .await
            .map_err(Error::db("load the patients' prior services"))?;
        let today = self.clock.today();
        Ok(claims
            .iter()
            .zip(histories)
            .map(|(claim, history)| {
                let payer = self.payer_rules.for_payer(
                    tenant.as_str(),
                    &claim.payer.id,
                    claim.first_service_date(),
                );
                let mut findings = arflow_domain::rules::scrub(claim, payer, &history, today);
                findings.sort_by_key(|f| f.severity);
                findings
            })
            .collect())
    }

    /// Creates one claim (CreateClaim, CorrectClaim) from already scrubbed `findings`: refused
    /// when they hold an error, stored with their warnings otherwise (or replayed).
    pub async fn create(
        &self,
        tenant: &TenantId,
        actor: &str,
        item: Item,
        findings: &[ScrubFinding],
    ) -> Result<Created, Error> {
        if arflow_domain::rules::has_errors(findings) {
            return Err(refusal(findings));
        }
        let new = NewClaim {
            request_id: item.request_id,
            request_hash: item.request_hash,
            claim: item.claim,
            warnings: stored_warnings(findings),
        };
        store::create_one(&self.db, tenant, actor, &new, self.clock.now()).await
    }

    /// Scrubs and writes one ImportClaims chunk; an outcome per item, by stream index.
    async fn write_chunk(
        &self,
        tenant: &TenantId,
        actor: &str,
        chunk: Vec<(usize, Item)>,
    ) -> Result<Vec<Outcome>, Error> {
        let claims: Vec<&ValidClaim> = chunk.iter().map(|(_, item)| &item.claim).collect();
        let findings = self.scrub_batch(tenant, &claims).await?;
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut items = Vec::with_capacity(chunk.len());
        let mut positions = Vec::with_capacity(chunk.len());
        for ((i, item), findings) in chunk.into_iter().zip(findings) {
            if arflow_domain::rules::has_errors(&findings) {
                outcomes.push(Outcome::Refused(i, violations(&findings)));
                continue;
            }
            positions.push(i);
            items.push(NewClaim {
                request_id: item.request_id,
                request_hash: item.request_hash,
                claim: item.claim,
                warnings: stored_warnings(&findings),
            });
        }
        let written = store::create_claims(&self.db, tenant, actor, &items, self.clock.now()).await;
        for (i, outcome) in positions.into_iter().zip(written) {
            outcomes.push(match outcome {
                Ok(created) => Outcome::Created(i, created.claim.id, created.replayed),
                Err(e @ Error::Db { .. }) => return Err(e),
                Err(e) => Outcome::Failed(i, e.to_string()),
            });
        }
        Ok(outcomes)
    }
}

/// What became of one ImportClaims item written in a chunk (by stream index).
pub enum Outcome {
    /// Created (or replayed: `true`) as the claim with this id.
    Created(usize, String, bool),
    /// Refused by the scrubber, one violation per error finding.
    Refused(usize, Vec<FieldViolation>),
    /// Not written (a duplicate patient control number, a reused request id, ...).
    Failed(usize, String),
}

/// One ImportClaims stream: valid items are [`Import::push`]ed as they arrive and written in
/// chunks while the next ones stream in; [`Import::finish`] waits for every write.
pub struct Import {
    intake: Intake,
    tenant: TenantId,
    actor: String,
    chunk_size: usize,
    max_in_flight: usize,
    pending: Vec<(usize, Item)>,
    inflight: VecDeque<tokio::task::JoinHandle<Result<Vec<Outcome>, Error>>>,
    outcomes: Vec<Outcome>,
    sent: usize,
    refresh_at: usize,
}

impl Import {
    pub fn new(intake: &Intake, tenant: TenantId, actor: String) -> Import {
        let backend = intake.db.backend();
        Import {
            chunk_size: match backend {
                Backend::Postgres => IMPORT_CHUNK_POSTGRES,
                Backend::Sqlite => IMPORT_CHUNK_SQLITE,
            },
            // Postgres writes two chunks at once (its second core works while we decode and
            // scrub); SQLite has one writer, so one.
            max_in_flight: match backend {
                Backend::Postgres => 2,
                Backend::Sqlite => 1,
            },
            intake: intake.clone(),
            tenant,
            actor,
            pending: Vec::new(),
            inflight: VecDeque::new(),
            outcomes: Vec::new(),
            sent: 0,
            refresh_at: IMPORT_STATS_FIRST,
        }
    }

    /// Queues the valid item at stream index `index`; writes the chunk once it is full.
    pub async fn push(&mut self, index: usize, item: Item) -> Result<(), Error> {
        self.pending.push((index, item));
        if self.pending.len() >= self.chunk_size {
            self.write_pending().await?;
        }
        Ok(())
    }

    /// Writes what is left and waits for every chunk: the outcome of every pushed item.
    pub async fn finish(mut self) -> Result<Vec<Outcome>, Error> {
        if !self.pending.is_empty() {
            self.write_pending().await?;
        }
        while let Some(write) = self.inflight.pop_front() {
            self.outcomes.extend(join(write).await?);
        }
        Ok(self.outcomes)
    }

    async fn write_pending(&mut self) -> Result<(), Error> {
        // Write this chunk while the next ones stream in. Concurrent chunks are safe: a request
        // id or patient control number in two of them trips a unique constraint and the loser
        // falls back to item-by-item writes.
        if self.inflight.len() >= self.max_in_flight
            && let Some(write) = self.inflight.pop_front()
        {
            self.outcomes.extend(join(write).await?);
        }
        self.sent += self.pending.len();
        if self.sent >= self.refresh_at {
            self.refresh_at = self.refresh_at.saturating_mul(4);
            if let Err(err) = store::refresh_intake_stats(&self.intake.db).await {
                tracing::warn!(error = %err, "refresh planner statistics during import");
            }
        }
        let intake = self.intake.clone();
        let (tenant, actor, chunk) = (
            self.tenant.clone(),
            self.actor.clone(),
            std::mem::take(&mut self.pending),
        );
        self.inflight.push_back(tokio::spawn(async move {
            intake.write_chunk(&tenant, &actor, chunk).await
        }));
        Ok(())
    }
}

async fn join(
    write: tokio::task::JoinHandle<Result<Vec<Outcome>, Error>>,
) -> Result<Vec<Outcome>, Error> {
    write.await.map_err(|source| Error::Task {
        context: "import chunk write",
        source,
    })?
}

/// SHA-256 of the request's claim: a retry carries the same bytes, a reused id does not.
pub fn request_hash(claim: Option<&pb::Claim>) -> String {
    let bytes = claim.map(Message::encode_to_vec).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// A request id is required (it makes retries safe) and at most 128 characters.
pub fn check_request_id(request_id: &str) -> Result<(), FieldViolation> {
    let violation = |description: &str| FieldViolation {
        field: "request_id".into(),
        description: description.into(),
    };
    if request_id.is_empty() {
        return Err(violation(
            "required: a client-chosen id that makes retries safe",
        ));
    }
    if request_id.len() > 128 {
        return Err(violation("at most 128 characters"));
    }
    Ok(())
}

/// One violation per scrubber error, on the claim's field path, with the rule id.
fn violations(findings: &[ScrubFinding]) -> Vec<FieldViolation> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| FieldViolation {
            field: format!("claim.{}", f.field),
            description: format!("{} [{}]", f.message, f.rule_id),
        })
        .collect()
}

/// INVALID_ARGUMENT naming every scrubber error as a field violation.
fn refusal(findings: &[ScrubFinding]) -> Error {
    Error::Invalid {
        message: "the claim breaks billing rules".into(),
        violations: violations(findings),
    }
}

fn stored_warnings(findings: &[ScrubFinding]) -> Vec<StoredFinding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(|f| StoredFinding {
            rule_id: f.rule_id.clone(),
            severity: f.severity.as_str().to_string(),
            field: f.field.clone(),
            message: f.message.clone(),
        })
        .collect()
}

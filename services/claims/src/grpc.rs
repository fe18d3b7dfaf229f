//! Transport of the claims service: proto <-> domain conversion, auth scoping, error mapping.
//! No SQL here (that is `store`), no billing rules (that is `arflow_domain`).
use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_server::ClaimsService;
use arflow_api::common::v1 as common;
use arflow_domain::rules::{PayerRuleSet, ScrubFinding, Severity};
use arflow_domain::{
    ClaimInput, ClaimStatus, Credential, FieldViolation, Frequency, Money, PatientInput,
    PayerInput, ProviderInput, ServiceLineInput, ValidClaim, validate_claim,
};
use arflow_platform::auth::{self, Principal, Role};
use arflow_platform::grpc::{
    self, audit_objects, failed_precondition, internal, invalid_argument, not_found,
};
use arflow_platform::{Clock, Db};
use chrono::{Datelike, NaiveDate};
use futures::StreamExt;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

use crate::store::{self, NewClaim, StoredClaim, StoredFinding, TenantId};

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
/// Roles that may create claims and change their status.
const WRITERS: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Specialist,
    Role::Partner,
    Role::Service,
];

#[derive(Clone)]
pub struct ClaimsApi {
    pub(crate) db: Db,
    pub(crate) clock: Clock,
    pub(crate) payer_rules: std::sync::Arc<PayerRuleSet>,
}

impl ClaimsApi {
    pub fn new(db: Db, clock: Clock, payer_rules: PayerRuleSet) -> ClaimsApi {
        ClaimsApi {
            db,
            clock,
            payer_rules: std::sync::Arc::new(payer_rules),
        }
    }

    /// Scrubs a validated claim against the rule pack and its payer's rules, with the
    /// patient's earlier services with that payer as history (`replacing`: the claim a
    /// correction replaces, left out of the history).
    /// Scrubs and writes one ImportClaims chunk; an outcome per item, by stream index.
    async fn write_chunk(
        &self,
        tenant: &TenantId,
        actor: &str,
        chunk: Vec<(usize, String, String, ValidClaim)>,
    ) -> Result<Vec<ChunkOutcome>, Status> {
        let claims: Vec<&ValidClaim> = chunk.iter().map(|(_, _, _, c)| c).collect();
        let findings = self.scrub_batch(tenant, &claims).await?;
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut items = Vec::with_capacity(chunk.len());
        let mut positions = Vec::with_capacity(chunk.len());
        for ((i, request_id, hash, claim), findings) in chunk.into_iter().zip(findings) {
            if arflow_domain::rules::has_errors(&findings) {
                let violations = findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .map(|f| common::FieldViolation {
                        field: format!("claim.{}", f.field),
                        description: format!("{} [{}]", f.message, f.rule_id),
                    })
                    .collect();
                outcomes.push(ChunkOutcome::Refused(i, violations));
                continue;
            }
            positions.push(i);
            items.push(NewClaim {
                request_id,
                request_hash: hash,
                claim,
                warnings: stored_warnings(&findings),
            });
        }
        let written = store::create_claims(&self.db, tenant, actor, &items, self.clock.now()).await;
        for (i, outcome) in positions.into_iter().zip(written) {
            outcomes.push(match outcome {
                Ok(created) => ChunkOutcome::Created(i, created.claim.id, created.replayed),
                Err(store::Error::Db(e)) => return Err(internal(e)),
                Err(e) => ChunkOutcome::Failed(i, e.to_string()),
            });
        }
        Ok(outcomes)
    }

    /// [`ClaimsApi::scrub`] for a bulk chunk, with one history query for all of it. Claims of
    /// the same chunk do not count as each other's history.
    pub(crate) async fn scrub_batch(
        &self,
        tenant: &TenantId,
        claims: &[&ValidClaim],
    ) -> Result<Vec<Vec<ScrubFinding>>, Status> {
        let histories = store::prior_services_many(&self.db, tenant, claims, None)
            .await
            .map_err(internal)?;
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

    pub(crate) async fn scrub(
        &self,
        tenant: &TenantId,
        claim: &ValidClaim,
        replacing: Option<&str>,
    ) -> Result<Vec<ScrubFinding>, Status> {
        let on = claim.first_service_date();
        let payer = self
            .payer_rules
            .for_payer(tenant.as_str(), &claim.payer.id, on);
        let history = store::prior_services_many(&self.db, tenant, &[claim], replacing)
            .await
            .map_err(internal)?
            .pop()
            .unwrap_or_default();
        let mut findings = arflow_domain::rules::scrub(claim, payer, &history, self.clock.today());
        findings.sort_by_key(|f| f.severity);
        Ok(findings)
    }
}

/// What became of one ImportClaims item written in a chunk (by stream index).
enum ChunkOutcome {
    Created(usize, String, bool),
    Refused(usize, Vec<common::FieldViolation>),
    Failed(usize, String),
}

fn apply_chunk(results: &mut [pb::ImportClaimResult], outcomes: Vec<ChunkOutcome>) {
    for outcome in outcomes {
        match outcome {
            ChunkOutcome::Created(i, id, replayed) => {
                results[i].claim_id = id;
                results[i].accepted = true;
                results[i].replayed = replayed;
            }
            ChunkOutcome::Refused(i, violations) => results[i].field_violations = violations,
            ChunkOutcome::Failed(i, error) => results[i].error = error,
        }
    }
}

pub(crate) fn finding_to_pb(f: &ScrubFinding) -> pb::ScrubFinding {
    pb::ScrubFinding {
        rule_id: f.rule_id.clone(),
        severity: match f.severity {
            Severity::Error => pb::ScrubSeverity::Error,
            Severity::Warning => pb::ScrubSeverity::Warning,
        } as i32,
        field: format!("claim.{}", f.field),
        message: f.message.clone(),
    }
}

/// INVALID_ARGUMENT naming every scrubber error as a field violation.
pub(crate) fn findings_status(findings: &[ScrubFinding]) -> Status {
    invalid_argument(
        "the claim breaks billing rules",
        findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| {
                (
                    format!("claim.{}", f.field),
                    format!("{} [{}]", f.message, f.rule_id),
                )
            }),
    )
}

pub(crate) fn stored_warnings(findings: &[ScrubFinding]) -> Vec<StoredFinding> {
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

impl From<store::Error> for Status {
    fn from(err: store::Error) -> Status {
        use store::Error as E;
        match err {
            E::NotFound => not_found("claim"),
            E::DuplicateExternalId => Status::already_exists(err.to_string()),
            E::RequestIdReused => invalid_argument(
                "request_id was already used for a different claim",
                [(
                    "request_id".to_string(),
                    "reused with different content; use a new request_id".to_string(),
                )],
            ),
            E::IllegalTransition(t) => failed_precondition(t.to_string()),
            E::VersionMismatch { .. } => Status::aborted(err.to_string()),
            E::OriginalNotFound => invalid_argument(
                "original claim not found",
                [(
                    "claim.original_claim_id".to_string(),
                    "no claim with this id in your tenant".to_string(),
                )],
            ),
            E::Db(e) => internal(e),
        }
    }
}

pub(crate) fn tenant(p: &Principal) -> TenantId {
    TenantId::new(p.tenant_id.clone())
}

pub(crate) fn actor(p: &Principal) -> String {
    format!("key:{}", p.key_id)
}

fn date_from_pb(d: &common::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

pub(crate) fn date_to_pb(d: NaiveDate) -> common::Date {
    common::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// Converts an optional proto date; a malformed one is a violation (and `None` downstream).
pub(crate) fn opt_date(
    d: Option<&common::Date>,
    field: &str,
    v: &mut Vec<FieldViolation>,
) -> Option<NaiveDate> {
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

pub fn status_from_pb(s: i32) -> Option<ClaimStatus> {
    use pb::ClaimStatus as P;
    Some(match P::try_from(s).ok()? {
        P::Unspecified => return None,
        P::Draft => ClaimStatus::Draft,
        P::Submitted => ClaimStatus::Submitted,
        P::Accepted => ClaimStatus::Accepted,
        P::Rejected => ClaimStatus::Rejected,
        P::Pending => ClaimStatus::Pending,
        P::Paid => ClaimStatus::Paid,
        P::PartiallyPaid => ClaimStatus::PartiallyPaid,
        P::Denied => ClaimStatus::Denied,
        P::Appealed => ClaimStatus::Appealed,
        P::WrittenOff => ClaimStatus::WrittenOff,
        P::Closed => ClaimStatus::Closed,
    })
}

pub fn status_to_pb(s: ClaimStatus) -> pb::ClaimStatus {
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

fn credential_from_pb(c: i32) -> Option<Credential> {
    use pb::ProviderCredential as P;
    Some(match P::try_from(c).ok()? {
        P::Unspecified => return None,
        P::Psychologist => Credential::Psychologist,
        P::Lcsw => Credential::Lcsw,
        P::Lpc => Credential::Lpc,
        P::Lmft => Credential::Lmft,
        P::Psychiatrist => Credential::Psychiatrist,
        P::NursePractitioner => Credential::NursePractitioner,
        P::Physician => Credential::Physician,
        P::PhysicianAssistant => Credential::PhysicianAssistant,
        P::Lmhc => Credential::Lmhc,
        P::Lcadc => Credential::Lcadc,
        P::Associate => Credential::Associate,
        P::Other => Credential::Other,
    })
}

fn credential_to_pb(c: Option<Credential>) -> pb::ProviderCredential {
    use pb::ProviderCredential as P;
    match c {
        None => P::Unspecified,
        Some(Credential::Psychologist) => P::Psychologist,
        Some(Credential::Lcsw) => P::Lcsw,
        Some(Credential::Lpc) => P::Lpc,
        Some(Credential::Lmft) => P::Lmft,
        Some(Credential::Psychiatrist) => P::Psychiatrist,
        Some(Credential::NursePractitioner) => P::NursePractitioner,
        Some(Credential::Physician) => P::Physician,
        Some(Credential::PhysicianAssistant) => P::PhysicianAssistant,
        Some(Credential::Lmhc) => P::Lmhc,
        Some(Credential::Lcadc) => P::Lcadc,
        Some(Credential::Associate) => P::Associate,
        Some(Credential::Other) => P::Other,
    }
}

fn frequency_from_pb(f: i32) -> Option<Frequency> {
    match pb::ClaimFrequency::try_from(f).ok()? {
        pb::ClaimFrequency::Unspecified => None,
        pb::ClaimFrequency::Original => Some(Frequency::Original),
        pb::ClaimFrequency::Replacement => Some(Frequency::Replacement),
        pb::ClaimFrequency::Void => Some(Frequency::Void),
    }
}

fn frequency_to_pb(f: Frequency) -> pb::ClaimFrequency {
    match f {
        Frequency::Original => pb::ClaimFrequency::Original,
        Frequency::Replacement => pb::ClaimFrequency::Replacement,
        Frequency::Void => pb::ClaimFrequency::Void,
    }
}

/// Turns a request's claim into a validated domain claim, or every violation found, with
/// field paths prefixed by `prefix` (`claim.`).
pub fn claim_from_pb(
    claim: Option<&pb::Claim>,
    principal: &Principal,
    today: NaiveDate,
) -> Result<ValidClaim, Vec<FieldViolation>> {
    let Some(c) = claim else {
        return Err(vec![FieldViolation {
            field: "claim".into(),
            description: "required".into(),
        }]);
    };
    let mut v = Vec::new();
    let patient = c.patient.clone().unwrap_or_default();
    let payer = c.payer.clone().unwrap_or_default();
    let rendering = c.rendering_provider.clone().unwrap_or_default();
    let billing = c.billing_provider.clone().unwrap_or_default();
    if c.status != 0 && status_from_pb(c.status).is_none() {
        v.push(FieldViolation {
            field: "status".into(),
            description: "unknown status".into(),
        });
    }
    let input = ClaimInput {
        clinic_id: c.clinic_id.clone(),
        external_id: c.external_id.clone(),
        patient: PatientInput {
            id: patient.id,
            first_name: patient.first_name,
            last_name: patient.last_name,
            birth_date: opt_date(patient.birth_date.as_ref(), "patient.birth_date", &mut v),
            member_id: patient.member_id,
        },
        payer: PayerInput {
            id: payer.id,
            name: payer.name,
        },
        rendering_provider: ProviderInput {
            npi: rendering.npi,
            name: rendering.name,
            credential: credential_from_pb(rendering.credential),
        },
        billing_provider: ProviderInput {
            npi: billing.npi,
            name: billing.name,
            credential: credential_from_pb(billing.credential),
        },
        diagnoses: c.diagnoses.clone(),
        service_lines: c
            .service_lines
            .iter()
            .enumerate()
            .map(|(i, l)| ServiceLineInput {
                line_number: i64::from(l.line_number),
                service_date: opt_date(
                    l.service_date.as_ref(),
                    &format!("service_lines[{i}].service_date"),
                    &mut v,
                ),
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                units: i64::from(l.units),
                minutes: i64::from(l.minutes),
                charge_cents: l.charge_cents,
                place_of_service: l.place_of_service.clone(),
                diagnosis_pointers: l.diagnosis_pointers.iter().map(|p| i64::from(*p)).collect(),
            })
            .collect(),
        prior_authorization_number: c.prior_authorization_number.clone(),
        frequency: frequency_from_pb(c.frequency),
        original_claim_id: Some(c.original_claim_id.clone()).filter(|s| !s.is_empty()),
        submission_date: opt_date(c.submission_date.as_ref(), "submission_date", &mut v),
        status: status_from_pb(c.status),
    };
    if !c.clinic_id.is_empty() && !principal.can_access_clinic(&c.clinic_id) {
        v.push(FieldViolation {
            field: "clinic_id".into(),
            description: "your API key does not cover this clinic".into(),
        });
    }
    let result = validate_claim(&input, today);
    match result {
        Ok(valid) if v.is_empty() => Ok(valid),
        Ok(_) => Err(prefix(v)),
        Err(mut more) => {
            // A malformed date was reported above; the domain then only sees "required".
            more.retain(|m| !v.iter().any(|x| x.field == m.field));
            v.extend(more);
            Err(prefix(v))
        }
    }
}

fn prefix(v: Vec<FieldViolation>) -> Vec<FieldViolation> {
    v.into_iter()
        .map(|f| FieldViolation {
            field: format!("claim.{}", f.field),
            ..f
        })
        .collect()
}

pub fn claim_to_pb(s: &StoredClaim) -> pb::Claim {
    let c = &s.claim;
    pb::Claim {
        id: s.id.clone(),
        tenant_id: s.tenant_id.clone(),
        clinic_id: c.clinic_id.clone(),
        external_id: c.external_id.clone(),
        patient: Some(pb::Patient {
            id: c.patient.id.clone(),
            first_name: c.patient.first_name.clone(),
            last_name: c.patient.last_name.clone(),
            birth_date: Some(date_to_pb(c.patient.birth_date)),
            member_id: c.patient.member_id.clone(),
        }),
        payer: Some(pb::Payer {
            id: c.payer.id.clone(),
            name: c.payer.name.clone(),
        }),
        rendering_provider: Some(pb::Provider {
            npi: c.rendering_provider.npi.clone(),
            name: c.rendering_provider.name.clone(),
            credential: credential_to_pb(c.rendering_provider.credential) as i32,
        }),
        billing_provider: Some(pb::Provider {
            npi: c.billing_provider.npi.clone(),
            name: c.billing_provider.name.clone(),
            credential: credential_to_pb(c.billing_provider.credential) as i32,
        }),
        diagnoses: c.diagnoses.clone(),
        service_lines: c
            .service_lines
            .iter()
            .map(|l| pb::ServiceLine {
                line_number: l.line_number as i32,
                service_date: Some(date_to_pb(l.service_date)),
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                units: l.units as i32,
                minutes: l.minutes as i32,
                charge_cents: l.charge.cents(),
                place_of_service: l.place_of_service.clone(),
                diagnosis_pointers: l.diagnosis_pointers.iter().map(|p| i32::from(*p)).collect(),
            })
            .collect(),
        prior_authorization_number: c.prior_authorization_number.clone().unwrap_or_default(),
        frequency: frequency_to_pb(c.frequency) as i32,
        submission_date: c.submission_date.map(date_to_pb),
        status: status_to_pb(c.status) as i32,
        total_charge_cents: c.total_charge.cents(),
        balance_cents: s.balance.cents(),
        create_time: Some(timestamp(s.created_at)),
        update_time: Some(timestamp(s.updated_at)),
        version: s.version,
        original_claim_id: c.original_claim_id.clone().unwrap_or_default(),
        warnings: s
            .warnings
            .iter()
            .map(|w| pb::ScrubFinding {
                rule_id: w.rule_id.clone(),
                severity: pb::ScrubSeverity::Warning as i32,
                field: format!("claim.{}", w.field),
                message: w.message.clone(),
            })
            .collect(),
        payer_claim_control_number: s.payer_claim_control_number.clone(),
        paid_cents: s.paid.cents(),
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// SHA-256 of the request's claim: a retry carries the same bytes, a reused id does not.
pub(crate) fn request_hash(claim: Option<&pb::Claim>) -> String {
    let bytes = claim.map(Message::encode_to_vec).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

fn check_request_id(request_id: &str) -> Result<(), (String, String)> {
    if request_id.is_empty() {
        return Err((
            "request_id".into(),
            "required: a client-chosen id that makes retries safe".into(),
        ));
    }
    if request_id.len() > 128 {
        return Err(("request_id".into(), "at most 128 characters".into()));
    }
    Ok(())
}

/// A claim id must look like one; anything else cannot exist, so it answers NOT_FOUND without
/// a database round trip.
pub(crate) fn check_claim_id(id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(invalid_argument(
            "claim_id is required",
            [("claim_id".into(), "required".into())],
        ));
    }
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found("claim"));
    }
    Ok(())
}

/// Applies the caller's clinic scope: a claim of a clinic the key does not cover is as
/// invisible as another tenant's.
pub(crate) fn visible(p: &Principal, claim: Option<StoredClaim>) -> Result<StoredClaim, Status> {
    match claim {
        Some(c) if p.can_access_clinic(&c.claim.clinic_id) => Ok(c),
        _ => Err(not_found("claim")),
    }
}

/// A page token is the last id of the previous page, tagged with the list it came from
/// (`c1` claims, `d1` denials, `u1` unmatched payments); opaque to callers.
pub(crate) fn decode_page_token(token: &str, kind: &str) -> Result<Option<String>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        invalid_argument(
            "invalid page_token",
            [("page_token".into(), "not a token from this method".into())],
        )
    };
    let text = String::from_utf8(hex::decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let id = text
        .strip_prefix(kind)
        .and_then(|t| t.strip_prefix(':'))
        .ok_or_else(bad)?;
    uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(Some(id.to_string()))
}

pub(crate) fn encode_page_token(kind: &str, id: &str) -> String {
    hex::encode(format!("{kind}:{id}"))
}

#[tonic::async_trait]
impl ClaimsService for ClaimsApi {
    async fn create_claim(
        &self,
        request: Request<pb::CreateClaimRequest>,
    ) -> Result<Response<pb::CreateClaimResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let req = request.into_inner();
        let mut violations = Vec::new();
        if let Err(v) = check_request_id(&req.request_id) {
            violations.push(v);
        }
        let valid = match claim_from_pb(req.claim.as_ref(), &principal, self.clock.today()) {
            Ok(valid) => Some(valid),
            Err(v) => {
                violations.extend(v.into_iter().map(|f| (f.field, f.description)));
                None
            }
        };
        let Some(valid) = valid.filter(|_| violations.is_empty()) else {
            return Err(invalid_argument("the claim is not valid", violations));
        };
        let findings = self.scrub(&tenant(&principal), &valid, None).await?;
        if arflow_domain::rules::has_errors(&findings) {
            return Err(findings_status(&findings));
        }
        let item = NewClaim {
            request_id: req.request_id,
            request_hash: request_hash(req.claim.as_ref()),
            claim: valid,
            warnings: stored_warnings(&findings),
        };
        let created = store::create_one(
            &self.db,
            &tenant(&principal),
            &actor(&principal),
            &item,
            self.clock.now(),
        )
        .await?;
        let mut response = Response::new(pb::CreateClaimResponse {
            claim: Some(claim_to_pb(&created.claim)),
            replayed: created.replayed,
        });
        audit_objects(&mut response, [created.claim.id]);
        Ok(response)
    }

    async fn get_claim(
        &self,
        request: Request<pb::GetClaimRequest>,
    ) -> Result<Response<pb::GetClaimResponse>, Status> {
        let principal = auth::principal(&request)?;
        let id = request.into_inner().claim_id;
        check_claim_id(&id)?;
        let claim = visible(
            &principal,
            store::get_claim(&self.db, &tenant(&principal), &id)
                .await
                .map_err(internal)?,
        )?;
        let mut response = Response::new(pb::GetClaimResponse {
            claim: Some(claim_to_pb(&claim)),
        });
        audit_objects(&mut response, [claim.id]);
        Ok(response)
    }

    async fn list_claims(
        &self,
        request: Request<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        let mut violations = Vec::new();
        let page_size = grpc::page_size(req.page_size).unwrap_or_else(|v| {
            violations.push(v);
            grpc::DEFAULT_PAGE_SIZE
        });
        let mut dv = Vec::new();
        let submitted_from = opt_date(req.submitted_from.as_ref(), "submitted_from", &mut dv);
        let submitted_to = opt_date(req.submitted_to.as_ref(), "submitted_to", &mut dv);
        violations.extend(dv.into_iter().map(|f| (f.field, f.description)));
        if req.min_balance_cents < 0 {
            violations.push(("min_balance_cents".into(), "must not be negative".into()));
        }
        let status = match req.status {
            0 => None,
            s => match status_from_pb(s) {
                Some(s) => Some(s),
                None => {
                    violations.push(("status".into(), "unknown status".into()));
                    None
                }
            },
        };
        if !violations.is_empty() {
            return Err(invalid_argument("invalid list request", violations));
        }
        let after = decode_page_token(&req.page_token, "c1")?;
        let clinic_id = Some(req.clinic_id).filter(|c| !c.is_empty());
        if let Some(c) = &clinic_id
            && !principal.can_access_clinic(c)
        {
            // Nothing of a clinic outside the key's scope is visible.
            return Ok(Response::new(pb::ListClaimsResponse::default()));
        }
        let filter = store::ListFilter {
            clinic_id,
            clinic_scope: principal.clinic_ids.clone(),
            payer_id: Some(req.payer_id).filter(|p| !p.is_empty()),
            status,
            submitted_from,
            submitted_to,
            min_balance: (req.min_balance_cents > 0)
                .then(|| Money::from_cents(req.min_balance_cents)),
        };
        let (claims, next) = store::list_claims(
            &self.db,
            &tenant(&principal),
            &filter,
            after.as_deref(),
            page_size,
        )
        .await
        .map_err(internal)?;
        let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
        let mut response = Response::new(pb::ListClaimsResponse {
            claims: claims.iter().map(claim_to_pb).collect(),
            next_page_token: next
                .as_deref()
                .map(|id| encode_page_token("c1", id))
                .unwrap_or_default(),
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }

    async fn import_claims(
        &self,
        request: Request<Streaming<pb::ImportClaimsRequest>>,
    ) -> Result<Response<pb::ImportClaimsResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let (tenant, actor) = (tenant(&principal), actor(&principal));
        let mut stream = request.into_inner();
        let mut results: Vec<pb::ImportClaimResult> = Vec::new();
        let mut pending: Vec<(usize, String, String, ValidClaim)> = Vec::new();
        let chunk_size = match self.db.backend() {
            arflow_platform::Backend::Postgres => IMPORT_CHUNK_POSTGRES,
            arflow_platform::Backend::Sqlite => IMPORT_CHUNK_SQLITE,
        };
        // Postgres writes two chunks at once (its second core works while we decode and
        // scrub); SQLite has one writer, so one.
        let max_in_flight = match self.db.backend() {
            arflow_platform::Backend::Postgres => 2,
            arflow_platform::Backend::Sqlite => 1,
        };
        let mut inflight: std::collections::VecDeque<
            tokio::task::JoinHandle<Result<Vec<ChunkOutcome>, Status>>,
        > = std::collections::VecDeque::new();
        let mut index = 0usize;
        let mut stream_error = None;
        let (mut sent, mut refresh_at) = (0usize, IMPORT_STATS_FIRST);
        loop {
            let next = stream.next().await;
            let done = match next {
                Some(Ok(item)) => {
                    let mut result = pb::ImportClaimResult {
                        index: index as i32,
                        ..Default::default()
                    };
                    let mut violations = Vec::new();
                    if let Err(v) = check_request_id(&item.request_id) {
                        violations.push(common::FieldViolation {
                            field: v.0,
                            description: v.1,
                        });
                    }
                    match claim_from_pb(item.claim.as_ref(), &principal, self.clock.today()) {
                        Ok(valid) if violations.is_empty() => {
                            pending.push((
                                index,
                                item.request_id,
                                request_hash(item.claim.as_ref()),
                                valid,
                            ));
                        }
                        Ok(_) => {}
                        Err(v) => {
                            violations.extend(v.into_iter().map(|f| common::FieldViolation {
                                field: f.field,
                                description: f.description,
                            }))
                        }
                    }
                    // A valid item's result is filled in when its chunk is written.
                    result.field_violations = violations;
                    results.push(result);
                    index += 1;
                    false
                }
                Some(Err(status)) => {
                    // The client went away or sent garbage: keep what was accepted so far.
                    stream_error = Some(status);
                    true
                }
                None => true,
            };
            if pending.len() >= chunk_size || (done && !pending.is_empty()) {
                // Write this chunk while the next ones stream in. Concurrent chunks are safe:
                // a request id or patient control number in two of them trips a unique
                // constraint and the loser falls back to item-by-item writes.
                if inflight.len() >= max_in_flight
                    && let Some(write) = inflight.pop_front()
                {
                    apply_chunk(&mut results, write.await.map_err(internal)??);
                }
                sent += pending.len();
                if sent >= refresh_at {
                    refresh_at = refresh_at.saturating_mul(4);
                    if let Err(err) = store::refresh_intake_stats(&self.db).await {
                        tracing::warn!(error = %err, "refresh planner statistics during import");
                    }
                }
                let api = self.clone();
                let (tenant, actor, chunk) =
                    (tenant.clone(), actor.clone(), std::mem::take(&mut pending));
                inflight.push_back(tokio::spawn(async move {
                    api.write_chunk(&tenant, &actor, chunk).await
                }));
            }
            if done {
                break;
            }
        }
        while let Some(write) = inflight.pop_front() {
            apply_chunk(&mut results, write.await.map_err(internal)??);
        }
        if let Some(status) = stream_error {
            tracing::warn!(code = ?status.code(), accepted = results.iter().filter(|r| r.accepted).count(), "import stream ended with an error");
        }
        let accepted_count = results.iter().filter(|r| r.accepted).count() as i32;
        let rejected_count = results.len() as i32 - accepted_count;
        let ids: Vec<String> = results
            .iter()
            .filter(|r| r.accepted)
            .map(|r| r.claim_id.clone())
            .collect();
        let mut response = Response::new(pb::ImportClaimsResponse {
            results,
            accepted_count,
            rejected_count,
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }

    async fn update_claim_status(
        &self,
        request: Request<pb::UpdateClaimStatusRequest>,
    ) -> Result<Response<pb::UpdateClaimStatusResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let req = request.into_inner();
        check_claim_id(&req.claim_id)?;
        let Some(to) = status_from_pb(req.status) else {
            return Err(invalid_argument(
                "status is required",
                [("status".into(), "required: the new status".into())],
            ));
        };
        if req.reason.len() > 500 {
            return Err(invalid_argument(
                "reason is too long",
                [("reason".into(), "at most 500 characters".into())],
            ));
        }
        let tenant = tenant(&principal);
        // Scope check first, so a claim outside the key's clinics is NOT_FOUND, not a change.
        visible(
            &principal,
            store::get_claim(&self.db, &tenant, &req.claim_id)
                .await
                .map_err(internal)?,
        )?;
        let expected = (req.expected_version > 0).then_some(req.expected_version);
        let claim = store::update_status(
            &self.db,
            &tenant,
            &req.claim_id,
            to,
            &req.reason,
            expected,
            &actor(&principal),
            self.clock.now(),
        )
        .await?;
        let mut response = Response::new(pb::UpdateClaimStatusResponse {
            claim: Some(claim_to_pb(&claim)),
        });
        audit_objects(&mut response, [claim.id]);
        Ok(response)
    }

    async fn get_claim_history(
        &self,
        request: Request<pb::GetClaimHistoryRequest>,
    ) -> Result<Response<pb::GetClaimHistoryResponse>, Status> {
        let principal = auth::principal(&request)?;
        let id = request.into_inner().claim_id;
        check_claim_id(&id)?;
        let tenant = tenant(&principal);
        visible(
            &principal,
            store::get_claim(&self.db, &tenant, &id)
                .await
                .map_err(internal)?,
        )?;
        let entries = store::history(&self.db, &tenant, &id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("claim"))?;
        let mut response = Response::new(pb::GetClaimHistoryResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::ClaimHistoryEntry {
                    version: e.version,
                    from_status: e
                        .from_status
                        .map(status_to_pb)
                        .unwrap_or(pb::ClaimStatus::Unspecified)
                        as i32,
                    to_status: status_to_pb(e.to_status) as i32,
                    reason: e.reason,
                    actor: e.actor,
                    change_time: Some(timestamp(e.changed_at)),
                })
                .collect(),
        });
        audit_objects(&mut response, [id]);
        Ok(response)
    }

    async fn scrub_claim(
        &self,
        request: Request<pb::ScrubClaimRequest>,
    ) -> Result<Response<pb::ScrubClaimResponse>, Status> {
        self.do_scrub_claim(request).await
    }

    async fn post_remittance(
        &self,
        request: Request<pb::PostRemittanceRequest>,
    ) -> Result<Response<pb::PostRemittanceResponse>, Status> {
        self.do_post_remittance(request).await
    }

    async fn post_status_report(
        &self,
        request: Request<pb::PostStatusReportRequest>,
    ) -> Result<Response<pb::PostStatusReportResponse>, Status> {
        self.do_post_status_report(request).await
    }

    async fn list_denials(
        &self,
        request: Request<pb::ListDenialsRequest>,
    ) -> Result<Response<pb::ListDenialsResponse>, Status> {
        self.do_list_denials(request).await
    }

    async fn summarize_denials(
        &self,
        request: Request<pb::SummarizeDenialsRequest>,
    ) -> Result<Response<pb::SummarizeDenialsResponse>, Status> {
        self.do_summarize_denials(request).await
    }

    async fn list_unmatched_payments(
        &self,
        request: Request<pb::ListUnmatchedPaymentsRequest>,
    ) -> Result<Response<pb::ListUnmatchedPaymentsResponse>, Status> {
        self.do_list_unmatched_payments(request).await
    }

    async fn get_claim_payments(
        &self,
        request: Request<pb::GetClaimPaymentsRequest>,
    ) -> Result<Response<pb::GetClaimPaymentsResponse>, Status> {
        self.do_get_claim_payments(request).await
    }

    async fn correct_claim(
        &self,
        request: Request<pb::CorrectClaimRequest>,
    ) -> Result<Response<pb::CorrectClaimResponse>, Status> {
        self.do_correct_claim(request).await
    }

    async fn export_claim837(
        &self,
        request: Request<pb::ExportClaim837Request>,
    ) -> Result<Response<pb::ExportClaim837Response>, Status> {
        self.do_export_claim_837(request).await
    }
}

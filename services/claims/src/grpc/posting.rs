//! The posting, denial and correction methods of ClaimsService (the trait impl in `grpc`
//! delegates here): request checks, X12 mapping (`x12_map`), proto conversion.
use arflow_api::claims::v1 as pb;
use arflow_api::wire::{date_to_pb, denial_category_from_pb, denial_category_to_pb, opt_date};
use arflow_domain::{DenialCategory, Frequency, Money};
use arflow_platform::auth::{self, Role};
use arflow_platform::grpc::{audit_objects, invalid_argument};
use tonic::{Request, Response, Status};

use super::convert::{claim_from_pb, claim_to_pb, denial_to_pb, opt_status_to_pb};
use super::{
    ClaimsApi, DENIALS_LIST, UNMATCHED_LIST, actor, check_claim_id, next_page_token, page_cursor,
    tenant, visible,
};
use crate::error::Error;
use crate::intake::{Item, request_hash};
use crate::posting::{self, DenialFilter};
use crate::store;
use crate::x12_map::{self, Export837};

/// Roles that post payer files (a partner's clearinghouse feed, a biller, the service itself).
const POSTERS: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Specialist,
    Role::Partner,
    Role::Service,
];

/// The denial category a list filters on: None for UNSPECIFIED (no filter).
fn category_filter(c: i32) -> Result<Option<DenialCategory>, Status> {
    denial_category_from_pb(c).map_err(|()| {
        invalid_argument(
            "unknown category",
            [("category".into(), "unknown denial category".into())],
        )
    })
}

/// A payer file accepted for posting.
struct Received {
    tenant: store::TenantId,
    actor: String,
    now: chrono::DateTime<chrono::Utc>,
    file_id: String,
}

impl ClaimsApi {
    /// Checks the caller and the file, then stores the raw file before anything is posted from
    /// it: whatever happens next, the evidence is kept.
    async fn receive_file(
        &self,
        principal: &auth::Principal,
        kind: &str,
        file_name: &str,
        content: &[u8],
    ) -> Result<Received, Status> {
        principal.require_role(POSTERS)?;
        if content.is_empty() {
            return Err(invalid_argument(
                "content is empty",
                [("content".into(), "required: the X12 file".into())],
            ));
        }
        let (tenant, actor, now) = (tenant(principal), actor(principal), self.clock.now());
        let file_id = posting::store_file(&self.db, &tenant, kind, file_name, content, &actor, now)
            .await
            .map_err(Error::db("store the received file"))?;
        Ok(Received {
            tenant,
            actor,
            now,
            file_id,
        })
    }

    pub(super) async fn do_post_remittance(
        &self,
        request: Request<pb::PostRemittanceRequest>,
    ) -> Result<Response<pb::PostRemittanceResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        let Received {
            tenant,
            actor,
            now,
            file_id,
        } = self
            .receive_file(&principal, "835", &req.file_name, &req.content)
            .await?;
        let parsed = x12_map::remittances_from_835(&req.content);
        let mut results = Vec::new();
        let mut touched = Vec::new();
        for item in parsed.remittances {
            let posted = posting::post_remittance(
                &self.db,
                &tenant,
                &principal.clinic_ids,
                &file_id,
                &item.remit,
                &actor,
                now,
            )
            .await?;
            touched.push(posted.remittance_id.clone());
            let claims = posted
                .claims
                .iter()
                .map(|c| {
                    touched.extend(c.claim_id.clone());
                    pb::RemittanceClaimResult {
                        patient_control_number: c.patient_control_number.clone(),
                        claim_id: c.claim_id.clone().unwrap_or_default(),
                        status_code: c.status_code.clone(),
                        charge_cents: c.charge.cents(),
                        paid_cents: c.paid.cents(),
                        claim_status: opt_status_to_pb(c.claim_status),
                        balance_cents: c.balance.map(Money::cents).unwrap_or_default(),
                        patient_balance_cents: c
                            .patient_balance
                            .map(Money::cents)
                            .unwrap_or_default(),
                        unmatched_reason: c.unmatched_reason.clone().unwrap_or_default(),
                        denials: c.denials.iter().map(denial_to_pb).collect(),
                        reversal: c.reversal,
                    }
                })
                .collect();
            results.push(pb::RemittanceResult {
                remittance_id: posted.remittance_id,
                trace_number: item.remit.trace_number.clone(),
                payer_id: item.remit.payer_id.clone(),
                payee_id: item.remit.payee_id.clone(),
                payment_cents: item.remit.payment.cents(),
                already_posted: posted.already_posted,
                claims,
                provider_adjustment_cents: if posted.already_posted {
                    0
                } else {
                    posted.provider_adjustment.cents()
                },
                balance_problems: item.balance_problems,
            });
        }
        touched.push(file_id.clone());
        let mut response = Response::new(pb::PostRemittanceResponse {
            file_id,
            remittances: results,
            problems: parsed.problems,
        });
        audit_objects(&mut response, touched);
        Ok(response)
    }

    pub(super) async fn do_post_status_report(
        &self,
        request: Request<pb::PostStatusReportRequest>,
    ) -> Result<Response<pb::PostStatusReportResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        // Reading is pure: it names the kind of file stored (a 277/277CA, or a 999 that
        // acknowledges our 837P exports) before anything is posted from it.
        let parsed = x12_map::statuses_from_277(&req.content);
        let kind = if parsed.statuses.is_empty() && !parsed.acks.is_empty() {
            "999"
        } else {
            "277"
        };
        let Received {
            tenant,
            actor,
            now,
            file_id,
        } = self
            .receive_file(&principal, kind, &req.file_name, &req.content)
            .await?;
        let mut claims = Vec::with_capacity(parsed.statuses.len() + parsed.acks.len());
        let mut touched = vec![file_id.clone()];
        for status in &parsed.statuses {
            let out = posting::post_status(
                &self.db,
                &tenant,
                &principal.clinic_ids,
                status,
                &parsed.source,
                &actor,
                now,
            )
            .await?;
            touched.extend(out.claim_id.clone());
            claims.push(status_result(out));
        }
        for ack in &parsed.acks {
            let out = posting::post_ack(&self.db, &tenant, &principal.clinic_ids, ack, &actor, now)
                .await?;
            touched.extend(out.claim_id.clone());
            claims.push(status_result(out));
        }
        let mut response = Response::new(pb::PostStatusReportResponse {
            file_id,
            claims,
            problems: parsed.problems,
        });
        audit_objects(&mut response, touched);
        Ok(response)
    }

    pub(super) async fn do_list_denials(
        &self,
        request: Request<pb::ListDenialsRequest>,
    ) -> Result<Response<pb::ListDenialsResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        let size = arflow_platform::grpc::page_size_or_invalid(req.page_size)?;
        let mut dv = Vec::new();
        let from = opt_date(req.denied_from.as_ref(), "denied_from", &mut dv);
        let to = opt_date(req.denied_to.as_ref(), "denied_to", &mut dv);
        if !dv.is_empty() {
            return Err(invalid_argument(
                "invalid dates",
                dv.into_iter().map(|v| (v.field, v.description)),
            ));
        }
        let clinic_id = Some(req.clinic_id).filter(|c| !c.is_empty());
        if clinic_id
            .as_deref()
            .is_some_and(|c| !principal.can_access_clinic(c))
        {
            return Ok(Response::new(pb::ListDenialsResponse::default()));
        }
        let filter = DenialFilter {
            clinic_id,
            clinic_scope: principal.clinic_ids.clone(),
            payer_id: Some(req.payer_id).filter(|p| !p.is_empty()),
            category: category_filter(req.category)?,
            claim_id: Some(req.claim_id).filter(|c| !c.is_empty()),
            from,
            to,
        };
        let after = page_cursor(&req.page_token, DENIALS_LIST)?;
        let (denials, next) = posting::list_denials(
            &self.db,
            &tenant(&principal),
            &filter,
            after.as_deref(),
            size,
        )
        .await
        .map_err(Error::db("list denials"))?;
        let ids: Vec<String> = denials.iter().map(|d| d.claim_id.clone()).collect();
        let mut response = Response::new(pb::ListDenialsResponse {
            denials: denials.iter().map(denial_to_pb).collect(),
            next_page_token: next_page_token(DENIALS_LIST, next.as_deref()),
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }

    pub(super) async fn do_summarize_denials(
        &self,
        request: Request<pb::SummarizeDenialsRequest>,
    ) -> Result<Response<pb::SummarizeDenialsResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        let mut dv = Vec::new();
        let from = opt_date(req.denied_from.as_ref(), "denied_from", &mut dv);
        let to = opt_date(req.denied_to.as_ref(), "denied_to", &mut dv);
        let mut violations: Vec<(String, String)> =
            dv.into_iter().map(|v| (v.field, v.description)).collect();
        if req.denied_from.is_none() {
            violations.push((
                "denied_from".into(),
                "required: the first day of the period".into(),
            ));
        }
        if req.denied_to.is_none() {
            violations.push((
                "denied_to".into(),
                "required: the last day of the period".into(),
            ));
        }
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            violations.push(("denied_to".into(), "must not be before denied_from".into()));
        }
        if !violations.is_empty() {
            return Err(invalid_argument("invalid period", violations));
        }
        let clinic_id = Some(req.clinic_id).filter(|c| !c.is_empty());
        if clinic_id
            .as_deref()
            .is_some_and(|c| !principal.can_access_clinic(c))
        {
            return Ok(Response::new(pb::SummarizeDenialsResponse::default()));
        }
        let filter = DenialFilter {
            clinic_id,
            clinic_scope: principal.clinic_ids.clone(),
            payer_id: Some(req.payer_id).filter(|p| !p.is_empty()),
            from,
            to,
            ..Default::default()
        };
        let rows = posting::summarize_denials(&self.db, &tenant(&principal), &filter)
            .await
            .map_err(Error::db("summarize denials"))?;
        Ok(Response::new(pb::SummarizeDenialsResponse {
            total_count: rows.iter().map(|r| r.count).sum(),
            total_amount_cents: rows.iter().map(|r| r.amount.cents()).sum(),
            rows: rows
                .into_iter()
                .map(|r| pb::DenialSummaryRow {
                    category: denial_category_to_pb(r.category) as i32,
                    payer_id: r.payer_id,
                    procedure_code: r.procedure_code,
                    clinic_id: r.clinic_id,
                    count: r.count,
                    amount_cents: r.amount.cents(),
                })
                .collect(),
        }))
    }

    pub(super) async fn do_list_unmatched_payments(
        &self,
        request: Request<pb::ListUnmatchedPaymentsRequest>,
    ) -> Result<Response<pb::ListUnmatchedPaymentsResponse>, Status> {
        let principal = auth::principal(&request)?;
        // Unmatched payments belong to no clinic yet: only tenant-wide keys see them.
        if !principal.clinic_ids.is_empty() {
            return Ok(Response::new(pb::ListUnmatchedPaymentsResponse::default()));
        }
        let req = request.into_inner();
        let size = arflow_platform::grpc::page_size_or_invalid(req.page_size)?;
        let after = page_cursor(&req.page_token, UNMATCHED_LIST)?;
        let (rows, next) =
            posting::list_unmatched(&self.db, &tenant(&principal), after.as_deref(), size)
                .await
                .map_err(Error::db("list unmatched payments"))?;
        Ok(Response::new(pb::ListUnmatchedPaymentsResponse {
            payments: rows
                .into_iter()
                .map(|u| pb::UnmatchedPayment {
                    remittance_id: u.remittance_id,
                    patient_control_number: u.patient_control_number,
                    payer_claim_control_number: u.payer_claim_control_number,
                    payer_id: u.payer_id,
                    paid_cents: u.paid.cents(),
                    reason: u.reason,
                })
                .collect(),
            next_page_token: next_page_token(UNMATCHED_LIST, next.as_deref()),
        }))
    }

    pub(super) async fn do_get_claim_payments(
        &self,
        request: Request<pb::GetClaimPaymentsRequest>,
    ) -> Result<Response<pb::GetClaimPaymentsResponse>, Status> {
        let principal = auth::principal(&request)?;
        let id = request.into_inner().claim_id;
        check_claim_id(&id)?;
        let tenant = tenant(&principal);
        visible(
            &principal,
            store::get_claim(&self.db, &tenant, &id)
                .await
                .map_err(Error::db("load the claim"))?,
        )?;
        let payments = posting::claim_payments(&self.db, &tenant, &id)
            .await
            .map_err(Error::db("load the claim's payments"))?;
        let provider_adjustments = posting::claim_provider_adjustments(&self.db, &tenant, &id)
            .await
            .map_err(Error::db("load the claim's provider adjustments"))?
            .into_iter()
            .map(|p| pb::ProviderLevelAdjustment {
                remittance_id: p.remittance_id,
                reason_code: p.reason_code,
                reference: p.reference,
                amount_cents: p.amount.cents(),
            })
            .collect();
        let mut response = Response::new(pb::GetClaimPaymentsResponse {
            payments: payments
                .into_iter()
                .map(|p| pb::ClaimPayment {
                    id: p.id,
                    remittance_id: p.remittance_id,
                    status_code: p.status_code,
                    charge_cents: p.charge.cents(),
                    paid_cents: p.paid.cents(),
                    patient_responsibility_cents: p.patient_responsibility.cents(),
                    payer_claim_control_number: p.payer_claim_control_number,
                    reverses_payment_id: p.reverses_payment_id.unwrap_or_default(),
                    adjustments: p
                        .adjustments
                        .into_iter()
                        .map(|(group, reason, amount, line)| pb::Adjustment {
                            group_code: group,
                            reason_code: reason,
                            amount_cents: amount.cents(),
                            line_number: line as i32,
                        })
                        .collect(),
                    payment_date: p.payment_date.map(date_to_pb),
                })
                .collect(),
            provider_adjustments,
        });
        audit_objects(&mut response, [id]);
        Ok(response)
    }

    pub(super) async fn do_correct_claim(
        &self,
        request: Request<pb::CorrectClaimRequest>,
    ) -> Result<Response<pb::CorrectClaimResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(POSTERS)?;
        let req = request.into_inner();
        let tenant = tenant(&principal);
        check_claim_id(&req.original_claim_id).map_err(|_| {
            invalid_argument(
                "original_claim_id is required",
                [(
                    "original_claim_id".into(),
                    "the claim being corrected".into(),
                )],
            )
        })?;
        let original = visible(
            &principal,
            store::get_claim(&self.db, &tenant, &req.original_claim_id)
                .await
                .map_err(Error::db("load the claim"))?,
        )?;
        let mut claim = req.claim.clone().unwrap_or_default();
        claim.original_claim_id = original.id.clone();
        if claim.frequency == pb::ClaimFrequency::Unspecified as i32 {
            claim.frequency = pb::ClaimFrequency::Replacement as i32;
        }
        if claim.external_id.is_empty() {
            claim.external_id = original.claim.external_id.clone();
        }
        let mut violations: Vec<(String, String)> = Vec::new();
        if req.request_id.is_empty() {
            violations.push((
                "request_id".into(),
                "required: a client-chosen id that makes retries safe".into(),
            ));
        }
        if claim.frequency == pb::ClaimFrequency::Original as i32 {
            violations.push((
                "claim.frequency".into(),
                "a correction is a replacement (7) or a void (8)".into(),
            ));
        }
        if claim.clinic_id != original.claim.clinic_id {
            violations.push((
                "claim.clinic_id".into(),
                "must be the original claim's clinic".into(),
            ));
        }
        let valid = match claim_from_pb(Some(&claim), &principal, self.clock.today()) {
            Ok(v) => Some(v),
            Err(v) => {
                violations.extend(v.into_iter().map(|f| (f.field, f.description)));
                None
            }
        };
        let Some(valid) = valid.filter(|_| violations.is_empty()) else {
            return Err(invalid_argument(
                "the corrected claim is not valid",
                violations,
            ));
        };
        let findings = if valid.frequency == Frequency::Void {
            Vec::new()
        } else {
            self.intake
                .scrub(&tenant, &valid, Some(&original.id))
                .await?
        };
        let item = Item {
            request_id: req.request_id,
            request_hash: request_hash(Some(&claim)),
            claim: valid,
        };
        let created = self
            .intake
            .create(&tenant, &actor(&principal), item, &findings)
            .await?;
        let mut response = Response::new(pb::CorrectClaimResponse {
            claim: Some(claim_to_pb(&created.claim)),
            replayed: created.replayed,
        });
        audit_objects(&mut response, [created.claim.id, original.id]);
        Ok(response)
    }

    pub(super) async fn do_export_claim_837(
        &self,
        request: Request<pb::ExportClaim837Request>,
    ) -> Result<Response<pb::ExportClaim837Response>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        check_claim_id(&req.claim_id)?;
        let export = Export837::try_from(&req).map_err(|violations| Error::Invalid {
            message: "the 837P needs more than the claim holds".into(),
            violations,
        })?;
        let tenant = tenant(&principal);
        let claim = visible(
            &principal,
            store::get_claim(&self.db, &tenant, &req.claim_id)
                .await
                .map_err(Error::db("load the claim"))?,
        )?;
        let original_ccn = match &claim.claim.original_claim_id {
            Some(id) => store::get_claim(&self.db, &tenant, id)
                .await
                .map_err(Error::db("load the original claim"))?
                .map(|o| o.payer_claim_control_number)
                .unwrap_or_default(),
            None => String::new(),
        };
        // Every interchange gets the tenant's next control number: a clearinghouse rejects an
        // ISA13 it has seen (docs/reference/x12.md).
        let control = store::next_interchange_control_number(&self.db, &tenant).await?;
        // A 999 acknowledgment names the interchange: remember which claim it carries.
        store::record_export(&self.db, &tenant, control, &claim.id, self.clock.now()).await?;
        let content =
            x12_map::claim_to_837(&claim, &original_ccn, &export, control, self.clock.now())
                .map_err(|message| {
                    Error::FailedPrecondition(format!(
                        "cannot render this claim as 837P: {message}"
                    ))
                })?;
        let mut response = Response::new(pb::ExportClaim837Response {
            file_name: format!("{}.837p.x12", claim.claim.external_id),
            content,
        });
        audit_objects(&mut response, [claim.id]);
        Ok(response)
    }
}

/// One claim's line of a PostStatusReport answer (a 277 status or a 999 verdict).
fn status_result(out: posting::StatusOut) -> pb::StatusReportClaimResult {
    pb::StatusReportClaimResult {
        patient_control_number: out.patient_control_number,
        claim_id: out.claim_id.unwrap_or_default(),
        category_code: out.category,
        status_code: out.status_code,
        claim_status: opt_status_to_pb(out.claim_status),
        note: out.note,
    }
}

//! The claim methods of ClaimsService: create, import, read, list, status changes, history,
//! scrubbing (the trait impl in `grpc` delegates here).
use arflow_api::claims::v1 as pb;
use arflow_api::wire::{claim_status_from_pb, opt_date};
use arflow_domain::Money;
use arflow_platform::auth;
use arflow_platform::grpc::{self, audit_objects, invalid_argument, not_found};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{
    claim_from_pb, claim_to_pb, finding_to_pb, history_entry_to_pb, violations_to_pb,
};
use super::{
    CLAIMS_LIST, ClaimsApi, WRITERS, actor, check_claim_id, next_page_token, page_cursor, tenant,
    visible,
};
use crate::error::Error;
use crate::intake::{self, Import, Item, Outcome, check_request_id, request_hash};
use crate::store;

impl ClaimsApi {
    pub(super) async fn do_create_claim(
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
                violations.extend(v);
                None
            }
        };
        let Some(valid) = valid.filter(|_| violations.is_empty()) else {
            return Err(Error::Invalid {
                message: "the claim is not valid".into(),
                violations,
            }
            .into());
        };
        let tenant = tenant(&principal);
        let findings = self.intake.scrub(&tenant, &valid, None).await?;
        let item = Item {
            request_id: req.request_id,
            request_hash: request_hash(req.claim.as_ref()),
            claim: valid,
        };
        let created = self
            .intake
            .create(&tenant, &actor(&principal), item, &findings)
            .await?;
        let mut response = Response::new(pb::CreateClaimResponse {
            claim: Some(claim_to_pb(&created.claim)),
            replayed: created.replayed,
        });
        audit_objects(&mut response, [created.claim.id]);
        Ok(response)
    }

    pub(super) async fn do_get_claim(
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
                .map_err(Error::db("load the claim"))?,
        )?;
        let mut response = Response::new(pb::GetClaimResponse {
            claim: Some(claim_to_pb(&claim)),
        });
        audit_objects(&mut response, [claim.id]);
        Ok(response)
    }

    /// Payer and patient balance totals. A clinic outside the key's scope answers empty totals
    /// (as if it had no claims); a clinic-scoped key without a clinic sees its clinics' totals.
    pub(super) async fn do_summarize_balances(
        &self,
        request: Request<pb::SummarizeBalancesRequest>,
    ) -> Result<Response<pb::SummarizeBalancesResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        let clinic_id = Some(req.clinic_id).filter(|c| !c.is_empty());
        if clinic_id
            .as_deref()
            .is_some_and(|c| !principal.can_access_clinic(c))
        {
            return Ok(Response::new(pb::SummarizeBalancesResponse::default()));
        }
        let filter = store::BalanceFilter {
            clinic_id,
            clinic_scope: principal.clinic_ids.clone(),
            payer_id: Some(req.payer_id).filter(|p| !p.is_empty()),
        };
        let totals = store::summarize_balances(&self.db, &tenant(&principal), &filter)
            .await
            .map_err(Error::db("summarize balances"))?;
        Ok(Response::new(pb::SummarizeBalancesResponse {
            payer_balance_cents: totals.payer_balance.cents(),
            payer_balance_claim_count: totals.payer_balance_claims,
            patient_balance_cents: totals.patient_balance.cents(),
            patient_balance_claim_count: totals.patient_balance_claims,
        }))
    }

    pub(super) async fn do_list_claims(
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
            s => match claim_status_from_pb(s) {
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
        let after = page_cursor(&req.page_token, CLAIMS_LIST)?;
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
        .map_err(Error::db("list claims"))?;
        let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
        let mut response = Response::new(pb::ListClaimsResponse {
            claims: claims.iter().map(claim_to_pb).collect(),
            next_page_token: next_page_token(CLAIMS_LIST, next.as_deref()),
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }

    pub(super) async fn do_import_claims(
        &self,
        request: Request<Streaming<pb::ImportClaimsRequest>>,
    ) -> Result<Response<pb::ImportClaimsResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let mut import = Import::new(&self.intake, tenant(&principal), actor(&principal));
        let mut stream = request.into_inner();
        let mut results: Vec<pb::ImportClaimResult> = Vec::new();
        let mut stream_error = None;
        while let Some(next) = stream.next().await {
            let item = match next {
                Ok(item) => item,
                Err(status) => {
                    // The client went away or sent garbage: keep what was accepted so far.
                    stream_error = Some(status);
                    break;
                }
            };
            let index = results.len();
            let mut violations = Vec::new();
            if let Err(v) = check_request_id(&item.request_id) {
                violations.push(v);
            }
            match claim_from_pb(item.claim.as_ref(), &principal, self.clock.today()) {
                Ok(valid) if violations.is_empty() => {
                    let hash = request_hash(item.claim.as_ref());
                    import
                        .push(
                            index,
                            Item {
                                request_id: item.request_id,
                                request_hash: hash,
                                claim: valid,
                            },
                        )
                        .await?;
                }
                Ok(_) => {}
                Err(v) => violations.extend(v),
            }
            // A valid item's result is filled in when its chunk is written.
            results.push(pb::ImportClaimResult {
                index: index as i32,
                field_violations: violations_to_pb(violations),
                ..Default::default()
            });
        }
        for outcome in import.finish().await? {
            apply_outcome(&mut results, outcome);
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

    pub(super) async fn do_update_claim_status(
        &self,
        request: Request<pb::UpdateClaimStatusRequest>,
    ) -> Result<Response<pb::UpdateClaimStatusResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let req = request.into_inner();
        check_claim_id(&req.claim_id)?;
        let Some(to) = claim_status_from_pb(req.status) else {
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
                .map_err(Error::db("load the claim"))?,
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

    pub(super) async fn do_get_claim_history(
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
                .map_err(Error::db("load the claim"))?,
        )?;
        let entries = store::history(&self.db, &tenant, &id)
            .await
            .map_err(Error::db("load the claim's history"))?
            .ok_or_else(|| not_found("claim"))?;
        let mut response = Response::new(pb::GetClaimHistoryResponse {
            entries: entries.into_iter().map(history_entry_to_pb).collect(),
        });
        audit_objects(&mut response, [id]);
        Ok(response)
    }

    pub(super) async fn do_scrub_claim(
        &self,
        request: Request<pb::ScrubClaimRequest>,
    ) -> Result<Response<pb::ScrubClaimResponse>, Status> {
        let principal = auth::principal(&request)?;
        let req = request.into_inner();
        let today = self.clock.today();
        let valid = match claim_from_pb(req.claim.as_ref(), &principal, today) {
            Ok(valid) => valid,
            Err(violations) => {
                return Ok(Response::new(pb::ScrubClaimResponse {
                    accepted: false,
                    field_violations: violations_to_pb(violations),
                    findings: Vec::new(),
                }));
            }
        };
        let findings = self.intake.scrub(&tenant(&principal), &valid, None).await?;
        let accepted = !arflow_domain::rules::has_errors(&findings);
        Ok(Response::new(pb::ScrubClaimResponse {
            accepted,
            field_violations: Vec::new(),
            findings: findings.iter().map(finding_to_pb).collect(),
        }))
    }
}

/// Fills in the result of an ImportClaims item once its chunk is written.
fn apply_outcome(results: &mut [pb::ImportClaimResult], outcome: intake::Outcome) {
    match outcome {
        Outcome::Created(i, id, replayed) => {
            results[i].claim_id = id;
            results[i].accepted = true;
            results[i].replayed = replayed;
        }
        Outcome::Refused(i, violations) => {
            results[i].field_violations = violations_to_pb(violations)
        }
        Outcome::Failed(i, error) => results[i].error = error,
    }
}

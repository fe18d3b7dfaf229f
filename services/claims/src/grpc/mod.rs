//! Transport of the claims service: `arflow.claims.v1.ClaimsService`. Request checks, roles and
//! clinic scoping, proto <-> domain conversion ([`convert`]), then the intake pipeline
//! (`crate::intake`), the store or posting. No SQL here, no billing rules (`arflow_domain`).
//!
//! - [`claims`]: create, import, read, list, balance totals, status changes, history,
//!   scrubbing.
//! - [`posting`]: payer files (835, 277/277CA), denials, payments, corrections, 837P export.
use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_server::ClaimsService;
use arflow_platform::auth::{Principal, Role};
use arflow_platform::grpc::{invalid_argument, not_found};
use arflow_platform::{Clock, Db};
use tonic::{Request, Response, Status, Streaming};

use crate::intake::Intake;
use crate::store::{StoredClaim, TenantId};

mod claims;
pub mod convert;
mod posting;

/// Roles that may create claims and change their status.
const WRITERS: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Specialist,
    Role::Partner,
    Role::Service,
];

/// The page-token tags of the three lists (a token of one list is refused by another).
const CLAIMS_LIST: &str = "c1";
const DENIALS_LIST: &str = "d1";
const UNMATCHED_LIST: &str = "u1";

#[derive(Clone)]
pub struct ClaimsApi {
    pub(crate) db: Db,
    pub(crate) clock: Clock,
    pub(crate) intake: Intake,
}

impl ClaimsApi {
    pub fn new(db: Db, clock: Clock, intake: Intake) -> ClaimsApi {
        ClaimsApi { db, clock, intake }
    }
}

pub(crate) fn tenant(p: &Principal) -> TenantId {
    TenantId::new(p.tenant_id.clone())
}

pub(crate) fn actor(p: &Principal) -> String {
    format!("key:{}", p.key_id)
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

/// The cursor of a list's page token (`PageToken`, tagged by list): the last id of the
/// previous page, which must be a uuid.
pub(crate) fn page_cursor(token: &str, list: &str) -> Result<Option<String>, Status> {
    let cursor = arflow_platform::grpc::PageToken::decode_or_invalid(token, list)?;
    if let Some(id) = &cursor
        && uuid::Uuid::parse_str(id).is_err()
    {
        return Err(invalid_argument(
            "invalid page_token",
            [("page_token".into(), "not a token from this method".into())],
        ));
    }
    Ok(cursor)
}

/// The next page's token, empty on the last page.
pub(crate) fn next_page_token(list: &str, next: Option<&str>) -> String {
    next.map(|id| arflow_platform::grpc::PageToken::encode(list, id))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl ClaimsService for ClaimsApi {
    async fn create_claim(
        &self,
        request: Request<pb::CreateClaimRequest>,
    ) -> Result<Response<pb::CreateClaimResponse>, Status> {
        self.do_create_claim(request).await
    }

    async fn get_claim(
        &self,
        request: Request<pb::GetClaimRequest>,
    ) -> Result<Response<pb::GetClaimResponse>, Status> {
        self.do_get_claim(request).await
    }

    async fn list_claims(
        &self,
        request: Request<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        self.do_list_claims(request).await
    }

    async fn import_claims(
        &self,
        request: Request<Streaming<pb::ImportClaimsRequest>>,
    ) -> Result<Response<pb::ImportClaimsResponse>, Status> {
        self.do_import_claims(request).await
    }

    async fn update_claim_status(
        &self,
        request: Request<pb::UpdateClaimStatusRequest>,
    ) -> Result<Response<pb::UpdateClaimStatusResponse>, Status> {
        self.do_update_claim_status(request).await
    }

    async fn get_claim_history(
        &self,
        request: Request<pb::GetClaimHistoryRequest>,
    ) -> Result<Response<pb::GetClaimHistoryResponse>, Status> {
        self.do_get_claim_history(request).await
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

    async fn summarize_balances(
        &self,
        request: Request<pb::SummarizeBalancesRequest>,
    ) -> Result<Response<pb::SummarizeBalancesResponse>, Status> {
        self.do_summarize_balances(request).await
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

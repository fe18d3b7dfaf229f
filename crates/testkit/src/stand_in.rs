//! A stand-in claims service for the tests of services whose reconcilers ask
//! `arflow.claims.v1.ClaimsService` over gRPC (scheduler: open claims; assignment: denials).
//! It serves fixed claims and denials behind the real server (`platform::grpc::serve`: auth,
//! tenant scoping), answers every list in pages of two whatever the caller asked (so paging
//! is exercised), and UNIMPLEMENTED for everything else.
use std::net::SocketAddr;

use arflow_api::claims::v1::claims_service_server::{ClaimsService, ClaimsServiceServer};
use arflow_api::claims::v1::*;
use arflow_api::wire;
use arflow_platform::auth::{self, Role};
use arflow_platform::config::{AuthConfig, GrpcConfig};
use arflow_platform::grpc::{self, ServerOptions};
use arflow_platform::{Clock, Db};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Claims and denials, each with its tenant (claims carry theirs in `tenant_id`).
#[derive(Clone, Debug, Default)]
pub struct StandInClaims {
    pub claims: Vec<Claim>,
    pub denials: Vec<(String, Denial)>,
}

/// Every list answers this many items a page.
const PAGE: usize = 2;

/// A running stand-in: its address, a `service` key per tenant asked for, and its shutdown.
pub struct RunningStandIn {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningStandIn {
    /// A channel to the stand-in.
    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))?
                .connect()
                .await?,
        )
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

impl StandInClaims {
    /// Serves the stand-in on a free loopback port, its keys checked against `db`.
    pub async fn serve(self, db: &Db, clock: &Clock) -> anyhow::Result<RunningStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(grpc::serve(
            listener,
            tonic::service::Routes::new(ClaimsServiceServer::new(self)),
            &["arflow.claims.v1.ClaimsService"],
            db.clone(),
            clock.clone(),
            ServerOptions {
                grpc: GrpcConfig {
                    listen: String::new(),
                    default_timeout_ms: 10_000,
                    max_message_bytes: 1024 * 1024,
                },
                auth: AuthConfig { key_cache_secs: 1 },
                drain_timeout: std::time::Duration::from_secs(2),
            },
            shutdown.clone(),
        ));
        Ok(RunningStandIn {
            addr,
            shutdown,
            server,
        })
    }
}

/// A `service`-role key of `tenant`, as the reconcilers are configured with.
pub async fn service_key(db: &Db, clock: &Clock, tenant: &str) -> anyhow::Result<String> {
    let (_, key) = auth::create_key(db, clock, tenant, Role::Service, &[], "reconcile").await?;
    Ok(key)
}

/// One page of `items` from the offset in `token` (the stand-in's own tokens are offsets).
fn page<T: Clone>(items: &[&T], token: &str) -> (Vec<T>, String) {
    let from: usize = token.parse().unwrap_or(0);
    let page = items
        .iter()
        .skip(from)
        .take(PAGE)
        .map(|i| (*i).clone())
        .collect();
    let next = if from + PAGE < items.len() {
        (from + PAGE).to_string()
    } else {
        String::new()
    };
    (page, next)
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the stand-in"))
}

#[tonic::async_trait]
impl ClaimsService for StandInClaims {
    async fn get_claim(
        &self,
        request: Request<GetClaimRequest>,
    ) -> Result<Response<GetClaimResponse>, Status> {
        let tenant = auth::principal(&request)?.tenant_id;
        let id = request.into_inner().claim_id;
        self.claims
            .iter()
            .find(|c| c.id == id && c.tenant_id == tenant)
            .map(|c| {
                Response::new(GetClaimResponse {
                    claim: Some(c.clone()),
                })
            })
            .ok_or_else(|| grpc::not_found("claim"))
    }

    async fn list_claims(
        &self,
        request: Request<ListClaimsRequest>,
    ) -> Result<Response<ListClaimsResponse>, Status> {
        let tenant = auth::principal(&request)?.tenant_id;
        let r = request.into_inner();
        let matching: Vec<&Claim> = self
            .claims
            .iter()
            .filter(|c| c.tenant_id == tenant && c.status == r.status)
            .collect();
        let (claims, next_page_token) = page(&matching, &r.page_token);
        Ok(Response::new(ListClaimsResponse {
            claims,
            next_page_token,
        }))
    }

    async fn list_denials(
        &self,
        request: Request<ListDenialsRequest>,
    ) -> Result<Response<ListDenialsResponse>, Status> {
        let tenant = auth::principal(&request)?.tenant_id;
        let r = request.into_inner();
        let from_date = r.denied_from.as_ref().and_then(wire::date_from_pb);
        let matching: Vec<&Denial> = self
            .denials
            .iter()
            .filter(|(t, d)| {
                *t == tenant
                    && from_date.is_none_or(|f| {
                        d.denial_date
                            .as_ref()
                            .and_then(wire::date_from_pb)
                            .is_some_and(|x| x >= f)
                    })
            })
            .map(|(_, d)| d)
            .collect();
        let (denials, next_page_token) = page(&matching, &r.page_token);
        Ok(Response::new(ListDenialsResponse {
            denials,
            next_page_token,
        }))
    }

    async fn create_claim(
        &self,
        _: Request<CreateClaimRequest>,
    ) -> Result<Response<CreateClaimResponse>, Status> {
        unimplemented()
    }
    async fn import_claims(
        &self,
        _: Request<tonic::Streaming<ImportClaimsRequest>>,
    ) -> Result<Response<ImportClaimsResponse>, Status> {
        unimplemented()
    }
    async fn update_claim_status(
        &self,
        _: Request<UpdateClaimStatusRequest>,
    ) -> Result<Response<UpdateClaimStatusResponse>, Status> {
        unimplemented()
    }
    async fn get_claim_history(
        &self,
        _: Request<GetClaimHistoryRequest>,
    ) -> Result<Response<GetClaimHistoryResponse>, Status> {
        unimplemented()
    }
    async fn scrub_claim(
        &self,
        _: Request<ScrubClaimRequest>,
    ) -> Result<Response<ScrubClaimResponse>, Status> {
        unimplemented()
    }
    async fn post_remittance(
        &self,
        _: Request<PostRemittanceRequest>,
    ) -> Result<Response<PostRemittanceResponse>, Status> {
        unimplemented()
    }
    async fn post_status_report(
        &self,
        _: Request<PostStatusReportRequest>,
    ) -> Result<Response<PostStatusReportResponse>, Status> {
        unimplemented()
    }
    async fn summarize_denials(
        &self,
        _: Request<SummarizeDenialsRequest>,
    ) -> Result<Response<SummarizeDenialsResponse>, Status> {
        unimplemented()
    }
    async fn summarize_balances(
        &self,
        _: Request<SummarizeBalancesRequest>,
    ) -> Result<Response<SummarizeBalancesResponse>, Status> {
        unimplemented()
    }
    async fn list_unmatched_payments(
        &self,
        _: Request<ListUnmatchedPaymentsRequest>,
    ) -> Result<Response<ListUnmatchedPaymentsResponse>, Status> {
        unimplemented()
    }
    async fn get_claim_payments(
        &self,
        _: Request<GetClaimPaymentsRequest>,
    ) -> Result<Response<GetClaimPaymentsResponse>, Status> {
        unimplemented()
    }
    async fn correct_claim(
        &self,
        _: Request<CorrectClaimRequest>,
    ) -> Result<Response<CorrectClaimResponse>, Status> {
        unimplemented()
    }
    async fn export_claim837(
        &self,
        _: Request<ExportClaim837Request>,
    ) -> Result<Response<ExportClaim837Response>, Status> {
        unimplemented()
    }
}

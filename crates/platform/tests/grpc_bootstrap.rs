//! The shared gRPC server, driven through real clients on port 0 against real databases:
//! authentication, the principal, audit records (and their append-only table), health,
//! reflection, rich errors, deadlines, message limits and the graceful drain.
//!
//! The service under test is a mock of `arflow.claims.v1.ClaimsService` whose `GetClaim`
//! behaves according to the claim id it is asked for (see [`Mock`]).
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use arflow_api::claims::v1::claims_service_client::ClaimsServiceClient;
use arflow_api::claims::v1::claims_service_server::{ClaimsService, ClaimsServiceServer};
use arflow_api::claims::v1::*;
use arflow_platform::audit::{self, AuditRecord};
use arflow_platform::auth::{self, Role};
use arflow_platform::config::{AuthConfig, GrpcConfig};
use arflow_platform::grpc::{self, ServerOptions};
use arflow_platform::{Clock, Db, telemetry};
use arflow_testkit::{PgDatabase, SqliteFile, eventually};
use opentelemetry::trace::TracerProvider as _;
use sqlx::Row as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const CLAIMS: &str = "arflow.claims.v1.ClaimsService";
const GET_CLAIM: &str = "/arflow.claims.v1.ClaimsService/GetClaim";
const UPDATE_STATUS: &str = "/arflow.claims.v1.ClaimsService/UpdateClaimStatus";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// Stands for patient data in a request: it must never reach the audit log.
const PHI: &str = "PHI-MARKER Jane Doe 1980-02-03";
/// Stands for a database error's internals: it must stay in the logs.
const SECRET_DETAIL: &str = "detail-only-for-the-logs";

/// A process-wide subscriber with only the OpenTelemetry layer (no log output), as
/// `telemetry::init` installs it: spans get W3C trace ids and continue a caller's trace.
fn tracing_with_opentelemetry() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("grpc_bootstrap")));
        let _ = tracing::subscriber::set_global_default(subscriber);
        // The provider lives as long as the test process.
        std::mem::forget(provider);
    });
}

/// `GetClaim` by claim id: `invalid` answers field violations, `boom` an internal error,
/// `big` a response over the size limit, `slow` takes 800 ms, `hang` a minute; anything else
/// answers a claim carrying the caller's tenant (and key id as clinic), and names the id for
/// the audit record.
struct Mock {
    /// Announces each `slow` or `hang` call as its handler starts.
    started: mpsc::UnboundedSender<String>,
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the mock"))
}

#[tonic::async_trait]
impl ClaimsService for Mock {
    async fn create_claim(
        &self,
        _: Request<CreateClaimRequest>,
    ) -> Result<Response<CreateClaimResponse>, Status> {
        unimplemented()
    }

    async fn get_claim(
        &self,
        request: Request<GetClaimRequest>,
    ) -> Result<Response<GetClaimResponse>, Status> {
        let principal = auth::principal(&request)?;
        let id = request.into_inner().claim_id;
        let mut claim = Claim {
            id: id.clone(),
            tenant_id: principal.tenant_id.clone(),
            clinic_id: principal.key_id.clone(),
            ..Default::default()
        };
        match id.as_str() {
            "invalid" => {
                return Err(grpc::invalid_argument(
                    "the request is not valid",
                    [("claim_id".to_string(), "must be a UUID".to_string())],
                ));
            }
            "boom" => return Err(grpc::internal(format!("connection reset: {SECRET_DETAIL}"))),
            "big" => claim.external_id = "x".repeat(4000),
            "slow" => {
                let _ = self.started.send(id.clone());
                tokio::time::sleep(Duration::from_millis(800)).await;
            }
            "hang" => {
                let _ = self.started.send(id.clone());
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            _ => {}
        }
        let mut response = Response::new(GetClaimResponse { claim: Some(claim) });
        grpc::audit_objects(&mut response, [id]);
        Ok(response)
    }

    async fn list_claims(
        &self,
        _: Request<ListClaimsRequest>,
    ) -> Result<Response<ListClaimsResponse>, Status> {
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
        request: Request<UpdateClaimStatusRequest>,
    ) -> Result<Response<UpdateClaimStatusResponse>, Status> {
        auth::principal(&request)?.require_role(&[Role::Admin, Role::Specialist])?;
        let id = request.into_inner().claim_id;
        let mut response = Response::new(UpdateClaimStatusResponse::default());
        grpc::audit_objects(&mut response, [id]);
        Ok(response)
    }

    async fn get_claim_history(
        &self,
        _: Request<GetClaimHistoryRequest>,
    ) -> Result<Response<GetClaimHistoryResponse>, Status> {
        unimplemented()
    }
    async fn scrub_claim(
        &self,
        _: Request<arflow_api::claims::v1::ScrubClaimRequest>,
    ) -> Result<Response<arflow_api::claims::v1::ScrubClaimResponse>, Status> {
        unimplemented()
    }

    async fn post_remittance(
        &self,
        _: Request<arflow_api::claims::v1::PostRemittanceRequest>,
    ) -> Result<Response<arflow_api::claims::v1::PostRemittanceResponse>, Status> {
        unimplemented()
    }

    async fn post_status_report(
        &self,
        _: Request<arflow_api::claims::v1::PostStatusReportRequest>,
    ) -> Result<Response<arflow_api::claims::v1::PostStatusReportResponse>, Status> {
        unimplemented()
    }

    async fn list_denials(
        &self,
        _: Request<arflow_api::claims::v1::ListDenialsRequest>,
    ) -> Result<Response<arflow_api::claims::v1::ListDenialsResponse>, Status> {
        unimplemented()
    }

    async fn summarize_denials(
        &self,
        _: Request<arflow_api::claims::v1::SummarizeDenialsRequest>,
    ) -> Result<Response<arflow_api::claims::v1::SummarizeDenialsResponse>, Status> {
        unimplemented()
    }

    async fn summarize_balances(
        &self,
        _: Request<arflow_api::claims::v1::SummarizeBalancesRequest>,
    ) -> Result<Response<arflow_api::claims::v1::SummarizeBalancesResponse>, Status> {
        unimplemented()
    }

    async fn list_unmatched_payments(
        &self,
        _: Request<arflow_api::claims::v1::ListUnmatchedPaymentsRequest>,
    ) -> Result<Response<arflow_api::claims::v1::ListUnmatchedPaymentsResponse>, Status> {
        unimplemented()
    }

    async fn get_claim_payments(
        &self,
        _: Request<arflow_api::claims::v1::GetClaimPaymentsRequest>,
    ) -> Result<Response<arflow_api::claims::v1::GetClaimPaymentsResponse>, Status> {
        unimplemented()
    }

    async fn correct_claim(
        &self,
        _: Request<arflow_api::claims::v1::CorrectClaimRequest>,
    ) -> Result<Response<arflow_api::claims::v1::CorrectClaimResponse>, Status> {
        unimplemented()
    }

    async fn export_claim837(
        &self,
        _: Request<arflow_api::claims::v1::ExportClaim837Request>,
    ) -> Result<Response<arflow_api::claims::v1::ExportClaim837Response>, Status> {
        unimplemented()
    }
}

struct Server {
    addr: SocketAddr,
    db: Db,
    clock: Clock,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    started: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(url: &str, grpc_config: GrpcConfig, drain_timeout: Duration) -> Server {
        tracing_with_opentelemetry();
        let db = Db::connect(url, 4).await.unwrap();
        db.migrate().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (announce, started) = mpsc::unbounded_channel();
        let routes =
            tonic::service::Routes::new(ClaimsServiceServer::new(Mock { started: announce }));
        let options = ServerOptions {
            grpc: grpc_config,
            auth: AuthConfig { key_cache_secs: 1 },
            drain_timeout,
        };
        let (clock, shutdown) = (Clock::system(), CancellationToken::new());
        let task = tokio::spawn(grpc::serve(
            listener,
            routes,
            &[CLAIMS],
            db.clone(),
            clock.clone(),
            options,
            shutdown.clone(),
        ));
        Server {
            addr,
            db,
            clock,
            shutdown,
            task,
            started,
        }
    }

    /// Forgets earlier announcements, so the next [`Server::started`] waits for a new call.
    fn forget_started(&mut self) {
        while self.started.try_recv().is_ok() {}
    }

    /// Waits until a `slow` or `hang` handler has started.
    async fn started(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(5), self.started.recv())
            .await
            .unwrap()
            .unwrap()
    }

    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn claims(&self) -> ClaimsServiceClient<Channel> {
        ClaimsServiceClient::new(self.channel().await)
    }

    async fn key(&self, tenant: &str, role: Role) -> (String, String) {
        auth::create_key(&self.db, &self.clock, tenant, role, &[], "test")
            .await
            .unwrap()
    }

    /// Cancels the shutdown token and waits for `serve` to return.
    async fn stop(self, within: Duration) -> Db {
        self.shutdown.cancel();
        tokio::time::timeout(within, self.task)
            .await
            .expect("serve returns in time")
            .unwrap()
            .unwrap();
        self.db
    }
}

fn roomy() -> GrpcConfig {
    GrpcConfig {
        listen: String::new(),
        default_timeout_ms: 10_000,
        max_message_bytes: 1024 * 1024,
    }
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

fn get(id: &str) -> GetClaimRequest {
    GetClaimRequest {
        claim_id: id.to_string(),
    }
}

async fn audit_rows(db: &Db, tenant: &str, expected: usize) -> Vec<AuditRecord> {
    eventually(Duration::from_secs(5), || async {
        let rows = audit::list_audit(db, tenant, 100).await.unwrap();
        (rows.len() >= expected).then_some(rows)
    })
    .await
    .unwrap_or_else(|_| panic!("{expected} audit rows for {tenant}"))
}

fn row<'a>(rows: &'a [AuditRecord], method: &str, object: &str) -> &'a AuditRecord {
    rows.iter()
        .find(|r| r.method == method && r.object_ids.iter().any(|o| o == object))
        .unwrap_or_else(|| panic!("no audit row for {method} {object}: {rows:#?}"))
}

#[tokio::test]
async fn calls_are_authenticated_scoped_and_audited() {
    let pg = PgDatabase::create().await.unwrap();
    let server = Server::start(&pg.url, roomy(), Duration::from_secs(5)).await;
    let (key_id, key) = server.key("tenant-a", Role::Specialist).await;
    let mut claims = server.claims().await;

    // No key, a malformed one, a wrong secret for a real key id: the same answer every time.
    let wrong_secret = format!("afk_{key_id}_{}", "0".repeat(64));
    for request in [
        Request::new(get("c-1")),
        with_key(get("c-1"), "nope"),
        with_key(get("c-1"), &wrong_secret),
        with_key(get("c-1"), &format!("{key}0")),
    ] {
        let status = claims.get_claim(request).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "missing or invalid API key");
    }

    // A valid key: the principal reaches the handler.
    let mut request = with_key(get("c-1"), &key);
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    let claim = claims
        .get_claim(request)
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(
        (claim.tenant_id.as_str(), claim.clinic_id.as_str()),
        ("tenant-a", key_id.as_str())
    );

    // A request carrying patient data; only the object id may be recorded.
    let update = UpdateClaimStatusRequest {
        claim_id: "c-2".into(),
        reason: PHI.into(),
        ..Default::default()
    };
    claims
        .update_claim_status(with_key(update, &key))
        .await
        .unwrap();

    // Rich errors: field violations a stock client can read.
    let status = claims
        .get_claim(with_key(get("invalid"), &key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status
        .get_details_bad_request()
        .expect("BadRequest details");
    assert_eq!(bad.field_violations.len(), 1);
    assert_eq!(bad.field_violations[0].field, "claim_id");
    assert_eq!(bad.field_violations[0].description, "must be a UUID");

    // Internal errors keep their cause in the logs and hand out the trace id.
    let status = claims
        .get_claim(with_key(get("boom"), &key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(
        !status.message().contains(SECRET_DETAIL),
        "{}",
        status.message()
    );
    let quoted_trace = status
        .message()
        .strip_prefix("internal error (trace id ")
        .and_then(|m| m.strip_suffix(')'));
    let quoted_trace = quoted_trace
        .unwrap_or_else(|| panic!("trace id in {:?}", status.message()))
        .to_string();

    // A partner key may not update statuses: the service's role check.
    let (_, partner) = server.key("tenant-a", Role::Partner).await;
    let update = UpdateClaimStatusRequest {
        claim_id: "c-3".into(),
        ..Default::default()
    };
    let status = claims
        .update_claim_status(with_key(update, &partner))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Five authenticated calls, five rows; the refused ones wrote none.
    let rows = audit_rows(&server.db, "tenant-a", 5).await;
    assert_eq!(rows.len(), 5, "{rows:#?}");
    let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_log")
        .fetch_one(server.db.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(total, 5, "unauthenticated calls are not audited");

    let read = row(&rows, GET_CLAIM, "c-1");
    assert_eq!(read.outcome, "OK");
    assert_eq!(read.object_ids, ["c-1"]);
    assert_eq!(
        (read.key_id.as_str(), read.role.as_str()),
        (key_id.as_str(), "specialist")
    );
    assert_eq!(
        read.trace_id, TRACE_ID,
        "the call continues the caller's trace"
    );
    assert_eq!(row(&rows, UPDATE_STATUS, "c-2").outcome, "OK");
    // An error answer names no objects (a tonic Status carries no response extensions).
    let denied = rows
        .iter()
        .find(|r| r.role == "partner")
        .expect("the partner's call");
    assert_eq!(
        (denied.method.as_str(), denied.outcome.as_str()),
        (UPDATE_STATUS, "PERMISSION_DENIED")
    );
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.object_ids.is_empty())
        .map(|r| r.outcome.as_str())
        .collect();
    assert!(
        failed.contains(&"INVALID_ARGUMENT") && failed.contains(&"INTERNAL"),
        "{failed:?}"
    );
    assert_eq!(failed.len(), 3);
    let boom = rows.iter().find(|r| r.outcome == "INTERNAL").unwrap();
    assert_eq!(
        boom.trace_id, quoted_trace,
        "the quoted trace id finds the audit row and the logs"
    );
    let everything = format!("{rows:?}");
    assert!(
        !everything.contains("PHI-MARKER"),
        "request bodies never reach the audit log"
    );

    // The latency histogram saw the calls, labelled by method and code.
    let metrics = arflow_platform::metrics::render();
    assert!(
        metrics.contains(
            r#"code="UNAUTHENTICATED",method="/arflow.claims.v1.ClaimsService/GetClaim""#
        ),
        "{metrics}"
    );

    server.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_once_the_cache_expires() {
    let file = SqliteFile::create().unwrap();
    let server = Server::start(&file.url, roomy(), Duration::from_secs(5)).await;
    let (key_id, key) = server.key("tenant-r", Role::Partner).await;
    let mut claims = server.claims().await;
    claims.get_claim(with_key(get("c-1"), &key)).await.unwrap();

    assert!(
        auth::revoke_key(&server.db, &server.clock, &key_id)
            .await
            .unwrap()
    );
    assert!(
        !auth::revoke_key(&server.db, &server.clock, &key_id)
            .await
            .unwrap(),
        "already revoked"
    );
    // key_cache_secs = 1: the revocation lag is at most a second.
    eventually(Duration::from_secs(5), || {
        let mut claims = claims.clone();
        let key = key.clone();
        async move {
            let result = claims.get_claim(with_key(get("c-1"), &key)).await;
            matches!(result, Err(s) if s.code() == Code::Unauthenticated).then_some(())
        }
    })
    .await
    .expect("the revoked key is refused");
    server.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn health_reflection_and_a_graceful_drain() {
    let file = SqliteFile::create().unwrap();
    let mut server = Server::start(&file.url, roomy(), Duration::from_secs(5)).await;
    let (_, key) = server.key("tenant-h", Role::Admin).await;
    let channel = server.channel().await;

    // Health needs no key, per service and overall.
    let mut health = HealthClient::new(channel.clone());
    for name in ["", CLAIMS] {
        let status = health
            .check(HealthCheckRequest {
                service: name.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{name:?}");
    }
    let missing = health
        .check(HealthCheckRequest {
            service: "arflow.nope.v1.Nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Reflection (v1 and v1alpha) lists what this server mounts, without a key.
    let listed = list_services_v1(channel.clone()).await;
    for name in [
        CLAIMS,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(listed.iter().any(|s| s == name), "{name} in {listed:?}");
    }
    assert!(
        list_services_v1alpha(channel.clone())
            .await
            .iter()
            .any(|s| s == CLAIMS)
    );

    // A watcher, and a call in flight when shutdown begins.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: CLAIMS.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let mut claims = ClaimsServiceClient::new(channel.clone());
    let in_flight =
        tokio::spawn(async move { claims.get_claim(with_key(get("slow"), &key)).await });
    assert_eq!(server.started().await, "slow");

    server.shutdown.cancel();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next.unwrap().status,
        ServingStatus::NotServing as i32,
        "NOT_SERVING as soon as the drain starts"
    );
    let finished = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        finished
            .expect("the in-flight call finishes")
            .into_inner()
            .claim
            .unwrap()
            .id,
        "slow"
    );
    let (addr, db) = (server.addr, server.stop(Duration::from_secs(5)).await);

    // The listener is gone, and the drained call's audit row was flushed before serve returned.
    assert!(
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .is_err()
    );
    let rows = audit::list_audit(&db, "tenant-h", 10).await.unwrap();
    assert_eq!(
        rows.len(),
        1,
        "health and reflection are not audited: {rows:#?}"
    );
    assert_eq!(
        (rows[0].method.as_str(), rows[0].outcome.as_str()),
        (GET_CLAIM, "OK")
    );
}

async fn list_services_v1(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match stream.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn list_services_v1alpha(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match stream.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn deadlines_message_limits_and_the_drain_deadline() {
    let file = SqliteFile::create().unwrap();
    let tight = GrpcConfig {
        listen: String::new(),
        default_timeout_ms: 300,
        max_message_bytes: 1024,
    };
    let mut server = Server::start(&file.url, tight, Duration::from_millis(300)).await;
    let (_, key) = server.key("tenant-d", Role::Admin).await;
    let mut claims = server.claims().await;

    // No grpc-timeout: the server's default deadline applies.
    let began = tokio::time::Instant::now();
    let status = claims
        .get_claim(with_key(get("hang"), &key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(began.elapsed() < Duration::from_secs(5));
    // A client's own, longer deadline wins over the default.
    let mut request = with_key(get("slow"), &key);
    request.set_timeout(Duration::from_secs(5));
    claims
        .get_claim(request)
        .await
        .expect("the client's deadline applies");

    // Messages over grpc.max_message_bytes, either way.
    let status = claims
        .get_claim(with_key(get(&"x".repeat(2000)), &key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let status = claims
        .get_claim(with_key(get("big"), &key))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // A call still running at the drain deadline is ended, and serve returns.
    server.forget_started();
    let mut hanging = claims.clone();
    let key2 = key.clone();
    let in_flight = tokio::spawn(async move {
        let mut request = with_key(get("hang"), &key2);
        request.set_timeout(Duration::from_secs(30));
        hanging.get_claim(request).await
    });
    assert_eq!(server.started().await, "hang");
    let began = tokio::time::Instant::now();
    let db = server.stop(Duration::from_secs(5)).await;
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "serve returned {:?} after cancel",
        began.elapsed()
    );
    let status = in_flight.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let rows = audit::list_audit(&db, "tenant-d", 10).await.unwrap();
    let outcomes: Vec<&str> = rows.iter().rev().map(|r| r.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "DEADLINE_EXCEEDED",
            "OK",
            "RESOURCE_EXHAUSTED",
            "RESOURCE_EXHAUSTED",
            "UNAVAILABLE"
        ]
    );
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes() {
    let pg = PgDatabase::create().await.unwrap();
    let file = SqliteFile::create().unwrap();
    for url in [pg.url.as_str(), file.url.as_str()] {
        let db = Db::connect(url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let record = AuditRecord {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: "tenant-x".into(),
            key_id: "k".into(),
            role: "admin".into(),
            method: GET_CLAIM.into(),
            object_ids: vec!["c-1".into()],
            outcome: "OK".into(),
            trace_id: String::new(),
            occurred_at: Clock::system().now(),
        };
        audit::append(&db, std::slice::from_ref(&record))
            .await
            .unwrap();

        let mut statements = vec![
            "UPDATE audit_log SET outcome = 'NOT_FOUND'",
            "DELETE FROM audit_log",
        ];
        if db.backend() == arflow_platform::Backend::Postgres {
            statements.push("TRUNCATE audit_log");
        }
        for sql in statements {
            let err = sqlx::query(sql).execute(db.pool()).await.expect_err(sql);
            assert!(
                err.to_string().contains("append-only"),
                "{}: {sql}: {err}",
                db.backend().name()
            );
        }
        let rows = audit::list_audit(&db, "tenant-x", 10).await.unwrap();
        // Stored instants are microseconds.
        let stored = AuditRecord {
            occurred_at: arflow_platform::db::from_micros(record.occurred_at.timestamp_micros()),
            ..record
        };
        assert_eq!(rows, [stored], "{}", db.backend().name());
        db.close().await;
    }
}

#[tokio::test]
async fn the_admin_port_serves_metrics_and_liveness() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let admin = tokio::spawn(telemetry::serve_admin(listener, shutdown.clone()));
    arflow_platform::metrics::metrics()
        .rpc_duration
        .with_label_values(&["/test.Admin/Probe", "OK"])
        .observe(0.01);

    let healthz = http_get(addr, "/healthz").await;
    assert!(
        healthz.starts_with("HTTP/1.1 200") && healthz.ends_with("ok"),
        "{healthz}"
    );
    let metrics = http_get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("arflow_rpc_duration_seconds_count"),
        "{metrics}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), admin)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

//! End-to-end harness: starts the real `arflow serve` binary against a fresh Postgres database
//! and Redis key prefix, creates API keys with `arflow keys create`, and talks to it only with
//! generated gRPC clients, as a partner system would.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_client::ClaimsServiceClient;
use arflow_testkit::{PgDatabase, RedisPrefix};
// Not every test file uses every fixture.
#[allow(unused_imports)]
pub use arflow_testkit::fixtures::{claim, date, element};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = ClaimsServiceClient<InterceptedService<Channel, arflow::client::Auth>>;

/// A running `arflow serve` process in distributed mode.
pub struct Server {
    child: Child,
    pub grpc: String,
    pub admin: Option<String>,
    pub env: Vec<(String, String)>,
}

/// The simulated "today" of every e2e test: fixtures' dates of service lie before it.
pub const SIM_START: &str = "2026-06-15T09:00:00Z";

impl Server {
    pub fn env_for(db: &PgDatabase, redis: &RedisPrefix) -> Vec<(String, String)> {
        vec![
            ("ARFLOW_DATABASE__URL".into(), db.url.clone()),
            ("ARFLOW_REDIS__URL".into(), redis.url.clone()),
            ("ARFLOW_REDIS__KEY_PREFIX".into(), redis.prefix.clone()),
            ("ARFLOW_GRPC__LISTEN".into(), "127.0.0.1:0".into()),
            ("ARFLOW_ADMIN__LISTEN".into(), "127.0.0.1:0".into()),
            ("ARFLOW_CLOCK__MODE".into(), "simulated".into()),
            ("ARFLOW_CLOCK__START".into(), SIM_START.into()),
            (
                "ARFLOW_CLOCK__ANCHOR".into(),
                chrono::Utc::now().to_rfc3339(),
            ),
            ("ARFLOW_CLOCK__RATE".into(), "1".into()),
            ("ARFLOW_BUS__BLOCK_MS".into(), "100".into()),
            ("ARFLOW_BUS__CLAIM_IDLE_MS".into(), "500".into()),
            ("ARFLOW_AUTH__KEY_CACHE_SECS".into(), "1".into()),
            ("ARFLOW_SHUTDOWN__DRAIN_TIMEOUT_MS".into(), "5000".into()),
            ("RUST_LOG".into(), "warn".into()),
        ]
    }

    pub fn start(env: Vec<(String, String)>) -> Server {
        let roles: Vec<String> = env
            .iter()
            .find(|(k, _)| k == "ARFLOW_TEST_ROLES")
            .map(|(_, v)| {
                v.split(',')
                    .flat_map(|r| ["--service".to_string(), r.to_string()])
                    .collect()
            })
            .unwrap_or_default();
        let mut child = Command::new(env!("CARGO_BIN_EXE_arflow"))
            .arg("serve")
            .args(roles)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("ARFLOW_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn arflow serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut grpc, mut admin) = (None, None);
        // The banner is printed once the listeners are bound.
        for line in lines.by_ref() {
            let line = line.expect("read arflow stdout");
            if let Some(addr) = line.trim().strip_prefix("gRPC:") {
                grpc = Some(format!("http://{}", addr.trim()));
            } else if let Some(url) = line.trim().strip_prefix("admin:") {
                admin = Some(url.trim().trim_end_matches("/metrics").to_string());
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            grpc: grpc.expect("arflow printed no gRPC address"),
            admin,
            env,
        }
    }

    /// Runs `arflow keys create` against the same database and returns the key.
    pub fn key(&self, tenant: &str, role: &str, clinics: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arflow"));
        cmd.args(["keys", "create", "--tenant", tenant, "--role", role]);
        for c in clinics {
            cmd.args(["--clinic", c]);
        }
        let out = cmd
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run arflow keys");
        assert!(
            out.status.success(),
            "keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub async fn client(&self, key: &str) -> Client {
        connect(&self.grpc, Some(key)).await
    }

    /// SIGTERM, then wait for a clean exit. Async so the test's own clients keep running
    /// (they must see the server's GOAWAY and close for the drain to finish).
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub async fn connect(addr: &str, key: Option<&str>) -> Client {
    let channel = Channel::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect to arflow");
    let value = key.map(|k| format!("Bearer {k}").parse::<MetadataValue<_>>().unwrap());
    ClaimsServiceClient::with_interceptor(channel, arflow::client::Auth::new(value))
}

pub fn create(pcn_claim: pb::Claim, request_id: &str) -> pb::CreateClaimRequest {
    pb::CreateClaimRequest {
        request_id: request_id.into(),
        claim: Some(pcn_claim),
    }
}

pub type AssignmentClient =
    arflow_api::assignment::v1::assignment_service_client::AssignmentServiceClient<
        InterceptedService<Channel, arflow::client::Auth>,
    >;

pub async fn assignment_client(addr: &str, key: &str) -> AssignmentClient {
    let channel = Channel::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect to arflow");
    let value = format!("Bearer {key}").parse::<MetadataValue<_>>().unwrap();
    arflow_api::assignment::v1::assignment_service_client::AssignmentServiceClient::with_interceptor(
        channel,
        arflow::client::Auth::new(Some(value)),
    )
}

/// Replaces (or adds) one variable of a server environment.
pub fn set_env(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
}

impl Server {
    /// Starts `arflow serve` with only the given roles.
    pub fn start_roles(env: Vec<(String, String)>, roles: &[&str]) -> Server {
        let mut env = env;
        set_env(&mut env, "ARFLOW_TEST_ROLES", &roles.join(","));
        Server::start(env)
    }

    /// Kills the process at once (SIGKILL): a replica dying mid-batch.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An interchange around one transaction set's segments (given without their `~`), as a payer
/// or clearinghouse sends it: `HP` 835, `HN` 277, `FA` 999 (the ST01 follows the group).
pub fn interchange<S: AsRef<str>>(functional_id: &str, version: &str, st: &[S]) -> String {
    let body: Vec<String> = st.iter().map(|s| format!("{}~", s.as_ref())).collect();
    let count = body.len() + 2;
    let (set, st03) = match functional_id {
        "HP" => ("835", String::new()),
        "FA" => ("999", format!("*{version}")),
        _ => ("277", format!("*{version}")),
    };
    format!(
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *261101*1200*^*00501*000000101*0*T*:~\n\
         GS*{functional_id}*PAYER*ARFLOW*20261101*1200*101*X*{version}~\n\
         ST*{set}*0001{st03}~\n{}\nSE*{count}*0001~\nGE*1*101~\nIEA*1*000000101~\n",
        body.join("\n"),
    )
}

/// Creates the fixture claim (clinic-a, $180 + $25 on 2026-05-04) with account number `pcn`.
pub async fn new_claim(api: &mut Client, pcn: &str) -> pb::Claim {
    api.create_claim(create(claim("clinic-a", pcn), pcn))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap()
}

pub async fn get_claim(api: &mut Client, id: &str) -> pb::Claim {
    api.get_claim(pb::GetClaimRequest {
        claim_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .claim
    .unwrap()
}

/// The claim's open denials.
pub async fn denials_of(api: &mut Client, claim_id: &str) -> Vec<pb::Denial> {
    api.list_denials(pb::ListDenialsRequest {
        claim_id: claim_id.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .denials
}

/// One 835 transaction of UnitedHealthcare (N1*PR XV 87726) to the fixture claims' billing
/// provider (N1*PE XX 1245319599), so its CLPs match the fixture claims; `body` is the claims
/// (CLP and what follows). A zero or negative `payment` is a notification (BPR01 `H`).
pub fn fixture_era<S: AsRef<str>>(trace: &str, payment: &str, body: &[S]) -> String {
    let bpr = if payment.starts_with('-') || payment == "0" {
        format!("BPR*H*{payment}*C*NON************20261101")
    } else {
        format!(
            "BPR*I*{payment}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101"
        )
    };
    let mut st = vec![
        bpr,
        format!("TRN*1*{trace}*1512345678"),
        "DTM*405*20261101".to_string(),
        "N1*PR*UNITEDHEALTHCARE*XV*87726".to_string(),
        "N1*PE*CALM HARBOR COUNSELING*XX*1245319599".to_string(),
        "LX*1".to_string(),
    ];
    st.extend(body.iter().map(|s| s.as_ref().to_string()));
    interchange("HP", "005010X221A1", &st)
}

/// Posts a [`fixture_era`] whose CLPs must all match and balance; the remittance's result.
pub async fn post_fixture_era<S: AsRef<str>>(
    api: &mut Client,
    trace: &str,
    payment: &str,
    body: &[S],
) -> pb::RemittanceResult {
    let report = api
        .post_remittance(pb::PostRemittanceRequest {
            file_name: format!("{trace}.835"),
            content: fixture_era(trace, payment, body).into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let r = report.remittances.into_iter().next().unwrap();
    assert!(r.balance_problems.is_empty(), "{:?}", r.balance_problems);
    assert!(
        r.claims.iter().all(|c| !c.claim_id.is_empty()),
        "every CLP matched: {:?}",
        r.claims
    );
    r
}

//! End-to-end: the embedded quick start (no Postgres, no Redis) and the billing team's
//! command-line client, both through the real binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use arflow_api::claims::v1 as pb;
use arflow_testkit::SqliteFile;
use common::{Server, claim, create};

fn arflow(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_arflow"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("ARFLOW_API_KEY")
        .output()
        .unwrap()
}

fn embedded_env(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("ARFLOW_DATA_DIR".into(), dir.display().to_string()),
        ("ARFLOW_GRPC__LISTEN".into(), "127.0.0.1:0".into()),
        ("ARFLOW_ADMIN__LISTEN".into(), "127.0.0.1:0".into()),
        ("ARFLOW_CLOCK__MODE".into(), "simulated".into()),
        ("ARFLOW_CLOCK__START".into(), common::SIM_START.into()),
        ("RUST_LOG".into(), "warn".into()),
    ]
}

#[tokio::test]
async fn embedded_quick_start_serves_with_a_ready_admin_key_and_keeps_data_across_restarts() {
    let scratch = SqliteFile::create().unwrap(); // only for its temporary folder
    let env = embedded_env(&scratch.dir);
    let mut server = Server::start(env.clone());
    let key = std::fs::read_to_string(scratch.dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("afk_"));
    let mut api = server.client(&key).await;
    let created = api
        .create_claim(create(claim("clinic-a", "QS-1"), "qs-1"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(created.tenant_id, "demo");
    assert!(server.stop().await.success());

    // Same folder, same key, same data.
    let server = Server::start(env);
    let again = std::fs::read_to_string(scratch.dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(again, key);
    let mut api = server.client(&key).await;
    let got = api
        .get_claim(pb::GetClaimRequest {
            claim_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(got.external_id, "QS-1");
}

#[tokio::test]
async fn claims_import_reports_problems_by_file_line_and_keeps_good_rows() {
    let scratch = SqliteFile::create().unwrap();
    let env = embedded_env(&scratch.dir);
    let server = Server::start(env.clone());
    let key = std::fs::read_to_string(scratch.dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();

    let header = arflow::client::CSV_COLUMNS.join(",");
    let row = |pcn: &str, code: &str, charge: &str| {
        format!(
            "clinic-a,{pcn},pt-1,Jordan,Rivera,1988-04-12,UHC123,87726,UHC,1234567893,Dana Okafor,lcsw,\
             1245319599,Calm Harbor,F41.1;F33.1,,2026-05-06,submitted,2026-05-04,{code},95,1,55,{charge},10,1;2"
        )
    };
    let csv = [
        header,
        row("CSV-1", "90837", "180.00"),  // line 2
        row("CSV-1", "90785", "25"),      // line 3: second service line of CSV-1
        row("CSV-2", "9083X", "180.00"),  // line 4: bad procedure code (server-side)
        row("CSV-3", "90834", "1.2.3"),   // line 5: unreadable amount (client-side)
        row("CSV-4", "90834", "$140.00"), // line 6
    ]
    .join("\n");
    let file = scratch.dir.join("batch.csv");
    std::fs::write(&file, csv).unwrap();

    let mut cli_env = env.clone();
    cli_env.push(("ARFLOW_ADDR".into(), server.grpc.clone()));
    cli_env.push(("ARFLOW_API_KEY".into(), key.clone()));
    let out = Command::new(env!("CARGO_BIN_EXE_arflow"))
        .args(["claims", "import", file.to_str().unwrap()])
        .envs(cli_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "problems make the command fail");
    assert!(stdout.contains("2 accepted"), "{stdout}");
    assert!(
        stderr.contains("batch.csv:4: claim.service_lines[0].procedure_code"),
        "{stderr}"
    );
    assert!(stderr.contains("batch.csv:5: charge"), "{stderr}");
    assert!(!stderr.contains("Rivera"), "no patient data in the report");

    // The good claims are there, with both rows of CSV-1 as its two service lines.
    let mut api = server.client(&key).await;
    let claims = api
        .list_claims(pb::ListClaimsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .claims;
    let mut pcns: Vec<&str> = claims.iter().map(|c| c.external_id.as_str()).collect();
    pcns.sort();
    assert_eq!(pcns, vec!["CSV-1", "CSV-4"]);
    let csv1 = claims.iter().find(|c| c.external_id == "CSV-1").unwrap();
    assert_eq!(csv1.service_lines.len(), 2);
    assert_eq!(csv1.total_charge_cents, 20_500);

    // The list and get commands read the same API.
    let list = arflow(
        &["claims", "list", "--addr", &server.grpc, "--key", &key],
        &[],
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains("CSV-4"));
    let get = arflow(
        &[
            "claims",
            "get",
            &csv1.id,
            "--addr",
            &server.grpc,
            "--key",
            &key,
        ],
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(json["external_id"], "CSV-1");

    // A missing key is a clear error, not a crash.
    let nokey = arflow(&["claims", "list", "--addr", &server.grpc], &[]);
    assert!(String::from_utf8_lossy(&nokey.stderr).contains("ARFLOW_API_KEY"));
}

#[test]
fn a_postgres_url_without_redis_is_refused_with_what_to_set() {
    let out = arflow(
        &["serve"],
        &[(
            "ARFLOW_DATABASE__URL".into(),
            "postgres://u@127.0.0.1:1/x".into(),
        )],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ARFLOW_REDIS__URL"));
    let out = arflow(
        &[
            "config",
            "--database-url",
            "postgres://arflow:hunter2@db/x",
            "--redis-url",
            "redis://r",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("postgres://***@db/x") && !text.contains("hunter2"),
        "{text}"
    );
    assert!(text.contains("mode: distributed"));
}

/// A small, balanced 835 for the command-line tests (one claim, paid with a contractual
/// adjustment).
fn small_835(pcn: &str) -> String {
    [
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *261101*1200*^*00501*000000201*0*T*:~",
        "GS*HP*PAYER*ARFLOW*20261101*1200*201*X*005010X221A1~",
        "ST*835*0001~",
        "BPR*I*150*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101~",
        "TRN*1*CLI-CHK-1*1512345678~",
        "N1*PR*UNITEDHEALTHCARE*XV*87726~",
        "N1*PE*CALM HARBOR COUNSELING*XX*1245319599~",
        "LX*1~",
        &format!("CLP*{pcn}*1*205*150*0*12*CLI-ICN-1~"),
        "SVC*HC:90837:95*180*130**1~",
        "CAS*CO*45*50~",
        "SVC*HC:90785:95*25*20**1~",
        "CAS*CO*45*5~",
        "SE*12*0001~",
        "GE*1*201~",
        "IEA*1*000000201~",
    ]
    .join("\n")
}

#[tokio::test]
async fn era_import_and_x12_inspect_from_the_command_line() {
    let scratch = SqliteFile::create().unwrap();
    let env = embedded_env(&scratch.dir);
    let server = Server::start(env.clone());
    let key = std::fs::read_to_string(scratch.dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string();
    let mut api = server.client(&key).await;
    let c = api
        .create_claim(create(claim("clinic-a", "CLI-1"), "cli-1"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let file = scratch.dir.join("remit.835");
    std::fs::write(&file, small_835("CLI-1")).unwrap();

    // inspect: local, JSON, balanced.
    let out = arflow(&["x12", "inspect", "--json", file.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format"], "arflow.x12.inspect/1");
    assert_eq!(report["summary"]["ok"], true);
    let text = arflow(&["x12", "inspect", file.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("balanced"));

    // era import posts once; the second time says so.
    let run = || {
        arflow(
            &[
                "era",
                "import",
                file.to_str().unwrap(),
                "--addr",
                &server.grpc,
                "--key",
                &key,
            ],
            &[],
        )
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("1 claims posted, 0 unmatched"));
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("already posted"));
    let paid = api
        .get_claim(pb::GetClaimRequest { claim_id: c.id })
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(
        (paid.status, paid.balance_cents, paid.paid_cents),
        (pb::ClaimStatus::Paid as i32, 0, 15_000)
    );

    // A broken file: inspect reports it and fails.
    std::fs::write(
        &file,
        small_835("CLI-1").replace("SE*12*0001", "SE*99*0001"),
    )
    .unwrap();
    let broken = arflow(&["x12", "inspect", file.to_str().unwrap()], &[]);
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stdout).contains("SE01"));
}

//! The public sample files (README table of the folder named by `ARFLOW_X12_SAMPLES`), read as
//! a clearinghouse would: what the README says an independent check found (envelope problems,
//! 835 balance, claim counts, STC categories, HL levels) must be what we find, exactly.
//!
//! The files are not copied into this repository; without the variable every test prints a
//! note and passes. CI sets it to the shared folder.
// Helpers outside #[test] fns may unwrap too: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arflow_x12::remit::Remittance835;
use arflow_x12::status::ClaimStatus277;
use arflow_x12::{Document, ProblemKind, Transaction, inspect, read, render_text};

fn samples() -> Option<PathBuf> {
    match std::env::var_os("ARFLOW_X12_SAMPLES") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("note: ARFLOW_X12_SAMPLES is not set; the public sample files are not read");
            None
        }
    }
}

fn load(dir: &Path, rel: &str) -> Document {
    let bytes =
        std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e} (sample missing)"));
    read(&bytes)
}

/// Envelope problems in the README's words.
fn envelope(doc: &Document) -> Vec<String> {
    doc.problems
        .iter()
        .filter_map(|p| {
            let found = p.found.as_deref().unwrap_or("?");
            let expected = p.expected.as_deref().unwrap_or("?");
            match (p.kind, p.element.as_deref()) {
                (ProblemKind::CountMismatch, Some("SE01")) => Some(format!(
                    "SE01={found} but counted {expected} (ST02={})",
                    p.transaction.as_deref().unwrap_or("?")
                )),
                (ProblemKind::CountMismatch, Some("GE01")) => {
                    Some(format!("GE01={found} but {expected} ST"))
                }
                (ProblemKind::CountMismatch, Some("IEA01")) => {
                    Some(format!("IEA01={found} but {expected} GS"))
                }
                (ProblemKind::ControlNumberMismatch, Some(e)) => {
                    let header = match e {
                        "IEA02" => "ISA13",
                        "GE02" => "GS06",
                        _ => "ST02",
                    };
                    Some(format!("{e}={found} != {header}={expected}"))
                }
                (ProblemKind::MissingTrailer, _) => Some(p.message.clone()),
                _ => None,
            }
        })
        .collect()
}

fn remits(doc: &Document) -> Vec<&Remittance835> {
    doc.remittances().map(|(_, r)| r).collect()
}

fn statuses(doc: &Document) -> Vec<&ClaimStatus277> {
    doc.transactions()
        .filter_map(|t| match &t.content {
            Transaction::ClaimStatus277(s) => Some(s.as_ref()),
            _ => None,
        })
        .collect()
}

fn kinds(doc: &Document) -> Vec<String> {
    doc.transactions()
        .map(|t| {
            format!(
                "{} {}",
                t.content.kind_name(),
                t.version.as_deref().unwrap_or("")
            )
        })
        .collect()
}

fn tally<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m.iter()
        .map(|(k, v)| format!("{k}x{v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// README notes for an 835: "N CLP, CLP02 ...; CAS01 ..." (CAS01 counted per CAS segment).
fn clp_cas(doc: &Document) -> (usize, String, String) {
    let claims: Vec<_> = remits(doc).into_iter().flat_map(|r| &r.claims).collect();
    let clp02 = tally(claims.iter().map(|c| c.status_code.as_str()));
    let mut cas_segments: BTreeMap<usize, &str> = BTreeMap::new();
    for c in &claims {
        for a in c
            .adjustments
            .iter()
            .chain(c.lines.iter().flat_map(|l| &l.adjustments))
        {
            cas_segments.insert(a.segment_index, a.group.code());
        }
    }
    (claims.len(), clp02, tally(cas_segments.values().copied()))
}

/// README notes for a 277: STC01 categories at every level, claim and line; HL03 codes.
fn stc_hl(doc: &Document) -> (String, String) {
    let mut cats = Vec::new();
    let mut hl = Vec::new();
    for s in statuses(doc) {
        for l in &s.levels {
            hl.push(l.code.as_str());
            cats.extend(l.statuses.iter().map(|st| st.primary.category.as_str()));
        }
        for c in &s.claims {
            cats.extend(c.statuses.iter().map(|st| st.primary.category.as_str()));
            for line in &c.lines {
                cats.extend(line.statuses.iter().map(|st| st.primary.category.as_str()));
            }
        }
    }
    (tally(cats), tally(hl))
}

/// Balance problems in the README's words.
fn balance(doc: &Document) -> Vec<String> {
    doc.balance_problems()
        .iter()
        .map(|b| {
            format!(
                "{:?} {} {}: expected {} found {}",
                b.level,
                b.transaction,
                b.claim.as_deref().unwrap_or("-"),
                b.expected,
                b.found
            )
        })
        .collect()
}

#[test]
fn every_file_reads_without_panicking() {
    let Some(dir) = samples() else { return };
    let mut stack = vec![dir];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let report = inspect(&bytes);
            let _ = render_text(&report);
            let _ = serde_json::to_string(&report).unwrap();
            let _ = serde_json::to_string(&read(&bytes)).unwrap();
            files += 1;
        }
    }
    assert!(files >= 44, "{files} files");
}

#[test]
fn azoner_pyx12() {
    let Some(dir) = samples() else { return };
    let d = load(&dir, "azoner__pyx12/835_mult_loops.txt");
    assert_eq!(kinds(&d), ["835 005010X221A1"]);
    assert_eq!(clp_cas(&d), (1, "4x1".into(), "COx1,OAx2".into()));
    assert_eq!(envelope(&d), Vec::<String>::new());
    assert_eq!(balance(&d), Vec::<String>::new());

    let d = load(&dir, "azoner__pyx12/834_ls_le_ls_5010.999.txt");
    assert_eq!(kinds(&d), ["999 005010X231"]);
    assert!(d.problems.is_empty(), "{:?}", d.problems);

    let d = load(&dir, "azoner__pyx12/834_lui_id_5010.999.txt");
    assert_eq!(kinds(&d), ["999 005010X231"; 4]);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    // ISA11 `!` is this file's repetition separator (00501).
    assert_eq!(
        d.interchanges[0]
            .header
            .as_ref()
            .unwrap()
            .delimiters
            .repetition,
        Some(b'^')
    );
    let d = load(&dir, "azoner__pyx12/834_ls_le_ls_5010.999.txt");
    assert_eq!(
        d.interchanges[0]
            .header
            .as_ref()
            .unwrap()
            .delimiters
            .repetition,
        Some(b'!')
    );
}

#[test]
fn imsweb_277_and_999() {
    let Some(dir) = samples() else { return };
    let d = load(&dir, "imsweb__x12-parser/x12_277CA_accepted.txt");
    assert_eq!(kinds(&d), ["277CA 005010X214"]);
    assert_eq!(
        stc_hl(&d),
        ("A1x1,A2x1".into(), "19x1,20x1,21x1,PTx1".into())
    );
    assert_eq!(envelope(&d), Vec::<String>::new());
    let s = statuses(&d)[0];
    assert_eq!(s.claims[0].patient_control_number, "5781");
    assert_eq!(s.claims[0].level, arflow_x12::status::Level::Patient);

    let d = load(&dir, "imsweb__x12-parser/x12_277CA_rejected.txt");
    assert_eq!(kinds(&d), ["277CA 005010X214"]);
    assert_eq!(
        stc_hl(&d),
        ("A1x1,A7x1".into(), "19x1,20x1,21x1,PTx1".into())
    );
    assert_eq!(envelope(&d), Vec::<String>::new());
    // Component separator `|`: the composite still splits.
    let claim = &statuses(&d)[0].claims[0];
    assert_eq!(claim.statuses[0].primary.status, "562");
    assert_eq!(claim.statuses[0].primary.entity.as_deref(), Some("85"));

    let d = load(&dir, "imsweb__x12-parser/x12_277_x212.txt");
    assert_eq!(kinds(&d), ["277 005010X212"]);
    assert_eq!(stc_hl(&d), ("A1x8".into(), "19x8,20x8,21x8,22x8".into()));
    assert_eq!(envelope(&d), ["IEA02=842928883 != ISA13=000000001"]);

    let d = load(&dir, "imsweb__x12-parser/x12_999_accepted.txt");
    assert_eq!(kinds(&d), ["999 005010X231A1"]);
    assert_eq!(envelope(&d), ["IEA02=000000001 != ISA13=000000286"]);

    let d = load(&dir, "imsweb__x12-parser/x12_999_rejected.txt");
    assert_eq!(kinds(&d), ["999 005010X231A1"]);
    assert_eq!(envelope(&d), Vec::<String>::new());
    let r = inspect(&std::fs::read(dir.join("imsweb__x12-parser/x12_999_rejected.txt")).unwrap());
    let ack = r.interchanges[0].groups[0].transactions[0]
        .acknowledgment
        .clone()
        .unwrap();
    assert_eq!(ack.acceptance, Some(arflow_x12::ack::Acceptance::Rejected));
}

#[test]
fn imsweb_837() {
    let Some(dir) = samples() else { return };
    for f in ["x12_valid.txt", "x12_valid_different_separators.txt"] {
        let d = load(&dir, &format!("imsweb__x12-parser/{f}"));
        assert_eq!(kinds(&d), ["837P 005010X222A1"], "{f}");
        assert_eq!(
            envelope(&d),
            ["SE01=25 but counted 34 (ST02=987654)"],
            "{f}"
        );
    }
    let d = load(&dir, "imsweb__x12-parser/x12_complex.txt");
    assert_eq!(kinds(&d), ["837P 005010X222A1"; 2]);
    assert_eq!(
        envelope(&d),
        [
            "SE01=25 but counted 147 (ST02=987654)",
            "SE01=26 but counted 147 (ST02=987655)",
            "GE01=1 but 2 ST",
        ]
    );
    let d = load(&dir, "imsweb__x12-parser/x12_multiple_isa.txt");
    assert_eq!(kinds(&d), ["837P 005010X222A1"; 2]);
    assert_eq!(d.interchanges.len(), 2);
    assert_eq!(
        envelope(&d),
        [
            "SE01=25 but counted 34 (ST02=987654)",
            "SE01=25 but counted 34 (ST02=987654)",
        ]
    );
}

#[test]
fn freestream_pyedi() {
    let Some(dir) = samples() else { return };
    // Not in the README table; what the files are: a bare 835 fragment and the eMedNY
    // remittance of tastypackets' profee.edi on one line.
    let d = load(&dir, "freestream__pyedi/file1.txt");
    assert!(d.interchanges[0].header.is_none());
    assert_eq!(kinds(&d), ["835 "]);
    let d = load(&dir, "freestream__pyedi/file2.txt");
    assert_eq!(clp_cas(&d), (3, "1x1,2x2".into(), "COx4".into()));
    assert_eq!(balance(&d), Vec::<String>::new());
}

#[test]
fn tastypackets_835s() {
    let Some(dir) = samples() else { return };
    for f in [
        "profee.edi",
        "profee-one-line.edi",
        "multi-line-not-delimited.edi",
    ] {
        let d = load(&dir, &format!("tastypackets__x12-parser/{f}"));
        assert_eq!(kinds(&d), ["835 005010X221A1"], "{f}");
        assert_eq!(clp_cas(&d), (3, "1x1,2x2".into(), "COx4".into()), "{f}");
        assert_eq!(envelope(&d), Vec::<String>::new(), "{f}");
        assert_eq!(balance(&d), Vec::<String>::new(), "{f}");
        assert!(d.problems.is_empty(), "{f}: {:?}", d.problems);
    }
    let d = load(&dir, "tastypackets__x12-parser/profee-multiple.edi");
    assert_eq!(d.transactions().count(), 156);
    assert_eq!(clp_cas(&d), (468, "1x156,2x312".into(), "COx624".into()));
    assert_eq!(envelope(&d), Vec::<String>::new());
    assert_eq!(balance(&d), Vec::<String>::new());
}

#[test]
fn mjkubba_demos() {
    let Some(dir) = samples() else { return };
    let d = load(&dir, "mjkubba__edi/edi835-demo-005010X221.edi");
    assert_eq!(kinds(&d), ["835 005010X221A1"]);
    assert_eq!(clp_cas(&d), (1, "1x1".into(), "COx1,OAx1".into()));
    assert_eq!(envelope(&d), ["SE01=31 but counted 32 (ST02=35681)"]);
    // The README's balance cell for this file was lost to the `|` separator in its table;
    // by §3.4 the claim (211366.97 - 73348.57 - 400 = 137618.40, not 138018.40) and the
    // transaction (138018.40 - (-1.27) = 138019.67, not 150000) are both unbalanced.
    assert_eq!(
        balance(&d),
        [
            "Claim 35681 666123: expected $137,618.40 found $138,018.40",
            "Transaction 35681 -: expected $138,019.67 found $150,000.00",
        ]
    );

    let d = load(&dir, "mjkubba__edi/edi277-demo-005010X212.edi");
    assert_eq!(kinds(&d), ["277 005010X212"]);
    assert_eq!(
        stc_hl(&d),
        ("F0x1,P3x1".into(), "19x1,20x1,21x1,22x2".into())
    );
    assert_eq!(envelope(&d), Vec::<String>::new());

    let d = load(&dir, "mjkubba__edi/edi276-demo-005010X212.edi");
    assert_eq!(kinds(&d), ["276 005010X212"]);
    assert_eq!(envelope(&d), Vec::<String>::new());

    let d = load(&dir, "mjkubba__edi/edi999-demo-005010X231.edi");
    assert_eq!(kinds(&d), ["999 005010X231A1"]);
    assert_eq!(envelope(&d), Vec::<String>::new());

    let d = load(&dir, "mjkubba__edi/edi837P-demo-005010X222.edi");
    assert_eq!(kinds(&d), ["837P 005010X222A1"]);
    assert_eq!(envelope(&d), Vec::<String>::new());
}

#[test]
fn diasks2_fragments() {
    let Some(dir) = samples() else { return };
    let f = |n: u8| format!("diasks2__era_835_parser/example_{n}.835");

    let d = load(&dir, &f(1));
    assert!(d.interchanges[0].header.is_none(), "no ISA envelope");
    assert_eq!(clp_cas(&d), (1, "1x1".into(), "COx1".into()));
    assert_eq!(envelope(&d), ["SE01=21 but counted 24 (ST02=1234)"]);
    // README: "BPR02 15096.46 != sum CLP04 5451.04 - PLB 0".
    assert_eq!(
        balance(&d),
        ["Transaction 1234 -: expected $5,451.04 found $15,096.46"]
    );

    for n in [2, 3] {
        let d = load(&dir, &f(n));
        assert_eq!(clp_cas(&d), (1, "1x1".into(), "COx1,PRx2".into()));
        assert_eq!(envelope(&d), Vec::<String>::new());
        assert_eq!(balance(&d), Vec::<String>::new());
    }
    let d = load(&dir, &f(4));
    assert_eq!(envelope(&d), ["SE01=33 but counted 32 (ST02=1234)"]);
    assert_eq!(balance(&d), Vec::<String>::new());
    let d = load(&dir, &f(5));
    assert_eq!(envelope(&d), ["SE01=33 but counted 34 (ST02=1234)"]);
    assert_eq!(balance(&d), Vec::<String>::new());

    let d = load(&dir, &f(6));
    assert_eq!(d.transactions().count(), 2);
    assert_eq!(clp_cas(&d), (2, "1x2".into(), "COx4,PRx4".into()));
    assert_eq!(envelope(&d), Vec::<String>::new());
    // README: 2 problems, e.g. "BPR02 0 != sum CLP04 150 - PLB 0".
    assert_eq!(
        balance(&d),
        [
            "Transaction 1234 -: expected $150.00 found $0.00",
            "Transaction 1234 -: expected $150.00 found $300.00",
        ]
    );
}

#[test]
fn linuxforhealth() {
    let Some(dir) = samples() else { return };
    let p = |f: &str| format!("LinuxForHealth__x12/{f}");
    for f in [
        "claim-level-status-ncpdp.276",
        "claim-level-status.276",
        "information-receiver-level-status.276",
        "provider-level-status.276",
    ] {
        let d = load(&dir, &p(f));
        assert_eq!(kinds(&d), ["276 005010X212"], "{f}");
        assert!(d.problems.is_empty(), "{f}: {:?}", d.problems);
    }
    for (f, stc, hl) in [
        (
            "claim-level-status-ncpdp.277",
            "F2x1",
            "19x1,20x1,21x1,22x1",
        ),
        (
            "claim-level-status.277",
            "F0x1,F2x2,P3x1",
            "19x2,20x1,21x1,22x3,23x1",
        ),
        ("information-receiver-level-status.277", "E0x1", "20x1,21x1"),
        (
            "provider-level-status.277",
            "E0x1,P3x1",
            "19x2,20x1,21x1,22x1",
        ),
    ] {
        let d = load(&dir, &p(f));
        assert_eq!(kinds(&d), ["277 005010X212"], "{f}");
        assert_eq!(stc_hl(&d), (stc.into(), hl.into()), "{f}");
        assert!(d.problems.is_empty(), "{f}: {:?}", d.problems);
    }
    for (f, claims, clp02, cas) in [
        ("cob-contractural-adjustment.835", 1, "2x1", "OAx2"),
        ("managed-care.835", 2, "1x2", "COx3,PRx2"),
        ("medicare-part-a.835", 2, "1x2", "COx2"),
        ("secondary-payment.835", 2, "2x2", "COx1,OAx2,PRx1"),
    ] {
        let d = load(&dir, &p(f));
        assert_eq!(kinds(&d), ["835 005010X221A1"], "{f}");
        assert_eq!(clp_cas(&d), (claims, clp02.into(), cas.into()), "{f}");
        assert_eq!(envelope(&d), Vec::<String>::new(), "{f}");
        assert_eq!(balance(&d), Vec::<String>::new(), "{f}");
    }
    // Medicare Part A: 149998.73 - (-1.27) = 150000.00 (docs/reference/x12.md §3.4).
    let d = load(&dir, &p("medicare-part-a.835"));
    let r = remits(&d)[0];
    assert_eq!(
        r.payment.as_ref().unwrap().amount.map(|m| m.cents()),
        Some(15_000_000)
    );
    assert_eq!(r.provider_adjustments[0].items[0].amount.cents(), -127);
    // managed-care.835 balances, but its BPR16 is 2000-23-16: a content problem, located.
    let d = load(&dir, &p("managed-care.835"));
    let bad: Vec<_> = d
        .problems
        .iter()
        .map(|p| (p.kind, p.element.clone()))
        .collect();
    assert_eq!(bad, [(ProblemKind::BadDate, Some("BPR16".into()))]);

    let d = load(&dir, &p("tertiary-payment.835"));
    assert_eq!(clp_cas(&d), (1, "3x1".into(), "OAx1".into()));
    // Its check date sits one element early (BPR15), so the required BPR16 is empty.
    let bad: Vec<_> = d
        .problems
        .iter()
        .map(|p| (p.kind, p.element.clone()))
        .collect();
    assert_eq!(bad, [(ProblemKind::MissingElement, Some("BPR16".into()))]);
    assert_eq!(envelope(&d), Vec::<String>::new());
    // README: "SVC HC: 24599.00 - CAS 1579.00 != paid 1766.50".
    let b = d.balance_problems();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].level, arflow_x12::BalanceLevel::Line);
    assert_eq!(b[0].expected.cents(), 2_459_900 - 157_900);
    assert_eq!(b[0].found.cents(), 176_650);

    for f in ["demo.example1.837", "demo.cob.example3.A.837"] {
        let d = load(&dir, &p(f));
        assert_eq!(kinds(&d), ["837P 005010X222A2"], "{f}");
        assert!(d.problems.is_empty(), "{f}: {:?}", d.problems);
    }
}

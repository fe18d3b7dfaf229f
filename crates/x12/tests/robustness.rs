//! `read` and `inspect` never panic, whatever the bytes: the stable-toolchain stand-in for the
//! cargo-fuzz target in `crates/x12/fuzz` (which needs nightly).
//!
//! Inputs are mutations of valid files of every kind we decode (truncations, deleted,
//! duplicated or swapped bytes, delimiters inserted or removed, random bytes spliced in) plus
//! purely random bytes; each is read, inspected, rendered and serialized.
// Helpers outside #[test] fns may unwrap too: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use arflow_x12::{inspect, read, render_text};
use proptest::prelude::*;

const ISA: &str = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *240315*1200*^*00501*000000001*0*P*:~";

fn seeds() -> Vec<String> {
    let r835 = format!(
        "{ISA}\nGS*HP*PAYER*ARFLOW*20240315*1200*1*X*005010X221A1~\nST*835*0001~\nBPR*I*175*C*ACH*CCP*01*999*DA*1*1512345678**01*999*DA*9*20240315~\nTRN*1*EFT1*1512345678~\nN1*PR*PLAN~\nN3*PO BOX 1~\nN4*ALBANY*NY*12237~\nREF*2U*87726~\nN1*PE*CLINIC*XX*1245319599~\nLX*1~\nCLP*RBH-1*1*300*250*10*12*ICN1*11*1~\nCAS*CO*45*10*1*253*.5**94*9.5~\nNM1*QC*1*RIVERA*JORDAN****MI*X1~\nMOA***MA130~\nMIA*1***100*N1~\nDTM*232*20240301~\nDTM*050*20240310~\nAMT*AU*300~\nSVC*HC:90837:95*180*170**1*HC:90834*1~\nDTM*472*20240301~\nCAS*PR*2*10*1~\nREF*6R*1~\nAMT*B6*160~\nLQ*HE*N130~\nSVC*HC:90785*100*80**1~\nCAS*CO*45*20~\nCLP*RBH-0*22*-100*-50**12*ICN0*11*7~\nCAS*CR*45*-50~\nPLB*1245319599*20241231*WO:ICN0*-12.5*L6*37.5~\nSE*29*0001~\nGE*1*1~\nIEA*1*000000001~\n"
    );
    // A 277CA with `|` as its component separator (as eMedNY sends).
    let r277 = format!(
        "{}GS*HN*P*A*20240310*1200*2*X*005010X214~ST*277*0001*005010X214~BHT*0085*08*B1*20240310*1200*TH~HL*1**20*1~NM1*PR*2*PLAN*****PI*1~TRN*1*1~HL*2*1*21*1~NM1*41*2*A*****46*A~TRN*2*B1~STC*A1|19|PR*20240310*WQ*450~QTY*90*1~AMT*YU*200~HL*3*2*19*1~NM1*85*2*C*****XX*1245319599~HL*4*3*PT~NM1*QC*1*R*J~TRN*2*RBH-1~STC*A3|21*20240310*U*250******A7|562|85*A8|95*MSG~REF*1K*ICN1~DTP*472*RD8*20240301-20240302~SVC*HC|90837*250*0****1~STC*A7|453*20240310~REF*FJ*1~SE*23*0001~GE*1*2~IEA*1*000000001~",
        ISA.replace(":~", "|~")
    );
    let r999 = format!(
        "{ISA}GS*FA*P*A*20240310*1200*3*X*005010X231A1~ST*999*1*005010X231A1~AK1*HC*17*005010X222A1~AK2*837*1~IK3*CLM*22*2300*8~CTX*CLM01:X~IK4*2*782*1*ABC~IK5*R*5~AK9*R*1*1*0~SE*9*1~GE*1*3~IEA*1*000000001~"
    );
    let r276 = format!(
        "{ISA}GS*HR*A*P*20240310*1200*4*X*005010X212~ST*276*0001*005010X212~BHT*0010*13*Q*20240310*1200~HL*1**20*1~NM1*PR*2*P*****PI*1~HL*2*1*21*1~NM1*41*2*A*****46*A~HL*3*2*19*1~NM1*1P*2*C*****XX*1245319599~HL*4*3*22*1~DMG*D8*19800101*F~NM1*IL*1*R*J****MI*M~HL*5*4*23~NM1*QC*1*R*S~TRN*1*T1~REF*1K*I~REF*EJ*E~AMT*T3*1~DTP*472*RD8*20240101-20240102~SVC*HC:90837*1*****1~REF*FJ*1~DTP*472*D8*20240101~SE*22*0001~GE*1*4~IEA*1*000000001~"
    );
    let r837 = format!(
        "{ISA}GS*HC*A*P*20240310*1200*5*X*005010X222A1~ST*837*0001*005010X222A1~BHT*0019*00*B*20240310*1200*CH~NM1*41*2*S*****46*S~PER*IC*N*TE*1~NM1*40*2*R*****46*R~HL*1**20*1~NM1*85*2*B*****XX*1245319599~N3*1 A ST~N4*C*NY*1~REF*EI*1~HL*2*1*22*1~SBR*P*18*G******CI~NM1*IL*1*R*J****MI*M~DMG*D8*19800101*F~NM1*PR*2*P*****PI*1~HL*3*2*23*0~PAT*19~NM1*QC*1*R*S~CLM*C1*10***11:B:7*Y*A*Y*Y~REF*F8*I~HI*ABK:F331*ABF:F411~NM1*82*1*D*A****XX*1234567893~SBR*S*01*******12~NM1*IL*1*X~LX*1~SV1*HC:90837:95*10*UN*1*02**1:2~DTP*472*D8*20240101~REF*6R*1~SE*29*0001~GE*1*5~IEA*1*000000001~"
    );
    let fragment =
        "ST*835*1~BPR*I*1*C*CHK************20240101~CLP*A*1*1*1~SVC*HC:1*1*1~SE*5*1~".to_string();
    vec![r835, r277, r999, r276, r837, fragment]
}

fn exercise(bytes: &[u8]) {
    let doc = read(bytes);
    let _ = doc.balance_problems();
    let report = inspect(bytes);
    let _ = render_text(&report);
    let _ = serde_json::to_string(&report).expect("the report serializes");
    let _ = serde_json::to_string(&doc).expect("the document serializes");
}

#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, Vec<u8>),
    Overwrite(usize, u8),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let delim = prop::sample::select(vec![b'*', b'~', b':', b'^', b'|', b'\n', b'\r', 0u8, 0xFF]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), 1usize..60).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), delim.clone()).prop_map(|(a, d)| Mutation::Insert(a, vec![d])),
        (any::<usize>(), delim).prop_map(|(a, d)| Mutation::Overwrite(a, d)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Overwrite(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn apply(mut v: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let len = v.len().max(1);
    match m {
        Mutation::Truncate(at) => v.truncate(at % len),
        Mutation::Delete(at, n) => {
            let a = at % len;
            let b = (a + n).min(v.len());
            if a < b {
                v.drain(a..b);
            }
        }
        Mutation::Duplicate(at, n) => {
            let a = at % len;
            let b = (a + n).min(v.len());
            if a < b {
                let copy: Vec<u8> = v[a..b].to_vec();
                v.splice(b..b, copy);
            }
        }
        Mutation::Insert(at, bytes) => {
            let a = at % (v.len() + 1);
            v.splice(a..a, bytes.iter().copied());
        }
        Mutation::Overwrite(at, b) => {
            if !v.is_empty() {
                let a = at % v.len();
                v[a] = *b;
            }
        }
        Mutation::Swap(a, b) => {
            if !v.is_empty() {
                let (a, b) = (a % v.len(), b % v.len());
                v.swap(a, b);
            }
        }
    }
    v
}

#[test]
fn seeds_are_clean() {
    for (i, s) in seeds().iter().enumerate() {
        let doc = read(s.as_bytes());
        let errors: Vec<_> = doc.errors().collect();
        assert!(errors.is_empty(), "seed {i}: {errors:#?}");
    }
}

#[test]
fn adversarial_shapes() {
    // Deep or degenerate structures that once made naive readers loop or index out of bounds.
    let hl_chain: String = (1..5000)
        .map(|i| format!("HL*{i}*{}*22*1~", i + 1))
        .collect();
    let many_isa = ISA.repeat(2000);
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        b"ISA".to_vec(),
        b"ISA*".to_vec(),
        ISA.as_bytes()[..105].to_vec(),
        ISA.replace(":~", "::").into_bytes(),
        ISA.replace(":~", ":*").into_bytes(),
        format!("ST*277*1*005010X214~{hl_chain}SE*1*1~").into_bytes(),
        format!("ST*276*1~{hl_chain}TRN*1*X~SE*1*1~").into_bytes(),
        format!("ST*837*1~{hl_chain}CLM*X~SE*1*1~").into_bytes(),
        many_isa.into_bytes(),
        "~".repeat(100_000).into_bytes(),
        "*".repeat(100_000).into_bytes(),
        format!("{ISA}{}", "SE~".repeat(5000)).into_bytes(),
        vec![0xFF, 0xFE, b'I', 0, b'S', 0, b'A'],
        vec![0xFE, 0xFF, 0, b'I', 0, b'S', 0],
        vec![0xEF, 0xBB, 0xBF],
        vec![0xFF, 0xFE, 0x00],
        b"ST*835*1~CAS*CO*1*99999999999999999999~PLB*1*2*A*-9999999999999999~SE*3*1~".to_vec(),
        b"ST*835*1~BPR*I*92233720368547758.07~LX*1~CLP*A*1*92233720368547758.07*92233720368547758.07~CAS*CO*1*-92233720368547758.08~CLP*B*1*1*92233720368547758.07~SE*6*1~".to_vec(),
    ];
    for input in inputs {
        exercise(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_files_never_panic(
        seed in 0usize..6,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed % seeds.len()].clone().into_bytes();
        for m in &mutations {
            bytes = apply(bytes, m);
        }
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    #[test]
    fn random_text_with_delimiters_never_panics(
        s in "(ISA|ST|SE|GS|GE|IEA|CLP|SVC|CAS|PLB|HL|TRN|STC|[A-Z]{2,3}|[0-9.:*~^|>-]|\\n| ){0,300}",
    ) {
        exercise(s.as_bytes());
        exercise(format!("{ISA}{s}").as_bytes());
    }
}

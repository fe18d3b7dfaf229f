//! Read throughput on a large, realistic 835, single thread, best of a few runs.
//!
//! Budget: a full typed 835 read (`arflow_x12::read`: tokenize, envelopes, typed decode) at
//! 200 MB/s or more per core. Also measured: tokenize only (the floor every reader pays) and
//! read + balancing (what `inspect` adds).
//!
//! Run: `cargo bench -p arflow-x12` (release). Size: ARFLOW_X12_BENCH_MB (default 50).
//! Without `--bench` (as `cargo test --all-targets` runs bench binaries) it prints "skipped".
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use arflow_x12::lex::{Tokenizer, decode};

/// A small deterministic generator (xorshift64*): the same file on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    match a % 100 {
        0 => format!("{sign}{}", a / 100),
        c if c % 10 == 0 => format!("{sign}{}.{}", a / 100, c / 10),
        c => format!("{sign}{}.{c:02}", a / 100),
    }
}

const CODES: [&str; 8] = [
    "90837", "90834", "90832", "90791", "90785", "H0031", "H2019", "99214",
];
const MODS: [&str; 5] = ["", ":95", ":HJ", ":GT:95", ":HO:U4"];
const CARCS: [&str; 6] = ["45", "2", "1", "3", "97", "253"];
const RARCS: [&str; 4] = ["N130", "M15", "N362", "MA130"];

/// One balanced 835 transaction set with `claims` claims; returns its segment count.
fn transaction(out: &mut String, st: usize, claims: usize, rng: &mut Rng) -> usize {
    let mut body = String::with_capacity(claims * 700);
    let mut total_paid: i64 = 0;
    let seg = |body: &mut String, s: std::fmt::Arguments<'_>| {
        body.write_fmt(s).unwrap();
        body.push_str("~\n");
    };
    seg(&mut body, format_args!("TRN*1*{:010}*1512345678", st));
    seg(&mut body, format_args!("DTM*405*20240315"));
    seg(
        &mut body,
        format_args!("N1*PR*RIVERSIDE BEHAVIORAL HEALTH PLAN"),
    );
    seg(&mut body, format_args!("N3*PO BOX 12345"));
    seg(&mut body, format_args!("N4*ALBANY*NY*122370080"));
    seg(&mut body, format_args!("REF*2U*87726"));
    seg(
        &mut body,
        format_args!("PER*BL*PROVIDER SERVICES*TE*8005551234*UR*www.example.org"),
    );
    seg(
        &mut body,
        format_args!("N1*PE*RIVERSIDE BEHAVIORAL HEALTH PLLC*XX*1245319599"),
    );
    seg(&mut body, format_args!("REF*TJ*123456789"));
    seg(&mut body, format_args!("LX*1"));
    for c in 0..claims {
        let lines = 1 + rng.below(4) as usize;
        let mut charge_total = 0i64;
        let mut paid_total = 0i64;
        let mut line_text = String::with_capacity(lines * 160);
        let mut pr_total = 0i64;
        for l in 0..lines {
            let charge = 5_000 + rng.below(30_000) as i64;
            let co = rng.below(charge as u64 / 2) as i64;
            let pr = if rng.below(3) == 0 {
                rng.below(3_000) as i64
            } else {
                0
            };
            let paid = charge - co - pr;
            charge_total += charge;
            paid_total += paid;
            pr_total += pr;
            let code = CODES[rng.below(CODES.len() as u64) as usize];
            let m = MODS[rng.below(MODS.len() as u64) as usize];
            let _ = write!(
                line_text,
                "SVC*HC:{code}{m}*{}*{}**1~\nDTM*472*2024030{}~\nCAS*CO*{}*{}~\n",
                amount(charge),
                amount(paid),
                1 + l % 9,
                CARCS[rng.below(CARCS.len() as u64) as usize],
                amount(co)
            );
            if pr > 0 {
                let _ = writeln!(line_text, "CAS*PR*2*{}*1~", amount(pr));
            }
            let _ = write!(
                line_text,
                "REF*6R*{}~\nAMT*B6*{}~\n",
                l + 1,
                amount(charge - co)
            );
            if rng.below(4) == 0 {
                let _ = writeln!(
                    line_text,
                    "LQ*HE*{}~",
                    RARCS[rng.below(RARCS.len() as u64) as usize]
                );
            }
        }
        total_paid += paid_total;
        seg(
            &mut body,
            format_args!(
                "CLP*RBH-{st:04}-{c:06}*{}*{}*{}*{}*12*9{:013}*11*1",
                if paid_total == 0 { 4 } else { 1 },
                amount(charge_total),
                amount(paid_total),
                amount(pr_total),
                rng.below(10_000_000_000_000)
            ),
        );
        seg(
            &mut body,
            format_args!(
                "NM1*QC*1*RIVERA*JORDAN****MI*XEH{:09}",
                rng.below(1_000_000_000)
            ),
        );
        seg(
            &mut body,
            format_args!("NM1*82*1*CHEN*AVERY****XX*1234567893"),
        );
        if rng.below(5) == 0 {
            seg(&mut body, format_args!("MOA***MA130*N362"));
        }
        seg(&mut body, format_args!("REF*EA*PT-{:06}", c));
        seg(&mut body, format_args!("DTM*232*20240301"));
        seg(&mut body, format_args!("DTM*233*20240309"));
        seg(&mut body, format_args!("DTM*050*20240311"));
        seg(&mut body, format_args!("AMT*AU*{}", amount(charge_total)));
        body.push_str(&line_text);
    }
    // BPR goes first; SE counts ST, BPR, the body and SE.
    let segs = body.bytes().filter(|&b| b == b'~').count();
    let _ = write!(
        out,
        "ST*835*{st:04}~\nBPR*I*{}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20240315~\n",
        amount(total_paid)
    );
    out.push_str(&body);
    let _ = writeln!(out, "SE*{}*{st:04}~", segs + 3);
    segs + 3
}

fn generate(target: usize) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = String::with_capacity(target + 1_000_000);
    out.push_str("ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *240315*1200*^*00501*000000001*0*P*:~\n");
    out.push_str("GS*HP*PAYER*ARFLOW*20240315*1200*1*X*005010X221A1~\n");
    let mut sets = 0;
    while out.len() < target {
        sets += 1;
        transaction(&mut out, sets, 2_000, &mut rng);
    }
    let _ = write!(out, "GE*{sets}*1~\nIEA*1*000000001~\n");
    out
}

/// Best time of `runs` calls; what `f` returns is dropped after the clock stops.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = black_box(f());
            let elapsed = t.elapsed();
            drop(out);
            elapsed
        })
        .min()
        .unwrap()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped (run with cargo bench -p arflow-x12)");
        return;
    }
    let mb: usize = std::env::var("ARFLOW_X12_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let text = generate(mb * 1_000_000);
    let bytes = text.as_bytes();
    let size_mb = bytes.len() as f64 / 1e6;

    // Sanity: the generated file is clean and balanced, so the timings measure the happy path.
    let doc = arflow_x12::read(bytes);
    let claims: usize = doc.remittances().map(|(_, r)| r.claims.len()).sum();
    assert!(doc.problems.is_empty(), "{:?}", doc.problems.first());
    assert!(doc.balance_problems().is_empty());
    println!(
        "835: {size_mb:.1} MB, {} segments, {} transaction sets, {claims} claims",
        doc.segment_count,
        doc.transactions().count()
    );
    drop(doc);

    let runs = 3;
    let tokenize = best_of(runs, || {
        let mut problems = Vec::new();
        let text = decode(bytes, &mut problems);
        let mut n = 0usize;
        for seg in Tokenizer::new(&text) {
            n += seg.id.len();
        }
        black_box(n);
    });
    let full = best_of(runs, || arflow_x12::read(black_box(bytes)));
    let with_drop = best_of(runs, || drop(arflow_x12::read(black_box(bytes))));
    let balanced = best_of(runs, || {
        let doc = arflow_x12::read(black_box(bytes));
        let problems = doc.balance_problems();
        (doc, problems)
    });
    let rate = |d: Duration| size_mb / d.as_secs_f64();
    println!(
        "tokenize only:        {:7.1} MB/s ({:?})",
        rate(tokenize),
        tokenize
    );
    println!("full 835 read:        {:7.1} MB/s ({:?})", rate(full), full);
    println!(
        "read, then drop:      {:7.1} MB/s ({:?})",
        rate(with_drop),
        with_drop
    );
    println!(
        "read + balancing:     {:7.1} MB/s ({:?})",
        rate(balanced),
        balanced
    );
    let verdict = if rate(full) >= 200.0 {
        "within"
    } else {
        "OVER"
    };
    println!("budget (full read >= 200 MB/s): {verdict}");
}

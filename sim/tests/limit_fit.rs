//! Refits every power-limit response committed in `ea2p-core::jobmodel::LimitResponse` to the
//! Zeus NSDI'23 sweeps in `sim/calibration/zeus-nsdi23/` and fails if a constant differs: the
//! constants are the fit's output, not chosen by hand. `--nocapture` prints the fits and the
//! cross-validation (fit on one GPU, predict the other).

use std::path::PathBuf;

use ea2p_core::jobmodel::LimitResponse;
use eas_sim::validate::{fit, observations, read_sweep, validate, SweepRow};

fn sweep(name: &str) -> Vec<SweepRow> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("calibration/zeus-nsdi23")
        .join(name);
    read_sweep(&p).unwrap()
}

const V100_MAX_W: f64 = 250.0;
const A40_MAX_W: f64 = 300.0;

fn check(name: &str, committed: LimitResponse, fitted: LimitResponse) -> Vec<String> {
    println!("{name}: {fitted:?}");
    let mut bad = Vec::new();
    let pairs = [
        ("capped_ratio", committed.capped_ratio, fitted.capped_ratio),
        ("sharpness", committed.sharpness, fitted.sharpness),
        (
            "speed_exponent",
            committed.speed_exponent,
            fitted.speed_exponent,
        ),
        ("knee_slope", committed.knee_slope, fitted.knee_slope),
        (
            "knee_fraction",
            committed.knee_fraction,
            fitted.knee_fraction,
        ),
    ];
    for (what, c, f) in pairs {
        if (c - f).abs() > 1e-9 * f.abs().max(1.0) {
            bad.push(format!(
                "LimitResponse::{name}.{what}: committed {c}, the fit gives {f}"
            ));
        }
    }
    bad
}

#[test]
fn committed_responses_are_the_fits() {
    let v = sweep("summary_power_v100.csv");
    let a = sweep("summary_power_a40.csv");
    let all = |_: &SweepRow| true;
    let net = |n: &'static str| move |r: &SweepRow| r.network == n;
    let mut ov = observations(&v, V100_MAX_W, all);
    let oa = observations(&a, A40_MAX_W, all);
    let fv = fit(&ov);
    let fa = fit(&oa);
    ov.extend_from_slice(&oa);
    let fd = fit(&ov);
    let mut rn = observations(&v, V100_MAX_W, net("resnet50"));
    rn.extend(observations(&a, A40_MAX_W, net("resnet50")));
    let mut bert = observations(&v, V100_MAX_W, net("bert_base_uncased"));
    bert.extend(observations(&a, A40_MAX_W, net("bert_base_uncased")));
    let (fr, fb) = (fit(&rn), fit(&bert));
    println!(
        "observations: V100 {}, A40 {}, ResNet-50 {}, BERT {}",
        ov.len() - oa.len(),
        oa.len(),
        rn.len(),
        bert.len()
    );
    for (name, r, rows, max) in [
        ("FIT_V100 on A40", fv, &a, A40_MAX_W),
        ("FIT_A40 on V100", fa, &v, V100_MAX_W),
        ("DEFAULT on V100", fd, &v, V100_MAX_W),
        ("DEFAULT on A40", fd, &a, A40_MAX_W),
    ] {
        let m = validate(&r, rows, max, LimitResponse::FIT_MIN_FRACTION).mape;
        println!(
            "{name}: MAPE time {:.2} %, power {:.2} %, energy {:.2} %",
            m.time_per_epoch, m.average_power, m.energy_per_epoch
        );
    }
    let mut bad = check("FIT_V100", LimitResponse::FIT_V100, fv);
    bad.extend(check("FIT_A40", LimitResponse::FIT_A40, fa));
    bad.extend(check("DEFAULT", LimitResponse::DEFAULT, fd));
    bad.extend(check("RESNET50", LimitResponse::RESNET50, fr));
    bad.extend(check("BERT_BASE", LimitResponse::BERT_BASE, fb));
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

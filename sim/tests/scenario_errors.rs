//! Scenario files: defaults, overrides, and errors that name file, line and what was expected.

use eas_sim::scenario::{parse_str, Arrivals, Scenario, SizeDist};

fn err(text: &str) -> String {
    parse_str(text, "bad.toml", None).unwrap_err().to_string()
}

#[test]
fn the_seed_protocol_is_design_section_8() {
    let sc = Scenario::seed_protocol();
    assert_eq!(sc.hours, 10.0);
    assert_eq!(sc.seeds, 10);
    assert_eq!(sc.gpu_counts, vec![8, 8]);
    assert_eq!(sc.gpu_types[0].spec.max_w, 400.0);
    assert_eq!(sc.gpu_types[1].spec.max_w, 700.0);
    assert_eq!(sc.arrivals, Arrivals::Poisson(0.005));
    let names: Vec<&str> = sc
        .mix
        .iter()
        .map(|(m, _)| sc.models[*m as usize].0.name.as_str())
        .collect();
    assert_eq!(names, vec!["vit-base", "albert-v2", "resnet50"]);
}

#[test]
fn a_file_inherits_what_it_leaves_out() {
    let sc = parse_str(
        "hours = 2.5\n[workload.size]\ndistribution = \"fixed\"\nvalue = 600\n",
        "f.toml",
        None,
    )
    .unwrap();
    assert_eq!(sc.hours, 2.5);
    assert_eq!(sc.size, SizeDist::Fixed(600.0));
    assert_eq!(sc.seeds, 10);
    assert_eq!(sc.gpu_counts, vec![8, 8]);
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let e = err("hours = 10\nseeds = \n");
    assert!(e.starts_with("bad.toml:2:"), "{e}");
}

#[test]
fn type_errors_say_what_was_expected() {
    let e = err("hours = 10\nseeds = \"ten\"\n");
    assert!(e.starts_with("bad.toml:2:9:"), "{e}");
    assert!(e.contains("u32") || e.contains("integer"), "{e}");
}

#[test]
fn unknown_fields_are_refused_with_their_line() {
    let e = err("hours = 10\n\n[policy]\nage_facter = 2.0\n");
    assert!(e.starts_with("bad.toml:4:"), "{e}");
    assert!(e.contains("age_facter"), "{e}");
}

#[test]
fn unknown_model_names_the_line_and_the_choices() {
    let e = err("[workload]\nmix = [\n  { model = \"gpt-5\", weight = 1.0 },\n]\n");
    assert!(e.starts_with("bad.toml:3:"), "{e}");
    assert!(e.contains("vit-base") && e.contains("resnet50"), "{e}");
}

#[test]
fn unknown_gpu_and_bad_numbers_are_located() {
    let e = err("[[nodes]]\ngpu = \"V100\"\ngpus_per_node = 8\n");
    assert!(
        e.starts_with("bad.toml:2:7:") && e.contains("A100, H100"),
        "{e}"
    );
    let e = err("[arrivals]\npoisson_rate_per_s = -1.0\n");
    assert!(
        e.starts_with("bad.toml:2:") && e.contains("positive"),
        "{e}"
    );
    let e = err("[workload]\nurgent_fraction = 1.5\n");
    assert!(e.starts_with("bad.toml:2:") && e.contains("[0, 1]"), "{e}");
    let e = err("[workload.size]\ndistribution = \"lognormal\"\nmedian = 60.0\n");
    assert!(e.starts_with("bad.toml:2:") && e.contains("sigma"), "{e}");
    let e = err("[policy]\npower_cap_w = 900.0\n");
    assert!(
        e.starts_with("bad.toml:2:") && e.contains("all-idle power (984 W)"),
        "{e}"
    );
    // The seed protocol's cap is Charon's: a cluster whose idle power is above it is refused
    // only when Charon runs.
    let big = parse_str(
        "[[nodes]]\ngpu = \"H100\"\ncount = 12\ngpus_per_node = 8\n",
        "big.toml",
        None,
    )
    .unwrap();
    use ea2p_core::policy::PolicyKind;
    eas_sim::limits::check_cap_for(&big, &[PolicyKind::Fifo, PolicyKind::Pollux]).unwrap();
    let e = eas_sim::limits::check_cap_for(&big, &[PolicyKind::Charon]).unwrap_err();
    assert!(
        e.contains("charon") && e.contains("set [policy] power_cap_w"),
        "{e}"
    );
    let e = err("[policy]\nlimit_fractions = [1.0, 0.9, 0.5, 0.7]\n");
    assert!(
        e.starts_with("bad.toml:2:") && e.contains("limit_fractions"),
        "{e}"
    );
}

#[test]
fn user_models_join_the_catalogue() {
    let text = r#"
[[models]]
name = "tiny-cnn"
ref_batch = 128
noise_scale = 1000.0
[[models.perf]]
gpu = "A100"
samples_per_s_1gpu = 5000.0
samples_per_s_8gpu = 36000.0
batch_per_gpu = 128.0
busy_w = 300.0
max_batch_per_gpu = 256

[workload]
mix = [{ model = "tiny-cnn", weight = 1.0 }]
"#;
    let sc = parse_str(text, "m.toml", None).unwrap();
    assert_eq!(sc.models.len(), 4);
    let (_, p) = &sc.models[sc.mix[0].0 as usize];
    assert!(p.perf[0].is_some() && p.perf[1].is_none());
    let e = err(&text.replace("36000.0", "90000.0"));
    assert!(e.contains("tiny-cnn") && e.contains("inconsistent"), "{e}");
}

#[test]
fn traces_are_read_relative_to_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n0,resnet50,1,2,A100,3600,\n60,vit-base,2,1,,1800,7200\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("s.toml"), "[arrivals]\ntrace = \"t.csv\"\n").unwrap();
    let sc = Scenario::from_file(&dir.path().join("s.toml")).unwrap();
    let jobs = eas_sim::workload::generate(&sc, 0);
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0].rigid && !jobs[0].urgent);
    assert!(!jobs[1].rigid && jobs[1].urgent);
    assert!((jobs[0].isolated_s - 3600.0).abs() < 1e-6);
    std::fs::write(dir.path().join("t.csv"), "arrival_s,model\n0,resnet50\n").unwrap();
    let e = Scenario::from_file(&dir.path().join("s.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s.toml:2:") && e.contains("expected columns"),
        "{e}"
    );
}

#[test]
fn every_shipped_scenario_file_parses_and_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let mut sc = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            sc.hours = sc.hours.min(2.0);
            let jobs = eas_sim::workload::generate(&sc, 0);
            for p in ea2p_core::policy::PolicyKind::ALL {
                eas_sim::sim::run(&sc, p, &jobs, 0)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            n += 1;
        }
    }
    assert!(n >= 3, "seed, power-cap and mm16 scenarios");
}

#[test]
fn limit_response_from_a_builtin_or_a_measured_sweep() {
    let model = |lr: &str| {
        format!(
            "[[models]]\nname = \"m\"\nref_batch = 32\nnoise_scale = 100.0\nlimit_response = {lr}\n[[models.perf]]\ngpu = \"A100\"\nsamples_per_s_1gpu = 100.0\nsamples_per_s_8gpu = 700.0\nbatch_per_gpu = 32.0\nbusy_w = 300.0\nmax_batch_per_gpu = 64\n"
        )
    };
    let find = |sc: &Scenario| sc.models.iter().find(|(d, _)| d.name == "m").unwrap().1;
    let sc = parse_str(&model("{ builtin = \"bert-base\" }"), "s.toml", None).unwrap();
    assert_eq!(
        find(&sc).perf[0].unwrap().limit,
        ea2p_core::jobmodel::LimitResponse::BERT_BASE
    );
    // A measured sweep, relative to the scenario's directory: the Zeus V100 file's ResNet-50 at
    // batch 256 (5 rows at 150-225 W against the 250 W row).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration/zeus-nsdi23");
    let lr = "{ measured = \"summary_power_v100.csv\", max_limit_w = 250.0, dataset = \"imagenet\", network = \"resnet50\", batch_size = 256 }";
    let sc = parse_str(&model(lr), "s.toml", Some(&dir)).unwrap();
    let r = find(&sc).perf[0].unwrap().limit;
    let (t, p) = r.ratios(0.88, 0.6);
    assert!(
        (1.1..1.3).contains(&t) && (0.6..0.75).contains(&p),
        "{r:?}: {t} {p}"
    );
    // Errors: unknown builtin, both keys, missing keys, too few rows, a bad file.
    let e = err(&model("{ builtin = \"nope\" }"));
    assert!(
        e.starts_with("bad.toml:5:") && e.contains("default, resnet50, bert-base"),
        "{e}"
    );
    let e = err(&model("{ builtin = \"default\", measured = \"x.csv\" }"));
    assert!(e.contains("exactly one of builtin"), "{e}");
    let e = err(&model("{ measured = \"x.csv\" }"));
    assert!(
        e.contains("needs max_limit_w, dataset, network and batch_size"),
        "{e}"
    );
    let few = lr.replace("batch_size = 256", "batch_size = 3");
    let e = parse_str(&model(&few), "s.toml", Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(e.contains("0 rows of (imagenet, resnet50, batch 3)"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bad.csv"), "dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power\nimagenet,resnet50,256,a,250,inf,200\n").unwrap();
    let bad = lr.replace("summary_power_v100.csv", "bad.csv");
    let e = parse_str(&model(&bad), "s.toml", Some(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.csv:2: time_per_epoch"), "{e}");
}

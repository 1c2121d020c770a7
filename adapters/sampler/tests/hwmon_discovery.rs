//! Which hwmon channels discovery takes, and the rules that keep a component from being counted
//! twice: amd_energy is skipped when RAPL measures the packages, amdgpu is left to the AMD GPU
//! adapter, and a board input rail is a total.

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use ea2p_core::source::{Component, Provenance};
use ea2p_sampler::discover::{component_name, discover, DiscoverOptions, Found};
use ea2p_sampler::Devices;

fn hwmon(root: &Path, n: u32, name: &str, files: &[(&str, &str)]) {
    let dir = root.join(format!("class/hwmon/hwmon{n}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    for (f, t) in files {
        fs::write(dir.join(f), t).unwrap();
    }
}

fn tree(with_rapl: bool) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    hwmon(
        root,
        0,
        "amd_energy",
        &[("energy1_input", "1000\n"), ("energy1_label", "Esocket0\n")],
    );
    hwmon(root, 1, "amdgpu", &[("power1_average", "90000000\n")]);
    hwmon(root, 2, "ina226", &[("power1_input", "2500000\n")]);
    hwmon(
        root,
        3,
        "ina3221",
        &[
            ("in1_input", "5000\n"),
            ("curr1_input", "1200\n"),
            ("in1_label", "POM_5V_IN\n"),
            ("in2_input", "5000\n"),
            ("curr2_input", "200\n"),
            ("in2_label", "POM_5V_GPU\n"),
        ],
    );
    if with_rapl {
        let zone = root.join("class/powercap/intel-rapl:0");
        fs::create_dir_all(&zone).unwrap();
        fs::write(zone.join("name"), "package-0\n").unwrap();
        fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
        fs::write(zone.join("energy_uj"), "5\n").unwrap();
    }
    tmp
}

fn found(root: &Path, devices: &str) -> Found {
    let options = DiscoverOptions {
        sysfs_root: root.into(),
        devices: devices.parse::<Devices>().unwrap(),
        ..DiscoverOptions::default()
    };
    discover(&options, Arc::new(AtomicU32::new(std::process::id())))
}

fn names(f: &Found) -> Vec<String> {
    f.sources.iter().map(|s| component_name(s.info())).collect()
}

#[test]
fn amd_energy_replaces_the_cpu_model_unless_rapl_measures_the_packages() {
    let tmp = tree(false);
    let f = found(tmp.path(), "cpu,hwmon");
    assert_eq!(
        names(&f),
        [
            "amd_energy:Esocket0",
            "ina226:power1",
            "ina3221:POM_5V_IN",
            "ina3221:POM_5V_GPU"
        ],
        "{:?}",
        f.notes
    );
    let input = &f.sources[2];
    assert_eq!(input.info().component, Component::Platform);
    assert!(input.info().component.is_nested());
    assert_eq!(f.sources[3].info().component, Component::Rail);
    assert!(!f.sources[3].info().component.is_nested());
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("amdgpu:power1") && n.contains("AMD GPU adapter")),
        "{:?}",
        f.notes
    );
    // `cpu` alone still takes the socket counter, and no model.
    let f = found(tmp.path(), "cpu");
    assert_eq!(names(&f), ["amd_energy:Esocket0"], "{:?}", f.notes);
    assert_eq!(f.sources[0].info().provenance, Provenance::Measured);

    let tmp = tree(true);
    let f = found(tmp.path(), "cpu,hwmon");
    assert_eq!(
        names(&f),
        [
            "package-0",
            "ina226:power1",
            "ina3221:POM_5V_IN",
            "ina3221:POM_5V_GPU"
        ],
        "{:?}",
        f.notes
    );
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("amd_energy:Esocket0") && n.contains("RAPL already")),
        "{:?}",
        f.notes
    );
}

#[test]
fn devices_names_channels_and_devices() {
    let tmp = tree(false);
    let f = found(tmp.path(), "hwmon:ina3221:pom_5v_gpu,hwmon:ina226");
    assert_eq!(names(&f), ["ina226:power1", "ina3221:POM_5V_GPU"]);
    let f = found(tmp.path(), "ram");
    assert!(
        names(&f).iter().all(|n| !n.contains(':')),
        "{:?}",
        names(&f)
    );
}

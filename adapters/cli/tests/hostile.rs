//! Hostile input for `ea2p`, one test a case (issue 14). Every case states and asserts: the
//! time it must end within (the process is killed and the case fails past it), its exit code, a
//! message that names the problem, the most memory it may use (maximum resident set from
//! `wait4`, with `RLIMIT_AS` as a backstop so a runaway cannot take the machine), and that no
//! output is lost (files that must survive are compared byte for byte).
//!
//! Kinds: unbounded reads (sysfs/procfs files that are FIFOs, devices, directories, endless),
//! lost outputs, signals and lifecycle, nonsense values, messages.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Memory every case stays under (maximum resident set): ea2p needs about 20 MiB; an unbounded
/// read of `/dev/zero` would pass this in a fraction of a second.
const MEM_LIMIT_KB: i64 = 200 * 1024;
/// Address space allowed, so that a runaway is stopped rather than swapping the machine.
const AS_LIMIT: u64 = 4 << 30;
/// What most cases must end within.
const QUICK: Duration = Duration::from_secs(20);

/// How one ea2p process ended.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    max_rss_kb: i64,
}

impl Outcome {
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Exit code, the message (a substring), and the memory bound.
    fn expect(&self, code: i32, message: &str) -> &Self {
        assert_eq!(self.code, Some(code), "exit code: {self:#?}");
        assert!(
            self.text().contains(message),
            "expected a message with {message:?}: {self:#?}"
        );
        assert!(
            self.max_rss_kb < MEM_LIMIT_KB,
            "used {} KiB, more than {MEM_LIMIT_KB}: {self:#?}",
            self.max_rss_kb
        );
        self
    }
}

/// A spawned ea2p, before it is waited on.
struct Running {
    pid: libc::pid_t,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

fn ea2p() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ea2p"));
    c.env_remove("EA2P_SYSFS_ROOT")
        .env_remove("EA2P_PROCFS_ROOT")
        .env_remove("SLURM_PROCID")
        .env_remove("OMPI_COMM_WORLD_RANK")
        .env_remove("PMI_RANK");
    c
}

fn spawn(mut cmd: Command) -> Running {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT,
                rlim_max: AS_LIMIT,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ea2p");
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let pid = child.id() as libc::pid_t;
    // Reaped by `wait_for` with wait4 (for the resource usage), not by `Child`.
    drop(child);
    Running { pid, out, err }
}

impl Running {
    fn signal(&self, sig: i32) {
        // SAFETY: kill with the pid of our own, not yet reaped, child.
        unsafe { libc::kill(self.pid, sig) };
    }

    /// Waits at most `limit`; past it, kills the process and fails the case.
    fn wait_for(self, limit: Duration) -> Outcome {
        let start = Instant::now();
        let mut status = 0;
        // SAFETY: rusage is plain data, zero is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 on our own child with valid pointers.
            let r = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
            if r == self.pid {
                break;
            }
            if start.elapsed() > limit {
                self.signal(libc::SIGKILL);
                // SAFETY: as above.
                unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
                let stderr = self.err.join().unwrap_or_default();
                panic!("ea2p did not end within {limit:?}; killed. stderr: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let exited = libc::WIFEXITED(status);
        Outcome {
            code: exited.then(|| libc::WEXITSTATUS(status)),
            signal: (!exited).then(|| libc::WTERMSIG(status)),
            stdout: self.out.join().unwrap_or_default(),
            stderr: self.err.join().unwrap_or_default(),
            max_rss_kb: usage.ru_maxrss,
        }
    }
}

fn run_ea2p(cmd: Command, limit: Duration) -> Outcome {
    spawn(cmd).wait_for(limit)
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A powercap tree with one package zone; `energy` is what `energy_uj` becomes.
fn sysfs(energy: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let zone = tmp.path().join("class/powercap/intel-rapl:0");
    fs::create_dir_all(&zone).unwrap();
    fs::write(zone.join("name"), "package-0\n").unwrap();
    fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
    fs::write(zone.join("constraint_0_power_limit_uw"), "65000000\n").unwrap();
    energy(&zone.join("energy_uj"));
    (tmp, zone)
}

fn sources_with(root: &Path) -> Outcome {
    let mut c = ea2p();
    c.arg("--sysfs-root").arg(root).arg("sources");
    run_ea2p(c, QUICK)
}

fn fifo(p: &Path) {
    mkfifo(p)
}

fn dev_zero(p: &Path) {
    std::os::unix::fs::symlink("/dev/zero", p).unwrap();
}

fn directory(p: &Path) {
    fs::create_dir(p).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Reads without a bound: sysfs.

#[test]
fn sysfs_energy_uj_fifo_does_not_hang_sources() {
    let (tmp, _) = sysfs(fifo);
    sources_with(tmp.path()).expect(
        0,
        "energy_uj: is a FIFO (named pipe), expected a regular file",
    );
}

#[test]
fn sysfs_energy_uj_dev_zero_does_not_eat_memory() {
    let (tmp, _) = sysfs(dev_zero);
    sources_with(tmp.path()).expect(0, "energy_uj: is a character device");
}

#[test]
fn sysfs_energy_uj_directory_is_refused() {
    let (tmp, _) = sysfs(directory);
    sources_with(tmp.path()).expect(0, "energy_uj: is a directory");
}

#[test]
fn sysfs_energy_uj_endless_regular_file_is_bounded() {
    let (tmp, _) = sysfs(|p| fs::write(p, "1".repeat(1 << 20)).unwrap());
    sources_with(tmp.path()).expect(0, "longer than 4096 bytes");
}

#[test]
fn sysfs_energy_uj_garbage_is_named() {
    let (tmp, _) = sysfs(|p| fs::write(p, "12abc\n").unwrap());
    sources_with(tmp.path()).expect(0, "expected an integer, found \"12abc\"");
}

#[test]
fn sysfs_energy_uj_binary_is_named() {
    let (tmp, _) = sysfs(|p| fs::write(p, [0xff, 0xfe, 0, 1]).unwrap());
    sources_with(tmp.path()).expect(0, "energy_uj: is not text");
}

#[test]
fn sysfs_zone_name_fifo_is_refused() {
    let (tmp, zone) = sysfs(|p| fs::write(p, "1000\n").unwrap());
    fs::remove_file(zone.join("name")).unwrap();
    mkfifo(&zone.join("name"));
    sources_with(tmp.path()).expect(0, "name: is a FIFO");
}

#[test]
fn sysfs_max_energy_range_dev_zero_is_refused() {
    let (tmp, zone) = sysfs(|p| fs::write(p, "1000\n").unwrap());
    fs::remove_file(zone.join("max_energy_range_uj")).unwrap();
    dev_zero(&zone.join("max_energy_range_uj"));
    sources_with(tmp.path()).expect(0, "max_energy_range_uj: is a character device");
}

#[test]
fn sysfs_power_limit_fifo_does_not_hang() {
    let (tmp, zone) = sysfs(|p| fs::write(p, "1000\n").unwrap());
    fs::remove_file(zone.join("constraint_0_power_limit_uw")).unwrap();
    mkfifo(&zone.join("constraint_0_power_limit_uw"));
    // The limit only bounds implausible deltas: the zone is used without it.
    sources_with(tmp.path()).expect(0, "rapl intel-rapl:0 package-0");
}

#[test]
fn sysfs_perf_pmu_type_fifo_does_not_hang() {
    // perf is tried where there is no powercap RAPL.
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("bus/event_source/devices/power");
    fs::create_dir_all(&pmu).unwrap();
    mkfifo(&pmu.join("type"));
    sources_with(tmp.path()).expect(0, "perf: not available");
}

#[test]
fn sysfs_perf_event_file_dev_zero_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pmu = tmp.path().join("bus/event_source/devices/power");
    fs::create_dir_all(pmu.join("events")).unwrap();
    fs::write(pmu.join("type"), "23\n").unwrap();
    fs::write(pmu.join("cpumask"), "0\n").unwrap();
    dev_zero(&pmu.join("events/energy-pkg"));
    sources_with(tmp.path()).expect(0, "energy-pkg: is a character device");
}

#[test]
fn run_with_energy_uj_fifo_ends_and_passes_the_exit_code() {
    let (tmp, _) = sysfs(fifo);
    let mut c = ea2p();
    c.arg("--sysfs-root").arg(tmp.path()).args([
        "run",
        "--allow-root",
        "--devices",
        "cpu",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    run_ea2p(c, QUICK).expect(4, "energy_uj: is a FIFO");
}

// Reads without a bound: procfs.

fn procfs(hostile: &str, make: impl FnOnce(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("sys/kernel")).unwrap();
    fs::write(tmp.path().join("stat"), "cpu  100 0 0 900 0 0 0 0\n").unwrap();
    fs::write(
        tmp.path().join("meminfo"),
        "MemTotal:       16384000 kB\nMemAvailable:    8192000 kB\n",
    )
    .unwrap();
    fs::write(tmp.path().join("cpuinfo"), "processor\t: 0\n").unwrap();
    fs::write(tmp.path().join("sys/kernel/hostname"), "node\n").unwrap();
    let p = tmp.path().join(hostile);
    let _ = fs::remove_file(&p);
    make(&p);
    tmp
}

fn sources_proc(proc_root: &Path) -> Outcome {
    let empty = tempfile::tempdir().unwrap();
    let mut c = ea2p();
    c.arg("--sysfs-root")
        .arg(empty.path())
        .arg("--procfs-root")
        .arg(proc_root)
        .arg("sources");
    run_ea2p(c, QUICK)
}

#[test]
fn procfs_stat_dev_zero_in_run_is_a_counted_read_error() {
    let p = procfs("stat", dev_zero);
    let empty = tempfile::tempdir().unwrap();
    let mut c = ea2p();
    c.arg("--sysfs-root")
        .arg(empty.path())
        .arg("--procfs-root")
        .arg(p.path())
        .args([
            "run",
            "--allow-root",
            "--devices",
            "ram",
            "--",
            "sleep",
            "1.1",
        ]);
    // The RAM model reads /proc/stat each second: each refused read is a gap, counted.
    run_ea2p(c, QUICK).expect(0, "readings not used, marked as gaps");
}

#[test]
fn procfs_meminfo_directory_is_refused() {
    let p = procfs("meminfo", directory);
    sources_proc(p.path()).expect(0, "meminfo: is a directory");
}

#[test]
fn procfs_meminfo_fifo_does_not_hang() {
    let p = procfs("meminfo", fifo);
    sources_proc(p.path()).expect(0, "meminfo: is a FIFO");
}

#[test]
fn procfs_cpuinfo_fifo_does_not_hang() {
    let p = procfs("cpuinfo", fifo);
    // Without cpuinfo the CPU model falls back to the thread count of this process.
    sources_proc(p.path()).expect(0, "sources found:");
}

#[test]
fn procfs_cpuinfo_dev_zero_does_not_eat_memory() {
    let p = procfs("cpuinfo", dev_zero);
    sources_proc(p.path()).expect(0, "sources found:");
}

#[test]
fn procfs_hostname_dev_zero_in_run_is_bounded() {
    let p = procfs("sys/kernel/hostname", dev_zero);
    let empty = tempfile::tempdir().unwrap();
    let mut c = ea2p();
    c.arg("--sysfs-root")
        .arg(empty.path())
        .arg("--procfs-root")
        .arg(p.path())
        .args(["run", "--allow-root", "--devices", "cpu", "--", "true"]);
    run_ea2p(c, QUICK).expect(0, "duration");
}

// ---------------------------------------------------------------------------------------------
// Profiles read by `ea2p report`.

/// A real profile of a short run (no hardware: the CPU model), written by this ea2p.
fn profile(dir: &Path, name: &str, cmd: &str) -> PathBuf {
    let empty = dir.join("emptysys");
    fs::create_dir_all(&empty).unwrap();
    let p = dir.join(name);
    let mut c = ea2p();
    c.arg("--sysfs-root")
        .arg(&empty)
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(&p)
        .args(["--", "sh", "-c", cmd]);
    run_ea2p(c, QUICK).expect(0, "profile:");
    p
}

fn report(args: &[&std::ffi::OsStr]) -> Outcome {
    let mut c = ea2p();
    c.arg("report").args(args);
    run_ea2p(c, QUICK)
}

#[test]
fn report_of_a_fifo_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.ea2p");
    mkfifo(&p);
    report(&[p.as_os_str()]).expect(2, "is a FIFO (named pipe), expected a regular file");
}

#[test]
fn report_of_dev_zero_does_not_eat_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.ea2p");
    dev_zero(&p);
    report(&[p.as_os_str()]).expect(2, "is a character device");
}

#[test]
fn report_of_a_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    report(&[tmp.path().as_os_str()]).expect(2, "is a directory");
}

#[test]
fn report_of_an_empty_file_says_so_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.ea2p");
    fs::write(&p, b"").unwrap();
    let o = report(&[p.as_os_str()]);
    o.expect(2, "it is empty or was cut right at the start");
    assert!(!o.stderr.contains("Truncated"), "a Debug name: {o:#?}");
}

#[test]
fn report_of_another_kind_of_file_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.ea2p");
    fs::write(&p, b"hello\0world\0").unwrap();
    let o = report(&[p.as_os_str()]);
    o.expect(2, "not an ea2p profile header");
    assert!(!o.stderr.contains("NotAProfile"), "a Debug name: {o:#?}");
}

#[test]
fn report_of_a_missing_file_names_it() {
    report(&["/nonexistent/p.ea2p".as_ref()]).expect(2, "cannot read /nonexistent/p.ea2p");
}

#[test]
fn report_of_two_concatenated_profiles_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a.ea2p", "true");
    let b = profile(tmp.path(), "b.ea2p", "exit 0");
    let both = tmp.path().join("both.ea2p");
    let mut bytes = fs::read(&a).unwrap();
    bytes.extend(fs::read(&b).unwrap());
    fs::write(&both, bytes).unwrap();
    report(&[both.as_os_str()]).expect(2, "holds more than one run");
}

#[test]
fn report_json_onto_its_own_profile_is_refused_and_the_profile_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a.ea2p", "true");
    let before = fs::read(&a).unwrap();
    report(&[a.as_os_str(), "--json".as_ref(), a.as_os_str()])
        .expect(2, "which is the profile being read");
    assert_eq!(fs::read(&a).unwrap(), before, "the profile was damaged");
}

#[test]
fn report_csv_and_json_on_one_path_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a.ea2p", "true");
    let out = tmp.path().join("out");
    report(&[
        a.as_os_str(),
        "--json".as_ref(),
        out.as_os_str(),
        "--csv".as_ref(),
        out.as_os_str(),
    ])
    .expect(2, "--json and --csv name the same file");
    assert!(!out.exists(), "nothing is written when refused");
}

#[test]
fn report_plot_into_a_missing_directory_fails_before_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a.ea2p", "true");
    let json = tmp.path().join("r.json");
    report(&[
        a.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
        "--plot".as_ref(),
        "/nonexistent/dir/p.svg".as_ref(),
    ])
    .expect(2, "cannot create the plot /nonexistent/dir/p.svg (--plot)");
    assert!(!json.exists(), "an empty --json was left behind");
}

#[test]
fn report_json_to_a_full_disk_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a.ea2p", "true");
    report(&[a.as_os_str(), "--json".as_ref(), "/dev/full".as_ref()])
        .expect(2, "cannot write /dev/full");
}

#[test]
fn merge_json_onto_an_input_is_refused_and_the_input_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a.ea2p", "true");
    let before = fs::read(&a).unwrap();
    let mut c = ea2p();
    c.arg("merge").arg(&a).arg("--json").arg(&a);
    run_ea2p(c, QUICK).expect(2, "which is the profile being read");
    assert_eq!(fs::read(&a).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// Outputs of `ea2p run`.

/// `ea2p run` with no hardware (the CPU model) around `sh -c CMD`, extra flags first.
fn run_cmd(dir: &Path, flags: &[&std::ffi::OsStr], cmd: &str) -> Command {
    let empty = dir.join("emptysys");
    fs::create_dir_all(&empty).unwrap();
    let mut c = ea2p();
    c.current_dir(dir)
        .arg("--sysfs-root")
        .arg(&empty)
        .args(["run", "--allow-root", "--devices", "cpu"])
        .args(flags)
        .args(["--", "sh", "-c", cmd]);
    c
}

#[test]
fn run_profile_and_json_on_one_path_refused_before_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("keep");
    fs::write(&f, "precious").unwrap();
    let c = run_cmd(
        tmp.path(),
        &[
            "-o".as_ref(),
            f.as_os_str(),
            "--json".as_ref(),
            "./keep".as_ref(),
        ],
        "touch ran",
    );
    run_ea2p(c, QUICK).expect(2, "-o and --json name the same file");
    assert_eq!(fs::read(&f).unwrap(), b"precious");
    assert!(!tmp.path().join("ran").exists(), "the command ran");
}

#[test]
fn run_profile_and_csv_on_one_path_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("p");
    let c = run_cmd(
        tmp.path(),
        &[
            "-o".as_ref(),
            f.as_os_str(),
            "--csv".as_ref(),
            f.as_os_str(),
        ],
        "touch ran",
    );
    run_ea2p(c, QUICK).expect(2, "-o and --csv name the same file");
    assert!(!tmp.path().join("ran").exists());
}

#[test]
fn run_json_through_a_symlink_to_the_profile_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("p");
    fs::write(&f, "precious").unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    let c = run_cmd(
        tmp.path(),
        &[
            "-o".as_ref(),
            f.as_os_str(),
            "--json".as_ref(),
            link.as_os_str(),
        ],
        "touch ran",
    );
    run_ea2p(c, QUICK).expect(2, "name the same file");
    assert_eq!(fs::read(&f).unwrap(), b"precious");
}

#[test]
fn run_csv_into_a_missing_directory_refused_before_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &["--csv".as_ref(), "/nonexistent/t.csv".as_ref()],
        "touch ran",
    );
    run_ea2p(c, QUICK).expect(2, "cannot create the timeline /nonexistent/t.csv (--csv)");
    assert!(!tmp.path().join("ran").exists(), "the command ran");
}

#[test]
fn run_json_into_a_fifo_nobody_reads_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("fifo");
    mkfifo(&f);
    let c = run_cmd(tmp.path(), &["--json".as_ref(), f.as_os_str()], "touch ran");
    run_ea2p(c, QUICK).expect(2, "FIFO (named pipe) that no process is reading");
    assert!(!tmp.path().join("ran").exists());
}

#[test]
fn run_json_to_a_full_disk_names_the_file_and_keeps_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &["--json".as_ref(), "/dev/full".as_ref()],
        "exit 5",
    );
    run_ea2p(c, QUICK).expect(5, "cannot write the summary /dev/full");
}

#[test]
fn run_profile_to_a_full_disk_says_it_is_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(tmp.path(), &["-o".as_ref(), "/dev/full".as_ref()], "exit 0");
    run_ea2p(c, QUICK).expect(0, "/dev/full is incomplete");
}

#[test]
fn two_runs_on_one_profile_the_second_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("p.ea2p");
    let first = spawn(run_cmd(
        tmp.path(),
        &["-o".as_ref(), f.as_os_str()],
        "sleep 2",
    ));
    let t0 = Instant::now();
    while !f.exists() && t0.elapsed() < QUICK {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let second = run_cmd(
        tmp.path(),
        &["-o".as_ref(), f.as_os_str()],
        "echo second > second",
    );
    run_ea2p(second, QUICK).expect(2, "another process is writing it now");
    assert!(
        !tmp.path().join("second").exists(),
        "the second command ran"
    );
    first.wait_for(QUICK).expect(0, "profile:");
    // The first run's profile is whole: it reads back with its own command.
    report(&[f.as_os_str()]).expect(0, "sleep 2");
}

// ---------------------------------------------------------------------------------------------
// Signals and lifecycle.

#[test]
fn command_that_removes_the_regions_fifo_does_not_hang_ea2p() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(tmp.path(), &[], "rm -f \"$EA2P_REGIONS\"; exit 6");
    run_ea2p(c, QUICK).expect(6, "duration");
}

#[test]
fn command_that_replaces_the_regions_fifo_with_a_file_does_not_hang_ea2p() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &[],
        "rm -f \"$EA2P_REGIONS\"; echo 'begin x' > \"$EA2P_REGIONS\"",
    );
    run_ea2p(c, QUICK).expect(0, "duration");
}

#[test]
fn command_that_leaves_half_a_line_does_not_hang_ea2p() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(tmp.path(), &[], "printf 'begin half' > \"$EA2P_REGIONS\"");
    run_ea2p(c, QUICK).expect(0, "regions begun and never ended: half");
}

#[test]
fn command_that_keeps_the_fifo_open_in_a_background_child_does_not_hang_ea2p() {
    let tmp = tempfile::tempdir().unwrap();
    // The grandchild holds the FIFO open for writing after the command exits.
    let c = run_cmd(
        tmp.path(),
        &[],
        "exec 3>\"$EA2P_REGIONS\"; (sleep 30 <&- >&- 2>&- &) ; exit 0",
    );
    run_ea2p(c, QUICK).expect(0, "duration");
}

/// Starts `sleep` under ea2p, waits until it runs, sends `sig` and checks the ending: the
/// summary is printed, the exit code is the command's (128 + signal), the FIFO's directory is
/// removed.
fn signalled(sig: i32, times: usize, cmd: &str, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let fifo_path = tmp.path().join("fifo-path");
    let script = format!("echo \"$EA2P_REGIONS\" > fifo-path; {cmd}");
    let r = spawn(run_cmd(tmp.path(), &[], &script));
    let t0 = Instant::now();
    while fs::read_to_string(&fifo_path).map_or(true, |s| !s.ends_with('\n')) {
        assert!(t0.elapsed() < QUICK, "the command did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..times {
        r.signal(sig);
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = r.wait_for(QUICK);
    o.expect(code, "duration");
    assert_eq!(o.signal, None, "ea2p itself was killed: {o:#?}");
    let regions = PathBuf::from(fs::read_to_string(&fifo_path).unwrap().trim());
    assert!(
        !regions.parent().unwrap().exists(),
        "temporary directory {} left behind",
        regions.display()
    );
}

#[test]
fn sighup_is_handled_like_sigterm() {
    signalled(libc::SIGHUP, 1, "sleep 30", 128 + libc::SIGHUP);
}

#[test]
fn sigterm_ends_the_command_and_prints_the_summary() {
    signalled(libc::SIGTERM, 1, "sleep 30", 128 + libc::SIGTERM);
}

#[test]
fn sigint_without_a_terminal_is_forwarded() {
    // `sh -c` ignores nothing here: exec makes sleep the command itself.
    signalled(libc::SIGINT, 1, "exec sleep 30", 128 + libc::SIGINT);
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_at_the_third() {
    signalled(
        libc::SIGTERM,
        3,
        "trap '' TERM; sleep 30 & wait; sleep 30",
        128 + libc::SIGKILL,
    );
}

#[test]
fn sigterm_after_the_fifo_was_removed_still_works() {
    signalled(
        libc::SIGTERM,
        1,
        "rm -f \"$EA2P_REGIONS\"; exec sleep 30",
        128 + libc::SIGTERM,
    );
}

// ---------------------------------------------------------------------------------------------
// Regions: many, long, hostile.

#[test]
fn a_hundred_thousand_regions_end_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &[],
        "awk 'BEGIN { for (i = 0; i < 100000; i++) printf \"begin r%d\\nend r%d\\n\", i, i }' \
         > \"$EA2P_REGIONS\"",
    );
    run_ea2p(c, Duration::from_secs(120)).expect(0, "more regions");
}

#[test]
fn a_hundred_thousand_nested_regions_end_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &[],
        "awk 'BEGIN { for (i = 0; i < 100000; i++) printf \"begin r%d\\n\", i; \
         for (i = 99999; i >= 0; i--) printf \"end r%d\\n\", i }' > \"$EA2P_REGIONS\"",
    );
    run_ea2p(c, Duration::from_secs(120)).expect(0, "too many regions open at once");
}

#[test]
fn an_endless_line_is_skipped_without_holding_it() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &[],
        "head -c 50000000 /dev/zero | tr '\\0' x > \"$EA2P_REGIONS\"; echo >> \"$EA2P_REGIONS\"",
    );
    run_ea2p(c, Duration::from_secs(60)).expect(0, "longer than 4096 bytes");
}

#[test]
fn region_names_with_escape_sequences_are_escaped_on_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &[],
        "printf 'begin a\\033[2Jb\\nend a\\033[2Jb\\nbegin open\\033]0;x\\007\\n' > \"$EA2P_REGIONS\"",
    );
    let o = run_ea2p(c, QUICK);
    o.expect(0, "a\\u{1b}[2Jb");
    assert!(
        !o.stderr.contains('\x1b'),
        "raw escape on the terminal: {o:#?}"
    );
    assert!(
        !o.stderr.contains('\x07'),
        "raw bell on the terminal: {o:#?}"
    );
}

#[test]
fn long_region_names_are_cut_the_same_in_summary_and_profile_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "n".repeat(100);
    let cut = "n".repeat(64);
    let json = tmp.path().join("s.json");
    let p = tmp.path().join("p.ea2p");
    let c = run_cmd(
        tmp.path(),
        &["-o".as_ref(), p.as_os_str(), "--json".as_ref(), json.as_os_str()],
        &format!("echo 'begin {long}' > \"$EA2P_REGIONS\"; echo 'end {long}' > \"$EA2P_REGIONS\"; sleep 0.1"),
    );
    run_ea2p(c, QUICK).expect(0, "region name of 100 bytes cut to 64");
    let live: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(live["regions"][0]["name"], cut.as_str(), "{live}");
    let rjson = tmp.path().join("r.json");
    report(&[p.as_os_str(), "--json".as_ref(), rjson.as_os_str()]).expect(0, &cut);
    let replay: serde_json::Value = serde_json::from_slice(&fs::read(&rjson).unwrap()).unwrap();
    assert_eq!(replay["regions"][0]["name"], cut.as_str(), "{replay}");
}

#[test]
fn malformed_region_lines_are_noted_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let c = run_cmd(
        tmp.path(),
        &[],
        "printf 'begin a\\nstart b\\nend nothere\\nend a\\n' > \"$EA2P_REGIONS\"",
    );
    let o = run_ea2p(c, QUICK);
    o.expect(0, "line 2 ignored: expected `begin NAME` or `end NAME`");
    assert!(o.stderr.contains("line 3 ignored"), "{o:#?}");
}

// ---------------------------------------------------------------------------------------------
// Nonsense values: refused with the range, before anything starts.

fn refused(flags: &[&str], message: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = ea2p();
    c.current_dir(tmp.path())
        .args(["run", "--allow-root"])
        .args(flags)
        .args(["--", "sh", "-c", "touch ran"]);
    run_ea2p(c, QUICK).expect(2, message);
    assert!(!tmp.path().join("ran").exists(), "the command ran");
}

#[test]
fn cpu_tdp_negative_refused() {
    refused(&["--cpu-tdp=-5"], "above 0 and at most");
}

#[test]
fn cpu_tdp_nan_refused() {
    refused(&["--cpu-tdp", "NaN"], "--cpu-tdp");
}

#[test]
fn cpu_tdp_huge_refused() {
    refused(&["--cpu-tdp", "1e300"], "above 0 and at most");
}

#[test]
fn carbon_intensity_negative_refused() {
    refused(&["--carbon-intensity=-1"], "from 0 to 2000 g CO2e/kWh");
}

#[test]
fn carbon_intensity_infinite_refused() {
    refused(&["--carbon-intensity", "inf"], "from 0 to 2000 g CO2e/kWh");
}

#[test]
fn carbon_intensity_nan_refused() {
    refused(&["--carbon-intensity", "NaN"], "from 0 to 2000 g CO2e/kWh");
}

#[test]
fn interval_zero_refused() {
    refused(&["--interval", "0ms"], "at least 1ns");
}

#[test]
fn interval_huge_refused() {
    refused(&["--interval", "1e300s"], "at most 3600 s");
}

#[test]
fn interval_without_unit_refused() {
    refused(&["--interval", "10"], "with its unit");
}

#[test]
fn export_interval_huge_refused() {
    refused(&["--export-interval", "1e30s"], "at most 3600 s");
}

#[test]
fn devices_garbage_refused() {
    refused(&["--devices", "gpu:abc"], "unknown device");
}

#[test]
fn prometheus_port_out_of_range_refused() {
    refused(
        &["--prometheus", "99999"],
        "expected PORT, :PORT or HOST:PORT",
    );
}

#[test]
fn prometheus_token_file_fifo_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("token");
    mkfifo(&f);
    let c = run_cmd(
        tmp.path(),
        &[
            "--prometheus".as_ref(),
            "0".as_ref(),
            "--prometheus-token-file".as_ref(),
            f.as_os_str(),
        ],
        "touch ran",
    );
    let o = run_ea2p(c, QUICK);
    assert_eq!(o.code, Some(2), "{o:#?}");
    assert!(o.stderr.contains("token"), "{o:#?}");
    assert!(!tmp.path().join("ran").exists());
}

#[test]
fn estimate_threads_out_of_range_refused() {
    let mut c = ea2p();
    c.args([
        "estimate",
        "cpu",
        "--cpu-name",
        "x",
        "--threads",
        "99999999999",
        "--utilization",
        "0.5",
    ]);
    run_ea2p(c, QUICK).expect(2, "--threads");
}

#[test]
fn estimate_utilization_nan_refused() {
    let mut c = ea2p();
    c.args([
        "estimate",
        "cpu",
        "--cpu-name",
        "x",
        "--threads",
        "4",
        "--utilization",
        "NaN",
    ]);
    run_ea2p(c, QUICK).expect(2, "--utilization");
}

#[test]
fn regions_beyond_capacity_are_counted_the_same_live_and_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("s.json");
    let p = tmp.path().join("p.ea2p");
    let c = run_cmd(
        tmp.path(),
        &[
            "-o".as_ref(),
            p.as_os_str(),
            "--json".as_ref(),
            json.as_os_str(),
        ],
        "awk 'BEGIN { for (i = 0; i < 20000; i++) printf \"begin r%d\\nend r%d\\n\", i, i }' \
         > \"$EA2P_REGIONS\"",
    );
    run_ea2p(c, Duration::from_secs(60)).expect(0, "more regions");
    let rjson = tmp.path().join("r.json");
    report(&[p.as_os_str(), "--json".as_ref(), rjson.as_os_str()]).expect(0, "more regions");
    let live: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let replay: serde_json::Value = serde_json::from_slice(&fs::read(&rjson).unwrap()).unwrap();
    assert_eq!(
        live["notes"], replay["notes"],
        "live {live}\nreplay {replay}"
    );
    assert_eq!(live["regions_not_listed"], replay["regions_not_listed"]);
}

//! Hostile input to `eas-sim`, one test a case (issue 14). Each case runs the program as a user
//! would, under a time limit (killed and failed past it) and an address-space limit
//! (`prlimit --as`: an allocation past it aborts the program, which fails the case), and checks
//! the exit code, that the message names the problem, and that no output was lost: a refused
//! command leaves its folder byte for byte as it was (no file created, truncated or removed).
//!
//! Kinds (see RELIABILITY.md): reads without a bound (`read_`), allocation sized by the user
//! (`alloc_`), outputs lost (`out_`), nonsense accepted (`nonsense_`), messages (`msg_`), the
//! Pollux comparison (`pollux_`).
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Time a refused command may take, seconds (it must be refused before any work).
const REFUSE_S: f64 = 10.0;
/// Time a short run may take (debug build, one policy, one seed, one hour), seconds.
const RUN_S: f64 = 60.0;
/// Address space a command may use, MiB (the program at rest uses well under 100 MiB).
const MEM_MIB: u64 = 1024;

const BIN: &str = env!("CARGO_BIN_EXE_eas-sim");

/// What a file of the case's folder holds (FIFOs and devices are never opened).
type Snapshot = BTreeMap<String, String>;

struct Case {
    dir: tempfile::TempDir,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
    before: Snapshot,
    after: Snapshot,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) -> &Self {
        std::fs::write(self.path(name), text).unwrap();
        self
    }

    fn fifo(&self, name: &str) -> &Self {
        let ok = Command::new("mkfifo")
            .arg(self.path(name))
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo");
        self
    }

    fn link(&self, name: &str, to: &str) -> &Self {
        std::os::unix::fs::symlink(to, self.path(name)).unwrap();
        self
    }

    fn mkdir(&self, name: &str) -> &Self {
        std::fs::create_dir(self.path(name)).unwrap();
        self
    }

    /// A sparse regular file of `len` bytes of zeros (no line end anywhere).
    fn sparse(&self, name: &str, len: u64) -> &Self {
        std::fs::File::create(self.path(name))
            .unwrap()
            .set_len(len)
            .unwrap();
        self
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let what = if meta.is_file() && meta.len() <= 64 << 20 {
                let bytes = std::fs::read(e.path()).unwrap();
                format!(
                    "{} bytes, fnv {:x}",
                    bytes.len(),
                    eas_traces::fnv1a64(&bytes)
                )
            } else {
                format!("{:?}, {} bytes", meta.file_type(), meta.len())
            };
            s.insert(name, what);
        }
        s
    }

    /// Runs `eas-sim ARGS` in the case's folder within `limit_s` and [`MEM_MIB`].
    fn run_within(&self, args: &[&str], limit_s: f64) -> Out {
        let before = self.snapshot();
        let out_path = self.dir.path().join("..").join(format!(
            "{}.stdout",
            self.dir.path().file_name().unwrap().to_string_lossy()
        ));
        let err_path = out_path.with_extension("stderr");
        let t0 = Instant::now();
        let mut child = Command::new("prlimit")
            .arg(format!("--as={}", MEM_MIB << 20))
            .arg("--")
            .arg(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env("RAYON_NUM_THREADS", "2")
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("prlimit (util-linux) runs the program under a memory limit");
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed().as_secs_f64() > limit_s {
                let _ = child.kill();
                let _ = child.wait();
                panic!("eas-sim {args:?} ran past {limit_s} s: killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let secs = t0.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap()).into_owned();
        let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
        let _ = std::fs::remove_file(&out_path);
        let _ = std::fs::remove_file(&err_path);
        Out {
            code: status.code(),
            stdout,
            stderr,
            secs,
            before,
            after: self.snapshot(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_within(args, RUN_S)
    }
}

impl Out {
    /// Exit code 1 within [`REFUSE_S`], an error that holds every needle, no raw escape byte,
    /// and the folder as it was.
    fn refused(&self, needles: &[&str]) -> &Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit code 1; stderr:\n{}",
            self.stderr
        );
        assert!(
            self.secs < REFUSE_S,
            "refused after {:.1} s, expected under {REFUSE_S} s",
            self.secs
        );
        assert!(
            self.stderr.contains("eas-sim: error: "),
            "no error line: {}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "message does not say {n:?}:\n{}",
                self.stderr
            );
        }
        self.no_raw_controls();
        assert_eq!(
            self.before, self.after,
            "the folder changed (an output lost or left)"
        );
        self
    }

    /// Exit code 0; the stderr holds every needle.
    fn ok(&self, needles: &[&str]) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success; stderr:\n{}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr does not say {n:?}:\n{}",
                self.stderr
            );
        }
        self.no_raw_controls();
        self
    }

    fn no_raw_controls(&self) {
        let raw = self
            .stderr
            .chars()
            .chain(self.stdout.chars())
            .find(|c| c.is_control() && *c != '\n' && *c != '\t');
        assert!(raw.is_none(), "raw control character {raw:?} printed");
    }
}

/// One short comparison: one policy, one seed, one hour.
const SHORT: [&str; 7] = [
    "--policies",
    "fifo",
    "--seeds",
    "1",
    "--hours",
    "1",
    "--quiet",
];

fn short<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["compare"];
    v.extend(SHORT);
    v.extend(extra);
    v
}

const TRACE_HEAD: &str = "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n";
const HELIOS_HEAD: &str =
    "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue\n";

fn helios_row(id: &str, gpus: u32, duration: &str) -> String {
    format!("{id},u1,vc,{gpus},4,1,COMPLETED,2020-04-01 00:00:00,2020-04-01 00:00:10,2020-04-01 01:00:10,{duration},q\n")
}

/// A scenario whose arrivals are the simulator's CSV trace `file`.
fn sim_trace_scenario(file: &str) -> String {
    format!("hours = 1.0\nseeds = 1\n[arrivals]\ntrace = {file:?}\n")
}

fn public_scenario(file: &str, format: &str, extra: &str) -> String {
    format!("hours = 1.0\nseeds = 1\n[arrivals]\ntrace = {file:?}\nformat = {format:?}\n{extra}")
}

// ------------------------------------------------------------------------------------------
// Reads without a bound.

#[test]
fn read_scenario_fifo_is_refused_without_blocking() {
    let c = Case::new();
    c.fifo("s.toml");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml", "FIFO", "expected a regular file"]);
}

#[test]
fn read_scenario_dev_zero_is_refused() {
    let c = Case::new();
    c.run(&["compare", "-s", "/dev/zero"])
        .refused(&["/dev/zero", "character device"]);
}

#[test]
fn read_scenario_link_to_dev_zero_is_refused() {
    let c = Case::new();
    c.link("s.toml", "/dev/zero");
    c.run(&["run", "-p", "fifo", "-s", "s.toml"])
        .refused(&["s.toml", "character device"]);
}

#[test]
fn read_scenario_directory_is_refused() {
    let c = Case::new();
    c.mkdir("d");
    c.run(&["compare", "-s", "d"])
        .refused(&["d", "a directory"]);
}

#[test]
fn read_scenario_larger_than_the_limit_is_refused() {
    let c = Case::new();
    c.sparse("s.toml", 1 << 30);
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml", "larger than 4194304 bytes"]);
}

#[test]
fn read_scenario_not_utf8_is_refused() {
    let c = Case::new();
    c.write("s.toml", b"name = \"\xff\xfe\"\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml", "not UTF-8"]);
}

#[test]
fn read_scenario_missing_is_refused() {
    let c = Case::new();
    c.run(&["compare", "-s", "nope.toml"])
        .refused(&["nope.toml", "No such file"]);
}

#[test]
fn read_scenario_symlink_loop_is_refused() {
    let c = Case::new();
    c.link("a.toml", "b.toml").link("b.toml", "a.toml");
    c.run(&["compare", "-s", "a.toml"])
        .refused(&["a.toml", "symbolic links"]);
}

#[test]
fn read_sim_trace_fifo_is_refused_without_blocking() {
    let c = Case::new();
    c.fifo("t.csv").write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv", "FIFO"]);
}

#[test]
fn read_sim_trace_link_to_dev_zero_is_refused() {
    let c = Case::new();
    c.link("t.csv", "/dev/zero")
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv", "character device"]);
}

#[test]
fn read_sim_trace_directory_is_refused() {
    let c = Case::new();
    c.mkdir("t.csv")
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv", "a directory"]);
}

#[test]
fn read_sim_trace_endless_line_is_cut_in_bounded_memory() {
    let c = Case::new();
    // 2 GiB of zeros without a line end: more than the address-space limit if it were held.
    c.sparse("t.csv", 2 << 30)
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv", "longer than 1048576 bytes"]);
}

#[test]
fn read_helios_trace_fifo_is_refused_without_blocking() {
    let c = Case::new();
    c.fifo("h.csv")
        .write("s.toml", public_scenario("h.csv", "helios", ""));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["h.csv", "FIFO"]);
}

#[test]
fn read_helios_trace_directory_is_refused() {
    let c = Case::new();
    c.mkdir("h.csv")
        .write("s.toml", public_scenario("h.csv", "helios", ""));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["h.csv", "a directory"]);
}

#[test]
fn read_helios_trace_link_to_dev_zero_is_refused() {
    let c = Case::new();
    c.link("h.csv", "/dev/zero")
        .write("s.toml", public_scenario("h.csv", "helios", ""));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["h.csv", "character device"]);
}

#[test]
fn read_alibaba_endless_row_is_cut_in_bounded_memory() {
    let c = Case::new();
    c.sparse("a.csv", 2 << 30)
        .write("s.toml", public_scenario("a.csv", "alibaba", ""));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["a.csv", "longer than 1048576 bytes"]);
}

#[test]
fn read_helios_endless_row_ends_the_run_even_with_skip_bad() {
    let c = Case::new();
    let mut text = String::from(HELIOS_HEAD);
    text += &helios_row("j1", 1, "3600");
    text += &"x".repeat(3 << 20);
    text += "\n";
    text += &helios_row("j2", 2, "3600");
    c.write("h.csv", text).write(
        "s.toml",
        public_scenario("h.csv", "helios", "skip_bad = true\n"),
    );
    // A skipped row would hide that the rest of the file is not read: it is an error.
    c.run(&short(&["-s", "s.toml"])).refused(&[
        "h.csv",
        "line 3",
        "longer than 1048576 bytes",
        "the rest of the file is not read",
    ]);
}

#[test]
fn read_sim_trace_empty_file_is_refused() {
    let c = Case::new();
    c.write("t.csv", "")
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv", "header row"]);
}

#[test]
fn read_sim_trace_without_jobs_is_said() {
    let c = Case::new();
    c.write("t.csv", TRACE_HEAD)
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&short(&["-s", "s.toml"]))
        .ok(&["warning: trace: the file holds no job"]);
}

#[test]
fn read_alibaba_job_table_fifo_is_refused_without_blocking() {
    let c = Case::new();
    c.write("a.csv", "").fifo("j.csv").write(
        "s.toml",
        public_scenario("a.csv", "alibaba", "job_table = \"j.csv\"\n"),
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["j.csv", "FIFO"]);
}

#[test]
fn read_philly_object_larger_than_the_limit_is_refused() {
    let c = Case::new();
    let mut text = String::from("[{\"jobid\": \"");
    text += &"a".repeat(17 << 20);
    c.write("p.json", text)
        .write("s.toml", public_scenario("p.json", "philly", ""));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["p.json", "longer than 16777216 bytes"]);
}

// ------------------------------------------------------------------------------------------
// Allocation sized by the user.

#[test]
fn alloc_hours_1e300_in_the_file_is_refused() {
    let c = Case::new();
    c.write("s.toml", "hours = 1e300\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:1:9", "hours", "(0, 100000]", "1e300"]);
}

#[test]
fn alloc_hours_1e20_on_the_command_line_is_refused() {
    Case::new()
        .run(&["compare", "--hours", "1e20"])
        .refused(&["--hours", "(0, 100000]", "1e20"]);
}

#[test]
fn alloc_hours_past_the_nanosecond_overflow_is_refused() {
    // 5.2 million hours is past what u64 nanoseconds hold (5.12 million): it once looped.
    Case::new()
        .run(&["run", "-p", "fifo", "--hours", "5200000"])
        .refused(&["--hours", "100000"]);
}

#[test]
fn alloc_hours_nan_is_refused() {
    Case::new()
        .run(&["compare", "--hours", "NaN"])
        .refused(&["--hours", "NaN"]);
}

#[test]
fn alloc_seeds_4e9_is_refused() {
    Case::new()
        .run(&["compare", "--seeds", "4000000000"])
        .refused(&["--seeds", "[1, 10000]", "4000000000"]);
}

#[test]
fn alloc_seeds_zero_is_refused() {
    Case::new()
        .run(&["compare", "--seeds", "0"])
        .refused(&["--seeds", "[1, 10000]"]);
}

#[test]
fn alloc_seeds_in_the_file_are_bounded() {
    let c = Case::new();
    c.write("s.toml", "seeds = 100000\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:1:9", "seeds", "[1, 10000]"]);
}

#[test]
fn alloc_poisson_rate_1e9_is_refused() {
    let c = Case::new();
    c.write("s.toml", "[arrivals]\npoisson_rate_per_s = 1e9\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:2:", "poisson_rate_per_s", "(0, 1000]"]);
}

#[test]
fn alloc_jobs_a_run_rate_times_hours_is_bounded() {
    let c = Case::new();
    c.write("s.toml", "[arrivals]\npoisson_rate_per_s = 10.0\n");
    c.run(&["run", "-p", "fifo", "-s", "s.toml", "--hours", "1000"])
        .refused(&["poisson_rate_per_s x hours", "3.600e7", "10000000"]);
}

#[test]
fn alloc_jobs_held_by_all_seeds_are_bounded() {
    let c = Case::new();
    c.write("s.toml", "[arrivals]\npoisson_rate_per_s = 1.0\n");
    c.run(&[
        "compare", "-s", "s.toml", "--hours", "1000", "--seeds", "10",
    ])
    .refused(&["seeds x jobs a run", "20000000"]);
}

#[test]
fn alloc_gen_trace_200m_jobs_is_refused() {
    let c = Case::new();
    c.run(&["gen-trace", "-n", "200000000", "-o", "t.csv"])
        .refused(&["--jobs", "[1, 50000000]"]);
}

#[test]
fn alloc_gen_trace_streams_in_bounded_memory() {
    let c = Case::new();
    // Under 1 GiB of address space for any count: the rows are written as they are drawn.
    let out = c.run_within(&["gen-trace", "-n", "200000", "-o", "t.csv"], 120.0);
    out.ok(&["wrote 200000 jobs to t.csv"]);
    let text = std::fs::read_to_string(c.path("t.csv")).unwrap();
    assert_eq!(text.lines().count(), 200_001);
}

#[test]
fn alloc_round_interval_of_a_nanosecond_is_refused() {
    let c = Case::new();
    c.write("s.toml", "[policy]\nround_interval_s = 1e-9\n");
    c.run(&["compare", "-s", "s.toml"]).refused(&[
        "hours / round_interval_s",
        "1e-9 s",
        "at most 100000000",
    ]);
}

#[test]
fn alloc_four_billion_nodes_are_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[nodes]]\ngpu = \"A100\"\ncount = 4000000000\ngpus_per_node = 8\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:4:", "at most 1000000 nodes"]);
}

#[test]
fn alloc_gpu_count_overflow_is_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[nodes]]\ngpu = \"A100\"\ncount = 2\ngpus_per_node = 4000000000\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:4:", "8000000000 GPUs", "1000000 GPUs"]);
}

#[test]
fn alloc_four_billion_users_are_refused() {
    let c = Case::new();
    c.write("s.toml", "[workload]\nusers = 4000000000\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:2:", "users", "[1, 1000000]"]);
}

#[test]
fn alloc_trace_user_id_is_bounded() {
    let c = Case::new();
    c.write(
        "t.csv",
        format!("{TRACE_HEAD}0,resnet50,4000000000,1,,60,\n"),
    )
    .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv record 1", "user", "1000000"]);
}

#[test]
fn alloc_gpu_failures_every_nanosecond_are_refused() {
    let c = Case::new();
    c.write("s.toml", "[faults]\ngpu_mtbf_h = 1e-9\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["faults", "gpu_mtbf_h", "1000000"]);
}

#[test]
fn alloc_gpu_mtbf_flag_is_checked_with_the_scenario() {
    Case::new()
        .run(&["run", "-p", "fifo", "--gpu-mtbf-h", "1e-12"])
        .refused(&["faults", "1000000"]);
}

#[test]
fn alloc_node_drains_flag_is_checked_with_the_scenario() {
    Case::new()
        .run(&["compare", "--node-drains-per-day", "1e300"])
        .refused(&["faults", "node_drains_per_day", "1000000"]);
}

#[test]
fn alloc_threads_are_bounded() {
    Case::new()
        .run(&["compare", "--threads", "100000"])
        .refused(&["--threads", "[1, 1024]"]);
}

#[test]
fn alloc_cap_change_at_1e300_hours_is_refused() {
    let c = Case::new();
    c.write("s.toml", "[[power_cap_changes]]\nat_h = 1e300\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:2:", "at_h", "[0, 100000]"]);
}

#[test]
fn alloc_job_size_1e308_is_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[workload.size]\ndistribution = \"fixed\"\nvalue = 1e308\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:3:", "value", "360000000"]);
}

#[test]
fn alloc_deadline_factor_is_bounded() {
    let c = Case::new();
    c.write("s.toml", "[workload]\ndeadline_factor = [1.0, 1e300]\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:2:", "deadline_factor", "<= 1000"]);
}

#[test]
fn alloc_trace_arrival_1e300_is_refused() {
    let c = Case::new();
    c.write("t.csv", format!("{TRACE_HEAD}1e300,resnet50,0,1,,60,\n"))
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv record 1", "arrival_s", "360000000"]);
}

// ------------------------------------------------------------------------------------------
// Outputs lost.

#[test]
fn out_json_and_csv_on_one_path_are_refused_and_the_file_kept() {
    let c = Case::new();
    c.write("r.out", "precious");
    c.run(&short(&["--json", "r.out", "--csv", "r.out"]))
        .refused(&["--csv r.out", "--json r.out", "its own file"]);
}

#[test]
fn out_two_paths_to_one_file_are_refused() {
    let c = Case::new();
    c.mkdir("d").write("r.json", "precious");
    c.run(&short(&["--json", "r.json", "--runs-json", "d/../r.json"]))
        .refused(&["--runs-json d/../r.json", "same file"]);
}

#[test]
fn out_json_in_a_missing_folder_is_refused_before_the_run() {
    let c = Case::new();
    // Ten thousand hours would take minutes: the bad path must be found first.
    c.run(&[
        "compare",
        "--hours",
        "10000",
        "--quiet",
        "--json",
        "no/such/r.json",
    ])
    .refused(&["--json no/such/r.json", "cannot create"]);
}

#[test]
fn out_plot_on_a_directory_is_refused_before_the_run() {
    let c = Case::new();
    c.mkdir("p.svg");
    c.run(&["compare", "--hours", "10000", "--quiet", "--plot", "p.svg"])
        .refused(&["--plot p.svg", "a directory"]);
}

#[test]
fn out_csv_on_a_fifo_is_refused_without_blocking() {
    let c = Case::new();
    c.fifo("r.csv");
    c.run(&["compare", "--hours", "10000", "--quiet", "--csv", "r.csv"])
        .refused(&["--csv r.csv", "FIFO"]);
}

#[test]
fn out_on_the_scenario_file_is_refused_and_the_scenario_kept() {
    let c = Case::new();
    c.write("s.toml", "hours = 1.0\n");
    c.run(&short(&["-s", "s.toml", "--csv", "s.toml"]))
        .refused(&["--csv s.toml", "--scenario s.toml"]);
}

#[test]
fn out_on_the_scenario_trace_is_refused_and_the_trace_kept() {
    let c = Case::new();
    c.write("t.csv", format!("{TRACE_HEAD}0,resnet50,0,1,,60,\n"))
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&short(&["-s", "s.toml", "--json", "t.csv"]))
        .refused(&["--json t.csv", "the scenario's input"]);
}

#[test]
fn out_run_json_and_power_plot_on_one_path_are_refused() {
    let c = Case::new();
    c.run(&[
        "run",
        "-p",
        "fifo",
        "--hours",
        "1",
        "--json",
        "x",
        "--plot-power",
        "x",
    ])
    .refused(&["--plot-power x", "same file"]);
}

#[test]
fn out_gen_trace_job_table_on_the_trace_is_refused() {
    let c = Case::new();
    c.run(&[
        "gen-trace",
        "-n",
        "10",
        "-o",
        "t.csv",
        "--format",
        "alibaba",
        "--job-table",
        "t.csv",
    ])
    .refused(&["--job-table t.csv", "--out t.csv"]);
}

#[test]
fn out_gen_trace_over_its_scenario_is_refused() {
    let c = Case::new();
    c.write("s.toml", "seed = 7\n");
    c.run(&["gen-trace", "-n", "10", "-o", "s.toml", "-s", "s.toml"])
        .refused(&["--out s.toml", "--scenario s.toml"]);
}

#[test]
fn out_a_failed_write_names_the_file() {
    let c = Case::new();
    let out = c.run(&short(&["--json", "/dev/full"]));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("/dev/full") && out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
}

#[test]
fn out_a_run_that_fails_keeps_old_outputs_and_leaves_no_new_one() {
    let c = Case::new();
    let mut text = String::from(HELIOS_HEAD);
    text += &helios_row("j1", 1, "3600");
    text += "j2,u1,vc,not-a-number,4,1,COMPLETED,2020-04-01 00:00:00,,,60,q\n";
    c.write("h.csv", text)
        .write("s.toml", public_scenario("h.csv", "helios", ""))
        .write("old.json", "previous results");
    let out = c.run(&short(&[
        "-s", "s.toml", "--json", "old.json", "--csv", "new.csv",
    ]));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("gpu_num"), "{}", out.stderr);
    assert_eq!(out.before, out.after, "an output was lost or left behind");
}

#[test]
fn out_every_output_is_written_on_success() {
    let c = Case::new();
    let out = c.run(&short(&[
        "--json",
        "r.json",
        "--csv",
        "r.csv",
        "--runs-json",
        "runs.json",
        "--plot",
        "p.svg",
    ]));
    out.ok(&[]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.path("r.json")).unwrap()).unwrap();
    assert_eq!(json["policies"][0]["policy"], "fifo");
    assert!(std::fs::read_to_string(c.path("r.csv"))
        .unwrap()
        .contains("fifo"));
    assert_eq!(
        std::fs::read_to_string(c.path("runs.json"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert!(std::fs::read_to_string(c.path("p.svg"))
        .unwrap()
        .contains("<svg"));
}

// ------------------------------------------------------------------------------------------
// Nonsense accepted.

#[test]
fn nonsense_duplicate_gpu_type_names_are_refused() {
    let c = Case::new();
    let ty = "[[gpu_types]]\nname = \"T4\"\nidle_w = 10.0\nallocated_idle_w = 20.0\nmax_w = 70.0\nmin_limit_w = 60.0\n";
    c.write("s.toml", format!("{ty}{}", ty.replace("T4", "t4")));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:8:", "defined twice", "line 2"]);
}

#[test]
fn nonsense_duplicate_model_names_are_refused() {
    let c = Case::new();
    let m = "[[models]]\nname = \"m\"\nref_batch = 32\nnoise_scale = 100.0\nperf = []\n";
    c.write("s.toml", format!("{m}{m}"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:7:", "\"m\" is defined twice"]);
}

#[test]
fn nonsense_a_model_that_fits_no_gpu_of_the_cluster_is_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[gpu_types]]\nname = \"T4\"\nidle_w = 10.0\nallocated_idle_w = 20.0\nmax_w = 70.0\nmin_limit_w = 60.0\n\
         [[nodes]]\ngpu = \"T4\"\ngpus_per_node = 4\n[policy]\npower_cap_w = 1000.0\n",
    );
    c.run(&["compare", "-s", "s.toml"]).refused(&[
        "workload.mix",
        "vit-base",
        "has figures for A100, H100",
        "only T4",
    ]);
}

#[test]
fn nonsense_rigid_trace_jobs_larger_than_the_cluster_are_counted() {
    let c = Case::new();
    c.write(
        "t.csv",
        format!("{TRACE_HEAD}0,resnet50,0,64,A100,100,\n1,resnet50,0,2,A100,100,\n5,resnet50,0,99,H100,100,\n"),
    )
    .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&short(&["-s", "s.toml"]))
        .ok(&["warning: trace: 2 of 3 jobs ask for more GPUs", "up to 99"]);
}

#[test]
fn nonsense_gpu_requests_larger_than_the_cluster_are_said() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[workload]\ngpus = [{ count = 1, weight = 3.0 }, { count = 64, weight = 1.0 }]\n",
    );
    c.run(&short(&["-s", "s.toml"])).ok(&[
        "warning: workload.gpus: 1 of 2 entries",
        "(64)",
        "25.0 %",
    ]);
}

#[test]
fn nonsense_trace_duration_1e308_is_refused() {
    let c = Case::new();
    c.write("t.csv", format!("{TRACE_HEAD}0,resnet50,0,4,,1e308,\n"))
        .write("s.toml", sim_trace_scenario("t.csv"));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["t.csv record 1", "duration_s", "1e308"]);
}

#[test]
fn nonsense_public_trace_run_time_1e308_is_counted_not_completed() {
    let c = Case::new();
    let text = format!(
        "{HELIOS_HEAD}{}{}",
        helios_row("j1", 1, "3600"),
        helios_row("j2", 1, "1e308")
    );
    c.write("h.csv", text)
        .write("s.toml", public_scenario("h.csv", "helios", ""));
    let out = c.run(&short(&["-s", "s.toml", "--json", "r.json"]));
    out.ok(&["1 jobs simulated", "1 with a run time above 360000000 s"]);
    let json = std::fs::read_to_string(c.path("r.json")).unwrap();
    assert!(!json.contains("inf") && !json.contains("e308"), "{json}");
}

#[test]
fn nonsense_policies_twice_are_refused() {
    Case::new()
        .run(&["compare", "--policies", "pollux,pollux"])
        .refused(&["--policies", "pollux is listed twice"]);
}

#[test]
fn nonsense_an_empty_policy_is_refused() {
    Case::new()
        .run(&["compare", "--policies", "fifo,"])
        .refused(&["unknown policy \"\"", "fifo, pollux"]);
}

#[test]
fn nonsense_min_limit_above_max_is_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[gpu_types]]\nname = \"T4\"\nidle_w = 10.0\nallocated_idle_w = 20.0\nmax_w = 70.0\nmin_limit_w = 90.0\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:6:", "min_limit_w", "at most max_w"]);
}

#[test]
fn nonsense_nan_busy_power_is_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[models]]\nname = \"m\"\nref_batch = 32\nnoise_scale = 100.0\n\
         [[models.perf]]\ngpu = \"A100\"\nsamples_per_s_1gpu = 100.0\nsamples_per_s_8gpu = 700.0\n\
         batch_per_gpu = 32.0\nbusy_w = nan\nmax_batch_per_gpu = 64\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:6:", "busy_w", "NaN"]);
}

#[test]
fn nonsense_max_gpus_zero_is_refused_not_clamped() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[models]]\nname = \"m\"\nref_batch = 32\nnoise_scale = 100.0\nmax_gpus = 0\nperf = []\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["max_gpus", "[1, 1000000]", "found 0"]);
}

#[test]
fn nonsense_window_flags_must_be_finite() {
    let c = Case::new();
    c.write(
        "h.csv",
        format!("{HELIOS_HEAD}{}", helios_row("j1", 1, "60")),
    )
    .write("s.toml", public_scenario("h.csv", "helios", ""));
    c.run(&["compare", "-s", "s.toml", "--speedup", "inf"])
        .refused(&["--speedup", "(0, 1000000]"]);
}

// ------------------------------------------------------------------------------------------
// Messages.

#[test]
fn msg_control_bytes_in_a_gpu_type_name_are_refused() {
    let c = Case::new();
    c.write(
        "s.toml",
        "[[gpu_types]]\nname = \"\\u001b[2J\"\nidle_w = 10.0\nallocated_idle_w = 20.0\nmax_w = 70.0\nmin_limit_w = 60.0\n",
    );
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:2:", "control character U+001B"]);
}

#[test]
fn msg_control_bytes_in_the_scenario_name_are_refused() {
    let c = Case::new();
    c.write("s.toml", "name = \"ok\\u0007\"\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml: name", "U+0007"]);
}

#[test]
fn msg_a_name_over_64_bytes_is_refused() {
    let c = Case::new();
    c.write("s.toml", format!("name = \"{}\"\n", "n".repeat(65)));
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["name", "at most 64 bytes", "65 bytes"]);
}

#[test]
fn msg_control_bytes_in_a_path_are_escaped() {
    let c = Case::new();
    c.run(&["compare", "-s", "\x1b[2J.toml"])
        .refused(&["\\u{1b}[2J.toml", "No such file"]);
}

#[test]
fn msg_control_bytes_from_a_trace_are_escaped() {
    let c = Case::new();
    c.write("t.csv", format!("{TRACE_HEAD}0,\x1b[2Jevil\x07,0,1,,60,\n"))
        .write("s.toml", sim_trace_scenario("t.csv"));
    // `refused` checks that no raw control character reached the terminal.
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["unknown model", "evil"]);
}

#[test]
fn msg_control_bytes_in_a_bad_public_row_are_escaped() {
    let c = Case::new();
    let text = format!(
        "{HELIOS_HEAD}j1,u1,vc,\x1b]0;pwned\x07,4,1,COMPLETED,2020-04-01 00:00:00,,,60,q\n"
    );
    c.write("h.csv", text)
        .write("s.toml", public_scenario("h.csv", "helios", ""));
    c.run(&short(&["-s", "s.toml"]))
        .refused(&["gpu_num", "\\u{1b}]0;pwned"]);
}

#[test]
fn msg_an_empty_trace_file_says_what_is_missing() {
    let c = Case::new();
    c.write("h.csv", "")
        .write("s.toml", public_scenario("h.csv", "helios", ""));
    let out = c.run(&short(&["-s", "s.toml"]));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("h.csv"), "{}", out.stderr);
    assert!(!out.stderr.contains("Truncated"), "{}", out.stderr);
}

// ------------------------------------------------------------------------------------------
// From the comparison with Pollux's simulator.

const BIG_CLUSTER: &str =
    "hours = 1.0\nseeds = 1\n[[nodes]]\ngpu = \"A100\"\ncount = 80\ngpus_per_node = 8\n";

#[test]
fn pollux_640_gpus_run_without_charon_cap() {
    let c = Case::new();
    c.write("s.toml", BIG_CLUSTER);
    c.run(&[
        "compare",
        "-s",
        "s.toml",
        "--policies",
        "pollux,fifo",
        "--quiet",
    ])
    .ok(&["2 runs"]);
}

#[test]
fn pollux_charon_on_640_gpus_is_refused_with_the_floor() {
    let c = Case::new();
    c.write("s.toml", BIG_CLUSTER);
    // The floor is 640 x the catalogue's idle A100, whatever figure the catalogue holds.
    let a100 = eas_sim::catalogue::builtin_gpus()
        .into_iter()
        .find(|g| g.name == "A100")
        .unwrap();
    let floor = format!("{} W", 640.0 * a100.spec.idle_w);
    c.run(&["compare", "-s", "s.toml", "--policies", "charon"])
        .refused(&["charon", "6000 W", &floor, "power_cap_w"]);
}

#[test]
fn pollux_a_trace_scenario_needs_no_size_distribution() {
    let c = Case::new();
    c.write("t.csv", format!("{TRACE_HEAD}0,resnet50,0,2,,600,\n"))
        .write(
            "s.toml",
            format!(
                "{}[workload.size]\non_gpu = \"H100\"\n",
                sim_trace_scenario("t.csv")
            ),
        );
    c.run(&short(&["-s", "s.toml"])).ok(&["1 runs"]);
}

#[test]
fn pollux_size_numbers_without_a_distribution_are_refused() {
    let c = Case::new();
    c.write("s.toml", "[workload.size]\nmedian = 60.0\n");
    c.run(&["compare", "-s", "s.toml"])
        .refused(&["s.toml:2:", "need distribution"]);
}

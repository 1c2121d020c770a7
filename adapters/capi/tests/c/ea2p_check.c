/*
 * A C program that uses ea2p.h the way a scheduler or firmware would: it integrates a sequence
 * of raw energy-counter readings, feeds the totals into an energy track, evaluates the power
 * models and metrics, scores a job queue with the FIFO and Zeus policies, and drives a measuring
 * session (writing its profile to the path given as the only argument). It prints every
 * result as one line of space-separated fields (doubles with %.17g, exact on reading back) for
 * tests/c_program.rs, which recomputes everything with ea2p-core in Rust and compares.
 *
 * Any status other than the expected one prints "FAIL ..." and exits with status 1.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -pedantic -I include tests/c/ea2p_check.c \
 *            target/debug/libea2p_capi.a -lm -lpthread -ldl -o ea2p_check
 *        ./ea2p_check profile.ea2p
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ea2p.h"

#define SEC 1000000000ull
#define MS 1000000ull

static int failures = 0;

/* Checks a status: prints a failure (with the library's own message) when it is not `want`. */
static void expect(const char *what, enum Ea2pStatus got, enum Ea2pStatus want) {
    if (got != want) {
        printf("FAIL %s: got %d (%s), want %d (%s)\n", what, (int)got, ea2p_status_name(got),
               (int)want, ea2p_status_name(want));
        failures++;
    }
}

static void counter_and_track(void) {
    /* A RAPL-like counter in micro-joules wrapping after 16383, on a 1 W component, read every
     * 10 ms: advances, a wrap, an impossible wrap (reset), a value above the wrap point. */
    Ea2pCounterSpec spec = {
        .joules_per_tick = 1e-6,
        .max_ticks = 16383,
        .has_max_ticks = true,
        .max_power_w = 1.0,
        .has_max_power = true,
        .update_period_ns = 0,
    };
    static const uint64_t reads[] = {10000, 10001, 12313, 8213, 0, 20000, 5, 300, 9000};
    const size_t n = sizeof reads / sizeof reads[0];

    Ea2pCounter counter; /* caller-allocated, on the stack */
    Ea2pTrack track;
    expect("counter_init", ea2p_counter_init(&counter, &spec), EA2P_STATUS_OK);
    expect("track_init", ea2p_track_init(&track, EA2P_SERIES_KIND_COUNTER, 50 * MS),
           EA2P_STATUS_OK);

    for (size_t i = 0; i < n; i++) {
        uint64_t t = i * 10 * MS;
        Ea2pCounterUpdate u;
        expect("counter_update", ea2p_counter_update(&counter, t, reads[i], &u), EA2P_STATUS_OK);
        printf("counter_update %zu %d %" PRIu64 " %" PRIu64 " %d\n", i, (int)u.event,
               u.added_ticks, u.discarded_ticks, (int)u.ambiguous);
        double total_j;
        expect("counter_total_j", ea2p_counter_total_j(&counter, &total_j), EA2P_STATUS_OK);
        Ea2pEnergyPoint p;
        expect("track_push_energy", ea2p_track_push_energy(&track, t, total_j, &p),
               EA2P_STATUS_OK);
        printf("track_point %" PRIu64 " %.17g %.17g %d\n", p.t_ns, p.energy_j, p.power_w,
               (int)p.after_gap);
    }

    uint64_t ticks;
    double joules;
    Ea2pCounterStats s;
    expect("counter_total_ticks", ea2p_counter_total_ticks(&counter, &ticks), EA2P_STATUS_OK);
    expect("counter_total_j", ea2p_counter_total_j(&counter, &joules), EA2P_STATUS_OK);
    expect("counter_stats", ea2p_counter_stats(&counter, &s), EA2P_STATUS_OK);
    printf("counter_total %" PRIu64 " %.17g\n", ticks, joules);
    printf("counter_stats %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %d\n",
           s.accepted, s.wraps, s.resets, s.rejected, s.ambiguous, s.out_of_order,
           s.out_of_range, (int)s.backwards_without_max);

    Ea2pTrackSummary sum;
    expect("track_summary", ea2p_track_summary(&track, &sum), EA2P_STATUS_OK);
    printf("track_summary %.17g %" PRIu64 " %.17g %d %.17g %" PRIu64 "\n", sum.total_j,
           sum.duration_ns, sum.average_w, (int)sum.has_average_w, sum.peak_w, sum.points);

    /* A power track of samples, and a window over its points. */
    Ea2pTrack power;
    static const double watts[] = {10.0, 30.0, 20.0, 20.0, 5.0};
    static const uint64_t times[] = {0, 1 * SEC, 2 * SEC, 7 * SEC, 8 * SEC};
    Ea2pEnergyPoint points[5];
    expect("track_init", ea2p_track_init(&power, EA2P_SERIES_KIND_POWER_SAMPLES, 3 * SEC),
           EA2P_STATUS_OK);
    for (size_t i = 0; i < 5; i++) {
        expect("track_push_power", ea2p_track_push_power(&power, times[i], watts[i], &points[i]),
               EA2P_STATUS_OK);
    }
    double total, avg, peak;
    expect("track_total_j", ea2p_track_total_j(&power, &total), EA2P_STATUS_OK);
    expect("track_average_w", ea2p_track_average_w(&power, &avg), EA2P_STATUS_OK);
    expect("track_peak_w", ea2p_track_peak_w(&power, &peak), EA2P_STATUS_OK);
    printf("power_track %.17g %.17g %.17g\n", total, avg, peak);
    Ea2pWindowEnergy w;
    expect("window_energy",
           ea2p_window_energy(points, 5, EA2P_SERIES_KIND_POWER_SAMPLES, SEC / 2, 7 * SEC, 1000,
                              &w),
           EA2P_STATUS_OK);
    printf("window %.17g %" PRIu64 " %.17g %d\n", w.energy_j, w.covered_ns, w.error_bound_j,
           (int)w.overlaps_gap);
    /* A refused push leaves the track unchanged. */
    expect("refused push", ea2p_track_push_power(&power, 8 * SEC, 1.0, NULL),
           EA2P_STATUS_NOT_AFTER_PREVIOUS);
}

static void estimators_and_metrics(void) {
    Ea2pCpuModel cpu;
    expect("cpu_model_from_tdp", ea2p_cpu_model_from_tdp(125.0, &cpu), EA2P_STATUS_OK);
    double w;
    expect("cpu_power_w", ea2p_cpu_power_w(&cpu, 0.5, &w), EA2P_STATUS_OK);
    printf("cpu_w %.17g\n", w);

    Ea2pRamModel ram;
    expect("ram_model_new", ea2p_ram_model_new(16ull << 30, EA2P_DRAM_GENERATION_DDR4, &ram),
           EA2P_STATUS_OK);
    expect("ram_power_traffic_w", ea2p_ram_power_traffic_w(&ram, 1e10, &w), EA2P_STATUS_OK);
    printf("ram_traffic_w %.17g\n", w);
    expect("ram_power_resident_w", ea2p_ram_power_resident_w(&ram, 2e9, 1.5, &w),
           EA2P_STATUS_OK);
    printf("ram_resident_w %.17g\n", w);

    printf("edp %.17g\n", ea2p_edp(641000.0, 3852.0));
    printf("ed2p %.17g\n", ea2p_ed2p(641000.0, 3852.0));
    printf("co2 %.17g\n", ea2p_co2_grams(641000.0, EA2P_DEFAULT_CARBON_INTENSITY_G_PER_KWH));
    static const double shares[] = {1.0, 2.0, 4.0, 0.5};
    double v;
    expect("jain_index", ea2p_jain_index(shares, 4, &v), EA2P_STATUS_OK);
    printf("jain %.17g\n", v);
    expect("finish_time_fairness", ea2p_finish_time_fairness(300.0, 120.0, &v), EA2P_STATUS_OK);
    printf("ftf %.17g\n", v);
    expect("deadline_miss_rate", ea2p_deadline_miss_rate(3, 8, &v), EA2P_STATUS_OK);
    printf("miss_rate %.17g\n", v);
}

/* A model that runs on both GPU types or only on the first. */
static Ea2pPerfParams perf(double one, double many, double batch, double fixed, double sync,
                           double gamma, double busy_w, uint32_t max_batch) {
    Ea2pPerfParams p = {.available = true, .busy_w = busy_w, .max_batch_per_gpu = max_batch};
    expect("step_time_fit", ea2p_step_time_fit(one, many, 8, batch, fixed, sync, gamma, &p.step),
           EA2P_STATUS_OK);
    return p;
}

static Ea2pJobView job(uint64_t id, uint16_t model, uint32_t user, uint64_t arrival_s,
                       double work, uint32_t gpus, uint32_t batch) {
    Ea2pJobView j = {0};
    j.id = id;
    j.model = model;
    j.user = user;
    j.arrival_ns = arrival_s * SEC;
    j.remaining_work = work;
    j.request.gpus = gpus;
    j.request.batch = batch;
    j.user_gpu_s = 3600.0 * user;
    j.user_energy_j = 1e6 * user;
    return j;
}

static void policies(void) {
    Ea2pGpuSpec specs[2] = {
        {.idle_w = 55.0, .allocated_idle_w = 100.0, .max_w = 400.0, .min_limit_w = 100.0},
        {.idle_w = 40.0, .allocated_idle_w = 70.0, .max_w = 300.0, .min_limit_w = 100.0},
    };
    Ea2pModelProfile models[2] = {{0}, {0}};
    models[0].ref_batch = 256;
    models[0].noise_scale = 4096.0;
    models[0].max_gpus = 16;
    models[0].perf[0] = perf(1066.0, 7397.0, 256.0, 0.1, 0.8, 2.0, 352.0, 512);
    models[0].perf[1] = perf(400.0, 2800.0, 128.0, 0.1, 0.8, 2.0, 250.0, 256);
    models[1].ref_batch = 64;
    models[1].noise_scale = 1024.0;
    models[1].max_gpus = 8;
    models[1].perf[0] = perf(300.0, 2000.0, 32.0, 0.05, 0.5, 1.5, 380.0, 64);

    uint32_t total[2] = {8, 4}, free_gpus[2] = {6, 4};
    Ea2pClusterView cluster = {
        .now_ns = 100 * SEC,
        .gpu_specs = specs,
        .total = total,
        .free = free_gpus,
        .n_gpu_types = 2,
        .has_power_cap = false,
        .models = models,
        .n_models = 2,
    };

    Ea2pJobView jobs[5];
    jobs[0] = job(10, 0, 1, 10, 5e6, 2, 512);
    jobs[1] = job(11, 1, 2, 0, 1e6, 2, 128);
    jobs[1].rigid = true;
    jobs[1].request.has_gpu_type = true;
    jobs[1].request.gpu_type = 0;
    jobs[2] = job(12, 0, 1, 5, 9e6, 4, 1024);
    jobs[2].urgent = true;
    jobs[2].has_deadline = true;
    jobs[2].deadline_ns = 5000 * SEC;
    jobs[3] = job(13, 1, 3, 0, 2e5, 2, 128);
    jobs[3].is_running = true;
    jobs[3].running = (Ea2pConfig){.gpu_type = 0, .gpus = 2, .batch = 128, .limit_w = 400.0};
    jobs[4] = job(14, 0, 2, 50, 3e5, 4, 512);
    jobs[4].rigid = true;
    jobs[4].request.has_gpu_type = true;
    jobs[4].request.gpu_type = 1;

    Ea2pPolicyParams params;
    expect("policy_params_default", ea2p_policy_params_default(&params), EA2P_STATUS_OK);

    static const uint32_t which[2] = {EA2P_POLICY_FIFO, EA2P_POLICY_ZEUS};
    for (size_t k = 0; k < 2; k++) {
        Ea2pDecision out[16];
        size_t len = 0;
        expect("schedule", ea2p_schedule(which[k], &params, &cluster, jobs, 5, out, 16, &len),
               EA2P_STATUS_OK);
        printf("decisions %s %zu\n", ea2p_policy_name(which[k]), len);
        for (size_t i = 0; i < len; i++) {
            Ea2pPerf p;
            double energy_per_sample = 0.0;
            if (out[i].kind != EA2P_DECISION_KIND_PREEMPT) {
                const Ea2pJobView *j = &jobs[out[i].job];
                expect("evaluate", ea2p_evaluate(&models[j->model], specs, 2, &out[i].cfg, &p),
                       EA2P_STATUS_OK);
                energy_per_sample = out[i].cfg.gpus * p.power_per_gpu_w / p.goodput;
            }
            printf("decision %s %zu %d %u %u %u %u %.17g %.17g\n", ea2p_policy_name(which[k]), i,
                   (int)out[i].kind, out[i].job, (unsigned)out[i].cfg.gpu_type, out[i].cfg.gpus,
                   out[i].cfg.batch, out[i].cfg.limit_w, energy_per_sample);
        }
    }
    uint32_t parsed;
    expect("policy_from_name", ea2p_policy_from_name("Zeus", &parsed), EA2P_STATUS_OK);
    if (parsed != EA2P_POLICY_ZEUS) {
        printf("FAIL policy_from_name gave %u\n", parsed);
        failures++;
    }
}

/* Appends each profile frame the session writes to the FILE given as user data. */
static int32_t write_frame(void *user_data, const uint8_t *bytes, size_t len) {
    return fwrite(bytes, 1, len, (FILE *)user_data) == len ? 0 : 1;
}

static void print_source(const Ea2pSession *s, uint16_t id) {
    Ea2pSourceSummary m;
    expect("session_source", ea2p_session_source(s, id, &m), EA2P_STATUS_OK);
    printf("session_source %u %.17g %.17g %.17g %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
           (unsigned)id, m.energy_j, m.avg_w, m.peak_w, m.peak_window_ns, m.samples, m.wraps,
           m.refused, m.gap_runs, m.without_readings_ns, m.first_t_ns, m.last_t_ns);
    for (uint32_t r = 0; r < EA2P_GAP_REASONS; r++) {
        if (m.anomalies[r].count == 0) {
            continue;
        }
        char name[32];
        expect("gap_reason_name", ea2p_gap_reason_name(r, name, sizeof name), EA2P_STATUS_OK);
        printf("session_anomaly %u %s %" PRIu64 " %" PRIu64 "\n", (unsigned)id, name,
               m.anomalies[r].count, m.anomalies[r].covered_ns);
    }
}

static void print_region(const Ea2pSession *s, uint32_t region, const uint16_t *ids, size_t n) {
    Ea2pRegionSummary r;
    expect("session_region", ea2p_session_region(s, region, &r), EA2P_STATUS_OK);
    printf("session_region %u %" PRIu64 " %" PRIu64 " %.17g %d\n", region, r.begin_t_ns,
           r.end_t_ns, r.total_j, (int)r.complete);
    for (size_t k = 0; k < n; k++) {
        double j;
        expect("session_region_energy", ea2p_session_region_energy(s, region, ids[k], &j),
               EA2P_STATUS_OK);
        printf("session_region_energy %u %u %.17g\n", region, (unsigned)ids[k], j);
    }
}

/* A measuring session: a package counter that wraps (every ~100 ms), a DRAM counter with no
 * known wrap point that resets at 80 ms and fails one read at 120 ms, a GPU power source read
 * every 20 ms, and two nested regions; the profile goes to `profile_path` through the sink. */
static void session(const char *profile_path) {
    Ea2pSession *s = NULL;
    expect("session_new", ea2p_session_new(0, &s), EA2P_STATUS_OK);
    FILE *profile = fopen(profile_path, "wb");
    if (profile == NULL) {
        printf("FAIL cannot open %s\n", profile_path);
        failures++;
        return;
    }
    Ea2pProfileInfo info = {
        .start_unix_ns = 1700000000ull * SEC,
        .monotonic_origin_ns = 0,
        .interval_ns = 10 * MS,
        .hostname = "c-host",
        .command = "ea2p_check",
    };
    expect("set_sink", ea2p_session_set_sink(s, &info, write_frame, profile), EA2P_STATUS_OK);

    Ea2pSourceSpec pkg = {.component = EA2P_COMPONENT_CPU_PACKAGE,
                          .index = 0,
                          .name = "package-0",
                          .max_power_w = 100.0,
                          .update_period_ns = 1 * MS};
    Ea2pSourceSpec dram = {.component = EA2P_COMPONENT_DRAM,
                           .index = 0,
                           .name = "dram",
                           .max_power_w = 50.0,
                           .update_period_ns = 1 * MS};
    Ea2pSourceSpec gpu = {.component = EA2P_COMPONENT_GPU,
                          .index = 0,
                          .name = "gpu0",
                          .max_power_w = 0.0,
                          .update_period_ns = 20 * MS};
    expect("add pkg", ea2p_session_add_counter(s, 1, &pkg, 1e-6, 999999), EA2P_STATUS_OK);
    expect("add dram", ea2p_session_add_counter(s, 2, &dram, 1e-6, 0), EA2P_STATUS_OK);
    expect("add gpu", ea2p_session_add_power(s, 7, &gpu), EA2P_STATUS_OK);

    uint32_t epoch = 0, step = 0, ended = 0;
    for (uint64_t i = 0; i < 20; i++) {
        uint64_t t = i * 10 * MS;
        uint64_t a = (900000 + 100000 * i + 1234 * (i % 3)) % 1000000;
        expect("reading pkg", ea2p_session_reading(s, 1, t, a), EA2P_STATUS_OK);
        if (i == 12) {
            expect("read_error dram",
                   ea2p_session_read_error(s, 2, t, EA2P_READ_ERROR_KIND_MALFORMED),
                   EA2P_STATUS_OK);
        } else {
            uint64_t b = i < 8 ? 10000000 + 50000 * i : 300 + 50000 * (i - 8);
            expect("reading dram", ea2p_session_reading(s, 2, t, b), EA2P_STATUS_OK);
        }
        if (i % 2 == 0) {
            expect("power gpu", ea2p_session_power_reading(s, 7, t, 40000 + 1000 * (i % 4)),
                   EA2P_STATUS_OK);
        }
        if (i == 3) {
            expect("begin epoch", ea2p_session_begin(s, t + 5 * MS, "epoch", &epoch),
                   EA2P_STATUS_OK);
        } else if (i == 5) {
            expect("begin step", ea2p_session_begin(s, t + 5 * MS, "step", &step),
                   EA2P_STATUS_OK);
        } else if (i == 8) {
            expect("end step", ea2p_session_end(s, t + 5 * MS, "step", &ended), EA2P_STATUS_OK);
        } else if (i == 12) {
            expect("end epoch", ea2p_session_end(s, t + 5 * MS, "epoch", &ended),
                   EA2P_STATUS_OK);
        }
    }
    expect("finish", ea2p_session_finish(s, 200 * MS), EA2P_STATUS_OK);
    fclose(profile);

    static const uint16_t ids[3] = {1, 2, 7};
    for (size_t k = 0; k < 3; k++) {
        print_source(s, ids[k]);
    }
    print_region(s, epoch, ids, 3);
    print_region(s, step, ids, 3);

    /* Refusals: every one a status, nothing changed. */
    Ea2pSourceSummary m;
    double j = -1.0;
    char buf[4];
    expect("null session", ea2p_session_reading(NULL, 1, 0, 0), EA2P_STATUS_NULL_POINTER);
    expect("null out", ea2p_session_source(s, 1, NULL), EA2P_STATUS_NULL_POINTER);
    expect("unknown source", ea2p_session_source(s, 3, &m), EA2P_STATUS_UNKNOWN_SOURCE);
    expect("unknown region", ea2p_session_region_energy(s, 99, 1, &j),
           EA2P_STATUS_UNKNOWN_REGION);
    expect("reading after finish", ea2p_session_reading(s, 1, 210 * MS, 0),
           EA2P_STATUS_WRONG_STATE);
    expect("short name buffer", ea2p_gap_reason_name(0, buf, sizeof buf),
           EA2P_STATUS_INVALID_ARGUMENT);
    expect("bad reason", ea2p_gap_reason_name(EA2P_GAP_REASONS, buf, sizeof buf),
           EA2P_STATUS_INVALID_ARGUMENT);
    ea2p_session_free(s);

    Ea2pSession *t = NULL;
    expect("session_new", ea2p_session_new(0, &t), EA2P_STATUS_OK);
    Ea2pSourceSpec bad = pkg;
    expect("NaN tick size", ea2p_session_add_counter(t, 1, &pkg, NAN, 0),
           EA2P_STATUS_INVALID_ARGUMENT);
    bad.max_power_w = NAN;
    expect("NaN power bound", ea2p_session_add_counter(t, 1, &bad, 1e-6, 0),
           EA2P_STATUS_INVALID_ARGUMENT);
    bad = pkg;
    bad.name = "\xff\xfe";
    expect("non-UTF-8 name", ea2p_session_add_counter(t, 1, &bad, 1e-6, 0),
           EA2P_STATUS_INVALID_NAME);
    bad.name = "";
    expect("empty name", ea2p_session_add_power(t, 1, &bad), EA2P_STATUS_INVALID_NAME);
    bad = pkg;
    bad.component = 42;
    expect("bad component", ea2p_session_add_power(t, 1, &bad), EA2P_STATUS_INVALID_ARGUMENT);
    expect("add", ea2p_session_add_counter(t, 1, &pkg, 1e-6, 0), EA2P_STATUS_OK);
    expect("duplicate id", ea2p_session_add_power(t, 1, &gpu), EA2P_STATUS_DUPLICATE_ID);
    expect("sink too late", ea2p_session_set_sink(t, &info, write_frame, NULL),
           EA2P_STATUS_WRONG_STATE);
    expect("bad read error kind", ea2p_session_read_error(t, 1, 0, 9),
           EA2P_STATUS_INVALID_ARGUMENT);
    expect("bad id", ea2p_session_reading(t, 5, 0, 0), EA2P_STATUS_UNKNOWN_SOURCE);
    expect("end not open", ea2p_session_end(t, 0, "x", NULL), EA2P_STATUS_REGION_NOT_OPEN);
    expect("begin", ea2p_session_begin(t, 0, "x", NULL), EA2P_STATUS_OK);
    expect("begin again", ea2p_session_begin(t, 1, "x", NULL), EA2P_STATUS_REGION_OPEN);
    expect("null name", ea2p_session_begin(t, 1, NULL, NULL), EA2P_STATUS_NULL_POINTER);
    if (j != -1.0) {
        printf("FAIL an out pointer was written on error\n");
        failures++;
    }
    ea2p_session_free(t);
    ea2p_session_free(NULL);
}

/* Every function refuses null pointers and bad values with a status, never a crash. */
static void refusals(void) {
    Ea2pCounter c;
    Ea2pCounterSpec bad = {.joules_per_tick = -1.0};
    double v = -1.0;
    size_t len = 0;
    expect("null counter", ea2p_counter_init(NULL, &bad), EA2P_STATUS_NULL_POINTER);
    expect("null spec", ea2p_counter_init(&c, NULL), EA2P_STATUS_NULL_POINTER);
    expect("bad tick size", ea2p_counter_init(&c, &bad), EA2P_STATUS_INVALID_ARGUMENT);
    Ea2pCounter zero = {0};
    expect("uninitialised counter", ea2p_counter_total_j(&zero, &v), EA2P_STATUS_NOT_INITIALIZED);
    expect("null out", ea2p_jain_index(NULL, 0, NULL), EA2P_STATUS_NULL_POINTER);
    expect("empty jain", ea2p_jain_index(NULL, 0, &v), EA2P_STATUS_UNDEFINED);
    expect("null cluster", ea2p_schedule(EA2P_POLICY_FIFO, NULL, NULL, NULL, 0, NULL, 0, &len),
           EA2P_STATUS_NULL_POINTER);
    expect("bad policy", ea2p_schedule(99, NULL, NULL, NULL, 0, NULL, 0, &len),
           EA2P_STATUS_INVALID_ARGUMENT);
    Ea2pTrack t;
    expect("bad series kind", ea2p_track_init(&t, 5, 0), EA2P_STATUS_INVALID_ARGUMENT);
    if (v != -1.0) {
        printf("FAIL an out pointer was written on error\n");
        failures++;
    }
    printf("refusals checked\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PROFILE\n", argv[0]);
        return 2;
    }
    printf("version %s\n", ea2p_version());
    counter_and_track();
    estimators_and_metrics();
    policies();
    session(argv[1]);
    refusals();
    if (failures) {
        printf("FAILURES %d\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

//! The built-in catalogue: GPU types and models, with the source of every number.
//!
//! Figures marked *measured* come from a public measurement; *derived* ones are computed from
//! measured ones by the rule stated next to them; *assumed* ones have no public source we could
//! find and are our choice, stated so a user can override them in a scenario file (`[[gpu_types]]`,
//! `[[models]]`). The reference list is in `/work/shared/CALIBRATION.md` (copied in the sources
//! below).

use ea2p_core::jobmodel::{
    GpuSpec, LimitResponse, ModelProfile, PerfParams, StatEff, StepTime, MAX_GPU_TYPES,
};

/// A named GPU type.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuTypeDef {
    /// Name used in scenario files ("A100", "H100").
    pub name: String,
    /// Power figures.
    pub spec: GpuSpec,
}

/// Published figures of one model on one GPU type, from which the step-time model is fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfFigures {
    /// GPU type name.
    pub gpu: String,
    /// Samples per second on one GPU at `batch_per_gpu`.
    pub one_gpu: f64,
    /// Samples per second on eight GPUs at `batch_per_gpu` each.
    pub eight_gpus: f64,
    /// Batch per GPU of those figures.
    pub batch_per_gpu: f64,
    /// Share of the one-GPU step that does not grow with the batch.
    pub fixed_fraction: f64,
    /// Share of the eight-GPU synchronisation time that does not grow with the replica count.
    pub sync_fixed_fraction: f64,
    /// Pollux's overlap exponent.
    pub gamma: f64,
    /// Power per GPU while computing, unlimited, in watts.
    pub busy_w: f64,
    /// Largest batch per GPU that fits in memory.
    pub max_batch_per_gpu: u32,
}

/// A model of the catalogue (or of a scenario file).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    /// Name used in scenario files.
    pub name: String,
    /// Statistical efficiency.
    pub stat: StatEff,
    /// Most GPUs a job may use.
    pub max_gpus: u32,
    /// Figures per GPU type.
    pub perf: Vec<PerfFigures>,
    /// How busy power and speed respond to a power limit (on every GPU type).
    pub limit: LimitResponse,
}

impl ModelDef {
    /// Fits the model's step time on every GPU type of `gpus` it has figures for; `Err` names
    /// the GPU type whose figures are inconsistent.
    pub fn profile(&self, gpus: &[GpuTypeDef]) -> Result<ModelProfile, String> {
        let mut perf: [Option<PerfParams>; MAX_GPU_TYPES] = [None; MAX_GPU_TYPES];
        for f in &self.perf {
            let Some(ty) = gpus.iter().position(|g| g.name == f.gpu) else {
                continue;
            };
            let step = StepTime::fit(
                f.one_gpu,
                f.eight_gpus,
                8,
                f.batch_per_gpu,
                f.fixed_fraction,
                f.sync_fixed_fraction,
                f.gamma,
            )
            .ok_or_else(|| {
                format!(
                    "model {}: figures on {} are inconsistent (need 0 < 8-GPU throughput < 8 x one-GPU, fractions in [0, 1), gamma >= 1)",
                    self.name, f.gpu
                )
            })?;
            perf[ty] = Some(PerfParams {
                step,
                busy_w: f.busy_w,
                max_batch_per_gpu: f.max_batch_per_gpu,
                limit: self.limit,
            });
        }
        Ok(ModelProfile {
            stat: self.stat,
            perf,
            max_gpus: self.max_gpus,
        })
    }
}

/// Busy power as a fraction of the power limit: Zeus' NSDI'23 artifact (`ml-energy/zeus`,
/// `summary_power_v100.csv`), ResNet-50 batch 256 on V100 at the 250 W default limit: 774 kJ per
/// 3515 s epoch = 220 W = 0.88 of the limit (measured on V100; applied to A100 and H100 as
/// *derived*).
const BUSY_FRACTION_OF_TDP: f64 = 0.88;

/// Built-in GPU types (figures from `/work/shared/CALIBRATION.md`, "GPU power").
///
/// - A100 SXM4: TDP and power-limit range 100-400 W (NVIDIA A100 datasheet; *measured*). Idle,
///   nothing loaded: 46-62 W in single `nvidia-smi` readings of user reports
///   (NVIDIA/nvidia-docker#1648, allenai/PeerRead#40, facebookresearch/vissl#422); we take 50 W
///   (*measured*, the middle of the 46-55 W cluster; 62 W is one reading). Allocated-idle
///   (memory held, 0 % utilisation): 63-68 W (A100-SXM 80GB holding 4.7 GB; A800-SXM4 80GB
///   holding 47.8 GB; same reports); we take 66 W (*measured*, midpoint rounded up: a training
///   job holds most of the memory).
/// - H100 SXM: TDP and range 200-700 W (NVIDIA H100 datasheet; *measured*). Idle 68-79 W
///   (wilicc/gpu-burn#114, NVIDIA/open-gpu-kernel-modules#874), most readings 68-73 W; we take
///   73 W (*measured*, top of that cluster; this project's one board read 81 W, BENCHMARKS.md).
///   Allocated-idle 109-145 W at 0-2 % utilisation with 72 GB allocated
///   (stackhpc/ansible-slurm-appliance PR 975), and 134 W measured by this project with a CUDA
///   context and no kernel (BENCHMARKS.md); we take 134 W (*measured*, ours, inside the public
///   range).
pub fn builtin_gpus() -> Vec<GpuTypeDef> {
    vec![
        GpuTypeDef {
            name: "A100".into(),
            spec: GpuSpec {
                idle_w: 50.0,
                allocated_idle_w: 66.0,
                max_w: 400.0,
                min_limit_w: 100.0,
            },
        },
        GpuTypeDef {
            name: "H100".into(),
            spec: GpuSpec {
                idle_w: 73.0,
                allocated_idle_w: 134.0,
                max_w: 700.0,
                min_limit_w: 200.0,
            },
        },
    ]
}

/// ResNet-50 FLOPs per image (forward, 224x224), for deriving ViT-Base by FLOPs: 4.1 GFLOPs
/// (He et al. 2016, Table 1: 3.8e9 multiply-adds; 4.1 is the usual torchvision count).
const RESNET50_GFLOPS: f64 = 4.1;
/// ViT-Base/16 FLOPs per image at 224x224: 17.6 GFLOPs (Dosovitskiy et al. 2021, Table 6).
const VIT_B16_GFLOPS: f64 = 17.6;

/// ResNet-50 "fp32" training throughput (img/s), lambdal/deeplearning-benchmark,
/// `pytorch/pytorch-train-throughput-fp32.csv` (*measured*): A100 1 GPU 1066, 8 GPUs 7397; H100
/// 1 GPU 1753-1898 (we take the midpoint 1825.5), 8 GPUs 13856-14990 (midpoint 14423).
const RN50_A100_1: f64 = 1066.0;
const RN50_A100_8: f64 = 7397.0;
const RN50_H100_1: f64 = (1753.0 + 1898.0) / 2.0;
const RN50_H100_8: f64 = (13856.0 + 14990.0) / 2.0;

/// Fixed share of the compute step at 256 images per GPU: Sia's DGX-A100 trace of ResNet-50
/// (batch 163 -> 0.244 s/step, batch 800 -> 0.774 s/step) fits `Tc = 0.108 + 0.000832 b`, so at
/// b = 256 the fixed part is 0.108 / 0.321 = 0.34 (*derived*; we apply the same share to every
/// model, *assumed*).
const FIXED_FRACTION: f64 = 0.34;
/// Share of the 8-GPU synchronisation that does not grow with the replica count: ring all-reduce
/// moves `2 (k-1)/k` of the gradients whatever `k`, so most of it is fixed (*assumed*, 0.8).
const SYNC_FIXED_FRACTION: f64 = 0.8;
/// Pollux's overlap exponent: the Pollux paper's fitted values lie between 1 and 10 (*assumed*, 2:
/// partial overlap).
const GAMMA: f64 = 2.0;

/// Built-in models.
///
/// - **ResNet-50 (FP32)**: throughput as above, batch 256 per GPU (NVIDIA DeepLearningExamples'
///   TF32 default on 80 GB, *measured* setting), at most 512 per GPU (*assumed*: twice the
///   default). Gradient noise scale 4096 (*assumed*, within the 10^3-10^4 range McCandlish et al.
///   2018 report for ImageNet).
/// - **ALBERT v2 (bf16)**: BERT-base SQuAD fp16 is the proxy (ALBERT-base shares BERT-base's
///   per-layer compute): A100 443 seq/s, H100 812-877 (midpoint 844.5) (lambdal, fp16 csv,
///   *measured*). No 8-GPU figure: *derived* with ResNet-50's scaling efficiency on the same GPU
///   (ALBERT has 12 M parameters against ResNet-50's 25 M, so this is if anything pessimistic).
///   Batch 32 per GPU, at most 64 (*assumed*); noise scale 1024 (*assumed*).
/// - **ViT-Base/16 (FP32)**: no FP32 figure; *derived* from ResNet-50 by FLOPs (x 4.1 / 17.6),
///   8-GPU figure with ResNet-50's scaling efficiency. Cross-check: PaddlePaddle PLSC's 3583 img/s
///   on 8 x A100 (precision not stated, likely mixed) is 1.9 x our derived FP32 figure, about the
///   usual FP32 -> AMP gain. Batch 64 per GPU, at most 128 (*assumed*); noise scale 4096
///   (*assumed*).
///
/// Busy power: `BUSY_FRACTION_OF_TDP` x TDP for every model (*derived* from Zeus' ResNet-50
/// measurement).
///
/// Power-limit response ([`LimitResponse`], fitted to the Zeus NSDI'23 sweeps, see
/// `ea2p-core::jobmodel`): ResNet-50 its own (`imagenet,resnet50` rows of both files, *measured*
/// on V100 and A40, applied to A100/H100 as *derived*), ALBERT v2 BERT-base's
/// (`bert_base_uncased` rows, same per-layer compute), ViT-Base the default (fitted to all six
/// workloads; no sweep of ViT was found).
pub fn builtin_models() -> Vec<ModelDef> {
    let a100_eff = RN50_A100_8 / (8.0 * RN50_A100_1);
    let h100_eff = RN50_H100_8 / (8.0 * RN50_H100_1);
    let fig = |gpu: &str, one: f64, eff: f64, batch: f64, max_batch: u32| PerfFigures {
        gpu: gpu.into(),
        one_gpu: one,
        eight_gpus: one * 8.0 * eff,
        batch_per_gpu: batch,
        fixed_fraction: FIXED_FRACTION,
        sync_fixed_fraction: SYNC_FIXED_FRACTION,
        gamma: GAMMA,
        busy_w: BUSY_FRACTION_OF_TDP * if gpu == "A100" { 400.0 } else { 700.0 },
        max_batch_per_gpu: max_batch,
    };
    let vit = VIT_B16_GFLOPS;
    let rn = RESNET50_GFLOPS;
    vec![
        ModelDef {
            name: "vit-base".into(),
            stat: StatEff {
                ref_batch: 64,
                noise_scale: 4096.0,
            },
            max_gpus: 16,
            perf: vec![
                fig("A100", RN50_A100_1 * rn / vit, a100_eff, 64.0, 128),
                fig("H100", RN50_H100_1 * rn / vit, h100_eff, 64.0, 128),
            ],
            limit: LimitResponse::DEFAULT,
        },
        ModelDef {
            name: "albert-v2".into(),
            stat: StatEff {
                ref_batch: 32,
                noise_scale: 1024.0,
            },
            max_gpus: 16,
            perf: vec![
                fig("A100", 443.0, a100_eff, 32.0, 64),
                fig("H100", (812.0 + 877.0) / 2.0, h100_eff, 32.0, 64),
            ],
            limit: LimitResponse::BERT_BASE,
        },
        ModelDef {
            name: "resnet50".into(),
            stat: StatEff {
                ref_batch: 256,
                noise_scale: 4096.0,
            },
            max_gpus: 16,
            perf: vec![
                fig("A100", RN50_A100_1, a100_eff, 256.0, 512),
                fig("H100", RN50_H100_1, h100_eff, 256.0, 512),
            ],
            limit: LimitResponse::RESNET50,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ea2p_core::jobmodel::throughput;

    #[test]
    fn fitted_profiles_reproduce_cited_throughputs() {
        let gpus = builtin_gpus();
        let specs: Vec<GpuSpec> = gpus.iter().map(|g| g.spec).collect();
        let rn = builtin_models()
            .into_iter()
            .find(|m| m.name == "resnet50")
            .unwrap();
        let p = rn.profile(&gpus).unwrap();
        let one = throughput(&p, &specs, 0, 1, 256).unwrap();
        let eight = throughput(&p, &specs, 0, 8, 2048).unwrap();
        assert!((one - 1066.0).abs() < 1e-6);
        assert!((eight - 7397.0).abs() < 1e-6);
        let h = throughput(&p, &specs, 1, 1, 256).unwrap();
        assert!(
            (h / one - 1.71).abs() < 0.02,
            "H100/A100 speed-up {}",
            h / one
        );
        for m in builtin_models() {
            m.profile(&gpus).unwrap();
        }
    }

    #[test]
    fn idle_figures_lie_in_the_published_ranges() {
        let g = builtin_gpus();
        let (a, h) = (g[0].spec, g[1].spec);
        assert!((46.0..=62.0).contains(&a.idle_w) && (63.0..=68.0).contains(&a.allocated_idle_w));
        assert!((68.0..=81.0).contains(&h.idle_w) && (109.0..=145.0).contains(&h.allocated_idle_w));
    }
}

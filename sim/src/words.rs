//! The core's errors in words, never a Debug name. The job model's [`ConfigError`] is written
//! here; the policy's errors carry their own `Display`.

use ea2p_core::jobmodel::ConfigError;
use ea2p_core::policy::PolicyError;

/// A configuration the job model refuses, in words.
pub fn config_error(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::UnknownGpuType => {
            "the GPU type is not in the cluster, or the model has no figures for it"
        }
        ConfigError::BadGpuCount => "zero GPUs, or more than the model may use",
        ConfigError::BadBatch => {
            "the batch is zero, larger per GPU than fits in memory, or smaller than the GPU count"
        }
    }
}

/// A round the policy code refuses, in words (the core's `Display`).
pub fn policy_error(e: &PolicyError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_message_is_a_debug_name() {
        for m in [
            config_error(&ConfigError::UnknownGpuType).to_string(),
            config_error(&ConfigError::BadGpuCount).to_string(),
            config_error(&ConfigError::BadBatch).to_string(),
            policy_error(&PolicyError::ScratchTooSmall { needed: 3 }),
            policy_error(&PolicyError::TooManyModels { models: 40 }),
            policy_error(&PolicyError::TooManyGpuTypes { types: 5 }),
            policy_error(&PolicyError::FreeListShort { types: 2, free: 1 }),
            policy_error(&PolicyError::UnknownModel { job: 7 }),
        ] {
            assert!(m.contains(' ') && !m.contains('{'), "{m}");
        }
    }
}

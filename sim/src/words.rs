//! The core's errors in words. The core (`no_std`) gives its error enums no `Display`; what a
//! user reads is written here, once per variant, never a Debug name.

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

/// A round the policy code refuses, in words.
pub fn policy_error(e: &PolicyError) -> String {
    match e {
        PolicyError::ScratchTooSmall { needed } => {
            format!("the scratch space is too small ({needed} entries needed)")
        }
        PolicyError::TooManyModelsOrTypes => {
            "more models or GPU types than the policy tables hold, or a job names an unknown model"
                .to_string()
        }
        PolicyError::UnknownModel { job } => {
            format!("job {job} names a model that is not in the round's view")
        }
    }
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
            policy_error(&PolicyError::TooManyModelsOrTypes),
            policy_error(&PolicyError::UnknownModel { job: 7 }),
        ] {
            assert!(m.contains(' ') && !m.contains('{'), "{m}");
        }
    }
}

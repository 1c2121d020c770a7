//! NVIDIA GPU energy for EA2P through NVML.

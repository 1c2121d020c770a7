//! AMD GPU energy for EA2P through amdsmi / ROCm SMI, loaded at run time.

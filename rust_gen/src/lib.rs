//! ludus data generator: game engines, exact teachers, shard writer, network inference and
//! matches. The binary (`main.rs`) is a thin command line over these modules.

pub mod rng;
pub mod safetensors;
pub mod ur;

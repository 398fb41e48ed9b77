//! A minimal safetensors writer. The format is an 8-byte little-endian header length, a JSON
//! header, then the raw little-endian tensor bytes. We write it ourselves because the header
//! must be byte-for-byte reproducible (sorted keys), which a hash-map based writer is not.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

pub struct Tensor {
    pub name: &'static str,
    /// safetensors dtype name: "F32", "U8", "U16", "U32", ...
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// The header for `tensors` laid out in the given order.
fn header(tensors: &[Tensor], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut entries = Map::new(); // serde_json's Map keeps keys sorted (no preserve_order)
    entries.insert("__metadata__".into(), json!(metadata));
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + t.data.len();
        let value: Value =
            json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, end]});
        entries.insert(t.name.into(), value);
        offset = end;
    }
    let mut bytes = serde_json::to_vec(&Value::Object(entries)).expect("a JSON map serialises");
    // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
    while !bytes.len().is_multiple_of(8) {
        bytes.push(b' ');
    }
    bytes
}

/// Writes the file at `tmp`, syncs it, then renames it to `path`: a reader never sees a
/// partial file under the final name.
pub fn write_atomic(
    path: &Path,
    tmp: &Path,
    tensors: &[Tensor],
    metadata: &BTreeMap<String, String>,
) -> io::Result<u64> {
    let head = header(tensors, metadata);
    let mut file = io::BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    file.write_all(&(head.len() as u64).to_le_bytes())?;
    file.write_all(&head)?;
    let mut total = 8 + head.len() as u64;
    for t in tensors {
        file.write_all(&t.data)?;
        total += t.data.len() as u64;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    Ok(total)
}

pub fn f32_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

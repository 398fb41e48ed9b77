//! A minimal, streaming safetensors writer. The format is an 8-byte little-endian header length,
//! a JSON header, then the raw little-endian tensor bytes. We write it ourselves because the
//! header must be byte-for-byte reproducible (sorted keys), which a hash-map based writer is
//! not, and so that tensors are written straight from the samples: no tensor is ever built in
//! memory, so a shard needs little more memory than its samples.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

#[derive(Clone, Copy, Debug)]
pub enum Dtype {
    F32,
    F64,
    U8,
    U16,
    U32,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::U8 => "U8",
            Dtype::U16 => "U16",
            Dtype::U32 => "U32",
        }
    }

    fn bytes(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::F32 | Dtype::U32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// Writes a tensor's little-endian bytes, row after row, into the file.
pub type Writer<'a> = Box<dyn Fn(&mut dyn Write) -> io::Result<()> + 'a>;

pub struct Tensor<'a> {
    pub name: &'static str,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub write: Writer<'a>,
}

/// A tensor written by `put` for each item of `items` in order (an episode, say, whose samples
/// `put` writes).
pub fn tensor_of<'a, T>(
    name: &'static str,
    dtype: Dtype,
    shape: Vec<usize>,
    items: &'a [T],
    put: impl Fn(&T, &mut dyn Write) -> io::Result<()> + 'a,
) -> Tensor<'a> {
    let write: Writer<'a> = Box::new(move |out| items.iter().try_for_each(|item| put(item, out)));
    Tensor {
        name,
        dtype,
        shape,
        write,
    }
}

impl Tensor<'_> {
    fn len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.bytes()
    }
}

/// The header for `tensors` laid out in the given order.
fn header(tensors: &[Tensor], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut entries = Map::new(); // serde_json's Map keeps keys sorted (no preserve_order)
    entries.insert("__metadata__".into(), json!(metadata));
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + t.len();
        let value: Value =
            json!({"dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [offset, end]});
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

/// Counts what passes through, so that a tensor that writes the wrong number of bytes is an
/// error instead of a corrupt file.
struct Counting<W: Write> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the file at `tmp`, syncs it, then renames it to `path`: a reader never sees a
/// partial file under the final name. Returns the file size.
pub fn write_atomic(
    path: &Path,
    tmp: &Path,
    tensors: &[Tensor],
    metadata: &BTreeMap<String, String>,
) -> io::Result<u64> {
    let head = header(tensors, metadata);
    let mut file = Counting {
        inner: io::BufWriter::with_capacity(1 << 20, File::create(tmp)?),
        count: 0,
    };
    file.write_all(&(head.len() as u64).to_le_bytes())?;
    file.write_all(&head)?;
    for t in tensors {
        let start = file.count;
        (t.write)(&mut file)?;
        if file.count - start != t.len() as u64 {
            return Err(io::Error::other(format!(
                "tensor {} wrote {} bytes, its shape says {}",
                t.name,
                file.count - start,
                t.len()
            )));
        }
    }
    let total = file.count;
    let file = file.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    Ok(total)
}

/// Little-endian bytes of `values` into a buffer (one write per row, not per number).
pub fn put_f32s<const N: usize>(out: &mut dyn Write, values: &[f32; N]) -> io::Result<()> {
    let mut row = [[0u8; 4]; N];
    for (bytes, v) in row.iter_mut().zip(values) {
        *bytes = v.to_le_bytes();
    }
    out.write_all(row.as_flattened())
}

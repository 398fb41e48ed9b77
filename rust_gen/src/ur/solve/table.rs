//! The solved table's file: safetensors, one f64 tensor of values in index order.

use super::position::{Index, State};
use super::solution::Solution;
use crate::core::safetensors::{tensor_of, write_atomic, Dtype};
use crate::ur::rules::PIECES;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The table file's format name, in its metadata.
pub const TABLE_FORMAT: &str = "ludus.ur-solution/1";

impl Solution<f64> {
    /// Writes the values as f64 in a safetensors file (one tensor, `values`, in index order),
    /// under a temporary name first; `metadata` joins the format, piece count and start value.
    pub fn save(&self, path: &Path, mut metadata: BTreeMap<String, String>) -> Result<u64, String> {
        metadata.insert("format".into(), TABLE_FORMAT.into());
        metadata.insert("pieces".into(), self.index.pieces.to_string());
        metadata.insert("positions".into(), self.index.len().to_string());
        metadata.insert(
            "start_value".into(),
            format!("{:.15}", self.value(State::start())),
        );
        let values = tensor_of(
            "values",
            Dtype::F64,
            vec![self.values.len()],
            &self.values,
            |v, out| out.write_all(&v.to_le_bytes()),
        );
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        write_atomic(path, &tmp, &[values], &metadata).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", path.display())
        })
    }
}

impl Solution<f64> {
    /// Reads the table of the real game (7 pieces a side), for players and the teacher: a table
    /// of a smaller game is refused.
    pub fn load_game(path: &Path) -> Result<Solution<f64>, String> {
        let table = Solution::load(path)?;
        if table.index.pieces as usize != PIECES {
            return Err(format!(
                "{}: the table solves the game with {} pieces a side; the game has {}",
                path.display(),
                table.index.pieces,
                PIECES
            ));
        }
        Ok(table)
    }

    /// Reads a table written by `save`, checking its format, piece count and length.
    pub fn load(path: &Path) -> Result<Solution<f64>, String> {
        let name = path.display();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        let bad = |what: &str| format!("{name}: not a ludus Ur solution table ({what})");
        let head_len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| bad("shorter than 8 bytes"))?;
        let head: Value = bytes
            .get(8..8usize.saturating_add(head_len))
            .and_then(|h| serde_json::from_slice(h).ok())
            .ok_or_else(|| bad("no JSON header"))?;
        let meta = &head["__metadata__"];
        if meta["format"] != TABLE_FORMAT {
            return Err(bad(&format!(
                "format {} instead of {TABLE_FORMAT}",
                meta["format"]
            )));
        }
        let pieces: u8 = meta["pieces"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .filter(|p| (1..=7).contains(p))
            .ok_or_else(|| bad("metadata 'pieces' is not 1..7"))?;
        let index = Index::new(pieces);
        let n = index.len() as usize;
        let tensor = &head["values"];
        if tensor["dtype"] != "F64" || tensor["shape"] != serde_json::json!([n]) {
            return Err(bad(&format!("tensor 'values' must be F64 of shape [{n}]")));
        }
        let data = bytes
            .get(8 + head_len..)
            .filter(|d| d.len() == 8 * n)
            .ok_or_else(|| bad(&format!("expected {} bytes of values", 8 * n)))?;
        let values = data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        Ok(Solution { index, values })
    }
}

//! An oracle for what items mean, independent of Postern's own comparison
//! (`postern_core::structure`): `tests/clients/same_meaning.py` reads both copies
//! with vobject, Radicale's parser, and compares them component by component. A test
//! that used the product's function as its oracle could not see that function's
//! mistakes.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// For each pair, whether the two copies mean the same.
pub fn same_meaning_all(pairs: &[(&[u8], &[u8])]) -> Result<Vec<bool>> {
    let json: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| {
            (
                String::from_utf8_lossy(a).into_owned(),
                String::from_utf8_lossy(b).into_owned(),
            )
        })
        .collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/same_meaning.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("python3 for the oracle")?;
    child
        .stdin
        .take()
        .context("oracle stdin")?
        .write_all(&serde_json::to_vec(&json)?)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Whether two copies mean the same.
pub fn same_meaning(a: &[u8], b: &[u8]) -> bool {
    same_meaning_all(&[(a, b)])
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(false)
}

//! The fuzz targets' checks on stable, in every test run: each committed seed in
//! `fuzz/corpus/<target>/`, then random mutations of it (bit flips, interesting bytes,
//! insertions, deletions, repeats, truncation). This is no substitute for coverage-guided
//! fuzzing (`.ci/fuzz`, nightly features); it keeps the checks compiling and catches
//! what a shallow search finds.
//!
//! `LATCHKEY_FUZZ_MUTATIONS` (default 150) mutations per seed; `LATCHKEY_FUZZ_SEED`
//! (default fixed, so a failure repeats) picks them.

use std::path::Path;

#[path = "../../../../fuzz/fuzz_targets/checks.rs"]
mod checks;

/// A target's check: panics on a finding.
type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("jws", checks::jws),
    ("jwk", checks::jwk),
    ("refresh_token", checks::refresh_token),
    ("http_headers", checks::http_headers),
    ("http_json", checks::http_json),
];

/// Bytes that parsers treat specially.
const INTERESTING: &[u8] = b"\x00\xff\x7f\x80\"\\{}[]:,.=;% \t\r\n0-9eE+/_";

fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = data.len();
        match rng.u8(0..7) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                data[i] ^= 1 << rng.u8(0..8);
            }
            1 if len > 0 => {
                let i = rng.usize(..len);
                data[i] = INTERESTING[rng.usize(..INTERESTING.len())];
            }
            2 => {
                let i = rng.usize(..=len);
                data.insert(i, rng.u8(..));
            }
            3 if len > 0 => {
                let start = rng.usize(..len);
                let end = rng.usize(start..=len.min(start + 16));
                data.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.usize(..len);
                let end = rng.usize(start..=len.min(start + 32));
                let piece = data[start..end].to_vec();
                let at = rng.usize(..=data.len());
                data.splice(at..at, piece);
            }
            5 => data.truncate(rng.usize(..=len)),
            _ => {
                let head = data[..rng.usize(..=len)].to_vec();
                data.extend_from_slice(&head);
            }
        }
    }
    data
}

/// Run `check` on `input`; on a panic, say which target and input before failing.
fn run(target: &str, check: Check, input: &[u8], origin: &str) {
    if let Err(panic) = std::panic::catch_unwind(|| check(input)) {
        eprintln!(
            "fuzz check {target} failed on {origin}; input (hex): {}",
            input.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        std::panic::resume_unwind(panic);
    }
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

#[test]
fn fuzz_checks_hold_on_the_seeds_and_their_mutations() {
    let mutations: usize = std::env::var("LATCHKEY_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("LATCHKEY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_201);
    let mut rng = fastrand::Rng::with_seed(seed);
    for &(target, check) in TARGETS {
        let seeds = seeds(target);
        for (name, seed) in &seeds {
            run(target, check, seed, &format!("seed {name}"));
            for i in 0..mutations {
                let input = mutate(&mut rng, seed);
                run(
                    target,
                    check,
                    &input,
                    &format!("mutation {i} of seed {name}"),
                );
            }
        }
        eprintln!(
            "fuzz replay {target}: {} seeds, {} mutations each",
            seeds.len(),
            mutations
        );
    }
}

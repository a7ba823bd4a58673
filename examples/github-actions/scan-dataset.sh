#!/usr/bin/env bash
# Scan a dataset folder for AI-generated images and gate on the synthetic fraction: the step
# that examples/github-actions/audit.yml runs (and tests/test_examples.py runs the same way).
#
# Usage: scan-dataset.sh [DATASET] [OUT] [THRESHOLD]
#   DATASET    any `audit scan` source: folder, .tar shards, parquet, hf:NAME   (default: data)
#   OUT        output folder: report.html, report.md, summary.json, results.parquet,
#              junit.xml                                                         (default: audit-out)
#   THRESHOLD  fail when the estimated synthetic fraction exceeds it             (default: 0.05)
#
# Exit codes are audit scan's: 0 ok, 1 above the threshold, 2 usage or input error.
# With GITHUB_STEP_SUMMARY set (as in every GitHub Actions step) a markdown summary is appended to it.
set -euo pipefail

dataset="${1:-data}"
out="${2:-audit-out}"
threshold="${3:-0.05}"

audit scan "$dataset" --out "$out" --overwrite --fail-above "$threshold" --format github --junit "$out/junit.xml" --quiet

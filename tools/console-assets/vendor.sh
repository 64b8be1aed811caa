#!/usr/bin/env bash
# Refresh gateway/console/static/vendor from the pinned npm packages (package-lock.json
# carries each tarball's SHA-512, which npm checks). Run after changing a version; the
# copied files are committed, so neither `make` nor a running gateway needs npm.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
target=../../gateway/console/static/vendor
rm -rf "$target"
mkdir -p "$target/leaflet/images" "$target/markercluster"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$target/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$target/leaflet/images/"
cp node_modules/leaflet/LICENSE "$target/leaflet/LICENSE"
cp node_modules/leaflet.markercluster/dist/leaflet.markercluster.js \
   node_modules/leaflet.markercluster/dist/MarkerCluster.css \
   node_modules/leaflet.markercluster/dist/MarkerCluster.Default.css "$target/markercluster/"
cp node_modules/leaflet.markercluster/MIT-LICENCE.txt "$target/markercluster/LICENSE"
{
  echo "# Copied by tools/console-assets/vendor.sh from the npm packages pinned in its package-lock.json"
  node -e 'const l=require("./package-lock.json").packages; for (const n of ["leaflet","leaflet.markercluster"]) { const p=l["node_modules/"+n]; console.log(`${n} ${p.version} ${p.integrity}`) }'
  (cd "$target" && find . -type f ! -name VERSIONS.txt | sort | xargs sha256sum)
} > "$target/VERSIONS.txt"

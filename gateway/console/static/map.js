// Maps: the report page's small one and the big one with every report, clustered.
// No base tiles unless the operator configured a tile URL: the districts and the
// responsibility segments are drawn from the gateway's own layers, so it works offline.
"use strict";

const KIND_COLOURS = { component: "#1f6feb", event: "#d1242f" };
const UNIT_COLOURS = ["#8250df", "#1a7f37", "#bf8700", "#cf222e", "#0969da", "#6e7781", "#953800", "#116329"];

function colourOf(text) {
  let sum = 0;
  for (const ch of text || "") { sum = (sum * 31 + ch.codePointAt(0)) % 9973; }
  return UNIT_COLOURS[sum % UNIT_COLOURS.length];
}

async function layerJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  return response.ok ? response.json() : null;
}

function baseMap(element) {
  // maxZoom on the map itself: without tiles nothing else sets it, and clustering needs it.
  const map = L.map(element, { preferCanvas: true, zoomSnap: 0.25, maxZoom: 19 });
  if (element.dataset.tiles) {
    L.tileLayer(element.dataset.tiles, { maxZoom: 19 }).addTo(map);
  }
  return map;
}

async function drawDistricts(map, url) {
  const districts = await layerJson(url);
  if (!districts) { return null; }
  const layer = L.geoJSON(districts, {
    style: { color: "#57606a", weight: 2, fillOpacity: 0.04 },
    onEachFeature: (feature, shape) => shape.bindTooltip(feature.properties.district_zh),
  }).addTo(map);
  return layer;
}

async function startMiniMap() {
  const element = document.getElementById("minimap");
  if (!element) { return; }
  const at = [Number(element.dataset.lat), Number(element.dataset.lon)];
  const map = baseMap(element);
  map.setView(at, 15);
  await drawDistricts(map, element.dataset.districts);
  L.circleMarker(at, { radius: 8, color: "#d1242f", weight: 3, fillOpacity: 0.8 })
    .addTo(map);
  window.cgtMap = map;   // for the browser tests: where the marker landed
}

async function startBigMap() {
  const element = document.getElementById("bigmap");
  if (!element) { return; }
  const map = baseMap(element);
  map.setView([32.0, 120.88], 12);
  const districts = await drawDistricts(map, element.dataset.districts);
  if (districts) { map.fitBounds(districts.getBounds()); }
  const segments = await layerJson(element.dataset.segments);
  if (segments) {
    L.geoJSON(segments, {
      style: (feature) => ({ color: colourOf(feature.properties.unit_zh), weight: 4, opacity: 0.8 }),
      onEachFeature: (feature, shape) => shape.bindTooltip(
        `${feature.properties.road_zh} ${feature.properties.extent_zh || ""} · ${feature.properties.unit_zh || ""}`),
    }).addTo(map);
  }
  const answer = await layerJson(element.dataset.points);
  const cluster = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false });
  for (const [lat, lon, caseNo, kind, code] of (answer && answer.points) || []) {
    const marker = L.circleMarker([lat, lon], { radius: 7, color: KIND_COLOURS[kind], weight: 2, fillOpacity: 0.7 });
    marker.bindTooltip(`${caseNo} (${code})`);
    marker.on("click", () => { window.location.href = element.dataset.report.replace("CASE", encodeURIComponent(caseNo)); });
    cluster.addLayer(marker);
  }
  map.addLayer(cluster);
  window.cgtCluster = cluster;   // for the browser tests: what was placed and clustered
  window.cgtMap = map;
}

startMiniMap();
startBigMap();

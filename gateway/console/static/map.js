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

async function drawSegments(map, url) {
  const segments = url ? await layerJson(url) : null;
  if (!segments) { return; }
  L.geoJSON(segments, {
    style: (feature) => ({ color: colourOf(feature.properties.unit_zh), weight: 4, opacity: 0.8 }),
    onEachFeature: (feature, shape) => shape.bindTooltip(
      `${feature.properties.road_zh} ${feature.properties.extent_zh || ""} · ${feature.properties.unit_zh || ""}`),
  }).addTo(map);
}

// The unit grid (万米单元网格) from zoom 16 on: the cells in view, asked for after each move.
const GRID_ZOOM = 16;

function followGrid(map, url) {
  if (!url) { return; }
  const layer = L.geoJSON(null, {
    style: { color: "#8c959f", weight: 1, fill: false, dashArray: "2 3" },
    onEachFeature: (feature, shape) => shape.bindTooltip(feature.properties.grid_code),
  }).addTo(map);
  async function refresh() {
    layer.clearLayers();
    if (map.getZoom() < GRID_ZOOM) { return; }
    const b = map.getBounds();
    const cells = await layerJson(`${url}?bbox=${b.getSouth()},${b.getWest()},${b.getNorth()},${b.getEast()}`);
    if (cells && map.getZoom() >= GRID_ZOOM) { layer.clearLayers(); layer.addData(cells); }
  }
  map.on("moveend", refresh);
  refresh();
  window.cgtGrid = layer;   // for the browser tests: the cells drawn
}

async function startMiniMap() {
  const element = document.getElementById("minimap");
  if (!element) { return; }
  const at = [Number(element.dataset.lat), Number(element.dataset.lon)];
  const map = baseMap(element);
  map.setView(at, 16);
  await drawDistricts(map, element.dataset.districts);
  await drawSegments(map, element.dataset.segments);
  followGrid(map, element.dataset.grid);
  L.circleMarker(at, { radius: 8, color: "#d1242f", weight: 3, fillOpacity: 0.8 })
    .addTo(map);
  window.cgtMap = map;   // for the browser tests: where the marker landed
}

// A map of the whole city: its districts in view, its responsibility segments drawn.
async function cityMap(element) {
  const map = baseMap(element);
  map.setView([32.0, 120.88], 12);
  const districts = await drawDistricts(map, element.dataset.districts);
  if (districts) { map.fitBounds(districts.getBounds()); }
  await drawSegments(map, element.dataset.segments);
  return map;
}

async function startBigMap() {
  const element = document.getElementById("bigmap");
  if (!element) { return; }
  const map = await cityMap(element);
  followGrid(map, element.dataset.grid);
  const answer = await layerJson(element.dataset.points);
  const total = ((answer && answer.points) || []).length;
  // Thousands of markers are added in chunks between frames (the page stays responsive);
  // the map is ready when the last chunk is in.
  const ready = () => { window.cgtMapReadyMs = performance.now(); };
  const cluster = L.markerClusterGroup({
    chunkedLoading: true,
    showCoverageOnHover: false,
    chunkProgress: (processed, all) => { if (processed === all) { ready(); } },
  });
  for (const [lat, lon, caseNo, kind, code] of (answer && answer.points) || []) {
    const marker = L.circleMarker([lat, lon], { radius: 7, color: KIND_COLOURS[kind], weight: 2, fillOpacity: 0.7 });
    marker.bindTooltip(`${caseNo} (${code})`);
    marker.on("click", () => { window.location.href = element.dataset.report.replace("CASE", encodeURIComponent(caseNo)); });
    cluster.addLayer(marker);
  }
  map.addLayer(cluster);
  window.cgtCluster = cluster;   // for the browser tests: what was placed and clustered
  window.cgtMap = map;
  if (total === 0) { ready(); }   // window.cgtMapReadyMs: for bench/console.py
}

// The fleet: each terminal at its last fix (green online, red offline, grey unknown);
// a click on it, or on its row of the table, draws its track of today.
async function startFleetMap() {
  const element = document.getElementById("fleetmap");
  if (!element) { return; }
  const map = await cityMap(element);
  const markers = new Map();
  const track = L.polyline([], { color: "#0969da", weight: 3 }).addTo(map);
  async function showTrack(deviceId) {
    const answer = await layerJson(element.dataset.track.replace("DEVICE", encodeURIComponent(deviceId)));
    const points = (answer && answer.points) || [];
    track.setLatLngs(points);
    if (points.length) { map.fitBounds(track.getBounds(), { maxZoom: 17, padding: [30, 30] }); }
    window.cgtTrack = { device: deviceId, points: points.length };
  }
  async function refresh() {
    const answer = await layerJson(element.dataset.api);
    for (const d of (answer && answer.devices) || []) {
      if (!d.last_fix) { continue; }
      const colour = d.online === true ? "#1a7f37" : d.online === false ? "#cf222e" : "#6e7781";
      let marker = markers.get(d.device_id);
      if (!marker) {
        marker = L.circleMarker([d.last_fix[0], d.last_fix[1]], { radius: 7, weight: 2, fillOpacity: 0.8 })
          .bindTooltip(d.device_id).on("click", () => showTrack(d.device_id)).addTo(map);
        markers.set(d.device_id, marker);
      }
      marker.setLatLng([d.last_fix[0], d.last_fix[1]]);
      marker.setStyle({ color: colour, fillColor: colour });
    }
    setTimeout(refresh, Number(document.body.dataset.refreshMs || 2000));
  }
  for (const row of document.querySelectorAll("#fleet-rows tr[data-device]")) {
    row.addEventListener("click", () => showTrack(row.dataset.device));
  }
  window.cgtShowTrack = showTrack;
  window.cgtMap = map;
  refresh();
}

startMiniMap();
startBigMap();
startFleetMap();

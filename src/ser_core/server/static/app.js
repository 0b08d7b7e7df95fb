// The page of `ser serve`: upload, progress (Server-Sent Events), and the result played back along
// its emotion timeline. No external assets: everything comes from this server.
"use strict";
const $ = (id) => document.getElementById(id);
const PX = 40; // pixels per second of the picture
let token = sessionStorage.getItem("ser-token");
let words = [], rows = [];

async function api(path, options = {}) {
  options.headers = Object.assign({}, options.headers, token ? { Authorization: "Bearer " + token } : {});
  const answer = await fetch(path, options);
  if (answer.status === 401) {
    token = prompt("This server needs its access token:");
    if (token) { sessionStorage.setItem("ser-token", token); return api(path, options); }
  }
  return answer;
}

async function reason(answer) {
  try { const body = await answer.json(); return body.detail || answer.statusText; } catch { return answer.statusText; }
}

function colour(label) { return COLOURS[label] || "#607d8b"; }

async function loadProfiles() {
  const answer = await api("v1/profiles");
  if (!answer.ok) return;
  for (const p of await answer.json()) {
    if (!p.installed) continue;
    const option = new Option(p.name + (p.restricted ? " (restricted)" : ""), p.name, p.default, p.default);
    $("profile").add(option);
  }
}

async function analyse(file) {
  $("message").textContent = "";
  const form = new FormData();
  form.append("file", file, file.name || "recording.webm");
  form.append("profile", $("profile").value);
  form.append("transcript", $("transcript").checked ? "true" : "false");
  form.append("language", $("language").value || "auto");
  form.append("speakers", $("speakers").value);
  $("progress").hidden = false;
  $("state").textContent = "uploading";
  $("bar").removeAttribute("value");
  const answer = await api("v1/analyses", { method: "POST", body: form });
  if (!answer.ok) { $("progress").hidden = true; $("message").textContent = await reason(answer); return; }
  const { id } = await answer.json();
  $("audio").src = URL.createObjectURL(file);
  follow(id);
}

function follow(id) {
  // EventSource cannot send a token header: with a token the page polls instead.
  const finish = () => openAnalysis(id, true);
  if (token) { poll(id, finish); return; }
  const events = new EventSource("v1/analyses/" + id + "/events");
  const show = (data) => {
    $("state").textContent = data.status + (data.pieces_total ? ` (${data.pieces_done} of ${data.pieces_total} pieces)` : "");
    if (data.pieces_total) { $("bar").max = data.pieces_total; $("bar").value = data.pieces_done; }
  };
  events.addEventListener("progress", (e) => show(JSON.parse(e.data)));
  events.addEventListener("done", () => { events.close(); finish(); });
  events.addEventListener("failed", (e) => { events.close(); $("progress").hidden = true; $("message").textContent = JSON.parse(e.data).error; loadHistory(); });
  events.onerror = () => { events.close(); poll(id, finish); };
}

async function poll(id, finish) {
  const answer = await api("v1/analyses/" + id);
  const body = await answer.json();
  if (body.status === "done") return finish();
  if (body.status === "failed") { $("progress").hidden = true; $("message").textContent = body.error; return; }
  $("state").textContent = body.status;
  setTimeout(() => poll(id, finish), 500);
}

async function openAnalysis(id, withAudio) {
  const answer = await api("v1/analyses/" + id);
  if (!answer.ok) { $("message").textContent = await reason(answer); return; }
  const body = await answer.json();
  if (!withAudio) $("audio").removeAttribute("src");
  $("progress").hidden = true;
  show(id, body);
  loadHistory();
}

function show(id, body) {
  const r = body.result;
  $("result").hidden = false;
  $("title").textContent = body.name;
  const overall = r.label ? `${r.label} (${r.confidence.toFixed(2)}${r.uncertain ? ", uncertain" : ""})` : r.status.replace("_", " ");
  $("overall").textContent = `Overall: ${overall}. ${r.duration.toFixed(1)} s, profile ${r.profile} (${r.backend_model_id})` +
    (r.transcriber ? `, transcript by ${r.transcriber.split(" (")[0]}, language ${r.language || "?"}` : "") + ".";
  const labels = [...new Set(r.segments.map((s) => s.label))];
  $("legend").innerHTML = "";
  for (const label of labels) {
    const key = document.createElement("span");
    key.className = "key";
    key.innerHTML = `<i style="background:${colour(label)}"></i>`;
    key.append(label);
    $("legend").append(key);
  }
  drawTimeline(r, body.envelope || [], body.envelope_rate || 0);
  drawWords(r);
  drawRows(r);
  $("speakers-summary").innerHTML = "";
  for (const s of r.speakers || []) {
    const li = document.createElement("li");
    li.textContent = `${s.speaker}: ${(100 * s.share).toFixed(0)} % of the speech, ${s.label || "no label"}` +
      (s.early && s.late && s.early !== s.late ? `; first third ${s.early}, last third ${s.late}` : "");
    $("speakers-summary").append(li);
  }
  $("downloads").innerHTML = "Download: ";
  for (const fmt of ["json", "csv", "srt", "vtt", "html"]) {
    const a = document.createElement("a");
    a.href = `v1/analyses/${id}.${fmt}`;
    a.download = `${body.name}.${fmt}`;
    a.textContent = fmt;
    a.addEventListener("click", (e) => { if (token) { e.preventDefault(); download(a.href, a.download); } });
    $("downloads").append(a, " ");
  }
}

async function download(href, name) {
  const blob = await (await api(href)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
}

function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  return node;
}

function drawTimeline(r, envelope, rate) {
  const lanes = (r.speakers || []).map((s) => s.speaker);
  const lane = (who) => Math.max(0, lanes.indexOf(who));
  const band = 36, gap = 14, top = 70;
  const height = top + Math.max(1, lanes.length) * (band + gap) + 20;
  const width = Math.max(600, r.duration * PX) + 20;
  const x = (t) => 10 + t * PX;
  const picture = svg("svg", { width, height, role: "img" });
  if (envelope.length && rate) {
    const upper = envelope.map((v, i) => `${x(i / rate).toFixed(1)},${(30 - 28 * v).toFixed(1)}`);
    const lower = envelope.map((v, i) => `${x(i / rate).toFixed(1)},${(30 + 28 * v).toFixed(1)}`).reverse();
    picture.append(svg("polygon", { points: upper.concat(lower).join(" "), fill: "#90a4ae" }));
  }
  lanes.forEach((who, i) => {
    const label = svg("text", { x: 2, y: top + i * (band + gap) - 2, "font-size": 11, fill: "#333" });
    label.textContent = who;
    picture.append(label);
  });
  for (const s of r.segments) {
    const h = band * Math.max(s.confidence, 0.1);
    const y = top + lane(s.speaker) * (band + gap) + band - h;
    const rect = svg("rect", {
      class: "segment", x: x(s.start), y, width: Math.max(1, (s.end - s.start) * PX), height: h,
      fill: colour(s.label), "fill-opacity": (0.35 + 0.65 * s.confidence).toFixed(2), "data-start": s.start,
    });
    const title = svg("title", {});
    title.textContent = `${s.start.toFixed(2)}-${s.end.toFixed(2)} s: ${s.speaker ? s.speaker + ", " : ""}${s.label} (${s.confidence.toFixed(2)})`;
    rect.append(title);
    rect.addEventListener("click", () => seek(s.start));
    picture.append(rect);
  }
  for (let t = 0; t <= r.duration; t += r.duration < 120 ? 5 : 30) {
    const tick = svg("text", { x: x(t), y: height - 4, "font-size": 11, fill: "#777" });
    tick.textContent = t + "s";
    picture.append(tick);
  }
  const head = svg("line", { id: "playhead", x1: 10, x2: 10, y1: 0, y2: height, stroke: "#d32f2f", "stroke-width": 1.5 });
  picture.append(head);
  $("timeline").innerHTML = "";
  $("timeline").append(picture);
}

function drawWords(r) {
  // Words as running text (never stacked on top of each other), each coloured by its emotion.
  $("words").innerHTML = "";
  words = [];
  let speaker = null;
  for (const w of r.words) {
    if (w.speaker && w.speaker !== speaker) {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = (speaker ? " " : "") + `[${w.speaker}] `;
      $("words").append(who);
      speaker = w.speaker;
    }
    const span = document.createElement("span");
    span.textContent = w.text;
    span.style.color = w.emotion ? colour(w.emotion) : "#222";
    span.title = `${w.start.toFixed(2)} s${w.emotion ? ", " + w.emotion : ""}`;
    span.dataset.start = w.start;
    span.addEventListener("click", () => seek(w.start));
    $("words").append(span, " ");
    words.push({ start: w.start, end: w.end, node: span });
  }
  if (!r.words.length) $("words").textContent = r.transcriber ? "(no words)" : "(no transcript)";
}

function drawRows(r) {
  const body = $("rows").querySelector("tbody");
  body.innerHTML = "";
  rows = [];
  const who = (r.turns || []).length > 0;
  for (const cell of $("rows").querySelectorAll(".who")) cell.hidden = !who;
  for (const row of r.timeline) {
    const tr = document.createElement("tr");
    if (row.uncertain) tr.className = "uncertain";
    const cells = [row.start.toFixed(2), row.end.toFixed(2)].concat(who ? [row.speaker || "-"] : [],
      [row.emotion || "-", row.confidence === null ? "" : row.confidence.toFixed(2), row.words ? row.text : (r.transcriber ? "(no words)" : "")]);
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
    if (who) tr.children[2].className = "who";
    tr.addEventListener("click", () => seek(row.start));
    body.append(tr);
    rows.push({ start: row.start, end: row.end, node: tr });
  }
}

function seek(t) {
  const audio = $("audio");
  audio.currentTime = t;
  highlight(t);
  if (audio.src) audio.play().catch(() => {});
}

function highlight(t) {
  for (const item of words.concat(rows)) item.node.classList.toggle("now", item.start <= t && t < item.end);
  const head = document.getElementById("playhead");
  if (head) { head.setAttribute("x1", 10 + t * PX); head.setAttribute("x2", 10 + t * PX); }
}

async function loadHistory() {
  const answer = await api("v1/analyses");
  if (!answer.ok) return;
  $("past").innerHTML = "";
  for (const a of await answer.json()) {
    const li = document.createElement("li");
    li.textContent = `${a.name}: ${a.status}` + (a.error ? ` (${a.error})` : "");
    if (a.status === "done") li.addEventListener("click", () => openAnalysis(a.id, false));
    $("past").append(li);
  }
}

function setUpRecording() {
  // The browser only allows the microphone on secure origins; localhost is one.
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(location.hostname);
  if (!local || !navigator.mediaDevices || !window.MediaRecorder) return;
  const button = $("record");
  button.hidden = false;
  let recorder = null;
  button.addEventListener("click", async () => {
    if (recorder) { recorder.stop(); return; }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      const type = recorder.mimeType || "audio/webm";
      analyse(new File(chunks, "recording." + (type.includes("ogg") ? "ogg" : "webm"), { type }));
      recorder = null;
      button.textContent = "Record";
    };
    recorder.start();
    button.textContent = "Stop";
  });
}

$("file").addEventListener("change", () => { if ($("file").files[0]) analyse($("file").files[0]); });
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) analyse(e.dataTransfer.files[0]);
});
$("audio").addEventListener("timeupdate", () => highlight($("audio").currentTime));
setUpRecording();
loadProfiles();
loadHistory();

// The loss curves of a fine-tune job, drawn on canvases (one per training stage), with a text summary
// for screen readers. No chart library: a few lines, axes and a legend are all it takes.

const COLORS = ["#2c7fb8", "#e6550d", "#31a354", "#756bb1", "#d62728", "#8c564b", "#17becf", "#bcbd22"];

function niceNumber(value) {
  if (!Number.isFinite(value)) return "";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e4 || abs < 1e-2)) return value.toExponential(1);
  return abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toFixed(2);
}

// history: [{stage, step, losses: {name: value}}] -> {stage: {name: [[step, value], ...]}}
export function seriesByStage(history) {
  const stages = {};
  for (const point of history) {
    const stage = (stages[point.stage] ||= {});
    for (const [name, value] of Object.entries(point.losses || {})) {
      if (Number.isFinite(value)) (stage[name] ||= []).push([point.step, value]);
    }
  }
  return stages;
}

export function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 180;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const style = getComputedStyle(document.documentElement);
  const text = style.getPropertyValue("--text").trim() || "#222";
  const line = style.getPropertyValue("--line").trim() || "#ccc";
  g.clearRect(0, 0, width, height);
  const names = Object.keys(series);
  const points = names.flatMap((name) => series[name]);
  g.font = "12px system-ui, sans-serif";
  g.fillStyle = text;
  if (!points.length) {
    g.fillText("No losses yet.", 12, height / 2);
    return;
  }
  let [xMin, xMax] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
  let [yMin, yMax] = [Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1]))];
  if (xMax === xMin) { xMin -= 1; xMax += 1; }
  if (yMax === yMin) { yMin -= 1; yMax += 1; }
  const pad = (yMax - yMin) * 0.05;
  yMin -= pad; yMax += pad;
  const left = 48, right = 10, top = 22, bottom = 24;
  const x = (v) => left + ((v - xMin) / (xMax - xMin)) * (width - left - right);
  const y = (v) => top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom);
  // axes and grid
  g.strokeStyle = line;
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (let i = 0; i <= 4; i += 1) {
    const v = yMin + ((yMax - yMin) * i) / 4;
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(width - right, y(v)); g.stroke();
    g.fillText(niceNumber(v), left - 6, y(v));
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  const ticks = new Set();
  for (let i = 0; i <= 4; i += 1) ticks.add(Math.round(xMin + ((xMax - xMin) * i) / 4));
  for (const v of ticks) if (v >= xMin && v <= xMax) g.fillText(String(v), x(v), height - bottom + 6);
  // one line per loss
  names.forEach((name, index) => {
    const color = COLORS[index % COLORS.length];
    const data = series[name];
    g.strokeStyle = color;
    g.lineWidth = 1.8;
    g.beginPath();
    data.forEach(([step, value], i) => (i ? g.lineTo(x(step), y(value)) : g.moveTo(x(step), y(value))));
    g.stroke();
    if (data.length === 1) { g.fillStyle = color; g.fillRect(x(data[0][0]) - 2, y(data[0][1]) - 2, 4, 4); }
  });
  // legend along the top
  g.textAlign = "left";
  g.textBaseline = "middle";
  let lx = left;
  names.forEach((name, index) => {
    g.fillStyle = COLORS[index % COLORS.length];
    g.fillRect(lx, 7, 14, 4);
    g.fillStyle = text;
    g.fillText(name, lx + 18, 9);
    lx += 26 + g.measureText(name).width;
  });
}

// Text alternative of a stage's curves: first and latest value of each loss.
export function summary(stage, series) {
  const parts = Object.entries(series).map(([name, data]) => {
    const first = data[0][1];
    const last = data[data.length - 1][1];
    return `${name} from ${niceNumber(first)} to ${niceNumber(last)}`;
  });
  const steps = Math.max(0, ...Object.values(series).flat().map((p) => p[0]));
  return `${stage} losses over ${steps} steps: ${parts.join(", ")}.`;
}

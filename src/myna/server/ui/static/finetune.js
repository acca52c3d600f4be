// Fine-tune: upload recordings, check the transcripts, train, follow progress and the loss curves, stop, resume.
import { announce, api, authHeaders, confirmDialog, describe, el, formatSeconds, showError } from "./api.js";
import { recordButton } from "./audio.js";
import { drawChart, seriesByStage, summary } from "./chart.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["queued", "preparing", "training", "stopping"];
const STATE_WORDS = {
  draft: "draft", queued: "waiting in the queue", preparing: "preparing the recordings", review: "ready for review",
  training: "training", stopping: "stopping", stopped: "stopped", failed: "failed", done: "done",
};
const view = { jobs: [], selected: null, timer: 0, recordings: [], shownTranscriptsFor: null, audioUrls: [] };

export function configureFineTune(state) {
  $("tab-finetune").hidden = !state.config.features.fine_tunes;
}

export async function showFineTune(state) {
  try {
    const bases = (await api("/v1/fine-tunes/bases")).data;
    const select = $("ft-base");
    const previous = select.value;
    select.replaceChildren(...bases.map((base) => el("option", { value: base.id }, base.label)));
    if (previous) select.value = previous;
    await refreshJobs(state);
  } catch (error) {
    showError($("ft-error"), error);
  }
}

async function refreshJobs(state) {
  view.jobs = (await api("/v1/fine-tunes")).data;
  $("jobs-empty").hidden = view.jobs.length > 0;
  $("jobs-list").replaceChildren(...view.jobs.map((job) => el("li", {},
    el("button", { type: "button", class: "secondary", "aria-current": String(job.id === view.selected),
      onclick: () => select(state, job.id) }, `${job.name}: ${STATE_WORDS[job.state] || job.state}`))));
  if (view.selected) {
    const job = view.jobs.find((j) => j.id === view.selected);
    if (job) render(state, job);
    else { view.selected = null; $("job-view").hidden = true; }
  }
}

async function select(state, id) {
  view.selected = id;
  view.shownTranscriptsFor = null;
  await refreshJobs(state);
  $("job-title").focus();
  poll(state);
}

// While the chosen job is active, ask for its state every second.
function poll(state) {
  window.clearTimeout(view.timer);
  const job = view.jobs.find((j) => j.id === view.selected);
  if (!job || !ACTIVE.includes(job.state)) return;
  view.timer = window.setTimeout(async () => {
    try {
      const fresh = await api(`/v1/fine-tunes/${job.id}`);
      const before = job.state;
      Object.assign(job, fresh);
      render(state, job);
      if (fresh.state !== before) {
        announce(`${job.name}: ${STATE_WORDS[fresh.state] || fresh.state}${fresh.message ? `. ${fresh.message}` : ""}`);
        await refreshJobs(state);
      }
    } catch (error) {
      showError($("job-error"), error);
    }
    poll(state);
  }, 1000);
}

function stageText(job) {
  const p = job.progress || {};
  if (job.state === "queued") return `Waiting: number ${job.queue_position || 1} in the queue.`;
  if (job.state === "done") return "Finished.";
  if (job.state === "review") return "Prepared: listen to the clips, correct their transcripts, then start training.";
  if (!p.stage) return job.state === "draft" ? `${job.recordings.length} recording(s) uploaded.` : "";
  const parts = [`Stage: ${p.stage}`];
  if (p.total) parts.push(`step ${p.step} of ${p.total}`);
  if (p.epoch) parts.push(`epoch ${p.epoch}`);
  if (p.eta_s != null && ACTIVE.includes(job.state)) parts.push(`about ${formatSeconds(p.eta_s)} left in this stage`);
  return parts.join(" · ");
}

function render(state, job) {
  $("job-view").hidden = false;
  $("job-title").textContent = `Job ${job.name}`;
  $("job-title").tabIndex = -1;
  $("job-state").textContent = STATE_WORDS[job.state] || job.state;
  $("job-state").dataset.state = job.state;
  $("job-message").textContent = job.message || (job.state === "done" ? `The voice ${job.voice} is ready: see Voices.` : "");
  $("job-stage").textContent = stageText(job);
  $("job-progress").hidden = ["draft", "review"].includes(job.state);
  const p = job.progress || {};
  const progress = $("job-progress");
  progress.max = p.total || 1;
  progress.value = job.state === "done" ? progress.max : Math.min(p.step || 0, progress.max);
  $("job-losses").textContent = Object.keys(p.losses || {}).length
    ? `Latest losses: ${Object.entries(p.losses).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ")}` : "";
  drawCharts(p.history || []);
  $("job-start").hidden = !["draft", "review"].includes(job.state);
  $("job-cancel").hidden = !ACTIVE.includes(job.state) || job.state === "stopping";
  $("job-resume").hidden = !["stopped", "failed"].includes(job.state) || !job.action;
  $("job-delete").disabled = ["preparing", "training", "stopping"].includes(job.state);
  const reviewable = ["review", "stopped", "failed", "done"].includes(job.state) && job.action === "train";
  $("job-transcripts-block").hidden = !reviewable;
  $("job-save").hidden = job.state === "done";
  if (reviewable && view.shownTranscriptsFor !== `${job.id}:${job.state}`) {
    view.shownTranscriptsFor = `${job.id}:${job.state}`;
    loadTranscripts(job).catch((error) => showError($("job-error"), error));
  }
}

function drawCharts(history) {
  const box = $("job-charts");
  const stages = seriesByStage(history);
  const names = Object.keys(stages);
  if (box.dataset.stages !== names.join(",")) {
    box.dataset.stages = names.join(",");
    box.replaceChildren(...names.map((stage) => el("figure", {},
      el("canvas", { role: "img", "data-stage": stage }), el("figcaption", {}))));
  }
  for (const figure of box.children) {
    const canvas = figure.querySelector("canvas");
    const stage = canvas.dataset.stage;
    const text = summary(stage, stages[stage]);
    canvas.setAttribute("aria-label", text);
    canvas.dataset.points = String(Object.values(stages[stage]).reduce((n, series) => n + series.length, 0));
    figure.querySelector("figcaption").textContent = `${stage} losses (by step)`;
    drawChart(canvas, stages[stage]);
  }
}

async function loadTranscripts(job) {
  const items = (await api(`/v1/fine-tunes/${job.id}/transcripts`)).data;
  view.audioUrls.forEach((url) => URL.revokeObjectURL(url));
  view.audioUrls = [];
  const locked = job.state === "done";
  $("job-transcripts").replaceChildren(...items.map((item) => {
    const id = `utt-${item.index}`;
    const play = el("button", { type: "button", class: "secondary", "aria-label": `Play clip ${item.index + 1}` }, "Play");
    play.addEventListener("click", () => playClip(job, item.index, play));
    return el("li", {}, el("span", { class: "num" }, `${item.index + 1}`), play,
      el("label", { for: id, class: "visually-hidden" }, `Transcript of clip ${item.index + 1}`),
      el("textarea", { id, rows: "2", "data-index": item.index, "data-original": item.text, readonly: locked }, item.text));
  }));
}

async function playClip(job, index, button) {
  try {
    const response = await fetch(`/v1/fine-tunes/${job.id}/utterances/${index}/audio`, { headers: authHeaders() });
    if (!response.ok) throw new Error(`The clip could not be loaded (${response.status}).`);
    const url = URL.createObjectURL(await response.blob());
    view.audioUrls.push(url);
    const audio = new Audio(url);
    button.disabled = true;
    audio.addEventListener("ended", () => { button.disabled = false; });
    await audio.play();
  } catch (error) {
    button.disabled = false;
    showError($("job-error"), error);
  }
}

async function saveTranscripts(state) {
  const job = view.jobs.find((j) => j.id === view.selected);
  const inputs = [...$("job-transcripts").querySelectorAll("textarea")];
  const changed = inputs.filter((input) => input.value.trim() !== input.dataset.original);
  if (!changed.length) {
    announce("No transcript was changed.");
    return true;
  }
  try {
    await api(`/v1/fine-tunes/${job.id}/transcripts`, {
      method: "PUT", json: { items: changed.map((input) => ({ index: Number(input.dataset.index), text: input.value })) },
    });
    changed.forEach((input) => { input.dataset.original = input.value.trim(); });
    announce(`Saved ${changed.length} correction(s).`);
    return true;
  } catch (error) {
    showError($("job-error"), error);
    return false;
  }
}

async function act(state, action) {
  const job = view.jobs.find((j) => j.id === view.selected);
  showError($("job-error"), null);
  try {
    if (action === "start" && job.state === "review" && !(await saveTranscripts(state))) return;
    await api(`/v1/fine-tunes/${job.id}/${action}`, { method: "POST" });
    announce({ start: "Training queued.", cancel: "Stopping: the current step is saved first.", resume: "Resumed: queued again." }[action]);
    view.shownTranscriptsFor = null;
    await refreshJobs(state);
    poll(state);
  } catch (error) {
    showError($("job-error"), error);
  }
}

async function removeJob(state) {
  const job = view.jobs.find((j) => j.id === view.selected);
  if (!(await confirmDialog(`Delete the job ${job.name} with its recordings${job.voice ? " and the voice it trained" : ""}?`))) return;
  try {
    await api(`/v1/fine-tunes/${job.id}`, { method: "DELETE" });
    announce(`Deleted the job ${job.name}.`);
    view.selected = null;
    $("job-view").hidden = true;
    await refreshJobs(state);
    $("jobs-title").focus();
  } catch (error) {
    showError($("job-error"), error);
  }
}

function renderRecordings() {
  const files = [...$("ft-files").files].map((file) => ({ blob: file, name: file.name, label: file.name }));
  const all = [...files, ...view.recordings];
  $("ft-recordings").replaceChildren(...all.map((r) => el("li", {}, r.label)));
  return all;
}

function fieldNumber(id) {
  const value = $(id).value.trim();
  return value === "" ? undefined : Number(value);
}

async function createJob(state) {
  const error = $("ft-error");
  showError(error, null);
  const recordings = renderRecordings();
  const missing = [["ft-name", "Give the new voice a name."], ["ft-subject", "Say whose voice the recordings are: consent is required."],
    ["ft-statement", "Write what the speaker agreed to: consent is required."]].find(([id]) => !$(id).value.trim());
  if (missing) { error.textContent = missing[1]; $(missing[0]).focus(); return; }
  if (!recordings.length) { error.textContent = "Add at least one recording."; $("ft-files").focus(); return; }
  const body = {
    name: $("ft-name").value.trim(), language: $("ft-lang").value, base: $("ft-base").value,
    consent_subject: $("ft-subject").value.trim(), consent_statement: $("ft-statement").value.trim(),
  };
  for (const key of ["sovits_epochs", "gpt_epochs", "sovits_batch", "gpt_batch", "seed"]) {
    const value = fieldNumber(`ft-${key}`);
    if (value !== undefined) body[key] = value;
  }
  $("ft-create").disabled = true;
  try {
    const job = await api("/v1/fine-tunes", { method: "POST", json: body });
    for (const [index, recording] of recordings.entries()) {
      announce(`Uploading recording ${index + 1} of ${recordings.length}…`);
      const data = new FormData();
      data.append("file", recording.blob, recording.name);
      await api(`/v1/fine-tunes/${job.id}/recordings`, { method: "POST", form: data });
    }
    await api(`/v1/fine-tunes/${job.id}/prepare`, { method: "POST" });
    announce(`Job ${job.name} created: preparing the recordings.`);
    $("ft-form").reset();
    view.recordings = [];
    renderRecordings();
    await select(state, job.id);
  } catch (failure) {
    showError(error, failure);
    announce(`The job was not created: ${describe(failure)}`);
  } finally {
    $("ft-create").disabled = false;
  }
}

export function initFineTune(state) {
  $("ft-form").addEventListener("submit", (event) => { event.preventDefault(); createJob(state); });
  $("ft-files").addEventListener("change", renderRecordings);
  recordButton($("ft-record"), el("span"), (wav, seconds) => {
    view.recordings.push({ blob: wav, name: `recording-${view.recordings.length + 1}.wav`,
      label: `a recording of ${seconds.toFixed(1)} s` });
    renderRecordings();
    announce(`Recording added (${seconds.toFixed(1)} s).`);
  }, (error) => showError($("ft-error"), error));
  $("job-start").addEventListener("click", () => act(state, "start"));
  $("job-cancel").addEventListener("click", () => act(state, "cancel"));
  $("job-resume").addEventListener("click", () => act(state, "resume"));
  $("job-save").addEventListener("click", () => saveTranscripts(state));
  $("job-delete").addEventListener("click", () => removeJob(state));
  $("jobs-title").tabIndex = -1;
  window.addEventListener("resize", () => {
    const job = view.jobs.find((j) => j.id === view.selected);
    if (job) drawCharts((job.progress || {}).history || []);
  });
}

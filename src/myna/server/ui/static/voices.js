// Voices: list, create (uploaded or recorded clip, with the consent the server asks for), rename, emotion
// references, delete; and the voices fine-tuned on this server.
import { announce, api, confirmDialog, describe, el, fillLanguages, showError } from "./api.js";
import { recordButton } from "./audio.js";
import { refreshVoiceChoices } from "./speak.js";

const $ = (id) => document.getElementById(id);
const EMOTIONS = ["neutral", "happy", "sad", "angry", "surprised", "fearful", "calm", "whisper"];
const form = { clip: null, clipName: "", reading: null, readingName: "", challenge: null };

export async function loadVoices(state) {
  const answer = await api("/v1/voices");
  state.voices = answer.data;
  renderVoices(state);
  refreshVoiceChoices(state);
  loadTrained(state).catch(() => { $("trained-block").hidden = true; });
}

async function loadTrained(state) {
  const scopes = (state.config.auth.key && state.config.auth.key.scopes) || [];
  if (!state.config.features.fine_tunes || (state.config.auth.required && !scopes.includes("admin"))) {
    $("trained-block").hidden = true;
    return;
  }
  const jobs = (await api("/v1/fine-tunes")).data.filter((job) => job.state === "done");
  $("trained-block").hidden = !jobs.length;
  $("trained-list").replaceChildren(...jobs.map((job) => el("li", {},
    el("div", { class: "voice-head" },
      el("span", { class: "voice-name" }, job.voice),
      el("button", { type: "button", class: "danger", onclick: () => deleteTrained(state, job) }, `Delete ${job.voice}`)),
    el("p", { class: "voice-meta" }, `fine-tuned ${new Date(job.updated_at * 1000).toLocaleString()} · `,
      el("code", {}, `myna say --voice ${job.voice} "Hello."`)))));
}

async function deleteTrained(state, job) {
  if (!(await confirmDialog(`Delete the fine-tuned voice ${job.voice}, its models and its recordings? This cannot be undone.`))) return;
  try {
    await api(`/v1/fine-tunes/${job.id}`, { method: "DELETE" });
    announce(`Deleted the fine-tuned voice ${job.voice}.`);
    await loadTrained(state);
  } catch (error) {
    announce(`Could not delete: ${describe(error)}`);
  }
}

function renderVoices(state) {
  const voices = state.voices;
  $("voices-empty").hidden = voices.length > 0;
  $("voices-list").replaceChildren(...voices.map((voice) => voiceItem(state, voice)));
}

function voiceItem(state, voice) {
  const features = state.config.features;
  const item = el("li", { "data-voice": voice.name });
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", class: "secondary", onclick: () => {
      state.selectTab("speak");
      $("speak-voice").value = voice.id;
      $("speak-text").focus();
    } }, `Speak with ${voice.name}`));
  if (features.rename) {
    actions.append(el("button", { type: "button", class: "secondary", onclick: () => renameForm(state, voice, item) }, `Rename ${voice.name}`));
  }
  if (features.references) {
    actions.append(el("button", { type: "button", class: "secondary", onclick: () => referenceForm(voice, item) }, `Add an emotion reference to ${voice.name}`));
  }
  actions.append(el("button", { type: "button", class: "danger", onclick: () => deleteVoice(state, voice) }, `Delete ${voice.name}`));
  item.append(
    el("div", { class: "voice-head" }, el("span", { class: "voice-name" }, voice.name),
      el("span", { class: "voice-meta" }, `${voice.language} · ${voice.clip_seconds.toFixed(1)} s clip`)),
    el("p", { class: "voice-meta" }, voice.transcript ? `“${voice.transcript}”` : "No transcript (timbre only)."),
    actions);
  return item;
}

function renameForm(state, voice, item) {
  const input = el("input", { id: `rename-${voice.id}`, value: voice.name, maxlength: "100", required: true });
  const error = el("p", { class: "error", role: "alert" });
  const box = el("form", { class: "row wrap" }, el("label", { for: input.id }, "New name"), input,
    el("button", { type: "submit", class: "primary" }, "Save"),
    el("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Cancel"), error);
  box.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData();
    data.append("name", input.value.trim());
    try {
      await api(`/v1/voices/${voice.id}`, { method: "PATCH", form: data });
      announce(`Renamed to ${input.value.trim()}.`);
      await loadVoices(state);
    } catch (failure) {
      showError(error, failure);
    }
  });
  item.append(box);
  input.focus();
}

function referenceForm(voice, item) {
  const id = `ref-${voice.id}`;
  const emotion = el("select", { id: `${id}-emotion` }, ...EMOTIONS.map((name) => el("option", {}, name)));
  const file = el("input", { id: `${id}-file`, type: "file", accept: "audio/*" });
  const text = el("input", { id: `${id}-text` });
  const error = el("p", { class: "error", role: "alert" });
  const box = el("form", { class: "card" },
    el("div", { class: "grid" },
      el("div", { class: "field" }, el("label", { for: emotion.id }, "Emotion"), emotion),
      el("div", { class: "field" }, el("label", { for: file.id }, "Clip"), file),
      el("div", { class: "field" }, el("label", { for: text.id }, "What the clip says"), text)),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Add reference"),
      el("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Cancel")), error);
  box.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files[0]) { error.textContent = "Choose a clip first."; return; }
    const data = new FormData();
    data.append("emotion", emotion.value);
    data.append("file", file.files[0]);
    if (text.value.trim()) data.append("transcript", text.value.trim());
    try {
      await api(`/v1/voices/${voice.id}/references`, { method: "POST", form: data });
      announce(`Added a ${emotion.value} reference to ${voice.name}.`);
      box.remove();
    } catch (failure) {
      showError(error, failure);
    }
  });
  item.append(box);
  emotion.focus();
}

async function deleteVoice(state, voice) {
  if (!(await confirmDialog(`Delete the voice ${voice.name}? Its clip, consent record and cached audio are erased.`))) return;
  try {
    await api(`/v1/voices/${voice.id}`, { method: "DELETE" });
    announce(`Deleted ${voice.name}.`);
    await loadVoices(state);
    $("voices-title").focus();
  } catch (error) {
    announce(`Could not delete ${voice.name}: ${describe(error)}`);
  }
}

function setClip(blob, name, description) {
  form.clip = blob;
  form.clipName = name;
  $("voice-clip-state").textContent = description;
  const preview = $("voice-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
}

async function getChallenge(state) {
  const error = $("voice-error");
  showError(error, null);
  try {
    const challenge = await api("/v1/voices/consent-challenge", { method: "POST", json: { language: $("voice-lang").value } });
    form.challenge = challenge;
    $("captcha-text").textContent = challenge.text || challenge.sentence;
    $("captcha-text").hidden = false;
    const expires = challenge.expires_at ? new Date(challenge.expires_at * 1000) : null;
    $("captcha-expiry").textContent = expires ? `Read it aloud and record it before ${expires.toLocaleTimeString()}.` : "";
    announce(`Sentence to read: ${$("captcha-text").textContent}`);
  } catch (failure) {
    showError(error, failure);
  }
}

// The multipart form of POST /v1/voices, or a message saying what is missing.
function voiceForm(state) {
  const name = $("voice-name").value.trim();
  if (!name) return ["voice-name", "Give the voice a name."];
  if (!form.clip) return ["voice-file", "Choose or record a reference clip (3 to 60 seconds)."];
  const subject = $("consent-subject").value.trim();
  if (!subject) return ["consent-subject", "Say who is speaking in the clip: consent is required."];
  const data = new FormData();
  data.append("file", form.clip, form.clipName);
  data.append("name", name);
  data.append("language", $("voice-lang").value);
  if ($("voice-transcript").value.trim()) data.append("transcript", $("voice-transcript").value.trim());
  data.append("consent_subject", subject);
  if (state.config.consent_mode === "captcha") {
    if (!form.challenge) return ["captcha-get", "Get a sentence for the speaker to read first."];
    if (!form.reading) return ["captcha-file", "Add the recording of the speaker reading the sentence."];
    data.append("challenge_id", form.challenge.id);
    data.append("consent_recording", form.reading, form.readingName);
  } else {
    const statement = $("consent-statement").value.trim();
    if (!statement) return ["consent-statement", "Write what the speaker agreed to: consent is required."];
    data.append("consent_statement", statement);
    if ($("consent-by").value.trim()) data.append("consent_obtained_by", $("consent-by").value.trim());
  }
  return data;
}

async function createVoice(state) {
  const error = $("voice-error");
  showError(error, null);
  const data = voiceForm(state);
  if (Array.isArray(data)) {
    error.textContent = data[1];
    $(data[0]).focus();
    return;
  }
  $("voice-create").disabled = true;
  announce("Checking the clip and creating the voice…");
  try {
    const voice = await api("/v1/voices", { method: "POST", form: data });
    announce(`Created the voice ${voice.name}.`);
    $("voice-form").reset();
    Object.assign(form, { clip: null, reading: null, challenge: null });
    $("voice-clip-state").textContent = "No clip chosen.";
    $("voice-preview").hidden = true;
    $("captcha-text").hidden = true;
    await loadVoices(state);
  } catch (failure) {
    showError(error, failure);
    announce(`The voice was not created: ${describe(failure)}`);
    if (failure.code === "challenge_replayed" || failure.code === "challenge_expired") form.challenge = null;
  } finally {
    $("voice-create").disabled = false;
  }
}

export function configureVoices(state) {
  fillLanguages($("voice-lang"), state.config.languages.filter((code) => code !== "auto"), "en");
  const captcha = state.config.consent_mode === "captcha";
  $("captcha").hidden = !captcha;
  $("consent-statement-field").hidden = captcha;
  $("consent-by-field").hidden = captcha;
}

export function initVoices(state) {
  $("voice-file").addEventListener("change", () => {
    const file = $("voice-file").files[0];
    if (file) setClip(file, file.name, `Clip: ${file.name}`);
  });
  const onError = (error) => { $("voice-error").textContent = describe(error); };
  recordButton($("voice-record"), $("voice-clip-state"), (wav, seconds) => {
    setClip(wav, "recording.wav", `Clip: a recording of ${seconds.toFixed(1)} s`);
  }, onError);
  recordButton($("captcha-record"), $("captcha-state"), (wav, seconds) => {
    form.reading = wav;
    form.readingName = "consent.wav";
    $("captcha-state").textContent = `Reading: a recording of ${seconds.toFixed(1)} s`;
  }, onError);
  $("captcha-file").addEventListener("change", () => {
    const file = $("captcha-file").files[0];
    if (!file) return;
    form.reading = file;
    form.readingName = file.name;
    $("captcha-state").textContent = `Reading: ${file.name}`;
  });
  $("captcha-get").addEventListener("click", () => getChallenge(state));
  $("voice-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createVoice(state);
  });
  $("voices-title").tabIndex = -1;
}

// Speak: text + voice + options -> /tts streamed (playback starts with the first chunk), then kept in the history.
import { announce, authHeaders, describe, el, errorOf, fillLanguages, showError } from "./api.js";
import { StreamPlayer } from "./audio.js";
import { addClip, renderHistory } from "./history.js";

const $ = (id) => document.getElementById(id);
const SPLIT_LABELS = {
  cut0: "No splitting", cut1: "Every 4 sentences", cut2: "Every 50 characters", cut3: "At 。",
  cut4: "At full stops", cut5: "At punctuation",
};
const NUMBER_OPTIONS = ["speed_factor", "top_k", "top_p", "temperature", "repetition_penalty", "fragment_interval", "seed"];
const player = new StreamPlayer();
let controller = null;

export function configureSpeak(state) {
  const config = state.config;
  fillLanguages($("speak-lang"), config.languages, $("speak-lang").value || "auto");
  $("opt-text_split_method").replaceChildren(...config.split_methods.map((name) => el("option", { value: name }, SPLIT_LABELS[name] || name)));
  resetOptions(config.defaults);
  for (const field of document.querySelectorAll("[data-prosody]")) {
    field.hidden = !config.features.prosody.includes(field.dataset.prosody);
  }
  $("speak-emotion-field").hidden = !config.features.emotion;
  $("speak-text").maxLength = config.limits.max_text_chars;
}

function resetOptions(defaults) {
  for (const [name, value] of Object.entries(defaults)) {
    const input = $(`opt-${name}`);
    if (input) input.value = value;
  }
  $("opt-pitch").value = 0;
  $("opt-volume").value = 0;
}

export function refreshVoiceChoices(state) {
  const select = $("speak-voice");
  const previous = select.value;
  const voices = state.voices || [];
  select.replaceChildren(...voices.map((voice) => el("option", { value: voice.id }, `${voice.name} (${voice.language})`)));
  if (voices.some((voice) => voice.id === previous)) select.value = previous;
  $("speak-voice-hint").textContent = voices.length ? "" : "No voices yet: create one in the Voices tab.";
  select.disabled = !voices.length;
}

// The /tts request body from the form; a message (string) when something is missing.
function requestBody(state) {
  const text = $("speak-text").value;
  if (!text.trim()) return "Type the text to speak first.";
  const voice = (state.voices || []).find((v) => v.id === $("speak-voice").value);
  if (!voice) return "Choose a voice first (create one in the Voices tab).";
  const body = {
    text, text_lang: $("speak-lang").value, ref_audio_path: `voice:${voice.id}`, prompt_lang: voice.language,
    text_split_method: $("opt-text_split_method").value, media_type: "wav", streaming_mode: 2,
  };
  for (const name of NUMBER_OPTIONS) {
    const input = $(`opt-${name}`);
    if (input.value === "") continue;
    const value = Number(input.value);
    if (!Number.isFinite(value)) return `${input.labels[0].textContent} must be a number.`;
    body[name] = name === "top_k" || name === "seed" ? Math.round(value) : value;
  }
  for (const name of state.config.features.prosody) {
    const value = Number($(`opt-${name}`).value);
    if (value) body[name] = value;
  }
  if (state.config.features.emotion && $("speak-emotion").value) body.emotion = $("speak-emotion").value;
  return { body, voice };
}

async function speak(state) {
  const error = $("speak-error");
  showError(error, null);
  const request = requestBody(state);
  if (typeof request === "string") {
    error.textContent = request;
    $("speak-text").focus();
    return;
  }
  player.prepare(); // inside the click: browsers start audio only after a gesture
  controller = new AbortController();
  $("speak-go").disabled = true;
  $("speak-stop").disabled = false;
  announce("Generating…");
  const meter = $("speak-meter");
  const started = performance.now();
  let firstAudio = null;
  try {
    const response = await fetch("/tts", {
      method: "POST", headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(request.body), signal: controller.signal,
    });
    if (!response.ok) throw await errorOf(response);
    const clip = await player.play(response, ({ seconds }) => {
      if (firstAudio === null) {
        firstAudio = (performance.now() - started) / 1000;
        announce("Playing.");
      }
      meter.textContent = `${seconds.toFixed(1)} s received`;
    });
    meter.textContent = `${clip.seconds.toFixed(1)} s, first audio after ${firstAudio.toFixed(1)} s`;
    state.lastPlayback = { seconds: clip.seconds, firstAudio, player };
    await addClip({ text: request.body.text, voice: request.voice.name, seconds: clip.seconds, wav: clip.blob });
    await renderHistory();
    announce(`Done: ${clip.seconds.toFixed(1)} seconds of audio, saved in Recent clips.`);
  } catch (failure) {
    if (failure.name === "AbortError") {
      announce("Stopped.");
    } else {
      player.stop();
      error.textContent = describe(failure);
      announce(`Could not speak: ${describe(failure)}`);
    }
  } finally {
    $("speak-go").disabled = false;
    $("speak-stop").disabled = true;
    controller = null;
  }
}

export function initSpeak(state) {
  $("speak-form").addEventListener("submit", (event) => {
    event.preventDefault();
    speak(state);
  });
  $("speak-stop").addEventListener("click", () => {
    player.stop();
    if (controller) controller.abort();
  });
  $("speak-reset").addEventListener("click", () => {
    resetOptions(state.config.defaults);
    announce("Options reset to their defaults.");
  });
  const count = () => { $("speak-count").textContent = String($("speak-text").value.length); };
  $("speak-text").addEventListener("input", count);
  $("speak-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("speak-form").requestSubmit();
  });
  state.player = player;
  renderHistory().catch(() => {});
}

// The page: tabs, the API key, the server's configuration; each tab's module does the rest.
import { announce, api, describe, key, onUnauthorized } from "./api.js";
import { configureFineTune, initFineTune, showFineTune } from "./finetune.js";
import { configureSpeak, initSpeak } from "./speak.js";
import { configureVoices, initVoices, loadVoices } from "./voices.js";

const state = { config: null, voices: [] };
window.myna = state; // for the browser console (and the page's tests)

const $ = (id) => document.getElementById(id);

// Tabs: arrow keys move between them (roving tabindex), Enter/Space or focus by arrow selects.
function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab, focus = true) => {
    for (const other of tabs) {
      const chosen = other === tab;
      other.setAttribute("aria-selected", String(chosen));
      other.tabIndex = chosen ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !chosen;
    }
    if (focus) tab.focus();
    if (tab.id === "tab-voices") loadVoices(state).catch(() => {});
    if (tab.id === "tab-finetune") showFineTune(state);
    history.replaceState(null, "", `#${tab.id.slice(4)}`);
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(tabs[(index + moves[event.key] + tabs.length) % tabs.length]);
    });
  });
  const wanted = tabs.find((tab) => `#${tab.id.slice(4)}` === location.hash);
  if (wanted) select(wanted, false);
  state.selectTab = (name) => select($(`tab-${name}`));
}

async function loadConfig() {
  state.config = await api("/v1/ui/config");
  const auth = state.config.auth;
  const needsKey = auth.required && !(auth.key && auth.key.valid);
  $("key-panel").hidden = !needsKey;
  document.body.dataset.locked = String(needsKey); // nothing else works without the key: show only its form
  $("key-state").hidden = !(auth.required && auth.key && auth.key.valid);
  if (auth.key) {
    $("key-label").textContent = `Key in use (${auth.key.scopes.join(", ") || "no scopes"})`;
  }
  if (auth.required && key.get() && !(auth.key && auth.key.valid)) {
    $("key-error").textContent = "That key was not accepted; check it and try again.";
  }
  return !needsKey;
}

function initKey() {
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("key-input").value.trim();
    if (!value) {
      $("key-error").textContent = "Enter the key first.";
      return;
    }
    key.set(value);
    $("key-input").value = "";
    $("key-error").textContent = "";
    await start();
  });
  $("key-forget").addEventListener("click", async () => {
    key.clear();
    announce("The key was forgotten.");
    await start();
    $("key-input").focus();
  });
  onUnauthorized(() => {
    $("key-panel").hidden = false;
    $("key-error").textContent = key.get() ? "The server refused the key; enter a valid one." : "Enter an API key to go on.";
  });
}

async function start() {
  try {
    const ready = await loadConfig();
    if (!ready) {
      announce("This server needs an API key.");
      return;
    }
    document.body.dataset.consentMode = state.config.consent_mode;
    configureSpeak(state);
    configureVoices(state);
    configureFineTune(state);
    await loadVoices(state);
    if (location.hash === "#finetune") await showFineTune(state);
    announce("Ready.");
    document.body.dataset.ready = "true";
  } catch (error) {
    announce(describe(error));
  }
}

initTabs();
initKey();
initSpeak(state);
initVoices(state);
initFineTune(state);
start();

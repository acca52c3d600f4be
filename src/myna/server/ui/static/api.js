// Talking to the server: every call sends the API key (kept in sessionStorage: this tab only), and every
// failure becomes an ApiError whose message is the server's own words (never a stack trace).

const KEY_ITEM = "myna-api-key";

export class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY_ITEM) || "",
  set: (value) => sessionStorage.setItem(KEY_ITEM, value),
  clear: () => sessionStorage.removeItem(KEY_ITEM),
};

const listeners = { unauthorized: [] };
export function onUnauthorized(callback) { listeners.unauthorized.push(callback); }

export function authHeaders(extra = {}) {
  const value = key.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : { ...extra };
}

// fetch with the key; options: method, json, form (FormData), body, raw (return the Response), signal
export async function api(path, options = {}) {
  const headers = authHeaders(options.headers || {});
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  let response;
  try {
    response = await fetch(path, { method: options.method || "GET", headers, body, signal: options.signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The server could not be reached. Is myna serve still running?");
  }
  if (!response.ok) throw await errorOf(response);
  if (options.raw) return response;
  return response.status === 204 ? null : response.json();
}

export async function errorOf(response) {
  let message = "";
  let code = "";
  try {
    const data = await response.json();
    message = data.message || (data.error && data.error.message) || (typeof data.detail === "string" ? data.detail : "");
    code = (data.error && data.error.code) || "";
  } catch {
    // not JSON: fall back to the status line below
  }
  if (response.status === 401) {
    listeners.unauthorized.forEach((callback) => callback(message));
    message = message || "An API key is required.";
  } else if (response.status === 403 && !message) {
    message = "This key may not do that.";
  }
  if (!message) message = `The server answered ${response.status} ${response.statusText}.`;
  return new ApiError(message, response.status, code);
}

// Words for any error, for the page (an unexpected exception shows its message only).
export function describe(error) {
  if (error instanceof ApiError) return error.message;
  if (error && error.name === "NotAllowedError") return "The browser did not allow the microphone.";
  return (error && error.message) || "Something went wrong.";
}

const statusLine = () => document.getElementById("status");

// Announce to screen readers (role=status, polite) and show the line under the header.
export function announce(text) {
  const line = statusLine();
  line.textContent = "";
  // a fresh text node is announced even when the words repeat
  window.setTimeout(() => { line.textContent = text; }, 30);
}

export function showError(element, error) {
  element.textContent = error ? describe(error) : "";
}

export function formatSeconds(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "unknown";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

// Build DOM nodes without innerHTML: el("p", {class: "x"}, "text", child)
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A confirmation dialog; resolves true when the user confirms.
export function confirmDialog(text, action = "Delete") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export const LANGUAGE_NAMES = {
  auto: "Detect (mixed)", en: "English", zh: "Chinese", ja: "Japanese",
  all_zh: "Chinese, English words read in Chinese", all_ja: "Japanese, English words read in Japanese",
};

export function fillLanguages(select, languages, chosen) {
  select.replaceChildren(...languages.map((code) => {
    const option = el("option", { value: code }, LANGUAGE_NAMES[code] || code);
    option.defaultSelected = code === chosen; // what a form reset comes back to
    return option;
  }));
  if (chosen) select.value = chosen;
}

// The last clips, kept in this browser (IndexedDB): play, download as WAV or MP3, remove.
import { announce, api, describe, el } from "./api.js";

const DB = "myna";
const STORE = "clips";
const KEEP = 10;
let urls = [];

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const result = work(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      transaction.onerror = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

export async function addClip(clip) {
  await run("readwrite", (store) => store.add({ ...clip, created: Date.now() }));
  const all = await run("readonly", (store) => store.getAllKeys());
  const extra = all.slice(0, Math.max(0, all.length - KEEP));
  if (extra.length) await run("readwrite", (store) => extra.forEach((id) => store.delete(id)));
}

function fileName(clip, extension) {
  const stamp = new Date(clip.created).toISOString().replace(/[:T]/g, "-").slice(0, 19);
  return `myna-${clip.voice.replace(/[^A-Za-z0-9_-]+/g, "_")}-${stamp}.${extension}`;
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function downloadMp3(clip, button) {
  button.disabled = true;
  announce("Encoding MP3…");
  try {
    const response = await api("/v1/ui/transcode?format=mp3", {
      method: "POST", body: clip.wav, headers: { "Content-Type": "audio/wav" }, raw: true,
    });
    download(await response.blob(), fileName(clip, "mp3"));
    announce("MP3 ready.");
  } catch (error) {
    announce(`Could not make the MP3: ${describe(error)}`);
  } finally {
    button.disabled = false;
  }
}

export async function renderHistory() {
  const clips = (await run("readonly", (store) => store.getAll())) || [];
  urls.forEach((url) => URL.revokeObjectURL(url));
  urls = [];
  const list = document.getElementById("history");
  if (!clips.length) {
    list.replaceChildren(el("li", { class: "hint" }, "Nothing spoken yet."));
    return;
  }
  list.replaceChildren(...clips.reverse().map((clip, index) => {
    const url = URL.createObjectURL(clip.wav);
    urls.push(url);
    const label = `Clip ${index + 1}: ${clip.text.slice(0, 60)}`;
    const mp3 = el("button", { type: "button", class: "secondary", "aria-label": `Download clip ${index + 1} as MP3` }, "Download MP3");
    mp3.addEventListener("click", () => downloadMp3(clip, mp3));
    const remove = el("button", { type: "button", class: "link", "aria-label": `Remove clip ${index + 1}` }, "Remove");
    remove.addEventListener("click", async () => {
      await run("readwrite", (store) => store.delete(clip.id));
      await renderHistory();
      announce("Clip removed.");
    });
    return el("li", { "data-seconds": clip.seconds.toFixed(2) },
      el("p", { class: "clip-text" }, clip.text),
      el("p", { class: "clip-meta" }, `${clip.voice} · ${clip.seconds.toFixed(1)} s · ${new Date(clip.created).toLocaleString()}`),
      el("audio", { controls: true, preload: "metadata", src: url, "aria-label": label }),
      el("div", { class: "actions" },
        el("a", { href: url, download: fileName(clip, "wav"), class: "button-link",
          "aria-label": `Download clip ${index + 1} as WAV` }, "Download WAV"),
        mp3, remove));
  }));
}

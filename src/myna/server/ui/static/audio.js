// Audio in the browser: play a streamed WAV as it arrives (Web Audio), keep it as a file, record the microphone.

// A 44-byte header of a 16-bit mono PCM WAV holding `dataBytes` bytes of samples.
export function wavHeader(rate, dataBytes) {
  const view = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => { for (let i = 0; i < 4; i += 1) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + dataBytes, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, dataBytes, true);
  return new Uint8Array(view.buffer);
}

// Float samples (an AudioBuffer's channels mixed down) -> a 16-bit mono WAV Blob.
export function audioBufferToWav(buffer) {
  const length = buffer.length;
  const mono = new Float32Array(length);
  for (let c = 0; c < buffer.numberOfChannels; c += 1) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < length; i += 1) mono[i] += data[i] / buffer.numberOfChannels;
  }
  const pcm = new Int16Array(length);
  for (let i = 0; i < length; i += 1) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(mono[i] * 32767)));
  return new Blob([wavHeader(buffer.sampleRate, pcm.byteLength), pcm.buffer], { type: "audio/wav" });
}

// Any audio the browser can decode (a MediaRecorder's webm/ogg) -> WAV, which every myna route reads.
export async function toWav(blob) {
  const context = new OfflineAudioContext(1, 1, 44100);
  const buffer = await context.decodeAudioData(await blob.arrayBuffer());
  return audioBufferToWav(buffer);
}

// Finds the sampling rate and the start of the samples in the first bytes of a WAV stream.
function parseWavHeader(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (offset) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (bytes.length < 12) return null;
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("The server did not send a WAV stream.");
  let offset = 12;
  let rate = 0;
  let bits = 16;
  let channels = 1;
  while (offset + 8 <= bytes.length) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    if (id === "fmt ") {
      if (offset + 24 > bytes.length) return null;
      channels = view.getUint16(offset + 10, true);
      rate = view.getUint32(offset + 12, true);
      bits = view.getUint16(offset + 22, true);
    } else if (id === "data") {
      if (bits !== 16) throw new Error(`The server sent ${bits}-bit audio; the page plays 16-bit WAV.`);
      return { rate, channels, dataStart: offset + 8 };
    }
    offset += 8 + size + (size % 2);
  }
  return null;
}

// Plays a streamed 16-bit WAV response chunk by chunk; keeps the samples so the clip can be saved.
export class StreamPlayer {
  constructor() {
    this.context = null;
    this.sources = [];
    this.stopped = false;
  }

  // Call from the click that starts speaking: browsers only start audio after a user gesture.
  prepare() {
    if (!this.context) this.context = new AudioContext({ latencyHint: "interactive" });
    if (this.context.state === "suspended") this.context.resume();
    this.stopped = false;
    this.sources = [];
  }

  // Reads the response to its end; onChunk({seconds}) after each piece. Returns {blob, seconds, rate}.
  async play(response, onChunk) {
    const reader = response.body.getReader();
    let head = new Uint8Array(0);
    let format = null;
    let carry = null; // an odd byte left over between network chunks
    const kept = [];
    let samples = 0;
    let next = 0;
    this.reader = reader;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let bytes = value;
      if (!format) {
        const joined = new Uint8Array(head.length + bytes.length);
        joined.set(head);
        joined.set(bytes, head.length);
        format = parseWavHeader(joined);
        if (!format) { head = joined; continue; }
        bytes = joined.subarray(format.dataStart);
      }
      if (carry) {
        const joined = new Uint8Array(carry.length + bytes.length);
        joined.set(carry);
        joined.set(bytes, carry.length);
        bytes = joined;
        carry = null;
      }
      const frameBytes = 2 * format.channels;
      const usable = bytes.length - (bytes.length % frameBytes);
      if (usable < bytes.length) carry = bytes.slice(usable);
      if (usable === 0) continue;
      const pcm = new Int16Array(bytes.slice(0, usable).buffer);
      const frames = pcm.length / format.channels;
      const mono = new Int16Array(frames);
      const floats = new Float32Array(frames);
      for (let i = 0; i < frames; i += 1) {
        let sum = 0;
        for (let c = 0; c < format.channels; c += 1) sum += pcm[i * format.channels + c];
        mono[i] = Math.round(sum / format.channels);
        floats[i] = mono[i] / 32768;
      }
      kept.push(mono);
      samples += frames;
      if (!this.stopped && this.context) next = this.schedule(floats, format.rate, next);
      if (onChunk) onChunk({ seconds: samples / format.rate });
    }
    if (!format) throw new Error("The server sent no audio.");
    const dataBytes = samples * 2;
    const blob = new Blob([wavHeader(format.rate, dataBytes), ...kept.map((a) => a.buffer)], { type: "audio/wav" });
    return { blob, seconds: samples / format.rate, rate: format.rate };
  }

  schedule(floats, rate, next) {
    const buffer = this.context.createBuffer(1, floats.length, rate);
    buffer.copyToChannel(floats, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    // a small lead on the first piece; later pieces follow the previous one without a gap
    const start = Math.max(next, this.context.currentTime + 0.08);
    source.start(start);
    this.sources.push(source);
    if (this.startedAt === undefined || next === 0) this.startedAt = start;
    this.scheduledUntil = start + buffer.duration;
    return start + buffer.duration;
  }

  // Seconds of the scheduled audio already played (for the page and its tests).
  playedSeconds() {
    if (!this.context || this.startedAt === undefined) return 0;
    return Math.max(0, Math.min(this.context.currentTime, this.scheduledUntil) - this.startedAt);
  }

  stop() {
    this.stopped = true;
    for (const source of this.sources) {
      try { source.stop(); } catch { /* already ended */ }
    }
    this.sources = [];
  }
}

// The microphone, through MediaRecorder; stop() resolves to a WAV Blob.
export class MicRecorder {
  static available() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  }

  async start() {
    if (!MicRecorder.available()) {
      throw new Error("Recording needs a browser with a microphone, on https or on this computer (localhost). Upload a file instead.");
    }
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.chunks = [];
    this.recorder = new MediaRecorder(this.stream);
    this.recorder.addEventListener("dataavailable", (event) => { if (event.data.size) this.chunks.push(event.data); });
    this.started = performance.now();
    this.recorder.start(250);
  }

  seconds() { return this.started ? (performance.now() - this.started) / 1000 : 0; }

  async stop() {
    const stopped = new Promise((resolve) => this.recorder.addEventListener("stop", resolve, { once: true }));
    this.recorder.stop();
    await stopped;
    this.stream.getTracks().forEach((track) => track.stop());
    const recorded = new Blob(this.chunks, { type: this.recorder.mimeType || "audio/webm" });
    return toWav(recorded);
  }
}

// Wires a toggle button to a MicRecorder: press to record, press again to stop; onDone(wavBlob).
export function recordButton(button, stateLine, onDone, onError) {
  let recorder = null;
  let timer = 0;
  const idleText = button.textContent;
  button.addEventListener("click", async () => {
    if (!recorder) {
      recorder = new MicRecorder();
      try {
        await recorder.start();
      } catch (error) {
        recorder = null;
        onError(error);
        return;
      }
      button.setAttribute("aria-pressed", "true");
      button.textContent = "Stop recording";
      stateLine.textContent = "Recording…";
      timer = window.setInterval(() => { stateLine.textContent = `Recording… ${recorder.seconds().toFixed(0)} s`; }, 500);
      return;
    }
    window.clearInterval(timer);
    const current = recorder;
    recorder = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = idleText;
    try {
      onDone(await current.stop(), current.seconds());
    } catch (error) {
      onError(error);
    }
  });
}

// Shared by tests/client: an in-process stand-in for client/e2ee-worker.js. Not a test file.
import { FrameCrypto } from '../../client/e2ee-frames.js';

// Stand-in for `new Worker('e2ee-worker.js')`: same protocol, same core.
export class FakeWorker {
  constructor() {
    this.core = new FrameCrypto();
    this.listeners = [];
    this.legacy = [];
  }
  addEventListener(type, fn) {
    if (type === 'message') this.listeners.push(fn);
  }
  postMessage(msg, transfer) {
    if (msg?.type === 'legacy-stream') {
      this.legacy.push(msg);
      this.core.pipe(msg.readable, msg.writable, msg.options);
      return;
    }
    const m = structuredClone(msg);
    setImmediate(async () => {
      let out;
      try {
        out = await this.core.handleMessage(m);
      } catch (e) {
        out = { type: 'error', error: String(e.message) };
      }
      if (out) for (const fn of this.listeners) fn({ data: { ...out, id: m.id } });
    });
  }
  terminate() {}
}

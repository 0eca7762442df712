// A minimal Sora-protocol client over `ws` for tests: queues every message and lets a
// test wait for the next one of a given type.
import WebSocket from 'ws';

export class SoraClient {
  constructor(url, options = {}) {
    this.ws = new WebSocket(url, options);
    this.messages = [];
    this.binary = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve({ code, reason: reason.toString() });
        this._wake();
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', resolve);
      this.ws.on('error', reject);
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.binary.push(Buffer.from(data));
      } else {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'ping' && this.autoPong !== false) {
          this.send({ type: 'pong' });
        }
        this.messages.push(msg);
      }
      this._wake();
    });
  }

  _wake() {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  async _wait(pred, what, timeout) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = pred();
      if (found !== undefined) return found;
      if (this.closeCode !== undefined) {
        throw new Error(`closed (${this.closeCode} ${this.closeReason}) while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  sendBinary(buf) { this.ws.send(buf, { binary: true }); }

  // Removes and returns the first queued message matching type (and filter).
  next(type, filter = () => true, timeout = 5000) {
    return this._wait(() => {
      const i = this.messages.findIndex((m) => m.type === type && filter(m));
      if (i < 0) return undefined;
      return this.messages.splice(i, 1)[0];
    }, type, timeout);
  }

  nextNotify(eventType, timeout = 5000) {
    return this.next('notify', (m) => m.event_type === eventType, timeout);
  }

  nextBinary(timeout = 5000) {
    return this._wait(() => this.binary.shift(), 'binary message', timeout);
  }

  async waitClose(timeout = 5000) {
    await this._wait(() => (this.closeCode !== undefined ? true : undefined), 'close', timeout)
      .catch((e) => { if (this.closeCode === undefined) throw e; });
    return { code: this.closeCode, reason: this.closeReason };
  }

  close() { try { this.ws.close(1000); } catch { /* already closed */ } }
}

export async function connectClient(url, connect) {
  const c = new SoraClient(url);
  await c.opened;
  c.send({ type: 'connect', ...connect });
  return c;
}

// A network namespace made by a test, with its own loopback, and helpers to run
// hisoka and Chromium inside it. Needs root (ip netns, nft).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function createNetns(prefix = 'hk') {
  const name = `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-netns-'));
  // Playwright talks to Chromium over pipes, so a wrapper that enters the namespace
  // is all it takes to run the browser there.
  const chromium = path.join(dir, 'chromium');
  fs.writeFileSync(chromium, `#!/bin/sh\nexec ip netns exec ${name} /usr/bin/chromium "$@"\n`);
  fs.chmodSync(chromium, 0o755);
  return {
    name,
    chromium,
    // The argv prefix that runs a command inside the namespace.
    wrap: ['ip', 'netns', 'exec', name],
    nft(script) {
      execFileSync('ip', ['netns', 'exec', name, 'nft', '-f', '-'], { input: script });
    },
    destroy() {
      try { execFileSync('ip', ['netns', 'del', name]); } catch { /* already gone */ }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Starts a hisoka binary (HISOKA_BIN, default build/hisoka) with a generated config on
// free loopback ports, and stops it checking it exited cleanly and without sanitizer
// reports.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.HISOKA_BIN || path.join(ROOT, 'build/hisoka');

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// An API request to a server started below: with its secret when it has one, over https
// (test certificates are self-signed) when its API has TLS. Returns {status, headers, text}.
export function apiRequest(server, urlPath, { method = 'GET', headers = {}, secret = true } = {}) {
  const all = { ...headers };
  if (secret && server.config.api_secret) all.authorization = `Bearer ${server.config.api_secret}`;
  const url = new URL(urlPath, server.apiUrl);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers: all, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

// A self-signed P-256 certificate for 127.0.0.1 in a new directory: {dir, cert, key}.
// The caller removes dir.
export function selfSignedCertificate(prefix = 'hisoka-tls-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { dir, cert, key };
}

// Config directories are removed when the test process exits (a server may be started
// and stopped many times in one file; none of them outlives it).
const configDirs = [];
process.on('exit', () => {
  for (const d of configDirs) fs.rmSync(d, { recursive: true, force: true });
});

export function writeConfig(entries) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-test-'));
  configDirs.push(dir);
  const file = path.join(dir, 'sora.conf');
  fs.writeFileSync(file, Object.entries(entries).map(([k, v]) => `${k} = ${v}\n`).join(''));
  return file;
}

export function run(args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

// options.wrap: an argv prefix to run the server with (e.g. entering a network namespace);
// options.bin: another binary than BIN; options.env: variables added to its environment.
export async function startServer(overrides = {}, options = {}) {
  // Three different ports, none of them one the overrides name (e.g. a media_tcp_port
  // the test took from freePort): the kernel may hand a just-freed port out again.
  const named = new Set(['signaling_port', 'api_port', 'media_port', 'media_tcp_port']
    .map((k) => Number(overrides[k])).filter((p) => p > 0));
  const ports = new Set();
  while (ports.size < 3) {
    const p = await freePort();
    if (!named.has(p)) ports.add(p);
  }
  const [signalingPort, apiPort, mediaPort] = [...ports];
  const config = {
    listen_address: '127.0.0.1',
    signaling_port: signalingPort,
    api_port: apiPort,
    media_port: mediaPort,
    public_ipv4_address: '127.0.0.1',
    demo_directory: path.join(ROOT, 'client'),
    log_level: 'debug',
    // HISOKA_TEST_WORKERS: every suite can run with several media workers (make test
    // runs the integration suite so under ThreadSanitizer).
    ...(process.env.HISOKA_TEST_WORKERS ? { workers: process.env.HISOKA_TEST_WORKERS } : {}),
    ...overrides,
  };
  const file = writeConfig(config);
  const argv = [...(options.wrap || []), options.bin || BIN, '--config', file];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env } });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Ready when the API answers /health (whatever the log level). The API has TLS when
  // it or signaling has a certificate.
  const tls = config.api_tls_certificate_file || config.tls_certificate_file;
  const apiUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${config.api_port}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`hisoka did not start:\n${log}`);
    }
    // Inside a namespace the API is out of our reach: the start-up log line tells
    // (log_level info or debug).
    const ok = options.wrap
      ? log.includes('started with')
      : await apiRequest({ apiUrl, config }, '/health').then((r) => r.status === 200, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    config,
    url: `ws://127.0.0.1:${config.signaling_port}/signaling`,
    apiUrl,
    get log() { return log; },
    pid: child.pid,
    alive() { return child.exitCode === null && child.signalCode === null; },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const result = await exited;
      clearTimeout(timer);
      if (/AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:/.test(log)) {
        throw new Error(`sanitizer report from hisoka:\n${log.slice(-6000)}`);
      }
      if (result.code !== 0) {
        throw new Error(`hisoka exited with ${result.code ?? result.signal}:\n${log.slice(-3000)}`);
      }
      return result;
    },
  };
}

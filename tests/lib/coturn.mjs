// A real coturn (Debian `coturn`, /usr/bin/turnserver) for tests, in a network namespace
// from tests/lib/netns.mjs: TURN REST credentials (use-auth-secret), TLS on 443 with a
// self-signed certificate made here, plain TURN on 3478, relaying from the same address.
// Peers on loopback are allowed (hisoka listens there in the tests).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TURNSERVER = '/usr/bin/turnserver';

// options: {ip (listening and relay address), secret, tlsPort (443), port (3478)}.
// Returns {ip, name, tlsPort, port, secret, ca (the CA that signed its certificate), log, stop()}.
// options.name: a host name for the certificate too (Firefox wants one for turns:).
export async function startCoturn(ns, { ip = '127.0.0.3', name = null, secret, tlsPort = 443, port = 3478 } = {}) {
  if (!fs.existsSync(TURNSERVER)) throw new Error(`${TURNSERVER} is missing: apt-get install coturn (tools/deps.sh test)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-coturn-'));
  // A test CA (ca.pem, for the browsers to trust) and coturn's certificate signed by it.
  const ca = path.join(dir, 'ca.pem');
  const caKey = path.join(dir, 'ca-key.pem');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const csr = path.join(dir, 'cert.csr');
  const ext = path.join(dir, 'ext.cnf');
  const openssl = (args) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', caKey, '-out', ca, '-days', '1', '-subj', '/CN=hisoka test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
    '-out', csr, '-subj', `/CN=${name || ip}`]);
  fs.writeFileSync(ext, `subjectAltName=IP:${ip}${name ? `,DNS:${name}` : ''}\n`
    + 'extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert,
    '-days', '1', '-extfile', ext]);
  const conf = path.join(dir, 'turnserver.conf');
  fs.writeFileSync(conf, [
    `listening-ip=${ip}`, `relay-ip=${ip}`, `listening-port=${port}`, `tls-listening-port=${tlsPort}`,
    'use-auth-secret', `static-auth-secret=${secret}`, 'realm=hisoka.test', 'fingerprint',
    `cert=${cert}`, `pkey=${key}`, 'no-dtls', 'no-cli', 'no-tcp-relay', 'allow-loopback-peers',
    'no-multicast-peers', 'min-port=49152', 'max-port=49999', `pidfile=${path.join(dir, 'pid')}`,
    'simple-log', `log-file=${path.join(dir, 'turn.log')}`, 'verbose', '',
  ].join('\n'));
  const child = spawn('ip', ['netns', 'exec', ns.name, TURNSERVER, '-c', conf],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  // Listening once the TLS port accepts in the namespace.
  const deadline = Date.now() + 10000;
  for (;;) {
    const listening = execFileSync('ip', ['netns', 'exec', ns.name, 'ss', '-Hltn', `sport = :${tlsPort}`]).toString();
    if (listening.includes(`${ip}:${tlsPort}`)) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`coturn did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ip, name, tlsPort, port, secret, ca,
    get log() {
      try { return fs.readFileSync(path.join(dir, 'turn.log'), 'utf8') + log; } catch { return log; }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

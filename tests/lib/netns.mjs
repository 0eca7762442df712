// A network namespace made by a test, with its own loopback, and helpers to run
// hisoka and Chromium inside it. Needs root (ip netns, nft).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Namespaces named by a test process that is gone (killed before its cleanup ran):
// deleting one deletes the veth pairs with an end in it, whose addresses would clash.
function removeStale(prefix) {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`${prefix}-`));
  for (const n of names) {
    const pid = Number(n.slice(prefix.length + 1).split('-')[0]);
    let alive = true;
    try { process.kill(pid, 0); } catch (e) { alive = e.code !== 'ESRCH'; }
    if (alive) continue;
    try { execFileSync('ip', ['netns', 'del', n]); } catch { /* gone meanwhile */ }
    fs.rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
  }
}

export function createNetns(prefix = 'hk') {
  removeStale(prefix);
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
    // /etc/hosts for what runs in the namespace ({name: address}): `ip netns exec`
    // mounts /etc/netns/NAME/hosts over /etc/hosts.
    hosts(entries) {
      fs.mkdirSync(`/etc/netns/${name}`, { recursive: true });
      fs.writeFileSync(`/etc/netns/${name}/hosts`, ['127.0.0.1 localhost',
        ...Object.entries(entries).map(([host, address]) => `${address} ${host}`), ''].join('\n'));
    },
    // An IPv4 address on a non-loopback interface (a veth pair with both ends here):
    // without one, getaddrinfo(AI_ADDRCONFIG) resolves no name at all, which Firefox
    // needs for a turns: URL.
    addAddress(address) {
      execFileSync('ip', ['-n', name, 'link', 'add', 'hkv0', 'type', 'veth', 'peer', 'name', 'hkv1']);
      execFileSync('ip', ['-n', name, 'addr', 'add', `${address}/32`, 'dev', 'hkv0']);
      execFileSync('ip', ['-n', name, 'link', 'set', 'hkv0', 'up']);
      execFileSync('ip', ['-n', name, 'link', 'set', 'hkv1', 'up']);
    },
    destroy() {
      try { execFileSync('ip', ['netns', 'del', name]); } catch { /* already gone */ }
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
    },
  };
}

// A small LAN: a bridge in the root namespace with address `address` (e.g.
// '10.207.0.1/24') and, for each {name: address} of `members`, a namespace of that
// fixed name joined to the bridge by a veth pair, with that address on its eth0 and its
// loopback up. The root namespace (a test, a browser) reaches every member directly, and
// the members reach each other. Leftovers of the same names (a run killed before its
// cleanup) are removed first; destroy() removes everything and may be called twice.
export function createLan(bridge, address, members) {
  const prefix = address.split('/')[1];
  const remove = () => {
    for (const ns of Object.keys(members)) {
      // Deleting a namespace deletes the veth pair with an end in it.
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* absent */ }
      try { execFileSync('ip', ['link', 'del', `${ns}-v`], { stdio: 'ignore' }); } catch { /* absent */ }
    }
    try { execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' }); } catch { /* absent */ }
  };
  remove();
  const lan = { bridge, address: address.split('/')[0], ns: {}, destroy: remove };
  try {
    execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', address, 'dev', bridge]);
    execFileSync('ip', ['link', 'set', bridge, 'up']);
    for (const [ns, nsAddress] of Object.entries(members)) {
      const outer = `${ns}-v`;
      if (outer.length > 15) throw new Error(`namespace name ${ns} too long for a veth name`);
      execFileSync('ip', ['netns', 'add', ns]);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      execFileSync('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      execFileSync('ip', ['link', 'set', outer, 'master', bridge]);
      execFileSync('ip', ['link', 'set', outer, 'up']);
      execFileSync('ip', ['-n', ns, 'addr', 'add', `${nsAddress}/${prefix}`, 'dev', 'eth0']);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      lan.ns[ns] = { name: ns, address: nsAddress, wrap: ['ip', 'netns', 'exec', ns] };
    }
  } catch (e) {
    remove();
    throw e;
  }
  return lan;
}

#!/usr/bin/env node
// Writes real MLS messages made by ts-mls (client/vendor) into tests/unit/fixtures/mls/,
// for tests/unit/test_mls_frame.c and as seeds of tests/fuzz/corpus/mls_frame/:
//   key-package.bin        MLSMessage(KeyPackage), identity "0001ABCDEFGHJKMNPQRSTVWXYZ"
//   external-proposal.bin  MLSMessage(PublicMessage): Add from external sender 0, epoch 0
//   commit.bin             MLSMessage(PublicMessage): commit of leaf 0, epoch 0, one
//                          reference (to external-proposal.bin)
//   welcome.bin            MLSMessage(Welcome) for key-package.bin
//   private.bin            MLSMessage(PrivateMessage): an application message, epoch 1
//   refs.txt               hex of the proposal ref and the key package ref (RFC 9420 §5.2)
// The messages differ each run (fresh keys); the tests only rely on their structure and
// on refs.txt. Usage: node tools/gen-mls-fixtures.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPub,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeExternalSender,
  encodeMlsMessage,
  generateKeyPackage,
  joinGroup,
  processPublicMessage,
  proposeExternal,
} from '../client/vendor/ts-mls/dist/src/index.js';
import { makeKeyPackageRef } from '../client/vendor/ts-mls/dist/src/keyPackage.js';
import { cipherSuiteImpl } from '../client/mls.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'tests/unit/fixtures/mls');
fs.mkdirSync(out, { recursive: true });
const utf8 = new TextEncoder();
const impl = await cipherSuiteImpl();
const cred = (id) => ({ credentialType: 'basic', identity: utf8.encode(id) });
const kp = (id) => generateKeyPackage(cred(id), defaultCapabilities(), defaultLifetime, [], impl);

const creator = await kp('0000ABCDEFGHJKMNPQRSTVWXYZ');
const joiner = await kp('0001ABCDEFGHJKMNPQRSTVWXYZ');
const server = await kp('hisoka');
const ext = {
  extensionType: 'external_senders',
  extensionData: encodeExternalSender({
    credential: cred('hisoka'),
    signaturePublicKey: server.publicPackage.leafNode.signaturePublicKey,
  }),
};
let a = await createGroup(utf8.encode('0123456789abcdef'), creator.publicPackage, creator.privatePackage, [ext], impl);
const info = await createGroupInfoWithExternalPub(a, [], impl);
const proposal = await proposeExternal(
  info,
  { proposalType: 'add', add: { keyPackage: joiner.publicPackage } },
  server.publicPackage.leafNode.signaturePublicKey,
  server.privatePackage.signaturePrivateKey,
  impl,
);
a = (await processPublicMessage(a, proposal.publicMessage, emptyPskIndex, impl)).newState;
const proposalRef = Object.keys(a.unappliedProposals)[0];
const commit = await createCommit({ state: a, cipherSuite: impl }, { wireAsPublicMessage: true, ratchetTreeExtension: true });
const welcome = { version: 'mls10', wireformat: 'mls_welcome', welcome: commit.welcome };
const b = await joinGroup(commit.welcome, joiner.publicPackage, joiner.privatePackage, emptyPskIndex, impl);
const app = await createApplicationMessage(b, utf8.encode('hello'), impl);

const write = (name, bytes) => fs.writeFileSync(path.join(out, name), bytes);
write('key-package.bin', encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: joiner.publicPackage }));
write('external-proposal.bin', encodeMlsMessage(proposal));
write('commit.bin', encodeMlsMessage(commit.commit));
write('welcome.bin', encodeMlsMessage(welcome));
write('private.bin', encodeMlsMessage({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: app.privateMessage }));
const kpRef = await makeKeyPackageRef(joiner.publicPackage, impl.hash);
fs.writeFileSync(
  path.join(out, 'refs.txt'),
  `proposal ${Buffer.from(proposalRef, 'base64').toString('hex')}\nkey_package ${Buffer.from(kpRef).toString('hex')}\n`,
);
console.log(`gen-mls-fixtures: wrote ${out}`);

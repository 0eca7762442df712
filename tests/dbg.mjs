import { startServer } from '/work/main/tests/lib/server.mjs';
import { connectClient } from '/work/main/tests/lib/client.mjs';
const server = await startServer();
const c = await connectClient(server.url, { role: 'bogus', channel_id: 'x' });
console.log(await c.waitClose());
await server.stop().catch(e => console.log('STOP', e.message.slice(0, 300)));

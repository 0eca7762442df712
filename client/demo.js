// The demo page: join a channel, show local and remote videos, each participant's
// safety number and E2EE status (decrypting / key missing / failing). With MLS group keys
// (docs/protocol.md §6) the page shows the group's roster and verification code, taken
// from the group state, and a banner on every membership change that stays until it is
// dismissed; a member whose credential changed gets a loud warning banner.
import { HisokaClient } from './hisoka.js';

const $ = (id) => document.getElementById(id);
$('url').value = `ws://${location.hostname}:5000/signaling`;
let client = null;
let timer = null;

function log(text) {
  $('log').textContent = `${new Date().toISOString()} ${text}\n` + $('log').textContent;
}

// One banner per membership change, kept until dismissed.
function banner(update) {
  const warning = update.credentialChanged.length > 0 || (update.duplicates || []).length > 0;
  const div = document.createElement('div');
  div.className = warning ? 'banner warning' : 'banner';
  div.dataset.epoch = String(update.epoch);
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = warning
    ? `WARNING: ${update.banner}. Someone may be listening in: compare the verification code out of band.`
    : update.banner;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = 'Dismiss';
  close.addEventListener('click', () => div.remove());
  div.append(text, close);
  $('banners').prepend(div);
}

function showGroup(update) {
  if (update.removed === true) {
    $('mlsCode').textContent = '–';
    $('mlsRoster').textContent = '';
    log('removed from the MLS group: waiting to rejoin');
    return;
  }
  $('mls').hidden = false;
  $('mlsCode').textContent = update.code;
  $('mlsEpoch').textContent = `(epoch ${update.epoch})`;
  const list = $('mlsRoster');
  list.textContent = '';
  for (const r of update.roster) {
    const li = document.createElement('li');
    li.dataset.id = r.identity;
    li.textContent = `${r.identity}${r.identity === client.connectionId ? ' (you)' : ''}`;
    list.appendChild(li);
  }
  if (update.banner) banner(update);
  log(`group epoch ${update.epoch}: ${update.banner || 'no membership change'}`);
}

function tile(connectionId) {
  let fig = document.getElementById(`m-${connectionId}`);
  if (!fig) {
    fig = document.createElement('figure');
    fig.id = `m-${connectionId}`;
    fig.innerHTML = '<video autoplay playsinline></video><figcaption><span class="id"></span><br>' +
      'Safety number: <span class="safety">–</span><br>E2EE: <span class="e2ee">–</span></figcaption>';
    fig.querySelector('.id').textContent = connectionId;
    $('videos').appendChild(fig);
  }
  return fig;
}

$('join').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('joinButton').disabled = true;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    $('localVideo').srcObject = stream;
    const mls = $('e2ee').checked && $('mlsMode').checked;
    client = new HisokaClient($('url').value, { channelId: $('channel').value, e2ee: $('e2ee').checked,
      e2eeProtocol: mls ? 'mls' : null });
    client.addEventListener('roster', (ev) => showGroup(ev.detail));
    client.addEventListener('track', (ev) => {
      const video = tile(ev.detail.connectionId).querySelector('video');
      video.srcObject = ev.detail.stream;
    });
    client.addEventListener('member-joined', (ev) => {
      const fig = tile(ev.detail.connectionId);
      fig.querySelector('.safety').textContent = ev.detail.safetyNumber
        || (client.e2eeProtocol ? '(MLS: see the group)' : '(no E2EE)');
      log(`joined: ${ev.detail.connectionId}`);
    });
    client.addEventListener('member-left', (ev) => {
      const fig = document.getElementById(`m-${ev.detail.connectionId}`);
      if (fig) fig.remove();
      log(`left: ${ev.detail.connectionId}`);
    });
    client.addEventListener('closed', (ev) => log(`closed: ${ev.detail.code} ${ev.detail.reason}`));
    client.addEventListener('error', (ev) => log(`error: ${ev.detail.message}`));
    const id = await client.connect(stream);
    $('selfId').textContent = id;
    $('selfSafety').textContent = mls ? 'see the verification code above'
      : (await client.safetyNumber()) || '(no E2EE)';
    $('leaveButton').disabled = false;
    timer = setInterval(async () => {
      const status = await client.e2eeStatus();
      for (const [cid, s] of Object.entries(status)) {
        const el = tile(cid).querySelector('.e2ee');
        el.textContent = `${s.status} (${s.decrypted} ok, ${s.failed} failed, ${s.missing} no key)`;
        el.className = `e2ee status-${s.status.replace(' ', '-')}`;
      }
    }, 1000);
    log(`connected as ${id}`);
  } catch (err) {
    log(`cannot join: ${err.message || err}`);
    $('joinButton').disabled = false;
  }
});

$('leaveButton').addEventListener('click', () => {
  clearInterval(timer);
  if (client) client.disconnect();
  client = null;
  for (const fig of [...document.querySelectorAll('figure')]) if (fig.id !== 'self') fig.remove();
  $('mls').hidden = true;
  $('mlsRoster').textContent = '';
  $('banners').textContent = '';
  $('leaveButton').disabled = true;
  $('joinButton').disabled = false;
});

// SDP helpers for tests that do not need a browser: a minimal answer a client could
// send to a hisoka offer, and small readers for offers.

// Splits an SDP into its session part and its m-sections (arrays of lines).
export function sections(sdp) {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  const out = [];
  let session = [];
  for (const line of lines) {
    if (line.startsWith('m=')) out.push([line]);
    else if (out.length) out[out.length - 1].push(line);
    else session.push(line);
  }
  return { session, media: out };
}

export function attr(lines, name) {
  const l = lines.find((x) => x.startsWith(`a=${name}:`) || x === `a=${name}`);
  if (!l) return undefined;
  return l.includes(':') ? l.slice(l.indexOf(':') + 1) : '';
}

// Describes each m-section of an offer: kind, mid, port, direction, msid, ssrcs.
export function describeOffer(sdp) {
  return sections(sdp).media.map((lines) => {
    const [kind, port] = lines[0].slice(2).split(' ');
    const direction = ['sendrecv', 'sendonly', 'recvonly', 'inactive'].find((d) => lines.includes(`a=${d}`));
    const ssrcs = [...new Set(lines.filter((l) => l.startsWith('a=ssrc:')).map((l) => Number(l.slice(7).split(' ')[0])))];
    return { kind, port: Number(port), mid: attr(lines, 'mid'), direction, msid: attr(lines, 'msid'), ssrcs };
  });
}

let nextSsrc = 1000;

// A minimal valid answer: every section answered, RECV sections (recvonly in the offer)
// answered sendonly with fresh SSRCs when send is true.
export function fakeAnswer(offer, { send = true } = {}) {
  const { media } = sections(offer);
  const out = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0'];
  const mids = media.map((l) => attr(l, 'mid'));
  out.push(`a=group:BUNDLE ${mids.join(' ')}`);
  for (const lines of media) {
    const [kind, port, proto, pt] = lines[0].slice(2).split(' ');
    out.push(`m=${kind} ${port === '0' ? 0 : 9} ${proto} ${pt}`);
    out.push('c=IN IP4 0.0.0.0');
    out.push(`a=mid:${attr(lines, 'mid')}`);
    if (port === '0') { out.push('a=inactive'); continue; }
    out.push('a=ice-ufrag:test', 'a=ice-pwd:testtesttesttesttesttest');
    out.push('a=fingerprint:sha-256 ' + Array(32).fill('AB').join(':'));
    out.push('a=setup:active', 'a=rtcp-mux');
    out.push(`a=rtpmap:${pt} ${kind === 'audio' ? 'opus/48000/2' : 'VP8/90000'}`);
    if (lines.includes('a=recvonly') && send) {
      const ssrc = nextSsrc++;
      out.push('a=sendonly', `a=msid:stream ${kind}-track`);
      if (kind === 'video') {
        const rtx = nextSsrc++;
        out.push(`a=ssrc-group:FID ${ssrc} ${rtx}`, `a=ssrc:${ssrc} cname:test`, `a=ssrc:${rtx} cname:test`);
      } else {
        out.push(`a=ssrc:${ssrc} cname:test`);
      }
    } else if (lines.includes('a=sendonly')) {
      out.push('a=recvonly');
    } else {
      out.push('a=inactive');
    }
  }
  return out.join('\r\n') + '\r\n';
}

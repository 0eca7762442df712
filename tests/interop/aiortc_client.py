#!/usr/bin/python3
"""A Sora-signaling client built on aiortc 1.4.0 (Debian python3-aiortc), for interop tests.

    /usr/bin/python3 tests/interop/aiortc_client.py --url ws://127.0.0.1:PORT/signaling \
        --channel CH --role sendrecv|sendonly|recvonly --identity N [--capture FILE]

It publishes (unless recvonly) a 160x120 VP8 video of synthetic frames that name its
identity N (0..255): ten vertical bars of 16 px, bar 0 white, bar 9 black (markers), bars
1..8 the bits of N (white = 1), MSB first. Flat bars survive VP8 at any rate.

Every received track is decoded and its frames' bars are read back into an identity. A
track belongs to the connection id its m-section carried when the track appeared (the
stream id of a=msid, Sora's convention), as it would for an application: aiortc raises
no new track event when a section changes hands.

Packet capture: every datagram that aioice hands up (the moment the event loop reads it
from the socket) and that is RTP (not RTCP; the RTP header is clear in SRTP) is written
to --capture as one JSON line {"t", "ssrc", "pt", "seq"}. Each answer and re-answer is
reported with the time taken just before it was sent and the SSRCs it accepted: the
a=ssrc lines of the offer's m-sections that are not port 0 in the offer and that the
answer receives on (recvonly or sendrecv). Packets are checked as they arrive (nothing
is left out; RTX SSRCs count like the others):
- "before_answer": no answer sent so far accepted its SSRC;
- "after_declined": an earlier answer accepted it, the last one sent does not (its
  section was since rejected or answered inactive).

stdout: one JSON object per line, {"event": ...}; the last is {"event": "summary", ...}.
stdin: "leave" sends disconnect, prints the summary and exits; so does EOF on stdin,
SIGTERM, the WebSocket closing, or --max-seconds elapsing. Times are milliseconds of
time.monotonic(), comparable only within one process.
"""

import argparse
import asyncio
import fractions
import json
import signal
import sys
import time

import aioice.ice
import av
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

WIDTH = 160
HEIGHT = 120
BARS = 10
BAR_WIDTH = WIDTH // BARS
FPS = 15
VIDEO_CLOCK = 90000


def now_ms():
    return round(time.monotonic() * 1000, 3)


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# --- SDP: just what the capture needs -------------------------------------------------


def parse_sections(sdp):
    """Returns [{kind, port, mid, direction, msid, ssrcs}] for each m-section."""
    out = []
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            kind, port = line[2:].split(" ")[:2]
            out.append({"kind": kind, "port": int(port), "mid": None, "direction": "sendrecv",
                        "msid": None, "ssrcs": []})
        elif not out:
            continue
        elif line.startswith("a=mid:"):
            out[-1]["mid"] = line[6:].strip()
        elif line.strip() in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            out[-1]["direction"] = line.strip()[2:]
        elif line.startswith("a=msid:"):
            out[-1]["msid"] = line[7:].strip()
        elif line.startswith("a=ssrc:"):
            ssrc = int(line[7:].split(" ")[0])
            if ssrc not in out[-1]["ssrcs"]:
                out[-1]["ssrcs"].append(ssrc)
    return out


def accepted_sections(offer_sdp, answer_sdp):
    """The offer's sections the answer receives on, with the publisher they carry."""
    answered = {s["mid"]: s for s in parse_sections(answer_sdp)}
    result = []
    for s in parse_sections(offer_sdp):
        a = answered.get(s["mid"])
        accepted = (s["port"] != 0 and a is not None and a["port"] != 0
                    and s["direction"] in ("sendonly", "sendrecv")
                    and a["direction"] in ("recvonly", "sendrecv"))
        owner = s["msid"].split(" ")[0] if s["msid"] else None
        result.append({"mid": s["mid"], "kind": s["kind"], "offer_port": s["port"],
                       "offer_direction": s["direction"],
                       "answer_direction": a["direction"] if a else None,
                       "connection_id": owner, "ssrcs": s["ssrcs"], "accepted": accepted})
    return result


# --- Synthetic video that names its publisher -----------------------------------------


def identity_bars(identity):
    """Ten booleans: white marker, eight bits MSB first, black marker."""
    return [True] + [bool(identity >> (7 - i) & 1) for i in range(8)] + [False]


def read_identity(frame):
    """The identity the bars of a decoded frame show, or None when the markers are wrong."""
    if frame.format.name != "yuv420p" or frame.width != WIDTH or frame.height != HEIGHT:
        frame = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
    plane = frame.planes[0]
    data = bytes(plane)
    bits = []
    for bar in range(BARS):
        x = bar * BAR_WIDTH + BAR_WIDTH // 2
        total = 0
        rows = (HEIGHT // 4, HEIGHT // 2, 3 * HEIGHT // 4)
        for y in rows:
            total += data[y * plane.line_size + x]
        bits.append(total / len(rows) > 128)
    if not bits[0] or bits[9]:
        return None
    value = 0
    for b in bits[1:9]:
        value = value << 1 | int(b)
    return value


class IdentityTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, identity):
        super().__init__()
        row = b"".join((b"\xeb" if white else b"\x10") * BAR_WIDTH
                       for white in identity_bars(identity))
        self._y = row * HEIGHT
        self._uv = b"\x80" * (WIDTH // 2 * HEIGHT // 2)
        self._start = None
        self._count = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._count / FPS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(self._y)
        frame.planes[1].update(self._uv)
        frame.planes[2].update(self._uv)
        frame.pts = self._count * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


# --- The client -------------------------------------------------------------------------


class Client:
    def __init__(self, args):
        self.args = args
        self.ws = None
        self.pc = None
        self.connection_id = None
        self.answers = []         # {t, type, accepted_ssrcs, sections}
        self.accepted = set()     # SSRCs the last answer sent accepts
        self.ever_accepted = set()  # SSRCs any answer sent so far accepted
        self.offered_owner = {}   # mid -> connection id, per the offer being answered
        self.ssrc_owner = {}      # ssrc -> connection id, from every answer sent
        self.packets = {}         # ssrc -> {count, first, last, pt}
        self.violations = []      # the first 50 offending packets
        self.violation_counts = {}  # "kind ssrc" -> count
        self.leaving = False
        self.received = {}        # connection id -> {frames, identities: {id: n}, undecodable}
        self.notifies = []
        self.errors = []
        self.closed = asyncio.Event()
        self.close_info = None
        self.capture = open(args.capture, "w") if args.capture else None
        self.tasks = []

    # packets, as aioice reads them
    def on_datagram(self, data):
        if not data or len(data) < 12 or not 128 <= data[0] < 192 or 192 <= data[1] <= 223:
            return  # not RTP (STUN and DTLS are not handed up here; RTCP is skipped)
        t = now_ms()
        ssrc = int.from_bytes(data[8:12], "big")
        pt = data[1] & 0x7F
        seq = int.from_bytes(data[2:4], "big")
        if self.capture:
            self.capture.write(json.dumps({"t": t, "ssrc": ssrc, "pt": pt, "seq": seq},
                                          separators=(",", ":")) + "\n")
        p = self.packets.get(ssrc)
        if p is None:
            p = self.packets[ssrc] = {"count": 0, "first": t, "last": t, "pt": pt}
            emit({"event": "first_packet", "t": t, "ssrc": ssrc, "pt": pt,
                  "connection_id": self.ssrc_owner.get(ssrc)})
        p["count"] += 1
        p["last"] = t
        if ssrc not in self.accepted:
            kind = "after_declined" if ssrc in self.ever_accepted else "before_answer"
            key = f"{kind} {ssrc}"
            n = self.violation_counts.get(key, 0)
            self.violation_counts[key] = n + 1
            v = {"kind": kind, "t": t, "ssrc": ssrc, "pt": pt, "seq": seq,
                 "answers_sent": len(self.answers),
                 "connection_id": self.ssrc_owner.get(ssrc)}
            if len(self.violations) < 50:
                self.violations.append(v)
            if n == 0:
                emit({"event": "violation", **v})

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def answer(self, msg, kind):
        offer_sdp = msg["sdp"]
        self.offered_owner = {s["mid"]: s["msid"].split(" ")[0]
                              for s in parse_sections(offer_sdp) if s["msid"]}
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        if kind == "answer" and self.args.role != "recvonly":
            own = (msg.get("mid") or {}).get("video")
            tr = next((t for t in self.pc.getTransceivers() if t.mid == own), None)
            if tr is None:
                raise RuntimeError(f"no transceiver for own video mid {own!r}")
            tr.sender.replaceTrack(IdentityTrack(self.args.identity))
            tr.direction = "sendonly"
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        sdp = self.pc.localDescription.sdp
        sections = accepted_sections(offer_sdp, sdp)
        accepted = set()
        for s in sections:
            if s["accepted"]:
                accepted.update(s["ssrcs"])
            for ssrc in s["ssrcs"]:
                if s["connection_id"]:
                    self.ssrc_owner[ssrc] = s["connection_id"]
        t = now_ms()  # before sending: no packet can be caused by an answer not yet sent
        self.accepted = accepted
        self.ever_accepted |= accepted
        await self.send({"type": kind, "sdp": sdp})
        record = {"t": t, "type": kind, "accepted_ssrcs": sorted(accepted),
                  "sections": sections}
        self.answers.append(record)
        emit({"event": "answer", **record, "sdp": sdp})

    def on_track(self, track):
        tr = next((t for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        mid = tr.mid if tr else None
        owner = self.offered_owner.get(mid)
        emit({"event": "track", "t": now_ms(), "kind": track.kind, "mid": mid,
              "connection_id": owner, "track_id": track.id})
        if track.kind == "video":
            self.tasks.append(asyncio.ensure_future(self.consume(track, mid, owner)))
        else:
            self.tasks.append(asyncio.ensure_future(self.drain(track)))

    async def drain(self, track):
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    async def consume(self, track, mid, owner):
        try:
            while True:
                frame = await track.recv()
                identity = read_identity(frame)
                r = self.received.setdefault(owner, {"frames": 0, "identities": {},
                                                     "undecodable": 0, "mids": []})
                if mid not in r["mids"]:
                    r["mids"].append(mid)
                r["frames"] += 1
                if identity is None:
                    r["undecodable"] += 1
                else:
                    key = str(identity)
                    n = r["identities"].get(key, 0)
                    r["identities"][key] = n + 1
                    if n == 0 or n + 1 == 10 or (n + 1) % 15 == 0:
                        emit({"event": "decoded", "t": now_ms(), "mid": mid,
                              "connection_id": owner, "identity": identity, "frames": n + 1})
        except MediaStreamError:
            pass

    async def handle(self, msg):
        t = msg.get("type")
        if t == "offer":
            self.connection_id = msg.get("connection_id")
            emit({"event": "offer", "t": now_ms(), "connection_id": self.connection_id,
                  "mid": msg.get("mid"), "sdp": msg.get("sdp")})
            config = RTCConfiguration(iceServers=[])  # no default STUN server: loopback only
            self.pc = RTCPeerConnection(configuration=config)
            self.pc.on("track", self.on_track)

            @self.pc.on("connectionstatechange")
            def on_state():
                emit({"event": "state", "t": now_ms(), "state": self.pc.connectionState})

            await self.answer(msg, "answer")
        elif t == "re-offer":
            emit({"event": "re-offer", "t": now_ms(), "sdp": msg.get("sdp")})
            await self.answer(msg, "re-answer")
        elif t == "ping":
            await self.send({"type": "pong"})
        elif t == "notify":
            n = {"event": "notify", "t": now_ms(), "event_type": msg.get("event_type"),
                 "connection_id": msg.get("connection_id")}
            self.notifies.append(n)
            emit(n)
        else:
            emit({"event": "message", "t": now_ms(), "type": t})

    async def signaling(self):
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    continue
                msg = json.loads(raw)
                try:
                    await self.handle(msg)
                except Exception as e:  # reported, and the test fails on it
                    if self.leaving:
                        continue  # e.g. a re-answer that crossed our disconnect
                    err = {"event": "error", "t": now_ms(), "while": msg.get("type"),
                           "error": f"{type(e).__name__}: {e}"}
                    self.errors.append(err)
                    emit(err)
        except websockets.ConnectionClosed:
            pass
        self.close_info = {"t": now_ms(), "code": self.ws.close_code,
                           "reason": self.ws.close_reason}
        emit({"event": "closed", **self.close_info})
        self.closed.set()

    def summary(self):
        """A snapshot (deep copy): nothing that happens while leaving changes it."""
        summary = {"event": "summary", "t": now_ms(), "connection_id": self.connection_id,
                   "identity": self.args.identity, "role": self.args.role,
                   "ws_open_before_leave": self.close_info is None,
                   "pc_state_before_leave": self.pc.connectionState if self.pc else None,
                   "close": self.close_info, "answers": self.answers,
                   "received": self.received,
                   "packets": {str(k): v for k, v in self.packets.items()},
                   "ssrc_owner": {str(k): v for k, v in self.ssrc_owner.items()},
                   "violation_counts": self.violation_counts,
                   "violations": self.violations, "notifies": self.notifies,
                   "errors": self.errors}
        return json.loads(json.dumps(summary))

    async def run(self):
        loop = asyncio.get_running_loop()
        leave = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, leave.set)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def commands():
            while True:
                line = await reader.readline()
                if not line or line.strip() == b"leave":
                    leave.set()
                    return

        self.ws = await websockets.connect(self.args.url, max_size=2**22, ping_interval=None)
        connect = {"type": "connect", "role": self.args.role, "channel_id": self.args.channel,
                   "multistream": True, "audio": False, "video": {"codec_type": "VP8"},
                   "sora_client": "aiortc 1.4.0 (hisoka interop test)",
                   "environment": "python", "signaling_notify_metadata":
                   {"identity": self.args.identity}}
        await self.send(connect)
        emit({"event": "connect", "t": now_ms(), "role": self.args.role,
              "identity": self.args.identity})
        sig = asyncio.ensure_future(self.signaling())
        cmd = asyncio.ensure_future(commands())
        waits = [asyncio.ensure_future(leave.wait()), asyncio.ensure_future(self.closed.wait())]
        await asyncio.wait(waits, timeout=self.args.max_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        summary = self.summary()
        self.leaving = True
        if self.close_info is None:
            try:
                await self.send({"type": "disconnect", "reason": "NO-ERROR"})
                await asyncio.wait_for(self.ws.close(), 2)
            except Exception:
                pass
        if self.pc:
            try:
                await asyncio.wait_for(self.pc.close(), 2)
            except Exception:
                pass
        if self.capture:
            self.capture.close()
        emit(summary)
        for t in [sig, cmd, *waits, *self.tasks]:
            t.cancel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--channel", required=True)
    ap.add_argument("--role", choices=["sendrecv", "sendonly", "recvonly"], default="sendrecv")
    ap.add_argument("--identity", type=int, default=0, help="0..255, shown by the video")
    ap.add_argument("--capture", help="write every received RTP packet here (JSON lines)")
    ap.add_argument("--max-seconds", type=float, default=60)
    args = ap.parse_args()
    if not 0 <= args.identity <= 255:
        ap.error("--identity must be 0..255")
    client = Client(args)

    # Host candidates on loopback only (aioice leaves 127.0.0.1 out by default); the
    # server under test is on 127.0.0.1.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    # Packet capture at the earliest point in the event loop.
    original = aioice.ice.Connection.data_received

    def data_received(self, data, component):
        client.on_datagram(data)
        original(self, data, component)

    aioice.ice.Connection.data_received = data_received
    asyncio.run(client.run())


if __name__ == "__main__":
    main()

"""The answer a participant gets sets Opus up for voice: mono, in-band FEC, DTX."""

from __future__ import annotations

import re

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


async def test_the_answer_negotiates_opus_for_voice_only(server: ServerProcess) -> None:
    circle = server.create_circle()
    person = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", 500.0)
    try:
        await person.connect()
        await person.join()
        await person.start_audio()
        answer = next(m for m in person.messages if m["type"] == "answer")["sdp"]
        answer = answer.replace("\r\n", "\n")
        payload_types = re.search(r"^m=audio \d+ \S+ ([\d ]+)$", answer, re.M)
        assert payload_types is not None
        rtpmaps = re.findall(r"^a=rtpmap:(\d+) (\S+)$", answer, re.M)
        # Opus alone: the server neither decodes nor sends anything else.
        # (one audio section per receive slot the client offered, each Opus alone)
        assert {codec.lower() for _, codec in rtpmaps} == {"opus/48000/2"}
        assert len(rtpmaps) == len(re.findall(r"^m=audio ", answer, re.M)) == person.slots
        (opus_pt,) = payload_types.group(1).split()
        fmtp = re.search(rf"^a=fmtp:{opus_pt} (.+)$", answer, re.M)
        assert fmtp is not None
        params = dict(p.split("=", 1) for p in fmtp.group(1).strip().split(";"))
        assert params["useinbandfec"] == "1"
        assert params["usedtx"] == "1"
        assert params["stereo"] == "0" and params["sprop-stereo"] == "0"
        assert 24_000 <= int(params["maxaveragebitrate"]) <= 32_000
        # RFC 6464 levels come with every voice packet; the server reads them, not the page.
        assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in answer
        await person.wait_connected()
    finally:
        await person.close()

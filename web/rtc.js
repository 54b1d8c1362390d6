// The audio side: the microphone and the one RTCPeerConnection to the server's relay.

// Voice processing on: people join from kitchens and buses, mostly without headphones.
const VOICE_CONSTRAINTS = {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: false,
};

// If ICE gathering never reports 'complete', send what was gathered by then.
const GATHERING_TIMEOUT_MS = 3000;

/**
 * Asks for the microphone. Resolves to {stream} or, when there is none or it was refused,
 * to {stream: null, reason} with reason one of 'refused', 'no-device', 'unsupported', 'failed'.
 */
export async function openMicrophone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        return { stream: null, reason: 'unsupported' };
    }
    try {
        const stream = await navigator.mediaDevices.getUserMedia(VOICE_CONSTRAINTS);
        return { stream, reason: null };
    } catch (error) {
        const name = error && error.name;
        if (name === 'NotAllowedError' || name === 'SecurityError') {
            return { stream: null, reason: 'refused' };
        }
        if (name === 'NotFoundError' || name === 'OverconstrainedError') {
            return { stream: null, reason: 'no-device' };
        }
        return { stream: null, reason: 'failed' };
    }
}

export function stopStream(stream) {
    if (!stream) return;
    for (const track of stream.getTracks()) track.stop();
}

function waitForGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
        const done = () => {
            clearTimeout(timer);
            pc.removeEventListener('icegatheringstatechange', check);
            resolve();
        };
        const check = () => {
            if (pc.iceGatheringState === 'complete') done();
        };
        const timer = setTimeout(done, timeoutMs);
        pc.addEventListener('icegatheringstatechange', check);
    });
}

/**
 * One peer connection to the server: sends the microphone track (or nothing, to listen only)
 * and receives the circle's audio as one remote stream.
 *
 * Callbacks: onRemoteStream(stream), onStateChange(connectionState).
 */
export class AudioPeer {
    constructor(track) {
        this.track = track || null;
        this.remoteStream = null;
        this.onRemoteStream = null;
        this.onStateChange = null;
        // No STUN or TURN: the server offers its own addresses, and we ask no third party.
        this.pc = new RTCPeerConnection({ iceServers: [] });
        this.pc.addEventListener('track', (event) => this._gotTrack(event));
        this.pc.addEventListener('connectionstatechange', () => {
            if (this.onStateChange) this.onStateChange(this.pc.connectionState);
        });
    }

    /** Builds the offer and returns its SDP, with the gathered candidates in it. */
    async createOffer() {
        if (this.track) {
            const stream = new MediaStream([this.track]);
            this.pc.addTransceiver(this.track, { direction: 'sendrecv', streams: [stream] });
        } else {
            this.pc.addTransceiver('audio', { direction: 'recvonly' });
        }
        const offer = await this.pc.createOffer();
        await this.pc.setLocalDescription(offer);
        await waitForGathering(this.pc, GATHERING_TIMEOUT_MS);
        return this.pc.localDescription.sdp;
    }

    async acceptAnswer(sdp) {
        await this.pc.setRemoteDescription({ type: 'answer', sdp });
    }

    close() {
        this.onRemoteStream = null;
        this.onStateChange = null;
        try {
            this.pc.close();
        } catch {
            // Already closed.
        }
    }

    _gotTrack(event) {
        // The server may send its track without a stream id; then we make the stream ourselves.
        const stream = event.streams && event.streams[0]
            ? event.streams[0]
            : new MediaStream([event.track]);
        if (this.remoteStream && this.remoteStream !== stream) {
            const known = this.remoteStream.getTracks();
            for (const track of stream.getTracks()) {
                if (!known.includes(track)) this.remoteStream.addTrack(track);
            }
        } else {
            this.remoteStream = stream;
        }
        if (this.onRemoteStream) this.onRemoteStream(this.remoteStream);
    }
}

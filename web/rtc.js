// The audio side: the microphone and the one RTCPeerConnection to the server's relay.

// Voice processing on: people join from kitchens and buses, mostly without headphones.
const VOICE_CONSTRAINTS = {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: false,
};

// If ICE gathering never reports 'complete', send what was gathered by then.
const GATHERING_TIMEOUT_MS = 3000;

// This deployment's TURN server with short-lived credentials, from the server's `joined`
// message (docs/protocol.md); never a third party's STUN or TURN.
let iceServers = [];

export function useIceServers(servers) {
    iceServers = Array.isArray(servers) ? servers : [];
}

/**
 * Asks for the microphone. Resolves to {stream} or, when there is none or it was refused,
 * to {stream: null, reason} with reason one of 'refused', 'no-device', 'unsupported', 'failed'.
 */
export async function openMicrophone(deviceId = null) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        return { stream: null, reason: 'unsupported' };
    }
    const constraints = deviceId
        ? { ...VOICE_CONSTRAINTS, audio: { ...VOICE_CONSTRAINTS.audio, deviceId: { exact: deviceId } } }
        : VOICE_CONSTRAINTS;
    try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
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

/** The microphones the browser names (labels only once permission was given). */
export async function listMicrophones() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
    try {
        const devices = await navigator.mediaDevices.enumerateDevices();
        return devices.filter((d) => d.kind === 'audioinput' && d.deviceId);
    } catch {
        return [];
    }
}

/** Whether the microphone permission is already granted ('granted'|'denied'|'prompt'|null). */
export async function microphonePermission() {
    try {
        const status = await navigator.permissions.query({ name: 'microphone' });
        return status.state;
    } catch {
        return null;
    }
}

/**
 * A live level (0-100) of a microphone stream, sampled ten times a second: enough for a
 * meter, cheap on an old phone. Calls onLevel(level) each time.
 */
export class LevelMeter {
    constructor(stream, onLevel) {
        this.onLevel = onLevel;
        const Context = window.AudioContext || window.webkitAudioContext;
        this.context = new Context();
        this.source = this.context.createMediaStreamSource(stream);
        this.analyser = this.context.createAnalyser();
        this.analyser.fftSize = 1024;
        this.source.connect(this.analyser);
        this.samples = new Float32Array(this.analyser.fftSize);
        this.timer = window.setInterval(() => this._sample(), 100);
        // A context made outside a click may start suspended; any later click resumes it.
        if (this.context.state === 'suspended') this.context.resume().catch(() => {});
    }

    _sample() {
        if (this.context.state === 'suspended') this.context.resume().catch(() => {});
        this.analyser.getFloatTimeDomainData(this.samples);
        let sum = 0;
        for (const v of this.samples) sum += v * v;
        const rms = Math.sqrt(sum / this.samples.length);
        // -60 dBFS .. 0 dBFS onto 0..100, so quiet speech still moves the bar.
        const db = rms > 0 ? 20 * Math.log10(rms) : -100;
        const level = Math.max(0, Math.min(100, Math.round(((db + 60) / 60) * 100)));
        if (this.onLevel) this.onLevel(level);
    }

    stop() {
        window.clearInterval(this.timer);
        this.onLevel = null;
        try {
            this.source.disconnect();
        } catch {
            // Already disconnected.
        }
        this.context.close().catch(() => {});
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
        this.sender = null;
        this.onRemoteStream = null;
        this.onStateChange = null;
        // Only this deployment's TURN (for networks that block UDP); no third party.
        this.pc = new RTCPeerConnection({ iceServers });
        this.pc.addEventListener('track', (event) => this._gotTrack(event));
        this.pc.addEventListener('connectionstatechange', () => {
            if (this.onStateChange) this.onStateChange(this.pc.connectionState);
        });
    }

    /** Builds the offer and returns its SDP, with the gathered candidates in it. */
    async createOffer() {
        if (this.track) {
            const stream = new MediaStream([this.track]);
            const transceiver = this.pc.addTransceiver(this.track, { direction: 'sendrecv', streams: [stream] });
            this.sender = transceiver.sender;
        } else {
            this.pc.addTransceiver('audio', { direction: 'recvonly' });
        }
        const offer = await this.pc.createOffer();
        await this.pc.setLocalDescription(offer);
        await waitForGathering(this.pc, GATHERING_TIMEOUT_MS);
        return this.pc.localDescription.sdp;
    }

    /**
     * Sends another microphone track on the same sender: no new offer, no new connection, so
     * the seat, the mute and the sound going out stay as they are. False when this connection
     * only listens (it has no sender to give a track to).
     */
    async replaceTrack(track) {
        if (!this.sender) return false;
        try {
            await this.sender.replaceTrack(track);
        } catch {
            return false;
        }
        this.track = track;
        return true;
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

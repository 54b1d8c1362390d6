// The audio side: the microphone and the one RTCPeerConnection to the server's relay.

// Voice processing on: people join from kitchens and buses, mostly without headphones.
const VOICE_CONSTRAINTS = {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: false,
};

// If ICE gathering never reports 'complete', send what was gathered by then.
const GATHERING_TIMEOUT_MS = 3000;

// Receive tracks offered to the server (docs/architecture.md, "receive slots"): while no more
// people speak at once than this, each voice comes unchanged in a track of its own; the first
// track also carries the server's mix when more speak.
export const RECEIVE_SLOTS = 3;

// The page's own player (audio_out.js plays the first track in it); each further slot plays in an
// <audio> element of its own beside it, on the same speaker.
const MAIN_AUDIO_ID = 'circle-audio';

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
 * Plays one further receive slot in a hidden <audio> beside the page's own player: the same
 * speaker (setSinkId), autoplay; where the browser holds the sound back until a gesture, the
 * next click or key (the "Tap to hear" button among them) starts it with the page's player.
 */
class SlotPlayer {
    constructor(track) {
        const main = document.getElementById(MAIN_AUDIO_ID);
        this.element = document.createElement('audio');
        this.element.autoplay = true;
        this.element.hidden = true;
        this.element.dataset.testid = 'circle-audio-slot';
        this.element.srcObject = new MediaStream([track]);
        if (main && main.parentNode) main.parentNode.insertBefore(this.element, main.nextSibling);
        else document.body.appendChild(this.element);
        this.retry = () => this.play();
        document.addEventListener('click', this.retry, true);
        document.addEventListener('keydown', this.retry, true);
        this.play();
    }

    play() {
        followMainSink(this.element);
        if (!this.element.paused) return;
        const played = this.element.play();
        if (played && typeof played.catch === 'function') played.catch(() => {});
    }

    stop() {
        document.removeEventListener('click', this.retry, true);
        document.removeEventListener('keydown', this.retry, true);
        this.element.pause();
        this.element.srcObject = null;
        this.element.remove();
    }
}

/** ``element`` plays on the speaker the page's own player was sent to (devices.js). */
function followMainSink(element) {
    const main = document.getElementById(MAIN_AUDIO_ID);
    const sink = main && main.sinkId;
    if (sink !== undefined && element.setSinkId && element.sinkId !== sink) {
        element.setSinkId(sink).catch(() => {});
    }
}

/** Each slot's player follows the page's player to the speaker chosen there (devices.js). */
export function followSpeaker() {
    for (const element of document.querySelectorAll('[data-testid="circle-audio-slot"]')) {
        followMainSink(element);
    }
}

/**
 * One peer connection to the server: sends the microphone track (or nothing, to listen only)
 * and receives the circle's audio: the first receive slot as the remote stream the page
 * plays, the others (RECEIVE_SLOTS in all) each in a player of their own (SlotPlayer).
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
        this.slotPlayers = [];
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
        for (let slot = 1; slot < RECEIVE_SLOTS; slot++) {
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
        for (const player of this.slotPlayers) player.stop();
        this.slotPlayers = [];
        try {
            this.pc.close();
        } catch {
            // Already closed.
        }
    }

    _gotTrack(event) {
        const slot = this.pc.getTransceivers().indexOf(event.transceiver);
        if (slot > 0) {
            this.slotPlayers.push(new SlotPlayer(event.track));
            return;
        }
        // The first slot's track alone in the stream the page plays: the server's stream id
        // (if any) groups every slot's track, and a player plays only one of them.
        if (!this.remoteStream) {
            this.remoteStream = new MediaStream([event.track]);
        } else if (!this.remoteStream.getTracks().includes(event.track)) {
            for (const track of this.remoteStream.getTracks()) this.remoteStream.removeTrack(track);
            this.remoteStream.addTrack(event.track);
        }
        if (this.onRemoteStream) this.onRemoteStream(this.remoteStream);
    }
}

// Microphone and speaker in the circle (issue 14): change the microphone without leaving (the
// new track replaces the old one on the same RTCRtpSender: no new offer, no rejoin), choose
// where the circle plays (HTMLMediaElement.setSinkId, where the browser has it), and follow a
// headset plugged in or out (`devicechange`).

import { el } from './dom.js';
import { followSpeaker, openMicrophone, stopStream } from './rtc.js';

const MIC_KEY = 'hearth.mic';
const SPEAKER_KEY = 'hearth.speaker';

function remember(key, value) {
    try {
        localStorage.setItem(key, value);
    } catch {
        // Not remembered; fine.
    }
}

function recall(key) {
    try {
        return localStorage.getItem(key);
    } catch {
        return null;
    }
}

async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
    try {
        return await navigator.mediaDevices.enumerateDevices();
    } catch {
        return [];
    }
}

export const canChooseSpeaker = typeof HTMLMediaElement !== 'undefined'
    && 'setSinkId' in HTMLMediaElement.prototype;

/**
 * The "Sound settings" box in the circle view. `page` gives:
 *   current()      -> {track, peer, muted}: the microphone track in use, the AudioPeer, and
 *                     whether the person is muted (a new track starts in the same state)
 *   swap(stream)   the page takes the new microphone stream as its own
 *   say(text)      a sentence for the person (shown and read out)
 */
export class DeviceControls {
    constructor(page) {
        this.page = page;
        this.audio = document.getElementById('circle-audio');
        this.known = null;
        this.switching = false;
        this.watched = new WeakSet();
        this._build();
        if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
            navigator.mediaDevices.addEventListener('devicechange', () => this.onDeviceChange());
        }
    }

    _build() {
        this.micSelect = el('select', { id: 'circle-mic', testid: 'circle-mic' });
        this.micSelect.addEventListener('change', () => this.useMicrophone(this.micSelect.value));
        this.speakerSelect = el('select', { id: 'circle-speaker', testid: 'circle-speaker' });
        this.speakerSelect.addEventListener('change', () => this.useSpeaker(this.speakerSelect.value));
        this.micField = el('div', { className: 'field' },
            el('label', { htmlFor: 'circle-mic' }, 'Microphone'), this.micSelect);
        this.speakerField = el('div', { className: 'field' },
            el('label', { htmlFor: 'circle-speaker' }, 'Play the circle on'), this.speakerSelect);
        this.status = el('p', { className: 'hint', testid: 'devices-status' });
        this.box = el('details', { id: 'devices', className: 'devices', testid: 'devices' },
            el('summary', {}, 'Sound settings'), this.micField, this.speakerField, this.status);
        this.box.hidden = true;
        // After the panels (the host tools, the hand queue): what needs the person now comes
        // first, on a phone's first screen above the sticky bar; settings come after it.
        const anchor = document.getElementById('extra-panels');
        anchor.after(this.box);
    }

    /** Joined (or back): fill the lists and play on the speaker chosen before. */
    async refresh() {
        const devices = await listDevices();
        const { track } = this.page.current();
        const mics = devices.filter((d) => d.kind === 'audioinput' && d.deviceId);
        const speakers = devices.filter((d) => d.kind === 'audiooutput' && d.deviceId);
        const inUse = track && track.getSettings ? track.getSettings().deviceId : null;
        this._fill(this.micSelect, mics, inUse, 'Microphone');
        this.micField.hidden = !track || mics.length < 2;
        const wanted = recall(SPEAKER_KEY);
        this.speakerField.hidden = !canChooseSpeaker || speakers.length < 2;
        this._fill(this.speakerSelect, speakers, this.audio.sinkId || wanted || 'default', 'Speaker');
        this.box.hidden = this.micField.hidden && this.speakerField.hidden;
        if (canChooseSpeaker && wanted && !this.audio.sinkId
                && speakers.some((d) => d.deviceId === wanted)) {
            await this.useSpeaker(wanted, { quiet: true });
        }
        this.box.dataset.mic = track ? track.label : '';
        if (track && !this.watched.has(track)) {
            // Unplugged: Chromium ends the track (and may fire devicechange too, or not).
            this.watched.add(track);
            track.addEventListener('ended', () => this.onDeviceChange());
        }
        this.known = devices;
        return devices;
    }

    _fill(select, devices, chosen, noun) {
        select.replaceChildren(...devices.map((device, i) => el('option', {
            value: device.deviceId,
            selected: device.deviceId === chosen,
        }, device.label || `${noun} ${i + 1}`)));
    }

    /** Switch the microphone in place: same connection, same seat, same mute. */
    async useMicrophone(deviceId, { why = '' } = {}) {
        const { track: old, peer, muted } = this.page.current();
        if (!old || this.switching) return false;
        this.switching = true;
        try {
            const { stream } = await openMicrophone(deviceId);
            const track = stream ? stream.getAudioTracks()[0] : null;
            if (!track) {
                this.page.say('That microphone could not be started. Your microphone did not change.');
                await this.refresh();
                return false;
            }
            // A muted person stays muted: nothing of the new microphone leaves before Unmute.
            track.enabled = !muted;
            if (peer && !(await peer.replaceTrack(track))) {
                stopStream(stream);
                this.page.say('The microphone could not be changed here. Leave and join again to use it.');
                return false;
            }
            const oldStream = this.page.swap(stream);
            stopStream(oldStream);
            remember(MIC_KEY, deviceId);
            this.page.say(`${why}Now using ${track.label || 'the new microphone'}.`);
            await this.refresh();
            return true;
        } finally {
            this.switching = false;
        }
    }

    async useSpeaker(deviceId, { quiet = false } = {}) {
        if (!canChooseSpeaker) return false;
        try {
            await this.audio.setSinkId(deviceId);
            followSpeaker();
        } catch {
            if (!quiet) this.page.say('The circle could not be played there.');
            return false;
        }
        remember(SPEAKER_KEY, deviceId);
        this.box.dataset.speaker = deviceId;
        if (!quiet) {
            const option = [...this.speakerSelect.options].find((o) => o.value === deviceId);
            this.page.say(`The circle now plays on ${option ? option.textContent : 'the chosen speaker'}.`);
        }
        return true;
    }

    /** A headset plugged in or out: follow what is there, and say what changed. */
    async onDeviceChange() {
        const before = this.known || [];
        const { track } = this.page.current();
        const devices = await listDevices();
        const ids = (kind, list) => new Set(list.filter((d) => d.kind === kind).map((d) => d.deviceId));
        const micsBefore = ids('audioinput', before);
        const micsNow = ids('audioinput', devices);
        const inUse = track && track.getSettings ? track.getSettings().deviceId : null;
        const lost = track && (track.readyState === 'ended' || (inUse && !micsNow.has(inUse)));
        if (lost) {
            // The microphone in use is gone: take the system's default one, muted state kept.
            await this.useMicrophone('default', { why: 'Your microphone was unplugged. ' });
            return;
        }
        const added = devices.filter((d) => d.kind === 'audioinput' && d.deviceId
            && d.deviceId !== 'default' && !micsBefore.has(d.deviceId));
        await this.refresh();
        const sink = this.audio.sinkId;
        if (canChooseSpeaker && sink && sink !== 'default' && !ids('audiooutput', devices).has(sink)) {
            await this.useSpeaker('default', { quiet: true });
            this.page.say('The speaker the circle played on is gone; it plays on the default one now.');
        } else if (added.length && before.length) {
            this.page.say(`${added[0].label || 'A microphone'} was plugged in. `
                + 'You can choose it under Sound settings.');
        }
    }
}

// The microphone: the check before joining (permission, the level meter, the choice of
// device, the help when it cannot be used), taking and releasing it, and the note in the
// circle for someone who listens only.

import { LevelMeter, listMicrophones, openMicrophone, stopStream } from './rtc.js';
import { $, state } from './state.js';
import { joinLabel } from './views.js';

// A meter level above this means the microphone picks up sound.
const SOUND_LEVEL = 15;

const MIC_HELP = {
    refused: 'Your browser did not allow this page to use the microphone. To speak in the circle: '
        + 'open the site settings (the icon just left of the web address), set Microphone to '
        + 'Allow, then press Try again. On an iPhone: Settings, then Safari, then Microphone. '
        + 'You can also join now and listen only.',
    'no-device': 'No microphone was found. Plug in a headset or a microphone and press Try again, '
        + 'or join now and listen only.',
    unsupported: 'This browser cannot use a microphone on this page. You can join now and listen '
        + 'only, or open the link in a current Firefox, Chrome or Safari to speak.',
    failed: 'The microphone could not be started; another app may be using it. Close that app and '
        + 'press Try again, or join now and listen only.',
};

export function stopMeter() {
    if (state.meter) state.meter.stop();
    state.meter = null;
    $('mic-level').value = 0;
}

export async function checkMicrophone(deviceId = state.micDeviceId) {
    const button = $('mic-check');
    button.disabled = true;
    stopMeter();
    releaseMicrophone();
    $('mic-status').textContent = 'Asking for your microphone…';
    const { stream, reason } = await openMicrophone(deviceId);
    button.disabled = false;
    if (state.phase !== 'idle' && state.phase !== 'door') {
        // Joined (or left) while the prompt was open: the join flow owns the microphone now.
        stopStream(stream);
        return;
    }
    takeMicrophone(stream, reason);
    renderMicCheck();
    if (!stream) return;
    const meter = new LevelMeter(stream, (level) => {
        $('mic-level').value = level;
        const heard = $('mic-heard');
        const text = level >= SOUND_LEVEL ? 'Sound is coming in' : 'Quiet';
        if (heard.textContent !== text) heard.textContent = text;
        heard.dataset.sound = String(level >= SOUND_LEVEL);
    });
    state.meter = meter;
    await fillMicrophoneChoice();
}

export function takeMicrophone(stream, reason) {
    state.mic = stream;
    state.track = stream ? stream.getAudioTracks()[0] || null : null;
    state.micReason = reason;
    if (state.track) {
        const settings = state.track.getSettings ? state.track.getSettings() : {};
        if (settings.deviceId) state.micDeviceId = settings.deviceId;
    }
}

async function fillMicrophoneChoice() {
    const mics = await listMicrophones();
    const select = $('mic-select');
    select.replaceChildren();
    mics.forEach((mic, i) => {
        const option = document.createElement('option');
        option.value = mic.deviceId;
        option.textContent = mic.label || `Microphone ${i + 1}`;
        option.selected = mic.deviceId === state.micDeviceId;
        select.append(option);
    });
    $('mic-choice').hidden = mics.length < 2;
}

export function renderMicCheck() {
    const help = $('mic-help');
    const joinMuted = $('join-muted');
    if (state.track) {
        $('mic-status').textContent = 'Your microphone is ready. Speak and watch the bar move; '
            + 'if it stays still, choose another microphone.';
        $('mic-meter-wrap').hidden = false;
        help.hidden = true;
        $('mic-check').hidden = true;
        joinMuted.disabled = false;
    } else if (state.micReason) {
        $('mic-status').textContent = 'You can join to listen only.';
        help.textContent = MIC_HELP[state.micReason] || MIC_HELP.failed;
        help.hidden = false;
        $('mic-meter-wrap').hidden = true;
        $('mic-check').hidden = false;
        $('mic-check').textContent = 'Try again';
        joinMuted.checked = true;
        joinMuted.disabled = true;
    }
    if (state.phase === 'idle') $('join').textContent = joinLabel();
}

export async function ensureMicrophone() {
    if (state.mic) return;
    const { stream, reason } = await openMicrophone(state.micDeviceId);
    takeMicrophone(stream, reason);
}

export function releaseMicrophone() {
    stopStream(state.mic);
    state.mic = null;
    state.track = null;
    state.micReason = null;
}

export function micNote(reason) {
    switch (reason) {
    case 'refused':
        return 'Microphone access was not allowed, so you are here to listen only. '
            + 'To speak, allow the microphone for this site, then leave and join again.';
    case 'no-device':
        return 'No microphone was found, so you are here to listen only.';
    case 'unsupported':
        return 'This browser does not offer a microphone here, so you are here to listen only.';
    case 'failed':
        return 'The microphone could not be started, so you are here to listen only.';
    default:
        return '';
    }
}

export function renderMicNote() {
    const note = $('mic-note');
    const text = state.track ? '' : micNote(state.micReason);
    note.textContent = text;
    note.hidden = !text;
}

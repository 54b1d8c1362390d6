// Audio out, and staying awake: the circle's sound in the <audio> element (with "Tap to
// hear" where the browser holds it back), closing the peer connection, and the wake lock.

import { $, state } from './state.js';
import { announce, setNotice } from './views.js';

export function attachAudio(stream) {
    const audio = $('circle-audio');
    if (audio.srcObject !== stream) audio.srcObject = stream;
    playAudio();
}

// Where the browser blocks sound until a tap (iOS Safari, some Chrome policies), say so and
// offer the tap instead of leaving the person in silence.
export function playAudio() {
    const audio = $('circle-audio');
    if (!audio.srcObject) return;
    const played = audio.play();
    if (played && typeof played.then === 'function') {
        played.then(() => { $('tap-to-hear').hidden = true; }).catch(() => {
            if ($('tap-to-hear').hidden) {
                $('tap-to-hear').hidden = false;
                announce('Your browser is holding the sound back. Press Tap to hear the circle.', true);
            }
        });
    }
}

export function onTapToHear() {
    const audio = $('circle-audio');
    audio.play().then(() => {
        $('tap-to-hear').hidden = true;
        $('circle-title').focus();
    }).catch(() => {
        setNotice('The browser would not play the sound. Please check that this tab is not muted.');
    });
}

// Keep the screen (and so the connection) awake on phones where the platform allows it. The
// lock is released whenever the page is hidden; it is taken again when the page comes back.
export async function keepAwake() {
    if (!('wakeLock' in navigator) || state.wakeLock || state.phase !== 'in') return;
    if (document.visibilityState !== 'visible') return;
    try {
        const lock = await navigator.wakeLock.request('screen');
        state.wakeLock = lock;
        lock.addEventListener('release', () => {
            if (state.wakeLock === lock) state.wakeLock = null;
        });
    } catch {
        // Refused (battery saver, or not allowed): the circle works without it.
    }
}

export function releaseWakeLock() {
    const lock = state.wakeLock;
    state.wakeLock = null;
    if (lock) lock.release().catch(() => {});
}

export function closePeer() {
    if (state.peer) state.peer.close();
    state.peer = null;
    state.peerState = 'new';
    const audio = $('circle-audio');
    audio.pause();
    audio.srcObject = null;
    $('tap-to-hear').hidden = true;
}

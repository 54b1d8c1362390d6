// The connection lifecycle after joining: a close, a lost connection, reconnecting with
// backoff (with the seat_token, so the seat comes back), the device going offline and online,
// and the page coming back to the foreground.

import { closePeer, keepAwake, playAudio } from './audio_out.js';
import { isOnline } from './connection_state.js';
import { showEnded, showNotOpen } from './endings.js';
import { connectAndJoin } from './joining.js';
import { CLOSE_NOT_OPEN } from './protocol.js';
import { refusedAtDoor } from './refusals.js';
import { applyLocalMute, endPushToTalk } from './self_state.js';
import { $, CLOSE_ENDED, FINAL_CLOSES, page, state } from './state.js';
import { announce, setConnection, setJoining, setJoinStatus } from './views.js';

const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 15000;
// A node that drains closes with 1012 once it has handed the circle on, and any door holds a
// join until the new owner can take it: coming back after a short spread (not the first
// backoff step) keeps the audio gap of a move well under a second.
const CLOSE_SERVICE_RESTART = 1012;
const HANDED_ON_MIN_MS = 50;
const HANDED_ON_SPREAD_MS = 200;

export function dropConnection() {
    if (state.conn) state.conn.close();
    state.conn = null;
}

export function clearRetry() {
    if (state.retryTimer !== null) window.clearTimeout(state.retryTimer);
    state.retryTimer = null;
}

export function connectionFailed() {
    if (page.door && page.door.shown) {
        refusedAtDoor(page.door.code, 'The circle could not be reached just now.');
        return;
    }
    if (state.waiting) {
        showNotOpen();
        return;
    }
    if (state.phase === 'in' || state.connection === 'reconnecting') {
        scheduleReconnect();
        return;
    }
    state.phase = 'idle';
    setConnection('idle');
    setJoining(false);
    setJoinStatus('The circle could not be reached. Please check your connection and try again.');
}

export function onClose(conn, code, wasLeaving) {
    if (state.conn !== conn) return;
    state.conn = null;
    if (wasLeaving || state.phase === 'left' || state.phase === 'ended') return;
    if (FINAL_CLOSES.has(code)) {
        showEnded(code);
        return;
    }
    if (code === CLOSE_NOT_OPEN) {
        if (state.connection === 'reconnecting' && state.you) {
            showEnded(CLOSE_ENDED);
        } else {
            showNotOpen();
        }
        return;
    }
    if (state.phase === 'in' || state.phase === 'joining' || state.phase === 'waiting') {
        connectionLost({ handedOn: code === CLOSE_SERVICE_RESTART });
    }
}

export function connectionLost({ handedOn = false } = {}) {
    endPushToTalk();
    closePeer();
    dropConnection();
    // Back muted, whatever it was (the server resumes the seat muted too): nobody goes on air
    // again without pressing Unmute.
    state.wantMuted = true;
    applyLocalMute(true);
    // Lost while in the lobby: knock again at once and quietly (the lobby view stays).
    if (state.phase !== 'waiting' && $('view-circle').hidden) {
        connectionFailed();
        return;
    }
    setConnection('reconnecting');
    state.speaking = new Set();
    scheduleReconnect({ handedOn });
}

// Exponential backoff with jitter (so a server restart is not met by everyone at once).
export function scheduleReconnect({ handedOn = false } = {}) {
    clearRetry();
    state.phase = 'joining';
    if (!isOnline()) {
        // Nothing to try until the network is back: the `online` event reconnects.
        setConnection('offline');
        return;
    }
    setConnection('reconnecting');
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** state.reconnectAttempts);
    const delay = handedOn && state.reconnectAttempts === 0
        ? Math.round(HANDED_ON_MIN_MS + HANDED_ON_SPREAD_MS * Math.random())
        : Math.round(base * (0.8 + 0.4 * Math.random()));
    state.reconnectAttempts += 1;
    const seconds = Math.max(1, Math.round(delay / 1000));
    $('reconnect-text').replaceChildren(
        Object.assign(document.createElement('strong'), { textContent: 'The connection was lost.' }),
        ` Trying again in ${seconds} second${seconds === 1 ? '' : 's'}. `
            + 'Your place in the circle is kept for a minute.',
    );
    state.retryTimer = window.setTimeout(() => {
        state.retryTimer = null;
        connectAndJoin();
    }, delay);
}

export function reconnectNow() {
    if (state.connection !== 'reconnecting' && state.connection !== 'offline') return;
    state.reconnectAttempts = 0;
    clearRetry();
    connectAndJoin();
}

// The device lost its network (the `offline` event): say so at once rather than after the
// socket times out; nothing reaches the circle meanwhile.
export function wentOffline() {
    endPushToTalk();
    if (state.phase === 'in' || state.phase === 'waiting' || state.connection === 'reconnecting') {
        setConnection('offline');
        announce('You are offline. Nobody hears you until the network is back.', true, 'connection');
    } else if (state.phase === 'idle' || state.phase === 'door' || state.phase === 'joining') {
        setJoinStatus('Your device is offline. You can join once the network is back.');
    }
}

export function cameOnline() {
    if (state.connection === 'offline') {
        const peerBroken = !state.peer || ['failed', 'closed'].includes(state.peerState);
        const socketUp = state.conn && state.conn.isOpen;
        if (socketUp && (state.phase === 'waiting' || (state.phase === 'in' && !peerBroken))) {
            setConnection('connected');
            announce('You are back online.');
            return;
        }
        state.reconnectAttempts = 0;
        setConnection('reconnecting');
        if (state.phase === 'in') {
            connectionLost();
        } else {
            reconnectNow();
        }
        return;
    }
    if ($('join-status').textContent.startsWith('Your device is offline')) setJoinStatus('');
    if (state.connection === 'reconnecting') reconnectNow();
}

// Back in the foreground (a phone unlocked, a tab brought back): check that everything still
// works and mend what does not, without waiting for the next backoff step.
export function onVisible() {
    if (document.visibilityState !== 'visible') {
        endPushToTalk();
        return;
    }
    if (state.phase === 'in') {
        keepAwake();
        playAudio();
        const peerBroken = state.peer && ['failed', 'closed', 'disconnected'].includes(state.peerState);
        if (!state.conn || !state.conn.isOpen || peerBroken) connectionLost();
    } else if (state.connection === 'reconnecting') {
        reconnectNow();
    }
}

// Your own controls and whether you are heard: the Mute button, the one sentence saying
// whether the circle hears you, and push-to-talk (hold the space bar while muted).

import { $, MODERATORS, page, state } from './state.js';
import { setNotice } from './views.js';

export function renderSelfMute() {
    const button = $('self-mute');
    $('ptt-hint').hidden = page.touchOnly || !state.track || !state.you || !state.you.muted;
    if (!state.track) {
        button.disabled = true;
        button.textContent = 'Listening only';
        button.removeAttribute('aria-pressed');
        button.classList.remove('primary');
        renderSelfState();
        return;
    }
    const muted = !state.you || state.you.muted || !state.track.enabled;
    button.disabled = false;
    button.textContent = muted ? 'Unmute' : 'Mute';
    button.setAttribute('aria-pressed', String(muted));
    button.classList.toggle('primary', muted);
    renderSelfState();
}

// One sentence on whether the circle hears me: the server's mute state, this microphone, and
// whether the sound connection is up. Text and icon say it, not colour alone.
function selfState() {
    if (!state.you) return { heard: false, text: '' };
    if (state.connection === 'offline') {
        return { heard: false, text: 'Your device is offline. Nobody hears you.' };
    }
    if (state.connection === 'reconnecting') {
        return { heard: false, text: 'Nobody hears you until the connection is back.' };
    }
    if (!state.track) return { heard: false, text: 'You are listening only. Nobody hears you.' };
    if (state.you.muted || !state.track.enabled) {
        return { heard: false, text: 'You are muted. Nobody hears you.' };
    }
    if (state.peerState !== 'connected') {
        return { heard: false, text: 'Your microphone is on. Connecting the sound…' };
    }
    const room = currentRoom();
    if (room && room.speaking_mode === 'hand_raise' && !MODERATORS.has(state.you.role)
            && !state.you.has_floor) {
        const place = queuePlace(state.you.id);
        const wait = place
            ? ` Your hand is up: you are ${ordinal(place)} in the queue.`
            : ' Raise your hand to ask for it.';
        return { heard: false, text: `Nobody hears you until a host gives you the floor.${wait}` };
    }
    if (state.pushToTalk) return { heard: true, text: 'You can be heard while you hold the space bar.' };
    if (state.speaking.has(state.you.id)) return { heard: true, text: 'You can be heard. You are speaking now.' };
    return { heard: true, text: 'You can be heard.' };
}

function currentRoom() {
    return state.conn ? state.conn.room : null;
}

// 1-based place in the hand queue, or 0.
function queuePlace(id) {
    const room = currentRoom();
    if (!room || !Array.isArray(room.hand_queue)) return 0;
    return room.hand_queue.indexOf(id) + 1;
}

function ordinal(n) {
    const tens = n % 100;
    if (tens >= 11 && tens <= 13) return `${n}th`;
    return `${n}${{ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] || 'th'}`;
}

export function renderSelfState() {
    const { heard, text } = selfState();
    const box = $('self-state');
    box.dataset.heard = String(heard);
    box.dataset.speaking = String(Boolean(state.you && state.speaking.has(state.you.id)));
    if ($('self-state-text').textContent !== text) $('self-state-text').textContent = text;
}

// The server drops a muted person's audio whatever the browser sends; switching the track off
// as well means nothing leaves this microphone at all.
export function applyLocalMute(muted) {
    if (state.track) state.track.enabled = !muted;
}

export function onSelfMuteClick() {
    if (!state.conn || !state.you || !state.track) return;
    const currentlyMuted = state.you.muted || !state.track.enabled;
    if (currentlyMuted) {
        // Unmute only once the server agrees (participant_updated switches the track on).
        state.wantMuted = false;
        if (state.you.muted) {
            state.conn.mute(false);
        } else {
            applyLocalMute(false);
        }
        setNotice('');
    } else {
        state.wantMuted = true;
        applyLocalMute(true);
        state.conn.mute(true);
    }
    renderSelfMute();
}

// Hold the space bar to talk while muted: only when focus rests on the page itself or on a
// heading, never on a control or anything focused in its place (a row whose button just went
// away), where the space bar means "press this" (web/focus.js keeps focus off the body).
const CONTROLS = 'input, textarea, select, button, a[href], [contenteditable], summary, details, '
    + 'label, [role="button"], [role="checkbox"], [role="switch"], [role="menuitem"], '
    + '[role="option"], [role="tab"], [role="slider"], [role="link"], [role="dialog"], '
    + '[role="alertdialog"], .crisis';

function isTypingTarget(target) {
    if (!(target instanceof Element) || target === document.body) return false;
    if (target.closest(CONTROLS)) return true;
    // Focused on purpose (tabindex): only a heading leaves the space bar free.
    return target.hasAttribute('tabindex') && !/^H[1-6]$/.test(target.tagName);
}

export function onKeyDown(event) {
    if (event.code !== 'Space' || event.repeat || isTypingTarget(event.target)) return;
    if (state.phase !== 'in' || !state.conn || !state.you || !state.track) return;
    if (!state.you.muted || state.pushToTalk) return;
    event.preventDefault();
    state.pushToTalk = true;
    state.wantMuted = false;
    state.conn.mute(false);
    renderSelfState();
}

export function endPushToTalk() {
    if (!state.pushToTalk) return;
    state.pushToTalk = false;
    state.wantMuted = true;
    applyLocalMute(true);
    if (state.conn) state.conn.mute(true);
    renderSelfMute();
}

export function onKeyUp(event) {
    if (event.code === 'Space' && state.pushToTalk) {
        event.preventDefault();
        endPushToTalk();
    }
}

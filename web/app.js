// The page: what a person sees and does. The connection lives in protocol.js, audio in rtc.js,
// and the seams other modules use to add to the page in hooks.js (see web/README.md).

import { say } from './announce.js';
import { DOOR_WAIT, DoorPanel, isOnline, watchNetwork } from './connection_state.js';
import { Care } from './crisis.js';
import { DeviceControls } from './devices.js';
import { FocusKeeper, measureStickyBar } from './focus.js';
import * as hooks from './hooks.js';
import { Moderation } from './moderation.js';
import { CLOSE_NOT_OPEN, ServerConnection } from './protocol.js';
import {
    AudioPeer, LevelMeter, listMicrophones, microphonePermission, openMicrophone, stopStream,
} from './rtc.js';

const RETRY_NOT_OPEN_MS = 15000;
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 15000;
// How long the server keeps a dropped seat for its seat_token (docs/protocol.md).
const SEAT_KEPT_MS = 60000;
// A meter level above this means the microphone picks up sound.
const SOUND_LEVEL = 15;
const MAX_NAME = 40;
const TOKEN_KEY = 'hearth.token';
const NAME_KEY = 'hearth.name';
const MIC_KEY = 'hearth.mic';
// WebSocket close codes after which the page must not knock again by itself
// (docs/protocol.md): removed, denied or banned; the seat taken by another tab; the end.
const CLOSE_SENT_AWAY = 4403;
const CLOSE_REPLACED = 4409;
const CLOSE_ENDED = 4410;
const FINAL_CLOSES = new Set([CLOSE_SENT_AWAY, CLOSE_REPLACED, CLOSE_ENDED]);
// Error codes that come just before such a close, and the close they mean.
const FINAL_ERRORS = { removed: CLOSE_SENT_AWAY, denied: CLOSE_SENT_AWAY, replaced: CLOSE_REPLACED };
// Refusals at the door: back to the join form with the server's words (Join knocks again).
// Those where waiting helps (a full circle, a busy server, the database away...) go to the
// door panel instead (connection_state.js): it offers to wait or to try again now, and for the
// server's own troubles (AUTO_WAIT there) waits and knocks again by itself.
const DOOR_ERRORS = new Set([
    'passcode_required', 'circle_locked', 'banned', 'too_many_attempts', 'lobby_timeout',
]);
const MODERATORS = new Set(['host', 'cohost']);

const $ = (id) => document.getElementById(id);
// The host panel, hands, lobby view, final view and the join fields of issue 4 (moderation.js):
// app.js calls it at the places marked "moderation".
let moderation = null;
// Issue 14: the door panel, the microphone and speaker in the circle, and (crisis.js) the
// support signal and the crisis panel.
let door = null;
let devices = null;
let care = null;
let focusKeeper = null;
// A phone or tablet without a keyboard: no space-bar hints.
let touchOnly = false;

const state = {
    token: null,
    name: '',
    // What the person asked for; the server's word (state.you.muted) is what is shown.
    wantMuted: true,
    phase: 'idle', // idle | joining | door (refused, may wait) | in | not-open | left | ended
    connection: 'idle', // idle | connecting | connected | reconnecting | left
    conn: null,
    peer: null,
    peerState: 'new',
    mic: null,
    track: null,
    micDeviceId: null,
    meter: null,
    // Why there is no microphone (null: not asked yet, or released while waiting).
    micReason: null,
    you: null,
    circle: null,
    retryTimer: null,
    reconnectAttempts: 0,
    // True while the circle is not open and the page keeps checking.
    waiting: false,
    rows: new Map(),
    speaking: new Set(),
    pushToTalk: false,
    wakeLock: null,
};

// ---------------------------------------------------------------------------------------------
// Where the circle link comes from, and what this tab remembers

function readToken() {
    const match = window.location.pathname.match(/^\/c\/([^/]+)\/?$/);
    if (match) {
        try {
            return decodeURIComponent(match[1]);
        } catch {
            return match[1];
        }
    }
    return sessionStorage.getItem(TOKEN_KEY);
}

// After a successful join the token moves out of the address bar (screenshots, screen sharing,
// history); the tab keeps it so a reload still finds the circle.
function hideToken() {
    sessionStorage.setItem(TOKEN_KEY, state.token);
    if (window.location.pathname !== '/c/') {
        window.history.replaceState(null, '', '/c/');
    }
}

// ---------------------------------------------------------------------------------------------
// Views and messages

const VIEWS = ['view-join', 'view-not-open', 'view-circle', 'view-left', 'view-no-link'];

function showView(id, { focus = true } = {}) {
    for (const view of VIEWS) $(view).hidden = view !== id;
    if (focus) {
        const heading = $(id).querySelector('h1');
        if (heading) heading.focus({ preventScroll: false });
    }
}

// Read out by screen readers (announce.js): `key` keeps a retry or a redraw from saying the
// same sentence again.
function announce(text, urgent = false, key = null) {
    say(text, { urgent, key });
}

// The visible notice line. It is not a live region (a region re-reads on every change); what
// it says is read out once here, unless the caller has just said it more urgently itself.
function setNotice(text, { quiet = false } = {}) {
    if ($('notice').textContent === text) return;
    $('notice').textContent = text;
    if (text && !quiet) announce(text);
}

function setJoinStatus(text) {
    $('join-status').textContent = text;
}

function showNameError(text) {
    const error = $('name-error');
    const input = $('display-name');
    error.textContent = text;
    error.hidden = !text;
    if (text) {
        input.setAttribute('aria-invalid', 'true');
    } else {
        input.removeAttribute('aria-invalid');
    }
}

function joinLabel() {
    return state.micReason && !state.track ? 'Join to listen' : 'Join';
}

function setJoining(busy) {
    const button = $('join');
    button.disabled = busy;
    button.textContent = busy ? 'Joining…' : joinLabel();
}

const CONNECTION_TEXT = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    offline: 'Offline',
    left: 'Left',
};

const OFFLINE_TEXT = 'Nobody hears you and you hear nobody until the network is back; then '
    + 'this page reconnects by itself. Your place is kept for a minute.';

function setConnection(connection) {
    if (state.connection === connection) return;
    state.connection = connection;
    $('connection-state').dataset.state = connection;
    $('connection-text').textContent = CONNECTION_TEXT[connection];
    $('reconnect-banner').hidden = connection !== 'reconnecting' && connection !== 'offline';
    $('reconnect-now').hidden = connection === 'offline';
    if (connection === 'offline') {
        $('reconnect-text').replaceChildren(
            Object.assign(document.createElement('strong'), { textContent: 'You are offline.' }),
            ` ${OFFLINE_TEXT}`,
        );
    }
    // Said once per lost connection; the banner's countdown is not a live region, so each
    // retry does not read it out again.
    if (connection === 'reconnecting') {
        announce('The connection was lost. Reconnecting… Your place is kept for a minute.', true, 'connection');
    }
    renderSelfState();
    hooks.emit('hearth:connection', { type: 'hearth:connection', state: connection });
}

// ---------------------------------------------------------------------------------------------
// Before joining: the circle, and the microphone check

async function loadCircleInfo() {
    let info;
    try {
        const response = await fetch('/circle-info', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ token: state.token }),
            cache: 'no-store',
            credentials: 'omit',
        });
        if (!response.ok) return;
        info = await response.json();
    } catch {
        return;
    }
    if (!info || !info.open || !info.circle) return;
    if (moderation) moderation.circleInfo(info); // moderation hook
    $('join-title').textContent = `Join ${info.circle.title}`;
    document.title = `${info.circle.title} · Hearth`;
    const when = describeTime(info.circle);
    $('intro-when').textContent = when ? `The circle is open now. ${when}` : 'The circle is open now.';
    $('intro-when').hidden = false;
    const hosts = Array.isArray(info.hosts) ? info.hosts.filter((h) => typeof h === 'string') : [];
    const hostsText = $('intro-hosts');
    if (info.role === 'host') {
        hostsText.textContent = 'You are joining as a host.';
    } else if (hosts.length > 0) {
        hostsText.textContent = `Hosted by ${listOf(hosts)}.`;
    } else {
        hostsText.textContent = 'A host will be with you soon.';
    }
    hostsText.hidden = false;
}

function listOf(names) {
    if (names.length < 2) return names.join('');
    return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

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

function stopMeter() {
    if (state.meter) state.meter.stop();
    state.meter = null;
    $('mic-level').value = 0;
}

async function checkMicrophone(deviceId = state.micDeviceId) {
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

function takeMicrophone(stream, reason) {
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

function renderMicCheck() {
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

// ---------------------------------------------------------------------------------------------
// The people list

const MIC_ON_PATH = 'M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z'
    + 'M6 11a6 6 0 0 0 12 0M12 17v4';
const MIC_OFF_PATH = `${MIC_ON_PATH}M4 4l16 16`;

function micIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.classList.add('icon');
    const path = document.createElementNS(ns, 'path');
    svg.append(path);
    return svg;
}

// The parts of each row, so an update changes text in place and keeps keyboard focus.
const rowParts = new WeakMap();

function makeRow() {
    const li = document.createElement('li');
    li.className = 'person';
    li.setAttribute('data-testid', 'participant');
    li.tabIndex = -1;

    const who = document.createElement('span');
    who.className = 'who';
    const name = document.createElement('span');
    name.className = 'name';
    const you = document.createElement('span');
    you.className = 'you';
    you.textContent = '(you)';
    const role = document.createElement('span');
    role.className = 'tag';
    role.textContent = 'host';
    // Co-host, floor, hand and reconnecting marks come from moderation.js (person-mark).
    who.append(name, ' ', you, ' ', role);

    const speaking = document.createElement('span');
    speaking.className = 'speaking';
    speaking.setAttribute('data-testid', 'speaking');
    speaking.textContent = 'Speaking';

    const mic = document.createElement('span');
    mic.className = 'mic';
    const micText = document.createElement('span');
    micText.className = 'mic-text';
    mic.append(micIcon(), micText);

    const mute = document.createElement('button');
    mute.type = 'button';
    mute.className = 'small';
    mute.setAttribute('data-testid', 'mute');
    mute.append('Mute');
    const muteWho = document.createElement('span');
    muteWho.className = 'visually-hidden';
    mute.append(muteWho);
    mute.addEventListener('click', () => {
        if (state.conn && li.dataset.id) state.conn.muteParticipant(li.dataset.id);
    });

    li.append(who, speaking, mic, mute);
    rowParts.set(li, { name, you, role, speaking, mic, micText, mute, muteWho });
    return li;
}

function updateRow(li, person) {
    const parts = rowParts.get(li);
    const isYou = state.you !== null && person.id === state.you.id;
    const iAmHost = state.you !== null && MODERATORS.has(state.you.role);
    const speaking = state.speaking.has(person.id) && !person.muted;
    li.dataset.id = person.id;
    li.dataset.name = person.display_name;
    li.dataset.muted = String(person.muted);
    li.dataset.role = person.role;
    li.dataset.speaking = String(speaking);
    li.dataset.connection = person.connection || 'connected';
    li.classList.toggle('is-you', isYou);

    // `label` tells apart two people who chose the same name ("Sam (2)").
    parts.name.textContent = person.label || person.display_name;
    parts.you.hidden = !isYou;
    parts.role.hidden = person.role !== 'host';
    parts.speaking.hidden = !speaking;
    parts.mic.classList.toggle('muted', person.muted);
    parts.mic.querySelector('path').setAttribute('d', person.muted ? MIC_OFF_PATH : MIC_ON_PATH);
    parts.micText.textContent = person.muted ? 'Muted' : 'Mic on';

    const canMute = iAmHost && !isYou && !person.muted;
    if (!canMute && parts.mute.contains(document.activeElement)) li.focus();
    parts.mute.hidden = !canMute;
    parts.muteWho.textContent = ` ${person.label || person.display_name}`;
    hooks.decorate(li, person, state.you);
}

function renderPeople(people) {
    const list = $('participants');
    const seen = new Set();
    let previous = null;
    for (const person of people) {
        let li = state.rows.get(person.id);
        if (!li) {
            li = makeRow();
            state.rows.set(person.id, li);
        }
        updateRow(li, person);
        seen.add(person.id);
        const expected = previous ? previous.nextSibling : list.firstChild;
        if (li !== expected) list.insertBefore(li, expected);
        previous = li;
    }
    for (const [id, li] of state.rows) {
        if (seen.has(id)) continue;
        if (li.contains(document.activeElement)) $('circle-title').focus();
        li.remove();
        state.rows.delete(id);
    }
    $('people-count').textContent = `(${people.length})`;
}

function redrawPeople() {
    if (state.conn) renderPeople(state.conn.participants);
}

function renderPeopleAndMarks(people) {
    renderPeople(people);
    if (moderation) moderation.decorateRows();
}

function clearPeople() {
    for (const li of state.rows.values()) li.remove();
    state.rows.clear();
    state.speaking = new Set();
}

// Who is speaking now, from the server's `speaking` messages: each one replaces the last (an
// empty list when the circle falls quiet). The server lists only voices that may be heard.
function onSpeaking(ids) {
    state.speaking = new Set(ids);
    redrawPeople();
    renderSelfState();
}

// ---------------------------------------------------------------------------------------------
// Your own controls and whether you are heard

function renderSelfMute() {
    const button = $('self-mute');
    $('ptt-hint').hidden = touchOnly || !state.track || !state.you || !state.you.muted;
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

function renderSelfState() {
    const { heard, text } = selfState();
    const box = $('self-state');
    box.dataset.heard = String(heard);
    box.dataset.speaking = String(Boolean(state.you && state.speaking.has(state.you.id)));
    if ($('self-state-text').textContent !== text) $('self-state-text').textContent = text;
}

// The server drops a muted person's audio whatever the browser sends; switching the track off
// as well means nothing leaves this microphone at all.
function applyLocalMute(muted) {
    if (state.track) state.track.enabled = !muted;
}

function onSelfMuteClick() {
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

function onKeyDown(event) {
    if (event.code !== 'Space' || event.repeat || isTypingTarget(event.target)) return;
    if (state.phase !== 'in' || !state.conn || !state.you || !state.track) return;
    if (!state.you.muted || state.pushToTalk) return;
    event.preventDefault();
    state.pushToTalk = true;
    state.wantMuted = false;
    state.conn.mute(false);
    renderSelfState();
}

function endPushToTalk() {
    if (!state.pushToTalk) return;
    state.pushToTalk = false;
    state.wantMuted = true;
    applyLocalMute(true);
    if (state.conn) state.conn.mute(true);
    renderSelfMute();
}

function onKeyUp(event) {
    if (event.code === 'Space' && state.pushToTalk) {
        event.preventDefault();
        endPushToTalk();
    }
}

function micNote(reason) {
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

function renderMicNote() {
    const note = $('mic-note');
    const text = state.track ? '' : micNote(state.micReason);
    note.textContent = text;
    note.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Audio out, and staying awake

function attachAudio(stream) {
    const audio = $('circle-audio');
    if (audio.srcObject !== stream) audio.srcObject = stream;
    playAudio();
}

// Where the browser blocks sound until a tap (iOS Safari, some Chrome policies), say so and
// offer the tap instead of leaving the person in silence.
function playAudio() {
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

function onTapToHear() {
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
async function keepAwake() {
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

function releaseWakeLock() {
    const lock = state.wakeLock;
    state.wakeLock = null;
    if (lock) lock.release().catch(() => {});
}

// Back in the foreground (a phone unlocked, a tab brought back): check that everything still
// works and mend what does not, without waiting for the next backoff step.
function onVisible() {
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

// ---------------------------------------------------------------------------------------------
// Joining, waiting and leaving

async function ensureMicrophone() {
    if (state.mic) return;
    const { stream, reason } = await openMicrophone(state.micDeviceId);
    takeMicrophone(stream, reason);
}

function releaseMicrophone() {
    stopStream(state.mic);
    state.mic = null;
    state.track = null;
    state.micReason = null;
}

function closePeer() {
    if (state.peer) state.peer.close();
    state.peer = null;
    state.peerState = 'new';
    const audio = $('circle-audio');
    audio.pause();
    audio.srcObject = null;
    $('tap-to-hear').hidden = true;
}

function dropConnection() {
    if (state.conn) state.conn.close();
    state.conn = null;
}

function clearRetry() {
    if (state.retryTimer !== null) window.clearTimeout(state.retryTimer);
    state.retryTimer = null;
}

function validName(raw) {
    const name = raw.split(/\s+/).filter(Boolean).join(' ');
    if (!name) return { name, error: 'Please choose a name to be shown.' };
    // Counted in characters as the server counts them, not in UTF-16 units.
    if ([...name].length > MAX_NAME) {
        return { name, error: `A name can be at most ${MAX_NAME} characters.` };
    }
    return { name, error: null };
}

async function onJoinSubmit(event) {
    event.preventDefault();
    if (state.phase === 'joining') return;
    const { name, error } = validName($('display-name').value);
    if (error) {
        showNameError(error);
        $('display-name').focus();
        return;
    }
    showNameError('');
    if (door) door.hide();
    state.name = name;
    state.wantMuted = $('join-muted').checked;
    // A click is the moment to ask for the microphone: the prompt makes sense to the person.
    setJoining(true);
    state.phase = 'joining';
    stopMeter();
    if (!state.mic) {
        setJoinStatus('Asking for your microphone…');
        await ensureMicrophone();
    }
    if (!state.track) {
        setJoinStatus(`${micNote(state.micReason)} Joining…`);
    } else {
        setJoinStatus('Joining…');
    }
    await connectAndJoin();
}

async function connectAndJoin() {
    clearRetry();
    dropConnection();
    state.phase = 'joining';
    if (state.connection !== 'reconnecting') setConnection('connecting');
    const conn = new ServerConnection();
    state.conn = conn;
    conn.onJoined = (you, circle) => onJoined(conn, you, circle);
    conn.onParticipants = (people) => { if (state.conn === conn) renderPeopleAndMarks(people); };
    conn.onParticipantJoined = (p) => announce(`${p.display_name} joined the circle.`);
    conn.onParticipantLeft = (p) => announce(`${p.display_name} left the circle.`);
    conn.onParticipantUpdated = (p, by) => onParticipantUpdated(conn, p, by);
    conn.onAnswer = (sdp) => onAnswer(conn, sdp);
    conn.onError = (code, message, ref, error) => onError(conn, code, message, error);
    conn.onClose = (code, _reason, wasLeaving) => onClose(conn, code, wasLeaving);
    conn.onSpeaking = (ids) => { if (state.conn === conn) onSpeaking(ids); };
    conn.onRoom = () => { if (state.conn === conn) onRoom(); };
    conn.onMessageFirst = (message) => {
        if (state.conn === conn && moderation) moderation.handle(conn, message);
    };
    conn.onMessage = (message) => {
        if (state.conn !== conn) return;
        onOtherMessage(message);
        hooks.emit(message.type, message);
    };
    try {
        await conn.connect();
    } catch {
        if (state.conn !== conn) return;
        state.conn = null;
        connectionFailed();
        return;
    }
    if (state.conn !== conn) return;
    // seat_token (to take the same seat back), device_key and passcode: moderation.js keeps them.
    conn.join(state.token, state.name, state.wantMuted || !state.track,
        moderation ? moderation.joinExtras() : {});
}

function connectionFailed() {
    if (door && door.shown) {
        refusedAtDoor(door.code, 'The circle could not be reached just now.');
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

async function onJoined(conn, you, circle) {
    if (state.conn !== conn) return;
    const wasReconnecting = state.connection === 'reconnecting';
    state.phase = 'in';
    state.waiting = false;
    state.you = you;
    state.circle = circle;
    state.reconnectAttempts = 0;
    hideToken();
    sessionStorage.setItem(NAME_KEY, state.name);
    setJoining(false);
    setJoinStatus('');
    showNameError('');
    setNotice('');
    if (door) door.hide();
    setConnection('connected');
    if (wasReconnecting) {
        const back = you.muted
            ? 'Reconnected. You are back in the circle, muted: nobody hears you until you press Unmute.'
            : 'Reconnected. You are back in the circle.';
        announce(back, true, 'connection');
        setNotice(back, { quiet: true });
    }

    $('circle-title').textContent = circle.title;
    document.title = `${circle.title} · Hearth`;
    $('circle-time').textContent = describeTime(circle);
    const wasInCircle = !$('view-circle').hidden;
    if (!wasInCircle) showView('view-circle');
    renderPeopleAndMarks(conn.participants);
    keepAwake();
    hooks.emit('hearth:joined', { type: 'hearth:joined', you, circle, reconnected: wasReconnecting });

    // After waiting for the circle to open, the microphone was released; take it again now.
    if (!state.mic && state.micReason === null) await ensureMicrophone();
    if (state.conn !== conn) {
        // Left (or lost the connection) while the microphone was starting.
        if (state.phase === 'left') releaseMicrophone();
        return;
    }
    applyLocalMute(state.you.muted);
    renderMicNote();
    renderSelfMute();
    if (!state.track && !state.you.muted) conn.mute(true);
    if (state.track && state.you.muted && !state.wantMuted) conn.mute(false);

    await startAudio(conn);
    if (devices && state.conn === conn) devices.refresh();
}

async function startAudio(conn) {
    closePeer();
    const peer = new AudioPeer(state.track);
    state.peer = peer;
    peer.onRemoteStream = (stream) => attachAudio(stream);
    peer.onStateChange = (connectionState) => {
        if (state.peer !== peer) return;
        state.peerState = connectionState;
        renderSelfState();
        if (connectionState === 'failed') connectionLost();
    };
    try {
        const sdp = await peer.createOffer();
        if (state.peer !== peer || state.conn !== conn) return;
        conn.offer(sdp);
    } catch {
        if (state.peer === peer) setNotice('The sound could not be set up in this browser.');
    }
}

async function onAnswer(conn, sdp) {
    if (state.conn !== conn || !state.peer) return;
    try {
        await state.peer.acceptAnswer(sdp);
    } catch {
        setNotice('The sound could not be connected. Please leave and join again.');
    }
}

function onParticipantUpdated(conn, person, by) {
    if (state.conn !== conn || !state.you || person.id !== state.you.id) return;
    const wasMuted = state.you.muted;
    const hadFloor = Boolean(state.you.has_floor);
    state.you = person;
    if (person.has_floor && !hadFloor) {
        const floor = person.muted ? 'You have the floor. Unmute when you are ready.' : 'You have the floor.';
        announce(floor, true);
        setNotice(floor, { quiet: true });
    } else if (hadFloor && !person.has_floor) {
        announce('Your turn has ended.');
        setNotice('');
    }
    state.wantMuted = person.muted;
    applyLocalMute(person.muted);
    renderSelfMute();
    if (person.muted && !wasMuted && by !== null && by !== person.id) {
        endPushToTalk();
        setNotice('A host muted you.', { quiet: true });
        announce('You were muted by the host.', true);
    }
}

// Messages app.js knows beyond the list of people: the end of the circle, a removal.
function onOtherMessage(message) {
    switch (message.type) {
    case 'waiting':
        showWaiting();
        break;
    case 'server_draining':
        announce(message.message, true);
        break;
    default:
        break;
    }
}

function onRoom() {
    redrawPeople();
    renderSelfState();
}

// In the lobby (moderation.js shows the place in line): no microphone on meanwhile, and a lost
// connection knocks again with the seat token, which keeps the place.
function showWaiting() {
    const firstTime = state.phase !== 'waiting';
    state.phase = 'waiting';
    state.waiting = false;
    if (door) door.hide();
    state.reconnectAttempts = 0;
    hideToken();
    setConnection('connected');
    setJoining(false);
    setJoinStatus('');
    releaseMicrophone();
    document.title = 'Waiting to be let in · Hearth';
    if (firstTime) {
        const heading = document.querySelector('#view-lobby h1');
        if (heading) heading.focus();
    }
}

function onError(conn, code, message, error = {}) {
    if (state.conn !== conn) return;
    if (FINAL_ERRORS[code] || (code === 'banned' && state.you)) {
        showEnded(FINAL_ERRORS[code] || CLOSE_SENT_AWAY);
        return;
    }
    if (DOOR_WAIT.has(code) && !state.you && state.phase !== 'in') {
        refusedAtDoor(code, message);
        return;
    }
    if (DOOR_ERRORS.has(code) && state.phase !== 'in') {
        backToJoinWith(() => {
            setJoinStatus(message || 'You cannot come in right now.');
            if (code === 'passcode_required' && $('passcode')) $('passcode').focus();
        });
        return;
    }
    switch (code) {
    case 'circle_not_open':
        // Someone who was in the circle and cannot get back in: it closed while they were away.
        if (state.connection === 'reconnecting' && state.you) {
            showEnded(CLOSE_ENDED);
        } else {
            showNotOpen(error.next_starts_at ?? null);
        }
        break;
    case 'invalid_display_name':
    case 'name_confusable':
        if (state.phase === 'in') {
            setNotice(message || 'Please choose a different name.');
            break;
        }
        backToJoinWith(() => {
            showNameError(message || 'Please choose a different name.');
            $('display-name').focus();
        });
        break;
    case 'invalid_sdp':
        setNotice('The sound could not be connected. Please leave and join again.');
        break;
    case 'forbidden':
    case 'unknown_participant':
        setNotice(message || 'That did not work.');
        break;
    case 'internal_error':
        setNotice('Something went wrong on the server. Please try again in a moment.');
        break;
    case 'storage_unavailable':
        // The server cannot reach its records: inside, a command was not made (say so);
        // coming back to a seat the server did not hold, keep knocking with backoff. (A
        // newcomer at the door got the door panel above, which knocks again by itself.)
        if (state.phase === 'in') {
            setNotice(message || 'That did not work just now. Please try again in a little while.');
        } else if (state.connection === 'reconnecting' && state.you) {
            scheduleReconnect();
        } else {
            backToJoinWith(() => setJoinStatus(message || 'We cannot let anyone in right now. Please try again in a moment.'));
        }
        break;
    case 'server_busy':
    case 'server_draining':
        // Someone coming back to their seat (a newcomer got the door panel above): the server
        // closes next (1013, 1012); marked reconnecting, the page knocks again with backoff.
        setJoinStatus(message);
        setConnection('reconnecting');
        break;
    default:
        // invalid_json, invalid_message, unknown_type, not_joined, already_joined: a bug in
        // this page, not something the person can act on. Hooks may know more codes.
        console.warn('Hearth server refused a message:', code, message);
    }
}

// Refused at the door where waiting helps: say so at once in the server's words, release the
// microphone, and offer to wait (the page keeps trying, with backoff) or to try again now.
function refusedAtDoor(code, message) {
    dropConnection();
    closePeer();
    stopMeter();
    releaseMicrophone();
    clearRetry();
    state.phase = 'door';
    // After a wait, the person comes in muted whatever they chose before.
    state.wantMuted = true;
    $('join-muted').checked = true;
    setConnection('idle');
    setJoining(false);
    setJoinStatus('');
    showView('view-join', { focus: false });
    $('mic-meter-wrap').hidden = true;
    $('mic-check').hidden = false;
    $('mic-check').textContent = 'Check my microphone';
    $('mic-status').textContent = 'Your microphone is off while you wait.';
    document.title = 'Not in yet · Hearth';
    door.show(code, message);
}

function retryFromDoor() {
    if (state.phase !== 'door') return;
    state.phase = 'joining';
    setJoining(true);
    connectAndJoin();
}

function backToJoinWith(then) {
    if (door) door.hide();
    dropConnection();
    closePeer();
    releaseMicrophone();
    clearRetry();
    state.phase = 'idle';
    setConnection('idle');
    setJoining(false);
    setJoinStatus('');
    showView('view-join', { focus: false });
    renderMicCheck();
    then();
}

function onClose(conn, code, wasLeaving) {
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
    if (state.phase === 'in' || state.phase === 'joining' || state.phase === 'waiting') connectionLost();
}

function connectionLost() {
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
    scheduleReconnect();
}

// Exponential backoff with jitter (so a server restart is not met by everyone at once).
function scheduleReconnect() {
    clearRetry();
    state.phase = 'joining';
    if (!isOnline()) {
        // Nothing to try until the network is back: the `online` event reconnects.
        setConnection('offline');
        return;
    }
    setConnection('reconnecting');
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** state.reconnectAttempts);
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
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

function reconnectNow() {
    if (state.connection !== 'reconnecting' && state.connection !== 'offline') return;
    state.reconnectAttempts = 0;
    clearRetry();
    connectAndJoin();
}

// When the next meeting starts, in the visitor's own time zone and language ("Tuesday,
// 8 December at 19:00 (your time)"), from the server's `next_starts_at` (UTC). Said only
// for a valid link: an unknown one gets no date, so a guessed link learns nothing.
function nextMeetingText(startsAt) {
    if (typeof startsAt !== 'string') return '';
    const when = new Date(startsAt);
    if (Number.isNaN(when.getTime())) return '';
    const day = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' })
        .format(when);
    const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' }).format(when);
    return `The next meeting starts on ${day} at ${time} (your time).`;
}

// `nextStartsAt` comes with the `circle_not_open` error; the close that follows it calls
// this again without one, which keeps what the error said.
function showNotOpen(nextStartsAt = undefined) {
    if (nextStartsAt !== undefined) {
        const next = nextMeetingText(nextStartsAt);
        $('not-open-next').textContent = next;
        $('not-open-next').hidden = !next;
    }
    if (door) door.hide();
    dropConnection();
    closePeer();
    // Nobody should see a recording light while only waiting for a door to open.
    releaseMicrophone();
    clearPeople();
    const firstTime = !state.waiting;
    state.waiting = true;
    state.phase = 'not-open';
    setConnection('idle');
    state.you = null;
    state.reconnectAttempts = 0;
    setJoining(false);
    setJoinStatus('');
    document.title = 'Not open right now · Hearth';
    // Focus moves only on arrival: a page that grabs focus every 15 s would be unsettling.
    showView('view-not-open', { focus: firstTime });
    clearRetry();
    state.retryTimer = window.setTimeout(retryNotOpen, RETRY_NOT_OPEN_MS);
}

function retryNotOpen() {
    clearRetry();
    if (state.phase !== 'not-open') return;
    // Outcomes: joined (onJoined), still closed (onError/onClose call showNotOpen, which
    // re-arms the timer), or unreachable (connectionFailed does the same).
    connectAndJoin();
}

// The honest end: the circle is over, a host removed or turned away this person, or another
// tab took the seat. moderation.js shows the words (the server's reason); no knocking again.
function showEnded(closeCode) {
    if (door) door.hide();
    clearRetry();
    endPushToTalk();
    const conn = state.conn;
    state.conn = null;
    if (conn) conn.close();
    closePeer();
    releaseMicrophone();
    releaseWakeLock();
    clearPeople();
    state.phase = 'ended';
    state.you = null;
    setConnection('left');
    document.title = 'Hearth';
    if (moderation) moderation.finalClose(closeCode);
    const heading = document.querySelector('#view-final h1');
    if (heading) heading.focus();
    hooks.emit('hearth:left', { type: 'hearth:left', why: closeCode });
}

function onLeaveClick() {
    const conn = state.conn;
    state.phase = 'left';
    clearRetry();
    endPushToTalk();
    if (conn) {
        conn.leave();
        // The server closes the socket; should it not, do it ourselves.
        window.setTimeout(() => conn.close(), 2000);
    }
    state.conn = null;
    closePeer();
    releaseMicrophone();
    releaseWakeLock();
    clearPeople();
    if (moderation) moderation.forgetSeat();
    state.you = null;
    setNotice('');
    setConnection('left');
    document.title = 'You left · Hearth';
    showView('view-left');
    hooks.emit('hearth:left', { type: 'hearth:left', why: 'left' });
}

function backToJoin() {
    if (door) door.hide();
    clearRetry();
    dropConnection();
    state.phase = 'idle';
    state.waiting = false;
    $('display-name').value = state.name;
    $('join-muted').checked = true;
    setConnection('idle');
    setJoining(false);
    setJoinStatus('');
    document.title = 'Hearth';
    showView('view-join', { focus: false });
    renderMicCheck();
}

// The device lost its network (the `offline` event): say so at once rather than after the
// socket times out; nothing reaches the circle meanwhile.
function wentOffline() {
    endPushToTalk();
    if (state.phase === 'in' || state.phase === 'waiting' || state.connection === 'reconnecting') {
        setConnection('offline');
        announce('You are offline. Nobody hears you until the network is back.', true, 'connection');
    } else if (state.phase === 'idle' || state.phase === 'door' || state.phase === 'joining') {
        setJoinStatus('Your device is offline. You can join once the network is back.');
    }
}

function cameOnline() {
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

function describeTime(circle) {
    const ends = new Date(circle.ends_at);
    if (Number.isNaN(ends.getTime())) return '';
    const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
    return `Until ${time.format(ends)}, your time.`;
}

// ---------------------------------------------------------------------------------------------

function start() {
    moderation = new Moderation();
    care = new Care();
    door = new DoorPanel(retryFromDoor);
    devices = new DeviceControls({
        current: () => ({
            track: state.track,
            peer: state.peer,
            muted: !state.you || state.you.muted || !state.track || !state.track.enabled,
        }),
        swap: (stream) => {
            const old = state.mic;
            takeMicrophone(stream, null);
            renderSelfMute();
            return old;
        },
        say: (text) => {
            setNotice(text);
        },
    });
    focusKeeper = new FocusKeeper(() => document.querySelector('main > .view:not([hidden]) h1'));
    measureStickyBar($('controls'));
    touchOnly = window.matchMedia('(pointer: coarse)').matches
        && !window.matchMedia('(any-pointer: fine)').matches;
    if (touchOnly) {
        document.documentElement.classList.add('touch-only');
        $('rule-speak').textContent = 'To speak, press Unmute. Press Mute again when you are done.';
    }
    state.token = readToken();
    if (!state.token) {
        showView('view-no-link', { focus: false });
        return;
    }
    const savedName = sessionStorage.getItem(NAME_KEY);
    if (savedName) $('display-name').value = savedName;
    try {
        state.micDeviceId = localStorage.getItem(MIC_KEY);
    } catch {
        state.micDeviceId = null;
    }

    hooks.connectBridge({
        send: (message) => Boolean(state.conn && state.conn.send(message)),
        announce: (text, urgent) => announce(text, urgent),
        notify: (text) => setNotice(text),
        redraw: () => redrawPeople(),
        snapshot: () => ({
            you: state.you,
            circle: state.circle,
            participants: state.conn ? state.conn.participants : [],
            connection: state.connection,
        }),
    });

    $('join-form').addEventListener('submit', onJoinSubmit);
    $('display-name').addEventListener('input', () => showNameError(''));
    $('mic-check').addEventListener('click', () => checkMicrophone());
    $('mic-select').addEventListener('change', (event) => {
        state.micDeviceId = event.target.value;
        try {
            localStorage.setItem(MIC_KEY, state.micDeviceId);
        } catch {
            // Not remembered; fine.
        }
        checkMicrophone(state.micDeviceId);
    });
    $('self-mute').addEventListener('click', onSelfMuteClick);
    $('leave').addEventListener('click', onLeaveClick);
    $('tap-to-hear').addEventListener('click', onTapToHear);
    $('reconnect-now').addEventListener('click', reconnectNow);
    $('rejoin').addEventListener('click', () => {
        backToJoin();
        $('join').focus();
    });
    $('retry-now').addEventListener('click', () => {
        $('retry-now').disabled = true;
        window.setTimeout(() => { $('retry-now').disabled = false; }, 2000);
        retryNotOpen();
    });
    $('not-open-back').addEventListener('click', () => {
        backToJoin();
        $('display-name').focus();
    });
    document.addEventListener('keydown', onKeyDown);
    document.addEventListener('keyup', onKeyUp);
    window.addEventListener('blur', endPushToTalk);
    document.addEventListener('visibilitychange', onVisible);
    watchNetwork({ onOffline: wentOffline, onOnline: cameOnline });
    window.addEventListener('pagehide', () => {
        dropConnection();
        closePeer();
        releaseMicrophone();
    });
    showView('view-join', { focus: false });
    // The page works from here on (the tests measure the time to this mark).
    performance.mark('hearth-ready');
    document.body.dataset.ready = 'true';
    loadCircleInfo();
    // Permission already given on an earlier visit: show the meter straight away, no prompt.
    microphonePermission().then((permission) => {
        if (permission === 'granted' && state.phase === 'idle' && !state.mic) checkMicrophone();
    });
}

start();

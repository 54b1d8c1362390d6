// The page: what a person sees and does. The connection lives in protocol.js, audio in rtc.js.

import { CLOSE_NOT_OPEN, ServerConnection } from './protocol.js';
import { AudioPeer, openMicrophone, stopStream } from './rtc.js';

const RETRY_NOT_OPEN_MS = 15000;
const RECONNECT_MAX_MS = 15000;
const MAX_NAME = 40;
const TOKEN_KEY = 'hearth.token';
const NAME_KEY = 'hearth.name';

const $ = (id) => document.getElementById(id);

const state = {
    token: null,
    name: '',
    // What the person asked for; the server's word (state.you.muted) is what is shown.
    wantMuted: true,
    phase: 'idle', // idle | joining | in | not-open | left
    conn: null,
    peer: null,
    mic: null,
    track: null,
    // Why there is no microphone (null: not asked yet, or released while waiting).
    micReason: null,
    you: null,
    retryTimer: null,
    reconnectAttempts: 0,
    // True while the circle is not open and the page keeps checking.
    waiting: false,
    rows: new Map(),
};

// ---------------------------------------------------------------------------------------------
// Where the circle link comes from

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
// Views

const VIEWS = ['view-join', 'view-not-open', 'view-circle', 'view-left', 'view-no-link'];

function showView(id, { focus = true } = {}) {
    for (const view of VIEWS) $(view).hidden = view !== id;
    if (focus) {
        const heading = $(id).querySelector('h1');
        if (heading) heading.focus({ preventScroll: false });
    }
}

function announce(text) {
    const region = $('announcer');
    region.textContent = '';
    // A fresh text node after clearing makes screen readers read repeated messages too.
    window.setTimeout(() => { region.textContent = text; }, 50);
}

function setNotice(text) {
    $('notice').textContent = text;
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

function setJoining(busy) {
    const button = $('join');
    button.disabled = busy;
    button.textContent = busy ? 'Joining…' : 'Join';
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
    who.append(name, ' ', you, ' ', role);

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

    li.append(who, mic, mute);
    rowParts.set(li, { name, you, role, mic, micText, mute, muteWho });
    return li;
}

function updateRow(li, person) {
    const parts = rowParts.get(li);
    const isYou = state.you !== null && person.id === state.you.id;
    const iAmHost = state.you !== null && state.you.role === 'host';
    li.dataset.id = person.id;
    li.dataset.name = person.display_name;
    li.dataset.muted = String(person.muted);
    li.dataset.role = person.role;
    li.classList.toggle('is-you', isYou);

    parts.name.textContent = person.display_name;
    parts.you.hidden = !isYou;
    parts.role.hidden = person.role !== 'host';
    parts.mic.classList.toggle('muted', person.muted);
    parts.mic.querySelector('path').setAttribute('d', person.muted ? MIC_OFF_PATH : MIC_ON_PATH);
    parts.micText.textContent = person.muted ? 'Muted' : 'Mic on';

    const canMute = iAmHost && !isYou && !person.muted;
    if (!canMute && parts.mute.contains(document.activeElement)) li.focus();
    parts.mute.hidden = !canMute;
    parts.muteWho.textContent = ` ${person.display_name}`;
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

function renderSpeaking(speakers, levels) {
    const speaking = new Set(speakers);
    for (const [id, li] of state.rows) {
        const on = speaking.has(id);
        li.classList.toggle('is-speaking', on);
        if (on) li.dataset.level = String(levels[id] ?? 0);
        else delete li.dataset.level;
    }
}

function clearPeople() {
    for (const li of state.rows.values()) li.remove();
    state.rows.clear();
}

// ---------------------------------------------------------------------------------------------
// Your own controls

function renderSelfMute() {
    const button = $('self-mute');
    if (!state.track) {
        button.disabled = true;
        button.textContent = 'Listening only';
        button.removeAttribute('aria-pressed');
        button.classList.remove('primary');
        return;
    }
    const muted = !state.you || state.you.muted || !state.track.enabled;
    button.disabled = false;
    button.textContent = muted ? 'Unmute' : 'Mute';
    button.setAttribute('aria-pressed', String(muted));
    button.classList.toggle('primary', muted);
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
// Audio out

function attachAudio(stream) {
    const audio = $('circle-audio');
    if (audio.srcObject !== stream) audio.srcObject = stream;
    const played = audio.play();
    if (played && typeof played.then === 'function') {
        played.then(() => { $('tap-to-hear').hidden = true; }).catch(() => {
            $('tap-to-hear').hidden = false;
        });
    }
}

function onTapToHear() {
    const audio = $('circle-audio');
    audio.play().then(() => {
        $('tap-to-hear').hidden = true;
    }).catch(() => {
        setNotice('The browser would not play the sound. Please check that this tab is not muted.');
    });
}

// ---------------------------------------------------------------------------------------------
// Joining, waiting and leaving

async function ensureMicrophone() {
    if (state.mic) return;
    const { stream, reason } = await openMicrophone();
    state.mic = stream;
    state.track = stream ? stream.getAudioTracks()[0] || null : null;
    state.micReason = reason;
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
    state.name = name;
    state.wantMuted = $('join-muted').checked;
    // A click is the moment to ask for the microphone: the prompt makes sense to the person.
    setJoining(true);
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
    const conn = new ServerConnection();
    state.conn = conn;
    conn.onJoined = (you, circle) => onJoined(conn, you, circle);
    conn.onParticipants = (people) => { if (state.conn === conn) renderPeople(people); };
    conn.onParticipantJoined = (p) => announce(`${p.display_name} joined the circle.`);
    conn.onParticipantLeft = (p) => announce(`${p.display_name} left the circle.`);
    conn.onParticipantUpdated = (p, by) => onParticipantUpdated(conn, p, by);
    conn.onSpeaking = (speakers, levels) => {
        if (state.conn === conn) renderSpeaking(speakers, levels);
    };
    conn.onAnswer = (sdp) => onAnswer(conn, sdp);
    conn.onError = (code, message) => onError(conn, code, message);
    conn.onClose = (code, _reason, wasLeaving) => onClose(conn, code, wasLeaving);
    try {
        await conn.connect();
    } catch {
        if (state.conn !== conn) return;
        state.conn = null;
        connectionFailed();
        return;
    }
    if (state.conn !== conn) return;
    conn.join(state.token, state.name, state.wantMuted || !state.track);
}

function connectionFailed() {
    if (state.waiting) {
        showNotOpen();
        return;
    }
    if (state.phase === 'in' || state.reconnectAttempts > 0) {
        scheduleReconnect();
        return;
    }
    state.phase = 'idle';
    setJoining(false);
    setJoinStatus('The circle could not be reached. Please check your connection and try again.');
}

async function onJoined(conn, you, circle) {
    if (state.conn !== conn) return;
    state.phase = 'in';
    state.waiting = false;
    state.you = you;
    state.reconnectAttempts = 0;
    hideToken();
    sessionStorage.setItem(NAME_KEY, state.name);
    setJoining(false);
    setJoinStatus('');
    showNameError('');
    setNotice('');

    $('circle-title').textContent = circle.title;
    document.title = `${circle.title} · Hearth`;
    $('circle-time').textContent = describeTime(circle);
    const wasInCircle = !$('view-circle').hidden;
    if (!wasInCircle) showView('view-circle');
    renderPeople(conn.participants);

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
}

async function startAudio(conn) {
    const peer = new AudioPeer(state.track);
    state.peer = peer;
    peer.onRemoteStream = (stream) => attachAudio(stream);
    peer.onStateChange = (connectionState) => {
        if (state.peer !== peer) return;
        if (connectionState === 'failed') {
            setNotice('The sound connection was lost. Reconnecting…');
            connectionLost();
        }
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
    state.you = person;
    state.wantMuted = person.muted;
    applyLocalMute(person.muted);
    renderSelfMute();
    if (person.muted && by !== null && by !== person.id) {
        setNotice('A host muted you.');
    }
}

function onError(conn, code, message) {
    if (state.conn !== conn) return;
    switch (code) {
    case 'circle_not_open':
        showNotOpen();
        break;
    case 'invalid_display_name':
        dropConnection();
        releaseMicrophone();
        state.phase = 'idle';
        setJoining(false);
        setJoinStatus('');
        showView('view-join', { focus: false });
        showNameError(message || 'Please choose a different name.');
        $('display-name').focus();
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
    default:
        // invalid_json, invalid_message, unknown_type, not_joined, already_joined: a bug in
        // this page, not something the person can act on.
        console.warn('Hearth server refused a message:', code, message);
    }
}

function onClose(conn, code, wasLeaving) {
    if (state.conn !== conn) return;
    state.conn = null;
    if (wasLeaving || state.phase === 'left') return;
    if (code === CLOSE_NOT_OPEN) {
        showNotOpen();
        return;
    }
    if (state.phase === 'in' || state.phase === 'joining') connectionLost();
}

function connectionLost() {
    closePeer();
    dropConnection();
    if (state.you) state.wantMuted = state.you.muted;
    if ($('view-circle').hidden) {
        connectionFailed();
        return;
    }
    setNotice('The connection was lost. Reconnecting…');
    scheduleReconnect();
}

function scheduleReconnect() {
    clearRetry();
    state.phase = 'joining';
    const delay = Math.min(RECONNECT_MAX_MS, 1000 * 2 ** state.reconnectAttempts);
    state.reconnectAttempts += 1;
    state.retryTimer = window.setTimeout(() => {
        state.retryTimer = null;
        connectAndJoin();
    }, delay);
}

function showNotOpen() {
    dropConnection();
    closePeer();
    // Nobody should see a recording light while only waiting for a door to open.
    releaseMicrophone();
    clearPeople();
    const firstTime = !state.waiting;
    state.waiting = true;
    state.phase = 'not-open';
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

function onLeaveClick() {
    const conn = state.conn;
    state.phase = 'left';
    clearRetry();
    if (conn) {
        conn.leave();
        // The server closes the socket; should it not, do it ourselves.
        window.setTimeout(() => conn.close(), 2000);
    }
    state.conn = null;
    closePeer();
    releaseMicrophone();
    clearPeople();
    state.you = null;
    setNotice('');
    document.title = 'You left · Hearth';
    showView('view-left');
}

function backToJoin() {
    clearRetry();
    dropConnection();
    state.phase = 'idle';
    state.waiting = false;
    $('display-name').value = state.name;
    $('join-muted').checked = true;
    setJoining(false);
    setJoinStatus('');
    document.title = 'Hearth';
    showView('view-join', { focus: false });
}

function describeTime(circle) {
    const ends = new Date(circle.ends_at);
    if (Number.isNaN(ends.getTime())) return '';
    const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
    return `Until ${time.format(ends)}, your time.`;
}

// ---------------------------------------------------------------------------------------------

function start() {
    state.token = readToken();
    if (!state.token) {
        showView('view-no-link', { focus: false });
        return;
    }
    const savedName = sessionStorage.getItem(NAME_KEY);
    if (savedName) $('display-name').value = savedName;

    $('join-form').addEventListener('submit', onJoinSubmit);
    $('display-name').addEventListener('input', () => showNameError(''));
    $('self-mute').addEventListener('click', onSelfMuteClick);
    $('leave').addEventListener('click', onLeaveClick);
    $('tap-to-hear').addEventListener('click', onTapToHear);
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
    window.addEventListener('pagehide', () => {
        dropConnection();
        closePeer();
        releaseMicrophone();
    });
    showView('view-join', { focus: false });
}

start();

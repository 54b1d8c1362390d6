// Joining: the join form, the connection to the server and its handlers, what `joined`
// starts (the circle view, the microphone, the sound), updates to this person, and the lobby.
// Refusals are refusals.js's; a lost connection is reconnect.js's.

import { attachAudio, closePeer, keepAwake } from './audio_out.js';
import * as hooks from './hooks.js';
import {
    ensureMicrophone, micNote, releaseMicrophone, renderMicNote, stopMeter,
} from './mic_check.js';
import { onSpeaking, redrawPeople, renderPeopleAndMarks } from './people.js';
import { ServerConnection } from './protocol.js';
import {
    clearRetry, connectionFailed, connectionLost, dropConnection, onClose,
} from './reconnect.js';
import { onError } from './refusals.js';
import { AudioPeer } from './rtc.js';
import { applyLocalMute, endPushToTalk, renderSelfMute, renderSelfState } from './self_state.js';
import { $, hideToken, NAME_KEY, page, state } from './state.js';
import {
    announce, describeTime, setConnection, setJoining, setJoinStatus, setNotice, showNameError,
    showView,
} from './views.js';

const MAX_NAME = 40;

function validName(raw) {
    const name = raw.split(/\s+/).filter(Boolean).join(' ');
    if (!name) return { name, error: 'Please choose a name to be shown.' };
    // Counted in characters as the server counts them, not in UTF-16 units.
    if ([...name].length > MAX_NAME) {
        return { name, error: `A name can be at most ${MAX_NAME} characters.` };
    }
    return { name, error: null };
}

export async function onJoinSubmit(event) {
    event.preventDefault();
    if (state.phase === 'joining') return;
    const { name, error } = validName($('display-name').value);
    if (error) {
        showNameError(error);
        $('display-name').focus();
        return;
    }
    showNameError('');
    if (page.door) page.door.hide();
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

export async function connectAndJoin() {
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
        if (state.conn === conn && page.moderation) page.moderation.handle(conn, message);
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
        page.moderation ? page.moderation.joinExtras() : {});
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
    if (page.door) page.door.hide();
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
    if (page.devices && state.conn === conn) page.devices.refresh();
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

// Messages the page knows beyond the list of people: the end of the circle, a removal.
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
    if (page.door) page.door.hide();
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

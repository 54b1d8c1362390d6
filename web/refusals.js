// The server's `error` messages: what each means for the person (docs/protocol.md,
// "Errors"), the door panel where waiting helps, and back to the join form with the server's
// words where it does not.

import { closePeer } from './audio_out.js';
import { DOOR_WAIT } from './connection_state.js';
import { showEnded, showNotOpen } from './endings.js';
import { connectAndJoin } from './joining.js';
import { releaseMicrophone, renderMicCheck, stopMeter } from './mic_check.js';
import { clearRetry, dropConnection, scheduleReconnect } from './reconnect.js';
import { $, CLOSE_ENDED, CLOSE_REPLACED, CLOSE_SENT_AWAY, page, state } from './state.js';
import {
    setConnection, setJoining, setJoinStatus, setNotice, showNameError, showView,
} from './views.js';

// Error codes that come just before a final close (state.js), and the close they mean.
const FINAL_ERRORS = { removed: CLOSE_SENT_AWAY, denied: CLOSE_SENT_AWAY, replaced: CLOSE_REPLACED };

// Refusals at the door: back to the join form with the server's words (Join knocks again).
// Those where waiting helps (a full circle, a busy server, the database away...) go to the
// door panel instead (connection_state.js): it offers to wait or to try again now, and for the
// server's own troubles (AUTO_WAIT there) waits and knocks again by itself.
const DOOR_ERRORS = new Set([
    'passcode_required', 'circle_locked', 'banned', 'too_many_attempts', 'lobby_timeout',
]);

export function onError(conn, code, message, error = {}) {
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
export function refusedAtDoor(code, message) {
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
    page.door.show(code, message);
}

export function retryFromDoor() {
    if (state.phase !== 'door') return;
    state.phase = 'joining';
    setJoining(true);
    connectAndJoin();
}

function backToJoinWith(then) {
    if (page.door) page.door.hide();
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

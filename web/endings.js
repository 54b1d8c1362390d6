// The views after (or instead of) the circle: not open yet (with when the next meeting starts,
// checking again every 15 s), ended or sent away (no knocking again), left, and back to the
// join form.

import { closePeer, releaseWakeLock } from './audio_out.js';
import * as hooks from './hooks.js';
import { connectAndJoin } from './joining.js';
import { releaseMicrophone, renderMicCheck } from './mic_check.js';
import { clearPeople } from './people.js';
import { clearRetry, dropConnection } from './reconnect.js';
import { endPushToTalk } from './self_state.js';
import { $, page, state } from './state.js';
import { setConnection, setJoining, setJoinStatus, setNotice, showView } from './views.js';

const RETRY_NOT_OPEN_MS = 15000;

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
export function showNotOpen(nextStartsAt = undefined) {
    if (nextStartsAt !== undefined) {
        const next = nextMeetingText(nextStartsAt);
        $('not-open-next').textContent = next;
        $('not-open-next').hidden = !next;
    }
    if (page.door) page.door.hide();
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

export function retryNotOpen() {
    clearRetry();
    if (state.phase !== 'not-open') return;
    // Outcomes: joined (onJoined), still closed (onError/onClose call showNotOpen, which
    // re-arms the timer), or unreachable (connectionFailed does the same).
    connectAndJoin();
}

// The honest end: the circle is over, a host removed or turned away this person, or another
// tab took the seat. moderation.js shows the words (the server's reason); no knocking again.
export function showEnded(closeCode) {
    if (page.door) page.door.hide();
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
    if (page.moderation) page.moderation.finalClose(closeCode);
    const heading = document.querySelector('#view-final h1');
    if (heading) heading.focus();
    hooks.emit('hearth:left', { type: 'hearth:left', why: closeCode });
}

export function onLeaveClick() {
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
    if (page.moderation) page.moderation.forgetSeat();
    state.you = null;
    setNotice('');
    setConnection('left');
    document.title = 'You left · Hearth';
    showView('view-left');
    hooks.emit('hearth:left', { type: 'hearth:left', why: 'left' });
}

export function backToJoin() {
    if (page.door) page.door.hide();
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

// Moderation and care on the page: the host panel, hands and the floor, the lobby's waiting
// view and unmute requests (the support signal and the crisis panel: crisis.js). The server decides every
// rule (docs/protocol.md); this file only shows its word and sends requests.
//
// app.js makes it (as `page.moderation`, state.js); the page's modules call it where they
// say `page.moderation`: every message in (handle, joining.js), our fields of `join`
// (joinExtras, joining.js), the rows of the list (decorateRows, people.js), the circle's intro
// (circleInfo, views.js), a final close and leaving (finalClose, forgetSeat: endings.js).

import { say } from './announce.js';
import { HostPanel } from './host_panel.js';
import { confirmHand, speakTurn, turnLine } from './spoken.js';
import { el } from './dom.js';

const DEVICE_KEY = 'hearth.device';
const SEAT_KEY = 'hearth.seat';
const MODERATOR_ROLES = new Set(['host', 'cohost']);
// The final view's heading: what happened, in a few words (the reason follows it, read out).
const FINAL_TITLES = {
    removed: 'You were removed from the circle',
    denied: 'You were not let in this time',
    banned: 'You cannot enter this circle',
    4403: 'You are not in this circle any more',
    4409: 'This circle is open in another tab',
    4410: 'The circle has ended',
};
const FINAL_CLOSES = {
    4403: 'You are not in this circle any more.',
    4409: 'This circle is open in another tab.',
    4410: 'The circle has ended. Thank you for being here.',
};
const ERROR_TEXT = {
    removed: 'A host removed you from this circle.',
    denied: 'A host did not let you in this time.',
    banned: 'You cannot enter this circle.',
    circle_locked: 'This circle is locked: nobody new can come in right now.',
    passcode_required: 'This circle needs its passcode.',
    rename_not_allowed: 'This circle does not allow changing your name.',
    queue_empty: 'Nobody has a hand raised.',
    no_turn: 'Nobody has the floor.',
    no_change: null,
    in_lobby: 'Please wait until a host lets you in.',
};
const $ = (id) => document.getElementById(id);


function button(testid, text, onclick, className = 'small') {
    return el('button', { type: 'button', className, testid, onclick }, text);
}

/** A random key this browser keeps; it only ever serves to keep a removed person out. */
function deviceKey() {
    let key = null;
    try {
        key = localStorage.getItem(DEVICE_KEY);
        if (!key) {
            const bytes = new Uint8Array(16);
            crypto.getRandomValues(bytes);
            key = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
            localStorage.setItem(DEVICE_KEY, key);
        }
    } catch {
        // Storage refused (private mode): bans then rest on the seat token alone.
    }
    return key;
}

export class Moderation {
    constructor() {
        this.conn = null;
        this.you = null;
        this.room = null;
        this.view = null;
        this.people = new Map();
        this.finalText = null;
        this.deniedOnly = false;
        this.finalTitle = null;
        this.timer = window.setInterval(() => this._renderTurn(), 1000);
        this._build();
        // The host's panel, per-person controls and what needs the host (host_panel.js).
        this.host = new HostPanel((message) => this._send(message));
    }

    /** Fields our part of the protocol adds to `join`. */
    joinExtras() {
        const extras = {};
        const key = deviceKey();
        if (key) extras.device_key = key;
        const seat = sessionStorage.getItem(SEAT_KEY);
        if (seat) extras.seat_token = seat;
        const passcode = this.passcodeInput.value.trim();
        if (passcode) extras.passcode = passcode;
        return extras;
    }

    /** Forget the seat (the person left on purpose). */
    forgetSeat() {
        sessionStorage.removeItem(SEAT_KEY);
    }

    /** The text to show when a close means "do not reconnect", else null. */
    finalClose(code) {
        if (!(code in FINAL_CLOSES)) return null;
        this.forgetSeat();
        const text = this.finalText || FINAL_CLOSES[code];
        this._showFinal(this.finalTitle || FINAL_TITLES[code], text);
        return text;
    }

    handle(conn, message) {
        this.conn = conn;
        switch (message.type) {
        case 'joined':
            if (message.seat_token) sessionStorage.setItem(SEAT_KEY, message.seat_token);
            this.you = message.you;
            this.room = message.room || null;
            this.view = message.moderation || null;
            this.people = new Map(message.participants.map((p) => [p.id, p]));
            this.lobbyView.hidden = true;
            this._render();
            break;
        case 'waiting':
            if (message.seat_token) sessionStorage.setItem(SEAT_KEY, message.seat_token);
            this.room = message.room || null;
            this._showWaiting(message);
            break;
        case 'participant_joined':
        case 'participant_updated':
            this.people.set(message.participant.id, message.participant);
            if (this.you && message.participant.id === this.you.id) this.you = message.participant;
            this._render();
            break;
        case 'participant_left':
            this.people.delete(message.participant_id);
            this._render();
            break;
        case 'room_updated': {
            const wasQueued = Boolean(this.room && this.you && this.room.hand_queue.includes(this.you.id));
            this.room = message.room;
            if (this.you) {
                confirmHand(wasQueued, this.room.hand_queue.indexOf(this.you.id) + 1, this.room.floor === this.you.id);
            }
            this._render();
            break;
        }
        case 'moderation_updated':
            this.view = message.moderation;
            this._render();
            break;
        case 'unmute_requested':
            this.unmutePrompt.hidden = false;
            this.unmuteAccept.focus();
            break;
        case 'circle_ended':
            this.finalText = FINAL_CLOSES[4410];
            this.finalTitle = FINAL_TITLES[4410];
            break;
        case 'error':
            if (message.code in ERROR_TEXT) {
                const text = ERROR_TEXT[message.code];
                if (['removed', 'denied', 'banned'].includes(message.code)) {
                    this.finalText = text;
                    this.finalTitle = FINAL_TITLES[message.code];
                }
                if (message.code === 'passcode_required') {
                    this.passcodeField.hidden = false;
                    this.passcodeInput.focus();
                }
                this.deniedOnly = message.code === 'denied';
                if (text) this._say(text);
            }
            break;
        default:
            break;
        }
    }

    /** What the join page learnt before joining (POST /circle-info): ask for a passcode only
     * when the circle needs one. */
    circleInfo(info) {
        if (info && info.passcode_required) this.passcodeField.hidden = false;
    }

    /** Adds the hand/floor marks and the host's per-person controls (host_panel.js) to the
     * list's rows. */
    decorateRows() {
        for (const li of document.querySelectorAll('#participants [data-testid="participant"]')) {
            const person = this.people.get(li.dataset.id);
            if (!person) continue;
            let mark = li.querySelector('[data-testid="person-mark"]');
            if (!mark) {
                // In the name's line: a mark that comes and goes moves no button.
                mark = el('span', { className: 'mark', testid: 'person-mark' });
                (li.querySelector('.who') || li).append(' ', mark);
            }
            const marks = [];
            if (person.role === 'cohost') marks.push('co-host');
            if (person.has_floor) marks.push('has the floor');
            if (person.hand_raised) marks.push('hand raised');
            if (person.connection === 'reconnecting') marks.push('reconnecting…');
            if (this.view && this.view.support.includes(person.id)) marks.push('needs support');
            const text = marks.join(' · ');
            if (mark.textContent !== text) mark.textContent = text;
            li.dataset.connection = person.connection || 'connected';
            const nameNode = li.querySelector('.name');
            if (nameNode && person.label && nameNode.textContent !== person.label) nameNode.textContent = person.label;
            this.host.decorateRow(li, person);
        }
    }

    // --- building ---------------------------------------------------------------------

    _build() {
        // The passcode field sits in the join form; the server says when it is needed.
        this.passcodeInput = el('input', { id: 'passcode', type: 'password', testid: 'passcode', autocomplete: 'off' });
        this.passcodeField = el('div', { className: 'field', hidden: true }, el('label', { htmlFor: 'passcode' }, 'Passcode'), this.passcodeInput,
            el('p', { className: 'hint' }, 'This circle asks for a passcode. Your host will have shared it.'));
        const form = $('join-form');
        if (form) form.insertBefore(this.passcodeField, $('join'));

        this.lobbyView = el('section', { id: 'view-lobby', className: 'view', testid: 'lobby-waiting', hidden: true },
            el('h1', { tabIndex: -1 }, 'Waiting to be let in'),
            this.lobbyText = el('p', { testid: 'lobby-position' }),
            el('p', { className: 'hint' }, 'A host will let you in. You can keep this page open.'));
        $('main').append(this.lobbyView);

        // Being turned away from the lobby is not a ban: the person may knock again.
        this.askAgain = button('ask-again', 'Ask again', () => window.location.reload());
        this.askAgain.hidden = true;
        this.finalView = el('section', { id: 'view-final', className: 'view', testid: 'final', hidden: true },
            this.finalHeading = el('h1', { tabIndex: -1 }, 'Hearth'),
            this.finalMessage = el('p', {}),
            this.askAgain);
        $('main').append(this.finalView);

        const circle = $('view-circle');
        const controls = circle.querySelector('.controls');

        // Everyone: hand, support, crisis, the turn timer, unmute requests.
        // Not a live region: it changes every second. spoken.js reads out the moments that matter.
        this.turnText = el('p', { className: 'turn', testid: 'turn-timer', hidden: true });
        this.unmuteAccept = button('accept-unmute', 'Unmute', () => { this._send({ type: 'answer_unmute', accept: true }); this.unmutePrompt.hidden = true; });
        this.unmutePrompt = el('div', { className: 'note', testid: 'unmute-request', hidden: true },
            'A host asks whether you would like to unmute. ', this.unmuteAccept, ' ',
            button('decline-unmute', 'Stay muted', () => { this._send({ type: 'answer_unmute', accept: false }); this.unmutePrompt.hidden = true; }));
        this.raise = button('raise-hand', 'Raise hand', () => this._send({ type: 'raise_hand' }), '');
        this.lower = button('lower-hand', 'Lower hand', () => this._send({ type: 'lower_hand' }), '');
        this.endMine = button('end-my-turn', 'I am done', () => this._send({ type: 'end_turn' }), '');
        // The support signal and the crisis panel: web/crisis.js.
        controls.append(this.raise, this.lower, this.endMine);
        controls.before(this.turnText, this.unmutePrompt);

        this.statusNote = el('p', { className: 'notice', role: 'status', testid: 'moderation-notice' });
        controls.after(this.statusNote);
    }

    // --- drawing ----------------------------------------------------------------------

    _moderator() {
        return Boolean(this.you && MODERATOR_ROLES.has(this.you.role));
    }

    _render() {
        const room = this.room;
        const you = this.you;
        if (!room || !you) return;
        const queued = room.hand_queue.includes(you.id);
        const hasFloor = room.floor === you.id;
        this.raise.hidden = queued || hasFloor;
        this.lower.hidden = !queued;
        this.endMine.hidden = !hasFloor;
        this._renderTurn();
        this.decorateRows();

        const moderator = this._moderator();
        this.host.render({ you, room, view: this.view, people: this.people });
    }

    _renderTurn() {
        const turn = this.room && this.room.turn;
        const now = Date.now();
        const line = turnLine(turn, this.people, this.you, now);
        this.turnText.hidden = !line;
        if (!line) return;
        this.turnText.classList.toggle('cue', line.cue);
        if (this.turnText.textContent !== line.text) this.turnText.textContent = line.text;
        speakTurn(turn, this.people, this.you, this._moderator(), now);
    }

    _showWaiting(message) {
        for (const view of document.querySelectorAll('main > .view')) view.hidden = view !== this.lobbyView;
        const why = message.reason === 'no_host' ? ' The circle waits for a host.' : '';
        this.lobbyText.textContent = `You are number ${message.position} of ${message.waiting} waiting.${why}`;
    }

    _showFinal(title, text) {
        for (const view of document.querySelectorAll('main > .view')) view.hidden = view !== this.finalView;
        this.finalHeading.textContent = title || 'Hearth';
        this.finalMessage.textContent = text;
        // The heading takes focus (app.js); the reason is read out, not left to be found.
        say(text, { urgent: true, key: 'final' });
        this.askAgain.hidden = !this.deniedOnly;
    }

    _say(text) {
        this.statusNote.textContent = text;
    }

    _send(message) {
        if (this.conn) this.conn.send(message);
    }
}

// Moderation and care on the page: the host panel, hands and the floor, the lobby's waiting
// view and unmute requests (the support signal and the crisis panel: crisis.js). The server decides every
// rule (docs/protocol.md); this file only shows its word and sends requests.
//
// app.js hooks in at four places, each marked "moderation hook": it passes every message in
// (handle), adds our fields to `join` (joinExtras), decorates the rows of the list
// (decorateRows) and asks whether a close is final (finalClose).

const DEVICE_KEY = 'hearth.device';
const SEAT_KEY = 'hearth.seat';
const MODERATOR_ROLES = new Set(['host', 'cohost']);
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

function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
        if (key === 'testid') node.setAttribute('data-testid', value);
        else if (key === 'onclick') node.addEventListener('click', value);
        else if (key in node) node[key] = value;
        else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
}

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
        this.timer = window.setInterval(() => this._renderTurn(), 1000);
        this._build();
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
        this._showFinal(text);
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
        case 'room_updated':
            this.room = message.room;
            this._render();
            break;
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
            break;
        case 'error':
            if (message.code in ERROR_TEXT) {
                const text = ERROR_TEXT[message.code];
                if (['removed', 'denied', 'banned'].includes(message.code)) this.finalText = text;
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

    /** Adds the moderator's per-person buttons and the hand/floor marks to the list rows. */
    decorateRows() {
        const iModerate = this._moderator();
        for (const li of document.querySelectorAll('#participants [data-testid="participant"]')) {
            const person = this.people.get(li.dataset.id);
            if (!person) continue;
            let box = li.querySelector('.mod-row');
            if (!box) {
                box = el('span', { className: 'mod-row' });
                const mark = el('span', { className: 'mark', testid: 'person-mark' });
                const floor = button('give-floor', 'Give floor', () => this._send({ type: 'give_floor', participant_id: li.dataset.id }));
                const ask = button('ask-unmute', 'Ask to unmute', () => this._send({ type: 'request_unmute', participant_id: li.dataset.id }));
                const cohost = button('make-cohost', 'Make co-host', () => {
                    const p = this.people.get(li.dataset.id);
                    this._send({ type: 'set_role', participant_id: li.dataset.id, role: p && p.role === 'cohost' ? 'participant' : 'cohost' });
                });
                const remove = button('remove', 'Remove', () => this._send({ type: 'remove', participant_id: li.dataset.id }), 'small danger');
                box.append(mark, floor, ask, cohost, remove);
                li.append(box);
            }
            const [mark, floor, ask, cohost, remove] = box.children;
            const isYou = this.you && person.id === this.you.id;
            const marks = [];
            if (person.role === 'cohost') marks.push('co-host');
            if (person.has_floor) marks.push('has the floor');
            if (person.hand_raised) marks.push('hand raised');
            if (person.connection === 'reconnecting') marks.push('reconnecting…');
            if (this.view && this.view.support.includes(person.id)) marks.push('needs support');
            mark.textContent = marks.join(' · ');
            li.dataset.connection = person.connection || 'connected';
            const nameNode = li.querySelector('.name');
            if (nameNode && person.label) nameNode.textContent = person.label;
            floor.hidden = !iModerate || person.has_floor;
            ask.hidden = !iModerate || isYou || !person.muted;
            cohost.hidden = !iModerate || isYou || person.role === 'host' || this.you.role !== 'host';
            cohost.textContent = person.role === 'cohost' ? 'Make participant' : 'Make co-host';
            remove.hidden = !iModerate || isYou || person.role === 'host';
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
            el('h1', { tabIndex: -1 }, 'Hearth'),
            this.finalMessage = el('p', {}),
            this.askAgain);
        $('main').append(this.finalView);

        const circle = $('view-circle');
        const controls = circle.querySelector('.controls');

        // Everyone: hand, support, crisis, the turn timer, unmute requests.
        this.turnText = el('p', { className: 'turn', testid: 'turn-timer', role: 'status', hidden: true });
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

        // Hosts and co-hosts.
        this.modeButton = button('mode', '', () => this._send({ type: 'set_speaking_mode', mode: this.room && this.room.speaking_mode === 'open' ? 'hand_raise' : 'open' }));
        this.lockButton = button('lock', '', () => this._send({ type: 'set_lock', locked: !(this.room && this.room.locked) }));
        this.lobbyButton = button('lobby-toggle', '', () => this._send({ type: 'set_lobby', enabled: !(this.room && this.room.lobby) }));
        this.shareSelect = el('select', { testid: 'share-time', ariaLabel: 'Time for each share', onchange: () => {
            const v = this.shareSelect.value;
            this._send({ type: 'set_share_time', seconds: v ? Number(v) : null });
        } }, el('option', { value: '' }, 'No time box'),
        ...[120, 180, 300].map((s) => el('option', { value: String(s) }, `${s / 60} minutes a share`)));
        this.endButton = button('end', 'End the circle', () => {
            this.endButton.hidden = true;
            this.endConfirm.hidden = false;
            this.endConfirm.focus();
        }, 'small danger');
        this.endConfirm = button('end-confirm', 'Yes, end it for everyone', () => this._send({ type: 'end_circle' }), 'small danger');
        this.endConfirm.hidden = true;
        this.queueList = el('ol', { testid: 'hand-queue', className: 'people' });
        this.lobbyList = el('ul', { testid: 'lobby-list', className: 'people' });
        this.bansList = el('ul', { testid: 'bans', className: 'people' });
        this.supportList = el('p', { testid: 'support-list', className: 'notice', role: 'status' });
        this.panel = el('section', { id: 'host-panel', testid: 'host-panel', className: 'host-panel', hidden: true, ariaLabel: 'Host tools' },
            el('h2', {}, 'Host tools'),
            this.supportList,
            el('div', { className: 'actions' }, this.modeButton, this.lobbyButton, this.lockButton,
                button('mute-all', 'Mute all', () => this._send({ type: 'mute_all' })), this.endButton, this.endConfirm),
            el('h3', {}, 'Hands'), this.queueList,
            el('div', { className: 'actions' },
                button('next', 'Next speaker', () => this._send({ type: 'next_speaker' })),
                button('end-turn', 'End turn', () => this._send({ type: 'end_turn' })),
                button('extend', '+1 minute', () => this._send({ type: 'extend_turn', seconds: 60 })),
                this.shareSelect),
            el('h3', {}, 'Waiting to come in'), this.lobbyList,
            el('div', { className: 'actions' }, button('admit-all', 'Let everyone in', () => this._send({ type: 'admit_all' }))),
            el('h3', {}, 'Removed'), this.bansList);
        circle.append(this.panel);
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
        this.panel.hidden = !moderator;
        if (!moderator) return;
        this.modeButton.textContent = room.speaking_mode === 'open' ? 'Switch to hand-raise' : 'Switch to open floor';
        this.lockButton.textContent = room.locked ? 'Unlock' : 'Lock';
        this.lockButton.setAttribute('aria-pressed', String(room.locked));
        this.lobbyButton.textContent = room.lobby ? 'Turn lobby off' : 'Turn lobby on';
        this.shareSelect.value = room.share_seconds ? String(room.share_seconds) : '';
        this.queueList.replaceChildren(...room.hand_queue.map((id) => {
            const p = this.people.get(id);
            return el('li', { testid: 'queued' }, p ? p.label || p.display_name : '…');
        }));
        const view = this.view || { lobby: [], bans: [], support: [] };
        this.lobbyList.replaceChildren(...view.lobby.map((w) => el('li', { testid: 'waiting-person', className: 'person' },
            el('span', { className: 'name' }, w.display_name), ' ',
            button('admit', 'Let in', () => this._send({ type: 'admit', participant_id: w.id })),
            button('deny', 'Not now', () => this._send({ type: 'deny', participant_id: w.id })),
            button('remove-waiting', 'Remove', () => this._send({ type: 'remove', participant_id: w.id }), 'small danger'))));
        this.bansList.replaceChildren(...view.bans.map((b) => el('li', { className: 'person' },
            el('span', { className: 'name' }, b.display_name), ' ',
            button('unban', 'Undo', () => this._send({ type: 'unban', ban_id: b.id })))));
        const needing = view.support.map((id) => this.people.get(id)).filter(Boolean);
        this.supportList.textContent = needing.length
            ? `Needs support: ${needing.map((p) => p.label || p.display_name).join(', ')}`
            : '';
    }

    _renderTurn() {
        const turn = this.room && this.room.turn;
        if (!turn) {
            this.turnText.hidden = true;
            return;
        }
        const who = this.people.get(turn.participant_id);
        const name = who ? who.label || who.display_name : 'Someone';
        this.turnText.hidden = false;
        this.turnText.classList.remove('cue');
        if (!turn.ends_at) {
            this.turnText.textContent = `${name} is sharing.`;
            return;
        }
        const left = Math.round((Date.parse(turn.ends_at) - Date.now()) / 1000);
        if (left > 0) {
            const m = Math.floor(left / 60);
            const s = String(left % 60).padStart(2, '0');
            this.turnText.textContent = `${name} is sharing · ${m}:${s} left`;
        } else {
            // The gentle cue: words and a soft colour, never a sound or a cut.
            this.turnText.classList.add('cue');
            this.turnText.textContent = `${name}'s time is up. Take a moment to finish.`;
        }
    }

    _showWaiting(message) {
        for (const view of document.querySelectorAll('main > .view')) view.hidden = view !== this.lobbyView;
        const why = message.reason === 'no_host' ? ' The circle waits for a host.' : '';
        this.lobbyText.textContent = `You are number ${message.position} of ${message.waiting} waiting.${why}`;
    }

    _showFinal(text) {
        for (const view of document.querySelectorAll('main > .view')) view.hidden = view !== this.finalView;
        this.finalMessage.textContent = text;
        this.askAgain.hidden = !this.deniedOnly;
    }

    _say(text) {
        this.statusNote.textContent = text;
    }

    _send(message) {
        if (this.conn) this.conn.send(message);
    }
}
